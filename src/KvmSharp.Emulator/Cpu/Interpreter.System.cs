using KvmSharp.Emulator.Decoding;
using KvmSharp.Emulator.Execution;
using KvmSharp.Emulator.Mmu;
using KvmSharp.Hypervisor;

namespace KvmSharp.Emulator.Cpu;

/// <summary>
/// System instructions: segment-register moves and loads, far transfers, software interrupts and IRET, PUSHF/POPF,
/// CLI/STI, descriptor-table instructions, CR/DR moves, MSRs, CPUID, RDTSC(P), SWAPGS, SYSCALL/SYSRET,
/// SYSENTER/SYSEXIT, INVLPG and cache control. Task switches, call gates and virtual-8086 mode are not implemented
/// (#GP), and docs/emulator.md says so.
/// </summary>
public sealed partial class Interpreter
{
    internal const ulong Cr4Supported = (1UL << 2) | PagingState.Cr4Pse | X86SystemRegisters.Cr4Pae | X86SystemRegisters.Cr4Pge
        | (1UL << 8) | X86SystemRegisters.Cr4Osfxsr | X86SystemRegisters.Cr4Osxmmexcpt;

    private const ulong Cr0Am = 1UL << 18;
    private const ulong Cr4Tsd = 1UL << 2;

    internal const ulong EferSupported = X86SystemRegisters.EferSce | X86SystemRegisters.EferLme | X86SystemRegisters.EferLma | X86SystemRegisters.EferNxe;

    // The flags POPF/IRET may load at all: status flags, TF, IF, DF, IOPL, NT, RF, AC, VIF, VIP, ID.
    private const ulong LoadableFlags = Flags.Arithmetic | Flags.TF | Flags.IF | Flags.DF | Flags.Iopl | Flags.NT
        | Flags.RF | Flags.AC | Flags.VIF | Flags.VIP | Flags.ID;

    /// <summary>CPUID's answers; replace it before running to describe another CPU count or frequency.</summary>
    public CpuidModel Cpuid { get; set; } = new(StandalonePlatform.TscFrequency, 25_000_000);

    /// <summary>NMIs are blocked from an NMI's delivery until the next IRET.</summary>
    public bool NmiBlocked { get; set; }

    /// <summary>The MSR IA32_MISC_ENABLE (fast strings set).</summary>
    public ulong MiscEnable { get; set; } = 1;

    private bool ExecuteSystem() => _insn.Op switch
    {
        Mnemonic.Ud0 or Mnemonic.Ud1 or Mnemonic.Ud2 => Fault(CpuException.InvalidOpcode),
        Mnemonic.MovToSreg => ExecuteMovToSreg(),
        Mnemonic.MovFromSreg => ExecuteMovFromSreg(),
        Mnemonic.PushCs => PushSelector(SegmentName.Cs),
        Mnemonic.PushDs => PushSelector(SegmentName.Ds),
        Mnemonic.PushEs => PushSelector(SegmentName.Es),
        Mnemonic.PushSs => PushSelector(SegmentName.Ss),
        Mnemonic.PushFs => PushSelector(SegmentName.Fs),
        Mnemonic.PushGs => PushSelector(SegmentName.Gs),
        Mnemonic.PopDs => PopSelector(SegmentName.Ds),
        Mnemonic.PopEs => PopSelector(SegmentName.Es),
        Mnemonic.PopSs => PopSelector(SegmentName.Ss),
        Mnemonic.PopFs => PopSelector(SegmentName.Fs),
        Mnemonic.PopGs => PopSelector(SegmentName.Gs),
        Mnemonic.Lds => LoadFarPointer(SegmentName.Ds),
        Mnemonic.Les => LoadFarPointer(SegmentName.Es),
        Mnemonic.Lfs => LoadFarPointer(SegmentName.Fs),
        Mnemonic.Lgs => LoadFarPointer(SegmentName.Gs),
        Mnemonic.Lss => LoadFarPointer(SegmentName.Ss),
        Mnemonic.JmpFar => ExecuteFarJump(),
        Mnemonic.CallFar => ExecuteFarCall(),
        Mnemonic.RetFar => ExecuteFarReturn(),
        Mnemonic.Int => SoftwareInterrupt((byte)_insn.Immediate),
        Mnemonic.Int3 => SoftwareInterrupt((byte)ExceptionVector.Breakpoint),
        Mnemonic.Into => (_state.RFlags & Flags.OF) == 0 || SoftwareInterrupt((byte)ExceptionVector.Overflow),
        Mnemonic.Int1 => SoftwareInterrupt((byte)ExceptionVector.Debug, privileged: true),
        Mnemonic.Iret => ExecuteIret(),
        Mnemonic.Pushf => ExecutePushf(),
        Mnemonic.Popf => ExecutePopf(),
        Mnemonic.Cli => ExecuteCliSti(false),
        Mnemonic.Sti => ExecuteCliSti(true),
        Mnemonic.Clts => RequireCpl0() && SetCr0Bits(_state.Cr0 & ~Cr0Ts),
        Mnemonic.Lgdt or Mnemonic.Lidt => ExecuteLoadDescriptorTable(),
        Mnemonic.Sgdt or Mnemonic.Sidt => ExecuteStoreDescriptorTable(),
        Mnemonic.Lldt => ExecuteLldt(),
        Mnemonic.Ltr => ExecuteLtr(),
        Mnemonic.Sldt => StoreSystemSelector(_state.Ldtr.Selector),
        Mnemonic.Str => StoreSystemSelector(_state.Tr.Selector),
        Mnemonic.Smsw => StoreSystemSelector(_state.Cr0, machineStatus: true),
        Mnemonic.Lmsw => ExecuteLmsw(),
        Mnemonic.Lar or Mnemonic.Lsl => ExecuteLarLsl(),
        Mnemonic.Verr or Mnemonic.Verw => ExecuteVerify(),
        Mnemonic.Arpl => ExecuteArpl(),
        Mnemonic.MovToCr => ExecuteMovToCr(),
        Mnemonic.MovFromCr => ExecuteMovFromCr(),
        Mnemonic.MovToDr => ExecuteMovToDr(),
        Mnemonic.MovFromDr => ExecuteMovFromDr(),
        Mnemonic.Rdmsr => ExecuteRdmsr(),
        Mnemonic.Wrmsr => ExecuteWrmsr(),
        Mnemonic.Cpuid => ExecuteCpuid(),
        Mnemonic.Rdtsc => ExecuteRdtsc(false),
        Mnemonic.Rdtscp => ExecuteRdtsc(true),
        Mnemonic.Rdpmc => GeneralProtection(), // no performance counters are advertised
        Mnemonic.Invlpg => ExecuteInvlpg(),
        Mnemonic.Invd or Mnemonic.Wbinvd => RequireCpl0(), // no caches to write back
        Mnemonic.Swapgs => ExecuteSwapgs(),
        Mnemonic.Syscall => ExecuteSyscall(),
        Mnemonic.Sysret => ExecuteSysret(),
        Mnemonic.Sysenter => ExecuteSysenter(),
        Mnemonic.Sysexit => ExecuteSysexit(),

        // Not advertised by CPUID: MONITOR/MWAIT, XSAVE's XGETBV/XSETBV, SMAP's CLAC/STAC, FSGSBASE, RDPID, RDRAND,
        // PKU, VMX, SMX, TSX, SMM.
        Mnemonic.Monitor or Mnemonic.Mwait or Mnemonic.Xgetbv or Mnemonic.Xsetbv or Mnemonic.Clac or Mnemonic.Stac
            or Mnemonic.Rdfsbase or Mnemonic.Rdgsbase or Mnemonic.Wrfsbase or Mnemonic.Wrgsbase or Mnemonic.Rdpid
            or Mnemonic.Rdrand or Mnemonic.Rdseed or Mnemonic.Rdpkru or Mnemonic.Wrpkru or Mnemonic.Rsm or Mnemonic.Getsec
            or Mnemonic.Vmcall or Mnemonic.Vmclear or Mnemonic.Vmfunc or Mnemonic.Vmlaunch or Mnemonic.Vmptrld
            or Mnemonic.Vmptrst or Mnemonic.Vmread or Mnemonic.Vmresume or Mnemonic.Vmwrite or Mnemonic.Vmxoff
            or Mnemonic.Vmxon or Mnemonic.Xabort or Mnemonic.Xbegin or Mnemonic.Xend or Mnemonic.Xtest => Unimplemented(),
        _ => ExecuteIntegerExtended(),
    };

    private bool RequireCpl0() => _state.Cpl == 0 || GeneralProtection();

    /// <summary>#GP(0) at CPL &gt; 0; #UD outside protected mode for instructions that need it.</summary>
    private bool RequireProtectedCpl0() => _mode == CpuMode.Real16 ? Fault(CpuException.InvalidOpcode) : RequireCpl0();

    // ---------------------------------------------------------------- segment registers

    private static SegmentName SegmentFromReg(int reg) => reg switch
    {
        0 => SegmentName.Es,
        1 => SegmentName.Cs,
        2 => SegmentName.Ss,
        3 => SegmentName.Ds,
        4 => SegmentName.Fs,
        _ => SegmentName.Gs,
    };

    private bool ExecuteMovToSreg()
    {
        int reg = _insn.Reg & 7;
        if (reg is 1 or > 5)
        {
            return Fault(CpuException.InvalidOpcode); // MOV CS and segment registers 6/7 do not exist
        }

        if (!ReadRm(2, MemoryAccess.Read, out ulong selector))
        {
            return false;
        }

        var segment = SegmentFromReg(reg);
        if (!LoadSegment(segment, (ushort)selector))
        {
            return false;
        }

        if (segment == SegmentName.Ss)
        {
            _state.InterruptShadow = true;
        }

        return true;
    }

    private bool ExecuteMovFromSreg()
    {
        int reg = _insn.Reg & 7;
        if (reg > 5)
        {
            return Fault(CpuException.InvalidOpcode);
        }

        ushort selector = _state.Segment(SegmentFromReg(reg)).Selector;
        if (_insn.HasMemoryOperand)
        {
            return WriteMemory(_insn.EffectiveSegment, OperandOffset(), 2, selector); // always a 16-bit store
        }

        WriteRegister(_insn.Rm, _insn.OperandSize == 2 ? 2 : _insn.OperandSize, selector); // zero-extended
        return true;
    }

    private bool PushSelector(SegmentName segment)
    {
        // Recent Intel CPUs write only the selector's 16 bits into the operand-size slot.
        int size = _insn.OperandSize;
        ulong rsp = (StackPointer - (ulong)size) & (StackAddressSize == 8 ? ulong.MaxValue : StackAddressSize == 4 ? 0xFFFF_FFFFUL : 0xFFFFUL);
        if (!Linear(SegmentName.Ss, rsp, size, MemoryAccess.Write, out ulong linear) || !TranslateRange(linear, size, MemoryAccess.Write, Privilege, out _, out _, out _))
        {
            return false;
        }

        if (!WriteMemory(SegmentName.Ss, rsp, 2, _state.Segment(segment).Selector))
        {
            return false;
        }

        SetStackPointer(rsp);
        return true;
    }

    private bool PopSelector(SegmentName segment)
    {
        int size = _insn.OperandSize;
        if (!PeekStack(2, out ulong selector) || !PeekStack(size, out _))
        {
            return false;
        }

        if (!LoadSegment(segment, (ushort)selector))
        {
            return false;
        }

        DiscardStack((ulong)size);
        if (segment == SegmentName.Ss)
        {
            _state.InterruptShadow = true;
        }

        return true;
    }

    private bool LoadFarPointer(SegmentName segment)
    {
        if (!_insn.HasMemoryOperand)
        {
            return Fault(CpuException.InvalidOpcode);
        }

        int size = _insn.OperandSize;
        ulong offset = OperandOffset();
        var source = _insn.EffectiveSegment;
        if (!ReadMemory(source, offset, size, MemoryAccess.Read, out ulong pointer)
            || !ReadMemory(source, (offset + (ulong)size) & AddressMask, 2, MemoryAccess.Read, out ulong selector))
        {
            return false;
        }

        if (!LoadSegment(segment, (ushort)selector))
        {
            return false;
        }

        WriteRegister(_insn.Reg, size, pointer);
        if (segment == SegmentName.Ss)
        {
            _state.InterruptShadow = true;
        }

        return true;
    }

    // ---------------------------------------------------------------- far transfers

    /// <summary>The target of a far JMP/CALL: ptr16:16/32 immediate, or m16:16/32/64.</summary>
    private bool FarOperand(out ushort selector, out ulong offset)
    {
        selector = 0;
        offset = 0;
        if (!_insn.HasModRm)
        {
            selector = _insn.Immediate2;
            offset = _insn.Immediate;
            return true;
        }

        if (!_insn.HasMemoryOperand)
        {
            return Fault(CpuException.InvalidOpcode);
        }

        int size = _insn.OperandSize;
        ulong at = OperandOffset();
        if (!ReadMemory(_insn.EffectiveSegment, at, size, MemoryAccess.Read, out offset)
            || !ReadMemory(_insn.EffectiveSegment, (at + (ulong)size) & AddressMask, 2, MemoryAccess.Read, out ulong s))
        {
            return false;
        }

        selector = (ushort)s;
        return true;
    }

    private bool ExecuteFarJump()
    {
        if (!FarOperand(out ushort selector, out ulong offset))
        {
            return false;
        }

        if (_mode == CpuMode.Real16)
        {
            return RealFarTransfer(selector, offset);
        }

        if ((selector & 0xFFFC) == 0)
        {
            return GeneralProtection();
        }

        if (!ReadDescriptor(selector, out ulong d, out ulong address))
        {
            return false;
        }

        if ((d & DescriptorS) == 0)
        {
            return Fault(CpuException.GeneralProtectionCode(SelectorError(selector))); // call gates and TSS: not implemented
        }

        if (!CheckDirectCodeTarget(selector, d))
        {
            return false;
        }

        bool longMode = (_state.Efer & X86SystemRegisters.EferLma) != 0;
        if (_insn.OperandSize == 2)
        {
            offset &= 0xFFFF;
        }

        if (!WithinCodeLimit(d, offset, longMode))
        {
            return GeneralProtection();
        }

        if (!CommitCodeSegment(selector, d, address, _state.Cpl))
        {
            return false;
        }

        _nextRip = offset;
        return true;
    }

    private bool RealFarTransfer(ushort selector, ulong offset)
    {
        ref var cs = ref _state.Cs;
        cs.Selector = selector;
        cs.Base = (ulong)selector << 4;
        _nextRip = offset & (_insn.OperandSize == 2 ? 0xFFFFUL : 0xFFFF_FFFFUL);
        return true;
    }

    private bool ExecuteFarCall()
    {
        if (!FarOperand(out ushort selector, out ulong offset))
        {
            return false;
        }

        int size = _insn.OperandSize;
        ushort oldCs = _state.Cs.Selector;
        ulong returnRip = _nextRip;
        ulong oldRsp = _state.Rsp;
        if (_mode == CpuMode.Real16)
        {
            if (!Push(oldCs, size) || !Push(returnRip, size))
            {
                _state.Rsp = oldRsp;
                return false;
            }

            return RealFarTransfer(selector, offset);
        }

        if ((selector & 0xFFFC) == 0)
        {
            return GeneralProtection();
        }

        if (!ReadDescriptor(selector, out ulong d, out ulong address))
        {
            return false;
        }

        if ((d & DescriptorS) == 0)
        {
            return Fault(CpuException.GeneralProtectionCode(SelectorError(selector))); // call gates and TSS: not implemented
        }

        if (!CheckDirectCodeTarget(selector, d))
        {
            return false;
        }

        if (size == 2)
        {
            offset &= 0xFFFF;
        }

        if (!WithinCodeLimit(d, offset, (_state.Efer & X86SystemRegisters.EferLma) != 0))
        {
            return GeneralProtection();
        }

        if (!Push(oldCs, size) || !Push(returnRip, size))
        {
            _state.Rsp = oldRsp;
            return false;
        }

        if (!CommitCodeSegment(selector, d, address, _state.Cpl))
        {
            _state.Rsp = oldRsp;
            return false;
        }

        _nextRip = offset;
        return true;
    }

    private bool ExecuteFarReturn()
    {
        int size = _insn.OperandSize;
        ulong release = _insn.Opcode == 0xCA ? _insn.Immediate & 0xFFFF : 0;
        if (!PeekStack(size, out ulong offset) || !PeekStack(2, out ulong selectorValue, size))
        {
            return false;
        }

        ushort selector = (ushort)selectorValue;
        if (_mode == CpuMode.Real16)
        {
            DiscardStack((ulong)(2 * size) + release);
            return RealFarTransfer(selector, offset);
        }

        int cpl = _state.Cpl;
        int rpl = selector & 3;
        if ((selector & 0xFFFC) == 0)
        {
            return GeneralProtection();
        }

        if (!ReadDescriptor(selector, out ulong d, out ulong address))
        {
            return false;
        }

        uint error = SelectorError(selector);
        if (!IsCodeDescriptor(d) || rpl < cpl || (IsConforming(d) ? DescriptorDpl(d) > rpl : DescriptorDpl(d) != rpl))
        {
            return Fault(CpuException.GeneralProtectionCode(error));
        }

        if ((d & DescriptorP) == 0)
        {
            return Fault(CpuException.SegmentNotPresent(error));
        }

        bool longMode = (_state.Efer & X86SystemRegisters.EferLma) != 0;
        if (size == 2)
        {
            offset &= 0xFFFF;
        }

        if (!WithinCodeLimit(d, offset, longMode))
        {
            return GeneralProtection();
        }

        if (rpl == cpl)
        {
            if (!CommitCodeSegment(selector, d, address, cpl))
            {
                return false;
            }

            DiscardStack((ulong)(2 * size) + release);
            _nextRip = offset;
            return true;
        }

        // Return to an outer privilege level: SS:RSP follow CS:RIP (after the released bytes).
        int depth = (2 * size) + (int)release;
        if (!PeekStack(size, out ulong newRsp, depth) || !PeekStack(2, out ulong newSs, depth + size))
        {
            return false;
        }

        return ReturnToOuterLevel(selector, d, address, offset, (ushort)newSs, newRsp + release, d, size);
    }

    /// <summary>Loads CS, SS and RSP for a RET far or IRET to a less privileged level (checks per SDM RET/IRET).</summary>
    private bool ReturnToOuterLevel(ushort selector, ulong d, ulong address, ulong offset, ushort ss, ulong rsp, ulong codeDescriptor, int size)
    {
        int rpl = selector & 3;
        uint ssError = SelectorError(ss);
        bool target64 = (_state.Efer & X86SystemRegisters.EferLma) != 0 && (codeDescriptor & (1UL << 53)) != 0;
        ulong ssd = 0;
        ulong ssAddress = 0;
        bool nullSs = (ss & 0xFFFC) == 0;
        if (nullSs)
        {
            if (!target64 || rpl == 3)
            {
                return GeneralProtection();
            }
        }
        else
        {
            if ((ss & 3) != rpl || !ReadDescriptor(ss, out ssd, out ssAddress))
            {
                return _fault.Vector == ExceptionVector.PageFault ? false : Fault(CpuException.GeneralProtectionCode(ssError));
            }

            bool writableData = (ssd & DescriptorS) != 0 && (ssd & (1UL << 43)) == 0 && (ssd & (1UL << 41)) != 0;
            if (!writableData || DescriptorDpl(ssd) != rpl)
            {
                return Fault(CpuException.GeneralProtectionCode(ssError));
            }

            if ((ssd & DescriptorP) == 0)
            {
                return Fault(CpuException.StackFaultCode(ssError));
            }

            if (!MarkAccessed(ssAddress, ssd))
            {
                return false;
            }
        }

        if (!CommitCodeSegment(selector, d, address, rpl))
        {
            return false;
        }

        if (nullSs)
        {
            ref var s = ref _state.Ss;
            s = default;
            s.Selector = ss;
            s.Unusable = 1;
            s.Dpl = (byte)rpl;
            s.Type = 3;
            s.S = 1;
            s.Db = 1;
        }
        else
        {
            _state.Ss = FromDescriptor(ss, ssd | DescriptorAccessed);
        }

        _mode = _state.Mode;
        _state.Rsp = size == 8 || _mode == CpuMode.Long64 ? rsp : _state.Ss.Db != 0 ? (uint)rsp : (_state.Rsp & ~0xFFFFUL) | (rsp & 0xFFFF);
        _nextRip = offset;
        InvalidateSegmentsForOuterPrivilege();
        return true;
    }

    private bool ExecuteIret()
    {
        int size = _insn.OperandSize;
        if (!PeekStack(size, out ulong rip) || !PeekStack(2, out ulong csValue, size) || !PeekStack(size, out ulong flags, 2 * size))
        {
            return false;
        }

        ushort selector = (ushort)csValue;
        ulong current = _state.RFlags;
        if (_mode == CpuMode.Real16)
        {
            ulong mask = size == 2 ? 0xFFFFUL & LoadableFlags : LoadableFlags & ~(Flags.VIF | Flags.VIP);
            DiscardStack((ulong)(3 * size));
            _state.RFlags = (current & ~mask) | (flags & mask) | Flags.Reserved1;
            NmiBlocked = false;
            return RealFarTransfer(selector, rip);
        }

        if ((current & Flags.NT) != 0 && (_state.Efer & X86SystemRegisters.EferLma) == 0)
        {
            return GeneralProtection(); // a task return: task switching is not implemented
        }

        if ((flags & Flags.VM) != 0 && _state.Cpl == 0 && size == 4 && (_state.Efer & X86SystemRegisters.EferLma) == 0)
        {
            return GeneralProtection(); // a return to virtual-8086 mode: not implemented
        }

        int cpl = _state.Cpl;
        int rpl = selector & 3;
        if ((selector & 0xFFFC) == 0)
        {
            return GeneralProtection();
        }

        if (!ReadDescriptor(selector, out ulong d, out ulong address))
        {
            return false;
        }

        uint error = SelectorError(selector);
        if (!IsCodeDescriptor(d) || rpl < cpl || (IsConforming(d) ? DescriptorDpl(d) > rpl : DescriptorDpl(d) != rpl))
        {
            return Fault(CpuException.GeneralProtectionCode(error));
        }

        if ((d & DescriptorP) == 0)
        {
            return Fault(CpuException.SegmentNotPresent(error));
        }

        bool longMode = (_state.Efer & X86SystemRegisters.EferLma) != 0;
        if (size == 2)
        {
            rip &= 0xFFFF;
        }

        if (!WithinCodeLimit(d, rip, longMode))
        {
            return GeneralProtection();
        }

        ulong newFlags = MergeFlags(current, flags, size, cpl, iret: true);
        if (rpl == cpl && _mode != CpuMode.Long64)
        {
            if (!CommitCodeSegment(selector, d, address, cpl))
            {
                return false;
            }

            DiscardStack((ulong)(3 * size));
            _state.RFlags = newFlags;
            _nextRip = rip;
            NmiBlocked = false;
            return true;
        }

        // 64-bit mode always pops SS:RSP; elsewhere only a return to an outer level does.
        if (!PeekStack(size, out ulong newRsp, 3 * size) || !PeekStack(2, out ulong newSs, 4 * size))
        {
            return false;
        }

        if (rpl == cpl)
        {
            // 64-bit IRET to the same level: SS may be null at CPL < 3 when returning to 64-bit code.
            bool target64 = (d & (1UL << 53)) != 0;
            ushort ss = (ushort)newSs;
            ulong ssd = 0;
            ulong ssAddress = 0;
            bool nullSs = (ss & 0xFFFC) == 0;
            if (nullSs ? !target64 || rpl == 3 : (ss & 3) != rpl)
            {
                return Fault(CpuException.GeneralProtectionCode(SelectorError(ss)));
            }

            if (!nullSs)
            {
                if (!ReadDescriptor(ss, out ssd, out ssAddress))
                {
                    return false;
                }

                bool writableData = (ssd & DescriptorS) != 0 && (ssd & (1UL << 43)) == 0 && (ssd & (1UL << 41)) != 0;
                if (!writableData || DescriptorDpl(ssd) != rpl)
                {
                    return Fault(CpuException.GeneralProtectionCode(SelectorError(ss)));
                }

                if ((ssd & DescriptorP) == 0)
                {
                    return Fault(CpuException.StackFaultCode(SelectorError(ss)));
                }

                if (!MarkAccessed(ssAddress, ssd))
                {
                    return false;
                }
            }

            if (!CommitCodeSegment(selector, d, address, cpl))
            {
                return false;
            }

            if (nullSs)
            {
                ref var s = ref _state.Ss;
                s = default;
                s.Selector = ss;
                s.Unusable = 1;
                s.Dpl = (byte)rpl;
                s.Type = 3;
                s.S = 1;
                s.Db = 1;
            }
            else
            {
                _state.Ss = FromDescriptor(ss, ssd | DescriptorAccessed);
            }

            _state.Rsp = size == 8 ? newRsp : size == 4 ? (uint)newRsp : newRsp & 0xFFFF;
            _state.RFlags = newFlags;
            _nextRip = rip;
            NmiBlocked = false;
            return true;
        }

        if (!ReturnToOuterLevel(selector, d, address, rip, (ushort)newSs, newRsp, d, size))
        {
            return false;
        }

        _state.RFlags = newFlags;
        NmiBlocked = false;
        return true;
    }

    /// <summary>
    /// The RFLAGS that POPF/IRET produce from <paramref name="popped"/> (SDM POPF/IRET operation): IOPL only at CPL 0,
    /// IF only when CPL &lt;= IOPL, VIF/VIP only by IRET at CPL 0, VM never here; a 16-bit operand keeps bits 16+.
    /// </summary>
    private static ulong MergeFlags(ulong current, ulong popped, int size, int cpl, bool iret)
    {
        ulong changeable = LoadableFlags;
        int iopl = (int)((current & Flags.Iopl) >> Flags.IoplShift);
        if (cpl > 0)
        {
            changeable &= ~Flags.Iopl;
        }

        if (cpl > iopl)
        {
            changeable &= ~Flags.IF;
        }

        if (!iret || cpl > 0)
        {
            changeable &= ~(Flags.VIF | Flags.VIP);
        }

        if (!iret)
        {
            changeable &= ~Flags.RF; // POPF clears RF
        }

        if (size == 2)
        {
            changeable &= 0xFFFF;
        }

        ulong result = (current & ~changeable) | (popped & changeable);
        if (!iret)
        {
            result &= ~Flags.RF;
        }

        return result | Flags.Reserved1;
    }

    private bool ExecutePushf()
    {
        if ((_state.RFlags & Flags.VM) != 0)
        {
            return GeneralProtection(); // virtual-8086 mode is not implemented
        }

        return Push(_state.RFlags & ~(Flags.VM | Flags.RF), _insn.OperandSize);
    }

    private bool ExecutePopf()
    {
        int size = _insn.OperandSize;
        if (!PeekStack(size, out ulong popped))
        {
            return false;
        }

        int cpl = _mode == CpuMode.Real16 ? 0 : _state.Cpl;
        DiscardStack((ulong)size);
        _state.RFlags = MergeFlags(_state.RFlags, popped, size, cpl, iret: false);
        return true;
    }

    private bool ExecuteCliSti(bool set)
    {
        if (_mode != CpuMode.Real16)
        {
            int iopl = (int)((_state.RFlags & Flags.Iopl) >> Flags.IoplShift);
            if (_state.Cpl > iopl)
            {
                return GeneralProtection(); // CR4.PVI/VME are not supported
            }
        }

        if (set)
        {
            if ((_state.RFlags & Flags.IF) == 0)
            {
                _state.InterruptShadow = true; // interrupts wait until after the next instruction
            }

            _state.RFlags |= Flags.IF;
        }
        else
        {
            _state.RFlags &= ~Flags.IF;
        }

        return true;
    }

    // ---------------------------------------------------------------- descriptor tables

    private bool ExecuteLoadDescriptorTable()
    {
        if (!_insn.HasMemoryOperand)
        {
            return Fault(CpuException.InvalidOpcode);
        }

        if (_mode != CpuMode.Real16 && !RequireCpl0())
        {
            return false;
        }

        int baseSize = _mode == CpuMode.Long64 ? 8 : 4;
        ulong at = OperandOffset();
        if (!ReadMemory(_insn.EffectiveSegment, at, 2, MemoryAccess.Read, out ulong limit)
            || !ReadMemory(_insn.EffectiveSegment, (at + 2) & AddressMask, baseSize, MemoryAccess.Read, out ulong tableBase))
        {
            return false;
        }

        if (_mode == CpuMode.Long64 && !IsCanonical(tableBase))
        {
            return GeneralProtection();
        }

        if (_insn.OperandSize == 2 && _mode != CpuMode.Long64)
        {
            tableBase &= 0xFF_FFFF;
        }

        var table = new DescriptorTable { Base = tableBase, Limit = (ushort)limit };
        if (_insn.Op == Mnemonic.Lgdt)
        {
            _state.Gdtr = table;
        }
        else
        {
            _state.Idtr = table;
        }

        return true;
    }

    private bool ExecuteStoreDescriptorTable()
    {
        if (!_insn.HasMemoryOperand)
        {
            return Fault(CpuException.InvalidOpcode);
        }

        var table = _insn.Op == Mnemonic.Sgdt ? _state.Gdtr : _state.Idtr;
        int baseSize = _mode == CpuMode.Long64 ? 8 : 4;
        Span<byte> image = stackalloc byte[10];
        BitConverter.TryWriteBytes(image, table.Limit);
        BitConverter.TryWriteBytes(image[2..], table.Base);
        return WriteMemoryBytes(_insn.EffectiveSegment, OperandOffset(), image[..(2 + baseSize)]);
    }

    private bool ExecuteLldt()
    {
        if (!RequireProtectedCpl0() || !ReadRm(2, MemoryAccess.Read, out ulong value))
        {
            return false;
        }

        ushort selector = (ushort)value;
        if ((selector & 0xFFFC) == 0)
        {
            _state.Ldtr = default;
            _state.Ldtr.Unusable = 1;
            _state.Ldtr.Selector = selector;
            return true;
        }

        return LoadSystemSegment(selector, 2, out _state.Ldtr);
    }

    private bool ExecuteLtr()
    {
        if (!RequireProtectedCpl0() || !ReadRm(2, MemoryAccess.Read, out ulong value))
        {
            return false;
        }

        ushort selector = (ushort)value;
        if ((selector & 0xFFFC) == 0)
        {
            return GeneralProtection();
        }

        var saved = _state.Tr;
        if (!LoadSystemSegment(selector, 9, out var tr))
        {
            _state.Tr = saved;
            return false;
        }

        // LTR marks the TSS busy in the GDT.
        if (!ReadDescriptor(selector, out ulong d, out ulong address) || !WriteLinear(address + 5, 1, (d >> 40) | 2, AccessPrivilege.Supervisor))
        {
            return false;
        }

        tr.Type |= 2;
        _state.Tr = tr;
        return true;
    }

    /// <summary>Reads and checks an LDT (type 2) or available-TSS (type 9, or 1 for a 16-bit TSS outside long mode) descriptor from the GDT.</summary>
    private bool LoadSystemSegment(ushort selector, int type, out SegmentRegister segment)
    {
        segment = default;
        uint error = SelectorError(selector);
        if ((selector & 4) != 0)
        {
            return Fault(CpuException.GeneralProtectionCode(error));
        }

        if (!ReadDescriptor(selector, out ulong d, out ulong address))
        {
            return false;
        }

        int actual = (int)((d >> 40) & 0x1F);
        bool longMode = (_state.Efer & X86SystemRegisters.EferLma) != 0;
        bool ok = actual == type || (type == 9 && actual == 1 && !longMode);
        if (!ok)
        {
            return Fault(CpuException.GeneralProtectionCode(error));
        }

        if ((d & DescriptorP) == 0)
        {
            return Fault(CpuException.SegmentNotPresent(error));
        }

        segment = FromDescriptor(selector, d);
        if (longMode)
        {
            if (!ReadDescriptorHigh(address, selector, out ulong high))
            {
                return false;
            }

            if (((high >> 40) & 0x1F) != 0)
            {
                return Fault(CpuException.GeneralProtectionCode(error)); // the upper half's type field must be zero
            }

            segment.Base |= (high & 0xFFFF_FFFF) << 32;
            if (!IsCanonical(segment.Base))
            {
                return Fault(CpuException.GeneralProtectionCode(error));
            }
        }

        return true;
    }

    /// <summary>SLDT/STR/SMSW: a register destination takes the operand size (zero-extended), memory takes 16 bits.</summary>
    private bool StoreSystemSelector(ulong value, bool machineStatus = false)
    {
        if (!machineStatus && _mode == CpuMode.Real16)
        {
            return Fault(CpuException.InvalidOpcode);
        }

        if (_insn.HasMemoryOperand)
        {
            return WriteMemory(_insn.EffectiveSegment, OperandOffset(), 2, value & 0xFFFF);
        }

        int size = _insn.OperandSize;
        WriteRegister(_insn.Rm, size, machineStatus ? value : value & 0xFFFF);
        return true;
    }

    private bool ExecuteLmsw()
    {
        if (_mode != CpuMode.Real16 && !RequireCpl0())
        {
            return false;
        }

        if (!ReadRm(2, MemoryAccess.Read, out ulong value))
        {
            return false;
        }

        // LMSW loads PE, MP, EM, TS; it can set PE but never clear it.
        ulong cr0 = (_state.Cr0 & ~0xEUL) | (value & 0xF) | (_state.Cr0 & 1);
        return SetCr0Bits(cr0);
    }

    /// <summary>LAR/LSL: ZF=1 and the access rights or limit when the descriptor is visible at this CPL and RPL, else ZF=0.</summary>
    private bool ExecuteLarLsl()
    {
        if (_mode == CpuMode.Real16)
        {
            return Fault(CpuException.InvalidOpcode);
        }

        if (!ReadRm(2, MemoryAccess.Read, out ulong value))
        {
            return false;
        }

        ushort selector = (ushort)value;
        if (!ProbeDescriptor(selector, out ulong d))
        {
            return _faultFromProbe ? false : ClearZf();
        }

        int type = (int)((d >> 40) & 0xF);
        bool system = (d & DescriptorS) == 0;
        bool longMode = (_state.Efer & X86SystemRegisters.EferLma) != 0;
        bool validType = !system || (_insn.Op == Mnemonic.Lar
            ? (longMode ? type is 2 or 9 or 11 or 12 : type is 1 or 2 or 3 or 4 or 5 or 9 or 11 or 12)
            : (longMode ? type is 2 or 9 or 11 : type is 1 or 2 or 3 or 9 or 11));
        bool conformingCode = !system && IsCodeDescriptor(d) && IsConforming(d);
        int dpl = DescriptorDpl(d);
        if (!validType || (!conformingCode && (dpl < _state.Cpl || dpl < (selector & 3))))
        {
            return ClearZf();
        }

        ulong result = _insn.Op == Mnemonic.Lar
            ? (d >> 32) & 0x00F0_FF00
            : FromDescriptor(selector, d).Limit;
        WriteRegister(_insn.Reg, _insn.OperandSize, result);
        _state.RFlags |= Flags.ZF;
        return true;
    }

    private bool _faultFromProbe;

    /// <summary>Reads a descriptor without faulting for a null or out-of-limit selector (a #PF on the table still faults).</summary>
    private bool ProbeDescriptor(ushort selector, out ulong d)
    {
        d = 0;
        _faultFromProbe = false;
        if ((selector & 0xFFFC) == 0)
        {
            return false;
        }

        ulong limit = (selector & 4) != 0 ? (_state.Ldtr.Unusable != 0 ? 0 : _state.Ldtr.Limit) : _state.Gdtr.Limit;
        if ((selector & 4) != 0 && _state.Ldtr.Unusable != 0)
        {
            return false;
        }

        if ((ulong)(selector & 0xFFF8) + 7 > limit)
        {
            return false;
        }

        if (!ReadDescriptor(selector, out d, out _))
        {
            _faultFromProbe = true;
            return false;
        }

        return true;
    }

    private bool ClearZf()
    {
        _state.RFlags &= ~Flags.ZF;
        return true;
    }

    private bool ExecuteVerify()
    {
        if (_mode == CpuMode.Real16)
        {
            return Fault(CpuException.InvalidOpcode);
        }

        if (!ReadRm(2, MemoryAccess.Read, out ulong value))
        {
            return false;
        }

        ushort selector = (ushort)value;
        if (!ProbeDescriptor(selector, out ulong d))
        {
            return _faultFromProbe ? false : ClearZf();
        }

        if ((d & DescriptorS) == 0)
        {
            return ClearZf();
        }

        bool code = IsCodeDescriptor(d);
        bool readable = !code || (d & (1UL << 41)) != 0;
        bool writable = !code && (d & (1UL << 41)) != 0;
        bool ok = _insn.Op == Mnemonic.Verr ? readable : writable;
        bool conformingCode = code && IsConforming(d);
        int dpl = DescriptorDpl(d);
        if (!conformingCode && (dpl < _state.Cpl || dpl < (selector & 3)))
        {
            ok = false;
        }

        _state.RFlags = ok ? _state.RFlags | Flags.ZF : _state.RFlags & ~Flags.ZF;
        return true;
    }

    private bool ExecuteArpl()
    {
        if (_mode is CpuMode.Real16 or CpuMode.Long64)
        {
            return Fault(CpuException.InvalidOpcode); // in 64-bit mode 63 is MOVSXD (decoded as such)
        }

        if (!ReadRm(2, MemoryAccess.Write, out ulong destination))
        {
            return false;
        }

        ulong source = ReadRegister(_insn.Reg, 2);
        if ((destination & 3) < (source & 3))
        {
            if (!WriteRm(2, (destination & ~3UL) | (source & 3)))
            {
                return false;
            }

            _state.RFlags |= Flags.ZF;
        }
        else
        {
            _state.RFlags &= ~Flags.ZF;
        }

        return true;
    }

    // ---------------------------------------------------------------- control and debug registers

    private int ControlRegisterSize => _mode == CpuMode.Long64 ? 8 : 4;

    private bool ExecuteMovFromCr()
    {
        if (!RequireCpl0())
        {
            return false;
        }

        ulong value;
        switch (_insn.Reg)
        {
            case 0: value = _state.Cr0; break;
            case 2: value = _state.Cr2; break;
            case 3: value = _state.Cr3; break;
            case 4: value = _state.Cr4; break;
            case 8 when _mode == CpuMode.Long64: value = _platform.ReadCr8(); break;
            default: return Fault(CpuException.InvalidOpcode);
        }

        WriteRegister(_insn.Rm, ControlRegisterSize, value);
        return true;
    }

    private bool ExecuteMovToCr()
    {
        if (!RequireCpl0())
        {
            return false;
        }

        ulong value = ReadRegister(_insn.Rm, ControlRegisterSize);
        switch (_insn.Reg)
        {
            case 0:
                return SetCr0Bits(value);
            case 2:
                _state.Cr2 = value;
                return true;
            case 3:
                return SetCr3(value);
            case 4:
                return SetCr4(value);
            case 8 when _mode == CpuMode.Long64:
                if ((value & ~0xFUL) != 0)
                {
                    return GeneralProtection();
                }

                _platform.WriteCr8(value);
                return true;
            default:
                return Fault(CpuException.InvalidOpcode);
        }
    }

    /// <summary>MOV to CR0 (also LMSW, CLTS): architectural checks, long-mode activation, the MMU's side effects.</summary>
    private bool SetCr0Bits(ulong value)
    {
        const ulong cd = PagingState.Cr0Cd;
        const ulong nw = PagingState.Cr0Nw;
        value |= X86SystemRegisters.Cr0Et;
        if ((value >> 32) != 0 || (value & X86SystemRegisters.Cr0Pg) != 0 && (value & X86SystemRegisters.Cr0Pe) == 0
            || (value & nw) != 0 && (value & cd) == 0)
        {
            return GeneralProtection();
        }

        bool pagingOn = (value & X86SystemRegisters.Cr0Pg) != 0;
        bool wasOn = (_state.Cr0 & X86SystemRegisters.Cr0Pg) != 0;
        ulong efer = _state.Efer;
        if (pagingOn && !wasOn && (efer & X86SystemRegisters.EferLme) != 0)
        {
            if ((_state.Cr4 & X86SystemRegisters.Cr4Pae) == 0)
            {
                return GeneralProtection();
            }

            efer |= X86SystemRegisters.EferLma;
        }
        else if (!pagingOn && wasOn && (efer & X86SystemRegisters.EferLma) != 0)
        {
            if (_mode == CpuMode.Long64)
            {
                return GeneralProtection(); // paging cannot be turned off from 64-bit code
            }

            efer &= ~X86SystemRegisters.EferLma;
        }

        if (efer != _state.Efer)
        {
            _mmu.WriteEfer(efer);
        }

        if (!_mmu.TryWriteCr0(value))
        {
            _mmu.WriteEfer(_state.Efer);
            return GeneralProtection();
        }

        _state.Efer = efer;
        _state.Cr0 = value;
        return true;
    }

    private bool SetCr3(ulong value)
    {
        if ((_state.Efer & X86SystemRegisters.EferLma) != 0)
        {
            if ((value >> PageWalker.DefaultMaxPhysicalAddressBits) != 0)
            {
                return GeneralProtection(); // includes bit 63 (no PCIDs here)
            }
        }
        else
        {
            value = (uint)value;
        }

        if (!_mmu.TryWriteCr3(value))
        {
            return GeneralProtection();
        }

        _state.Cr3 = value;
        return true;
    }

    private bool SetCr4(ulong value)
    {
        if ((value & ~Cr4Supported) != 0)
        {
            return GeneralProtection();
        }

        if ((_state.Efer & X86SystemRegisters.EferLma) != 0 && (value & X86SystemRegisters.Cr4Pae) == 0)
        {
            return GeneralProtection();
        }

        if (!_mmu.TryWriteCr4(value))
        {
            return GeneralProtection();
        }

        _state.Cr4 = value;
        return true;
    }

    private bool ExecuteMovFromDr()
    {
        if (!RequireCpl0())
        {
            return false;
        }

        int dr = _insn.Reg;
        ulong value;
        switch (dr)
        {
            case <= 3: value = _state.Dr[dr]; break;
            case 4 or 6: value = _state.Dr6; break;
            case 5 or 7: value = _state.Dr7; break;
            default: return Fault(CpuException.InvalidOpcode);
        }

        WriteRegister(_insn.Rm, ControlRegisterSize, value);
        return true;
    }

    private bool ExecuteMovToDr()
    {
        if (!RequireCpl0())
        {
            return false;
        }

        int dr = _insn.Reg;
        ulong value = ReadRegister(_insn.Rm, ControlRegisterSize);
        switch (dr)
        {
            case <= 3:
                _state.Dr[dr] = value;
                return true;
            case 4 or 6:
                if ((value >> 32) != 0)
                {
                    return GeneralProtection();
                }

                _state.Dr6 = (value & 0xE00F) | 0xFFFF_0FF0;
                return true;
            case 5 or 7:
                if ((value >> 32) != 0)
                {
                    return GeneralProtection();
                }

                // Hardware breakpoints are stored but not armed: CPUID does not advertise DE, and docs/emulator.md says so.
                _state.Dr7 = (value & 0xFFFF_2BFF) | 0x400;
                return true;
            default:
                return Fault(CpuException.InvalidOpcode);
        }
    }

    // ---------------------------------------------------------------- MSRs, CPUID, TSC

    private bool ExecuteRdmsr()
    {
        if (!RequireCpl0())
        {
            return false;
        }

        if (!TryReadMsr((uint)_state.Rcx, out ulong value))
        {
            return GeneralProtection();
        }

        _state.Rax = (uint)value;
        _state.Rdx = value >> 32;
        return true;
    }

    private bool ExecuteWrmsr()
    {
        if (!RequireCpl0())
        {
            return false;
        }

        ulong value = ((_state.Rdx & 0xFFFF_FFFF) << 32) | (_state.Rax & 0xFFFF_FFFF);
        return TryWriteMsr((uint)_state.Rcx, value) || GeneralProtection();
    }

    /// <summary>MSR numbers this CPU implements itself (the rest go to the platform).</summary>
    public static class Msr
    {
        public const uint Tsc = 0x10;
        public const uint UcodeRevision = 0x8B;
        public const uint SysenterCs = 0x174;
        public const uint SysenterEsp = 0x175;
        public const uint SysenterEip = 0x176;
        public const uint MiscEnable = 0x1A0;
        public const uint Pat = 0x277;
        public const uint Efer = 0xC000_0080;
        public const uint Star = 0xC000_0081;
        public const uint Lstar = 0xC000_0082;
        public const uint Cstar = 0xC000_0083;
        public const uint Fmask = 0xC000_0084;
        public const uint FsBase = 0xC000_0100;
        public const uint GsBase = 0xC000_0101;
        public const uint KernelGsBase = 0xC000_0102;
        public const uint TscAux = 0xC000_0103;
    }

    /// <summary>RDMSR's value for <paramref name="index"/>; false for an MSR neither the CPU nor the platform has.</summary>
    public bool TryReadMsr(uint index, out ulong value)
    {
        value = index switch
        {
            Msr.Tsc => _platform.ReadTsc(),
            Msr.UcodeRevision => 0,
            Msr.SysenterCs => _state.SysenterCs,
            Msr.SysenterEsp => _state.SysenterEsp,
            Msr.SysenterEip => _state.SysenterEip,
            Msr.MiscEnable => MiscEnable,
            Msr.Pat => _state.Pat,
            Msr.Efer => _state.Efer,
            Msr.Star => _state.Star,
            Msr.Lstar => _state.Lstar,
            Msr.Cstar => _state.Cstar,
            Msr.Fmask => _state.Sfmask,
            Msr.FsBase => _state.FsBase,
            Msr.GsBase => _state.GsBase,
            Msr.KernelGsBase => _state.KernelGsBase,
            Msr.TscAux => _state.TscAux,
            _ => 0,
        };
        return index switch
        {
            Msr.Tsc or Msr.UcodeRevision or Msr.SysenterCs or Msr.SysenterEsp or Msr.SysenterEip or Msr.MiscEnable
                or Msr.Pat or Msr.Efer or Msr.Star or Msr.Lstar or Msr.Cstar or Msr.Fmask or Msr.FsBase or Msr.GsBase
                or Msr.KernelGsBase or Msr.TscAux => true,
            _ => _platform.TryReadMsr(index, out value),
        };
    }

    /// <summary>WRMSR: false (#GP) for an unknown MSR or a value it refuses (non-canonical bases, reserved bits).</summary>
    public bool TryWriteMsr(uint index, ulong value)
    {
        switch (index)
        {
            case Msr.Tsc:
                _platform.WriteTsc(value);
                return true;
            case Msr.UcodeRevision:
                return true; // Linux writes 0 before reading the revision
            case Msr.SysenterCs:
                _state.SysenterCs = value & 0xFFFF;
                return true;
            case Msr.SysenterEsp:
            case Msr.SysenterEip:
                if (!IsCanonical(value))
                {
                    return false;
                }

                if (index == Msr.SysenterEsp)
                {
                    _state.SysenterEsp = value;
                }
                else
                {
                    _state.SysenterEip = value;
                }

                return true;
            case Msr.MiscEnable:
                MiscEnable = value;
                return true;
            case Msr.Pat:
                for (int i = 0; i < 8; i++)
                {
                    ulong type = (value >> (i * 8)) & 0xFF;
                    if (type is 2 or 3 or > 7)
                    {
                        return false;
                    }
                }

                _state.Pat = value;
                return true;
            case Msr.Efer:
                return WriteEfer(value);
            case Msr.Star:
                _state.Star = value;
                return true;
            case Msr.Lstar:
            case Msr.Cstar:
            case Msr.FsBase:
            case Msr.GsBase:
            case Msr.KernelGsBase:
                if (!IsCanonical(value))
                {
                    return false;
                }

                switch (index)
                {
                    case Msr.Lstar: _state.Lstar = value; break;
                    case Msr.Cstar: _state.Cstar = value; break;
                    case Msr.FsBase: _state.FsBase = value; break;
                    case Msr.GsBase: _state.GsBase = value; break;
                    default: _state.KernelGsBase = value; break;
                }

                return true;
            case Msr.Fmask:
                _state.Sfmask = value & 0xFFFF_FFFF;
                return true;
            case Msr.TscAux:
                if ((value >> 32) != 0)
                {
                    return false;
                }

                _state.TscAux = value;
                return true;
            default:
                return _platform.TryWriteMsr(index, value);
        }
    }

    private bool WriteEfer(ulong value)
    {
        if ((value & ~EferSupported) != 0)
        {
            return false;
        }

        // LMA is read-only; LME cannot change while paging is on.
        value = (value & ~X86SystemRegisters.EferLma) | (_state.Efer & X86SystemRegisters.EferLma);
        if ((_state.Cr0 & X86SystemRegisters.Cr0Pg) != 0 && ((value ^ _state.Efer) & X86SystemRegisters.EferLme) != 0)
        {
            return false;
        }

        _mmu.WriteEfer(value);
        _state.Efer = value;
        return true;
    }

    private bool ExecuteCpuid()
    {
        Cpuid.Query((uint)_state.Rax, (uint)_state.Rcx, out uint eax, out uint ebx, out uint ecx, out uint edx);
        _state.Rax = eax;
        _state.Rbx = ebx;
        _state.Rcx = ecx;
        _state.Rdx = edx;
        return true;
    }

    private bool ExecuteRdtsc(bool withAux)
    {
        if ((_state.Cr4 & Cr4Tsd) != 0 && _state.Cpl != 0 && _mode != CpuMode.Real16)
        {
            return GeneralProtection();
        }

        ulong tsc = _platform.ReadTsc();
        _state.Rax = (uint)tsc;
        _state.Rdx = tsc >> 32;
        if (withAux)
        {
            _state.Rcx = (uint)_state.TscAux;
        }

        return true;
    }

    private bool ExecuteInvlpg()
    {
        if (!_insn.HasMemoryOperand)
        {
            return Fault(CpuException.InvalidOpcode);
        }

        if (!RequireCpl0())
        {
            return false;
        }

        _mmu.InvalidatePage(LinearAddressOf(_insn.EffectiveSegment, OperandOffset()));
        return true;
    }

    private bool ExecuteSwapgs()
    {
        if (_mode != CpuMode.Long64)
        {
            return Fault(CpuException.InvalidOpcode);
        }

        if (!RequireCpl0())
        {
            return false;
        }

        (_state.GsBase, _state.KernelGsBase) = (_state.KernelGsBase, _state.GsBase);
        return true;
    }

    // ---------------------------------------------------------------- fast system calls

    private bool ExecuteSyscall()
    {
        if (_mode != CpuMode.Long64 || (_state.Efer & X86SystemRegisters.EferSce) == 0)
        {
            return Fault(CpuException.InvalidOpcode); // Intel CPUs: SYSCALL only from 64-bit mode
        }

        _state.Rcx = _nextRip;
        _state[11] = _state.RFlags & ~Flags.RF;
        ushort selector = (ushort)((_state.Star >> 32) & 0xFFFC);
        _state.Cs = SegmentRegister.FlatCode(selector, longMode: true);
        _state.Ss = SegmentRegister.FlatData((ushort)(selector + 8));
        _state.Cpl = 0;
        _state.RFlags = (_state.RFlags & ~(_state.Sfmask | Flags.RF)) | Flags.Reserved1;
        _nextRip = _state.Lstar;
        return true;
    }

    private bool ExecuteSysret()
    {
        if (_mode != CpuMode.Long64 || (_state.Efer & X86SystemRegisters.EferSce) == 0)
        {
            return Fault(CpuException.InvalidOpcode);
        }

        if (_state.Cpl != 0)
        {
            return GeneralProtection();
        }

        bool to64 = _insn.RexW;
        ulong target = to64 ? _state.Rcx : (uint)_state.Rcx;
        if (to64 && !IsCanonical(target))
        {
            return GeneralProtection();
        }

        ushort selector = (ushort)(_state.Star >> 48);
        _state.Cs = to64
            ? SegmentRegister.FlatCode((ushort)((selector + 16) | 3), longMode: true, dpl: 3)
            : SegmentRegister.FlatCode((ushort)(selector | 3), longMode: false, dpl: 3);
        // SS keeps a flat hidden part; only the selector changes (as on Intel CPUs).
        _state.Ss.Selector = (ushort)((selector + 8) | 3);
        _state.Ss.Dpl = 3;
        _state.Ss.Unusable = 0;
        _state.Ss.Present = 1;
        _state.Ss.S = 1;
        _state.Ss.Type = 3;
        _state.Ss.Db = 1;
        _state.Ss.G = 1;
        _state.Ss.Base = 0;
        _state.Ss.Limit = 0xFFFF_FFFF;
        _state.Cpl = 3;
        _state.RFlags = (_state[11] & 0x3C_7FD7) | Flags.Reserved1;
        _nextRip = target;
        return true;
    }

    private bool ExecuteSysenter()
    {
        if (_mode == CpuMode.Real16 || (_state.SysenterCs & 0xFFFC) == 0)
        {
            return GeneralProtection();
        }

        bool longMode = (_state.Efer & X86SystemRegisters.EferLma) != 0;
        ushort selector = (ushort)(_state.SysenterCs & 0xFFFC);
        _state.Cs = SegmentRegister.FlatCode(selector, longMode);
        _state.Ss = SegmentRegister.FlatData((ushort)(selector + 8));
        _state.Cpl = 0;
        _state.RFlags &= ~(Flags.VM | Flags.IF | Flags.RF);
        _state.Rsp = longMode ? _state.SysenterEsp : (uint)_state.SysenterEsp;
        _nextRip = longMode ? _state.SysenterEip : (uint)_state.SysenterEip;
        return true;
    }

    private bool ExecuteSysexit()
    {
        if (_mode == CpuMode.Real16 || (_state.SysenterCs & 0xFFFC) == 0 || _state.Cpl != 0)
        {
            return GeneralProtection();
        }

        bool to64 = _insn.RexW;
        ushort selector = (ushort)(_state.SysenterCs & 0xFFFC);
        ulong rip = to64 ? _state.Rdx : (uint)_state.Rdx;
        ulong rsp = to64 ? _state.Rcx : (uint)_state.Rcx;
        if (to64 && (!IsCanonical(rip) || !IsCanonical(rsp)))
        {
            return GeneralProtection();
        }

        _state.Cs = SegmentRegister.FlatCode((ushort)((selector + (to64 ? 32 : 16)) | 3), to64, dpl: 3);
        _state.Ss = SegmentRegister.FlatData((ushort)((selector + (to64 ? 40 : 24)) | 3), dpl: 3);
        _state.Cpl = 3;
        _state.Rsp = rsp;
        _nextRip = rip;
        return true;
    }
}
