using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using KvmSharp.Emulator.Decoding;
using KvmSharp.Emulator.Execution;
using KvmSharp.Emulator.Mmu;
using KvmSharp.Hypervisor;
using KvmSharp.Memory;

namespace KvmSharp.Emulator.Cpu;

/// <summary>
/// The first slice of the software CPU: fetches, decodes and executes 64-bit-mode integer
/// instructions with flat segments (FS/GS bases honoured). Faults come back as a
/// <see cref="CpuException"/> with no architectural effect; nothing is delivered through the IDT
/// yet. An instruction this slice does not implement raises #UD.
/// </summary>
/// <remarks>
/// Every memory access is translated by the <see cref="MemoryManagementUnit"/>; an access that
/// crosses a 4 KiB boundary translates both pages before touching either. Physical addresses
/// outside guest RAM read as all ones and drop writes (there is no MMIO routing yet).
/// </remarks>
public sealed class Interpreter
{
    private const ulong PageMask = GuestMemory.PageSize - 1;

    private readonly CpuState _state;
    private readonly GuestMemory _memory;
    private readonly MemoryManagementUnit _mmu;
    private DecodedInstruction _insn;
    private CpuException _fault;
    private ulong _nextRip;

    /// <summary>Creates an interpreter over <paramref name="state"/>, which must be in 64-bit mode.</summary>
    /// <exception cref="ArgumentException">The state is not in long mode with paging, or its page tables are invalid.</exception>
    public Interpreter(CpuState state, GuestMemory memory)
    {
        ArgumentNullException.ThrowIfNull(state);
        ArgumentNullException.ThrowIfNull(memory);
        _state = state;
        _memory = memory;
        _mmu = new MemoryManagementUnit(memory);
        ReloadPaging();
    }

    /// <summary>The architectural state.</summary>
    public CpuState State => _state;

    /// <summary>The MMU (its TLB caches translations: call <see cref="ReloadPaging"/> after editing page tables or CRs).</summary>
    public MemoryManagementUnit Mmu => _mmu;

    /// <summary>Reloads the MMU from CR0/CR3/CR4/EFER in <see cref="State"/> and flushes the TLB.</summary>
    /// <exception cref="ArgumentException">The state is not in 64-bit mode (CR0.PG, CR4.PAE, EFER.LMA).</exception>
    public void ReloadPaging()
    {
        if ((_state.Cr0 & X86SystemRegisters.Cr0Pg) == 0 || (_state.Cr4 & X86SystemRegisters.Cr4Pae) == 0
            || (_state.Efer & X86SystemRegisters.EferLma) == 0)
        {
            ThrowNotLongMode();
        }

        _mmu.TryLoad(_state.Cr0, _state.Cr3, _state.Cr4, _state.Efer);
    }

    /// <summary>Runs until HLT, a fault, or <paramref name="maxInstructions"/> completed instructions.</summary>
    public RunResult Run(int maxInstructions)
    {
        int executed = 0;
        while (executed < maxInstructions)
        {
            var result = Step();
            if (result.Status == StepStatus.Exception)
            {
                return new RunResult(StepStatus.Exception, executed, result.Exception);
            }

            executed++;
            if (result.Status == StepStatus.Halted)
            {
                return new RunResult(StepStatus.Halted, executed, default);
            }
        }

        return new RunResult(StepStatus.Executed, executed, default);
    }

    /// <summary>Executes one instruction.</summary>
    public StepResult Step()
    {
        if (!Fetch())
        {
            return new StepResult(StepStatus.Exception, _fault);
        }

        _nextRip = _state.Rip + _insn.Length;
        var status = Execute();
        if (status == StepStatus.Exception)
        {
            return new StepResult(StepStatus.Exception, _fault);
        }

        _state.Rip = _nextRip;
        return new StepResult(status, default);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowNotLongMode() =>
        throw new ArgumentException("The interpreter runs 64-bit code only. Set CR0.PE|PG, CR4.PAE and EFER.LME|LMA before creating it.", "state");

    // ---------------------------------------------------------------- fetch

    private bool Fetch()
    {
        Span<byte> code = stackalloc byte[InstructionDecoder.MaxInstructionLength];
        ulong rip = _state.Rip;
        if (!Translate(rip, MemoryAccess.Execute, false, out ulong physical))
        {
            return false;
        }

        int first = (int)Math.Min((ulong)code.Length, GuestMemory.PageSize - (rip & PageMask));
        ReadPhysical(physical, code[..first]);
        var status = InstructionDecoder.Decode(code[..first], CpuMode.Long64, ref _insn);
        if (status == DecodeStatus.NeedMoreBytes && first < code.Length)
        {
            // The instruction continues on the next page: fetch it only now, so its #PF is reported only when needed.
            if (!Translate(rip + (ulong)first, MemoryAccess.Execute, false, out ulong next))
            {
                return false;
            }

            ReadPhysical(next, code[first..]);
            status = InstructionDecoder.Decode(code, CpuMode.Long64, ref _insn);
        }

        switch (status)
        {
            case DecodeStatus.Ok:
                return true;
            case DecodeStatus.Invalid:
                return Fault(CpuException.InvalidOpcode);
            default:
                return Fault(CpuException.GeneralProtection);
        }
    }

    // ---------------------------------------------------------------- memory

    private bool Fault(CpuException exception)
    {
        _fault = exception;
        return false;
    }

    private AccessPrivilege Privilege => _state.Cpl == 3 ? AccessPrivilege.User : AccessPrivilege.Supervisor;

    private bool Translate(ulong linear, MemoryAccess access, bool stack, out ulong physical)
    {
        var status = _mmu.Translate(linear, access, Privilege, out physical, out var pageFault);
        switch (status)
        {
            case TranslationStatus.Ok:
                return true;
            case TranslationStatus.PageFault:
                _state.Cr2 = pageFault.LinearAddress;
                return Fault(CpuException.PageFault((uint)pageFault.ErrorCode));
            default:
                return Fault(stack ? CpuException.StackFault : CpuException.GeneralProtection);
        }
    }

    private void ReadPhysical(ulong physical, Span<byte> destination)
    {
        if (!_memory.TryRead(physical, destination))
        {
            destination.Fill(0xFF);
        }
    }

    private void WritePhysical(ulong physical, ReadOnlySpan<byte> source) => _memory.TryWrite(physical, source);

    /// <summary>Translates the one or two pages an access of <paramref name="size"/> bytes touches.</summary>
    private bool TranslateRange(ulong linear, int size, MemoryAccess access, bool stack, out ulong first, out ulong second, out int firstLength)
    {
        second = 0;
        firstLength = (int)Math.Min((ulong)size, GuestMemory.PageSize - (linear & PageMask));
        if (!Translate(linear, access, stack, out first))
        {
            return false;
        }

        return firstLength == size || Translate(linear + (ulong)firstLength, access, stack, out second);
    }

    private bool ReadLinear(ulong linear, int size, MemoryAccess access, bool stack, out ulong value)
    {
        value = 0;
        if (!TranslateRange(linear, size, access, stack, out ulong first, out ulong second, out int firstLength))
        {
            return false;
        }

        Span<byte> bytes = stackalloc byte[8];
        bytes.Clear();
        ReadPhysical(first, bytes[..firstLength]);
        if (firstLength < size)
        {
            ReadPhysical(second, bytes[firstLength..size]);
        }

        value = BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        return true;
    }

    private bool WriteLinear(ulong linear, int size, ulong value, bool stack)
    {
        if (!TranslateRange(linear, size, MemoryAccess.Write, stack, out ulong first, out ulong second, out int firstLength))
        {
            return false;
        }

        Span<byte> bytes = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, value);
        WritePhysical(first, bytes[..firstLength]);
        if (firstLength < size)
        {
            WritePhysical(second, bytes[firstLength..size]);
        }

        return true;
    }

    private bool IsStackOperand => _insn.EffectiveSegment == SegmentName.Ss;

    /// <summary>The linear address of the ModRM memory operand: its offset plus the FS/GS base.</summary>
    private ulong EffectiveAddress()
    {
        ulong address = OperandOffset();
        return _insn.EffectiveSegment switch
        {
            SegmentName.Fs => address + _state.FsBase,
            SegmentName.Gs => address + _state.GsBase,
            _ => address,
        };
    }

    /// <summary>displacement + base (or RIP) + index * scale, truncated to the address size: what LEA yields.</summary>
    private ulong OperandOffset()
    {
        ulong address = _insn.Displacement;
        if (_insn.IsRipRelative)
        {
            address += _nextRip;
        }
        else if (_insn.Base != DecodedInstruction.NoRegister)
        {
            address += _state[_insn.Base];
        }

        if (_insn.Index != DecodedInstruction.NoRegister)
        {
            address += _state[_insn.Index] * _insn.Scale;
        }

        if (_insn.AddressSize == 4)
        {
            address = (uint)address;
        }

        return address;
    }

    // ---------------------------------------------------------------- registers

    private ulong ReadRegister(int register, int size)
    {
        if (size == 1 && register is >= 4 and < 8 && !_insn.HasRex)
        {
            return (_state[register - 4] >> 8) & 0xFF; // AH, CH, DH, BH
        }

        return _state[register] & Alu.SizeMask(size);
    }

    private void WriteRegister(int register, int size, ulong value)
    {
        switch (size)
        {
            case 8:
                _state[register] = value;
                break;
            case 4:
                _state[register] = (uint)value;
                break;
            case 2:
                _state[register] = (_state[register] & ~0xFFFFUL) | (value & 0xFFFF);
                break;
            default:
                if (register is >= 4 and < 8 && !_insn.HasRex)
                {
                    int full = register - 4;
                    _state[full] = (_state[full] & ~0xFF00UL) | ((value & 0xFF) << 8);
                }
                else
                {
                    _state[register] = (_state[register] & ~0xFFUL) | (value & 0xFF);
                }

                break;
        }
    }

    /// <summary>Reads the ModRM r/m operand; <paramref name="access"/> is Write for a read-modify-write destination.</summary>
    private bool ReadRm(int size, MemoryAccess access, out ulong value)
    {
        if (!_insn.HasMemoryOperand)
        {
            value = ReadRegister(_insn.Rm, size);
            return true;
        }

        return ReadLinear(EffectiveAddress(), size, access, IsStackOperand, out value);
    }

    private bool WriteRm(int size, ulong value)
    {
        if (!_insn.HasMemoryOperand)
        {
            WriteRegister(_insn.Rm, size, value);
            return true;
        }

        return WriteLinear(EffectiveAddress(), size, value, IsStackOperand);
    }

    // ---------------------------------------------------------------- stack

    private bool Push(ulong value, int size)
    {
        ulong rsp = _state.Rsp - (ulong)size;
        if (!WriteLinear(rsp, size, value, true))
        {
            return false;
        }

        _state.Rsp = rsp;
        return true;
    }

    private bool PeekStack(int size, out ulong value) => ReadLinear(_state.Rsp, size, MemoryAccess.Read, true, out value);

    private static bool IsCanonical(ulong address) => (ulong)((long)(address << 16) >> 16) == address;

    private bool Branch(ulong target)
    {
        if (!IsCanonical(target))
        {
            return Fault(CpuException.GeneralProtection);
        }

        _nextRip = target;
        return true;
    }

    private bool RelativeTarget(out ulong target)
    {
        target = _nextRip + (ulong)_insn.SignedImmediate;
        if (_insn.OperandSize == 2)
        {
            target &= 0xFFFF;
        }

        return IsCanonical(target) || Fault(CpuException.GeneralProtection);
    }

    private bool Condition(int condition)
    {
        ulong f = _state.RFlags;
        bool cf = (f & Flags.CF) != 0;
        bool zf = (f & Flags.ZF) != 0;
        bool sf = (f & Flags.SF) != 0;
        bool of = (f & Flags.OF) != 0;
        bool pf = (f & Flags.PF) != 0;
        bool result = (condition >> 1) switch
        {
            0 => of,
            1 => cf,
            2 => zf,
            3 => cf || zf,
            4 => sf,
            5 => pf,
            6 => sf != of,
            _ => zf || sf != of,
        };
        return result ^ ((condition & 1) != 0);
    }

    // ---------------------------------------------------------------- execute

    private StepStatus Execute()
    {
        bool ok = _insn.Op switch
        {
            Mnemonic.Nop or Mnemonic.Pause => true,
            Mnemonic.Mov => ExecuteMov(),
            Mnemonic.Movzx or Mnemonic.Movsx or Mnemonic.Movsxd => ExecuteMoveExtend(),
            Mnemonic.Lea => ExecuteLea(),
            Mnemonic.Add or Mnemonic.Or or Mnemonic.Adc or Mnemonic.Sbb
                or Mnemonic.And or Mnemonic.Sub or Mnemonic.Xor or Mnemonic.Cmp => ExecuteAlu(),
            Mnemonic.Test => ExecuteTest(),
            Mnemonic.Inc or Mnemonic.Dec or Mnemonic.Neg or Mnemonic.Not => ExecuteUnary(),
            Mnemonic.Rol or Mnemonic.Ror or Mnemonic.Rcl or Mnemonic.Rcr
                or Mnemonic.Shl or Mnemonic.Sal or Mnemonic.Shr or Mnemonic.Sar => ExecuteShift(),
            Mnemonic.Mul or Mnemonic.Imul => ExecuteMultiply(),
            Mnemonic.Div or Mnemonic.Idiv => ExecuteDivide(),
            Mnemonic.Push => ExecutePush(),
            Mnemonic.Pop => ExecutePop(),
            Mnemonic.CallNear => ExecuteCall(),
            Mnemonic.RetNear => ExecuteRet(),
            Mnemonic.JmpNear => ExecuteJmp(),
            Mnemonic.Jcc => !Condition(_insn.Condition) || (RelativeTarget(out ulong target) && Branch(target)),
            Mnemonic.Loop or Mnemonic.Loope or Mnemonic.Loopne or Mnemonic.Jrcxz => ExecuteLoop(),
            Mnemonic.Setcc => WriteRm(1, Condition(_insn.Condition) ? 1UL : 0UL),
            Mnemonic.Cmovcc => ExecuteCmov(),
            Mnemonic.Xchg => ExecuteXchg(),
            Mnemonic.Cbw => SetAccumulator(Alu.SignExtendAccumulator(_state.Rax, _insn.OperandSize)),
            Mnemonic.Cwd => SetRdx(Alu.SignOfAccumulator(_state.Rax, _insn.OperandSize)),
            Mnemonic.Bswap => SetOpcodeRegister(Alu.Bswap(_state[_insn.OpcodeRegister], _insn.OperandSize)),
            Mnemonic.Bt or Mnemonic.Bts or Mnemonic.Btr or Mnemonic.Btc => ExecuteBitTest(),
            Mnemonic.Clc => SetFlags(_state.RFlags & ~Flags.CF),
            Mnemonic.Stc => SetFlags(_state.RFlags | Flags.CF),
            Mnemonic.Cmc => SetFlags(_state.RFlags ^ Flags.CF),
            Mnemonic.Hlt => _state.Cpl == 0 || Fault(CpuException.GeneralProtection),
            _ => Fault(CpuException.InvalidOpcode),
        };

        if (!ok)
        {
            return StepStatus.Exception;
        }

        return _insn.Op == Mnemonic.Hlt ? StepStatus.Halted : StepStatus.Executed;
    }

    private bool SetFlags(ulong rflags)
    {
        _state.RFlags = rflags;
        return true;
    }

    private bool SetAccumulator(ulong value)
    {
        WriteRegister(Gpr.Rax, _insn.OperandSize, value);
        return true;
    }

    private bool SetRdx(ulong value)
    {
        WriteRegister(Gpr.Rdx, _insn.OperandSize, value);
        return true;
    }

    private bool SetOpcodeRegister(ulong value)
    {
        WriteRegister(_insn.OpcodeRegister, _insn.OperandSize, value);
        return true;
    }

    private bool ExecuteMov()
    {
        int size = _insn.OperandSize;
        byte opcode = _insn.Opcode;
        switch (opcode)
        {
            case 0x88 or 0x89:
                return WriteRm(size, ReadRegister(_insn.Reg, size));
            case 0x8A or 0x8B:
                if (!ReadRm(size, MemoryAccess.Read, out ulong value))
                {
                    return false;
                }

                WriteRegister(_insn.Reg, size, value);
                return true;
            case >= 0xB0 and <= 0xBF:
                WriteRegister(_insn.OpcodeRegister, size, _insn.Immediate);
                return true;
            case 0xC6 or 0xC7:
                return WriteRm(size, (ulong)_insn.SignedImmediate);
            default:
                return Fault(CpuException.InvalidOpcode); // A0-A3 (moffs): not in this slice
        }
    }

    private bool ExecuteMoveExtend()
    {
        int size = _insn.OperandSize;
        int sourceSize = _insn.Op == Mnemonic.Movsxd ? Math.Min(size, 4) : (_insn.Opcode & 1) == 0 ? 1 : 2;
        if (!ReadRm(sourceSize, MemoryAccess.Read, out ulong value))
        {
            return false;
        }

        if (_insn.Op != Mnemonic.Movzx)
        {
            value = (ulong)Alu.SignExtend(value, sourceSize);
        }

        WriteRegister(_insn.Reg, size, value);
        return true;
    }

    private bool ExecuteLea()
    {
        ulong address = OperandOffset();
        WriteRegister(_insn.Reg, _insn.OperandSize, address); // no segment base: LEA yields the offset
        return true;
    }

    private AluResult Arithmetic(ulong a, ulong b, int size)
    {
        ulong f = _state.RFlags;
        return _insn.Op switch
        {
            Mnemonic.Add => Alu.Add(a, b, size, f),
            Mnemonic.Or => Alu.Or(a, b, size, f),
            Mnemonic.Adc => Alu.Adc(a, b, size, f),
            Mnemonic.Sbb => Alu.Sbb(a, b, size, f),
            Mnemonic.And => Alu.And(a, b, size, f),
            Mnemonic.Sub => Alu.Sub(a, b, size, f),
            Mnemonic.Xor => Alu.Xor(a, b, size, f),
            _ => new AluResult(a, Alu.Cmp(a, b, size, f)),
        };
    }

    private bool ExecuteAlu()
    {
        int size = _insn.OperandSize;
        bool writes = _insn.Op != Mnemonic.Cmp;
        var access = writes ? MemoryAccess.Write : MemoryAccess.Read;
        ulong mask = Alu.SizeMask(size);
        if (_insn.Opcode is >= 0x80 and <= 0x83)
        {
            // r/m, imm: 83 sign-extends imm8, 81 sign-extends imm32 to 64 bits.
            if (!ReadRm(size, access, out ulong dest))
            {
                return false;
            }

            var r = Arithmetic(dest, (ulong)_insn.SignedImmediate & mask, size);
            return Commit(writes, size, r, toRm: true);
        }

        switch (_insn.Opcode & 7)
        {
            case 0 or 1:
            {
                if (!ReadRm(size, access, out ulong dest))
                {
                    return false;
                }

                var r = Arithmetic(dest, ReadRegister(_insn.Reg, size), size);
                return Commit(writes, size, r, toRm: true);
            }

            case 2 or 3:
            {
                if (!ReadRm(size, MemoryAccess.Read, out ulong source))
                {
                    return false;
                }

                var r = Arithmetic(ReadRegister(_insn.Reg, size), source, size);
                return Commit(writes, size, r, toRm: false);
            }

            default:
            {
                var r = Arithmetic(ReadRegister(Gpr.Rax, size), (ulong)_insn.SignedImmediate & mask, size);
                if (writes)
                {
                    WriteRegister(Gpr.Rax, size, r.Value);
                }

                _state.RFlags = r.RFlags;
                return true;
            }
        }
    }

    private bool Commit(bool writes, int size, AluResult result, bool toRm)
    {
        if (writes)
        {
            if (toRm)
            {
                if (!WriteRm(size, result.Value))
                {
                    return false;
                }
            }
            else
            {
                WriteRegister(_insn.Reg, size, result.Value);
            }
        }

        _state.RFlags = result.RFlags;
        return true;
    }

    private bool ExecuteTest()
    {
        int size = _insn.OperandSize;
        ulong a;
        ulong b;
        switch (_insn.Opcode)
        {
            case 0x84 or 0x85:
                if (!ReadRm(size, MemoryAccess.Read, out a))
                {
                    return false;
                }

                b = ReadRegister(_insn.Reg, size);
                break;
            case 0xA8 or 0xA9:
                a = ReadRegister(Gpr.Rax, size);
                b = (ulong)_insn.SignedImmediate;
                break;
            default: // F6/F7 /0 /1
                if (!ReadRm(size, MemoryAccess.Read, out a))
                {
                    return false;
                }

                b = (ulong)_insn.SignedImmediate;
                break;
        }

        _state.RFlags = Alu.Test(a, b & Alu.SizeMask(size), size, _state.RFlags);
        return true;
    }

    private bool ExecuteUnary()
    {
        int size = _insn.OperandSize;
        if (!ReadRm(size, MemoryAccess.Write, out ulong value))
        {
            return false;
        }

        ulong f = _state.RFlags;
        var r = _insn.Op switch
        {
            Mnemonic.Inc => Alu.Inc(value, size, f),
            Mnemonic.Dec => Alu.Dec(value, size, f),
            Mnemonic.Neg => Alu.Neg(value, size, f),
            _ => new AluResult(Alu.Not(value, size), f),
        };
        return Commit(true, size, r, toRm: true);
    }

    private bool ExecuteShift()
    {
        int size = _insn.OperandSize;
        ulong count = _insn.Opcode switch
        {
            0xC0 or 0xC1 => _insn.Immediate,
            0xD0 or 0xD1 => 1,
            _ => _state.Rcx & 0xFF,
        };
        if (!ReadRm(size, MemoryAccess.Write, out ulong value))
        {
            return false;
        }

        ulong f = _state.RFlags;
        var r = _insn.Op switch
        {
            Mnemonic.Rol => Alu.Rol(value, count, size, f),
            Mnemonic.Ror => Alu.Ror(value, count, size, f),
            Mnemonic.Rcl => Alu.Rcl(value, count, size, f),
            Mnemonic.Rcr => Alu.Rcr(value, count, size, f),
            Mnemonic.Shr => Alu.Shr(value, count, size, f),
            Mnemonic.Sar => Alu.Sar(value, count, size, f),
            _ => Alu.Shl(value, count, size, f),
        };
        return Commit(true, size, r, toRm: true);
    }

    private bool ExecuteMultiply()
    {
        int size = _insn.OperandSize;
        if (!ReadRm(size, MemoryAccess.Read, out ulong source))
        {
            return false;
        }

        ulong f = _state.RFlags;
        if (_insn.Map == OpcodeMap.Map0F || _insn.Opcode is 0x69 or 0x6B)
        {
            // IMUL r, r/m (0F AF) and IMUL r, r/m, imm (69, 6B): the truncated product.
            ulong other = _insn.Map == OpcodeMap.Map0F ? ReadRegister(_insn.Reg, size) : (ulong)_insn.SignedImmediate & Alu.SizeMask(size);
            var r = Alu.ImulTruncated(other, source, size, f);
            WriteRegister(_insn.Reg, size, r.Value);
            _state.RFlags = r.RFlags;
            return true;
        }

        var product = _insn.Op == Mnemonic.Mul
            ? Alu.Mul(ReadRegister(Gpr.Rax, size), source, size, f)
            : Alu.Imul(ReadRegister(Gpr.Rax, size), source, size, f);
        if (size == 1)
        {
            WriteRegister(Gpr.Rax, 2, (product.High << 8) | product.Low);
        }
        else
        {
            WriteRegister(Gpr.Rax, size, product.Low);
            WriteRegister(Gpr.Rdx, size, product.High);
        }

        _state.RFlags = product.RFlags;
        return true;
    }

    private bool ExecuteDivide()
    {
        int size = _insn.OperandSize;
        if (!ReadRm(size, MemoryAccess.Read, out ulong divisor))
        {
            return false;
        }

        ulong high = size == 1 ? (_state.Rax >> 8) & 0xFF : ReadRegister(Gpr.Rdx, size);
        ulong low = ReadRegister(Gpr.Rax, size);
        var r = _insn.Op == Mnemonic.Div
            ? Alu.Div(high, low, divisor, size, _state.RFlags)
            : Alu.Idiv(high, low, divisor, size, _state.RFlags);
        if (r.DivideError)
        {
            return Fault(CpuException.DivideError);
        }

        if (size == 1)
        {
            WriteRegister(Gpr.Rax, 2, (r.Remainder << 8) | r.Quotient);
        }
        else
        {
            WriteRegister(Gpr.Rax, size, r.Quotient);
            WriteRegister(Gpr.Rdx, size, r.Remainder);
        }

        _state.RFlags = r.RFlags;
        return true;
    }

    private bool ExecutePush()
    {
        int size = _insn.OperandSize;
        ulong value;
        switch (_insn.Opcode)
        {
            case >= 0x50 and <= 0x57:
                value = ReadRegister(_insn.OpcodeRegister, size);
                break;
            case 0x68 or 0x6A:
                value = (ulong)_insn.SignedImmediate;
                break;
            default: // FF /6
                if (!ReadRm(size, MemoryAccess.Read, out value))
                {
                    return false;
                }

                break;
        }

        return Push(value, size);
    }

    private bool ExecutePop()
    {
        int size = _insn.OperandSize;
        if (!PeekStack(size, out ulong value))
        {
            return false;
        }

        ulong oldRsp = _state.Rsp;
        _state.Rsp = oldRsp + (ulong)size;
        if (_insn.Opcode != 0x8F)
        {
            WriteRegister(_insn.OpcodeRegister, size, value);
            return true;
        }

        // POP r/m computes a memory destination's address with the incremented RSP (SDM Vol. 2B, POP).
        if (!WriteRm(size, value))
        {
            _state.Rsp = oldRsp;
            return false;
        }

        return true;
    }

    private bool ExecuteCall()
    {
        ulong target;
        if (_insn.Opcode == 0xE8)
        {
            if (!RelativeTarget(out target))
            {
                return false;
            }
        }
        else if (!ReadRm(8, MemoryAccess.Read, out target))
        {
            return false;
        }

        if (!IsCanonical(target))
        {
            return Fault(CpuException.GeneralProtection);
        }

        if (!Push(_nextRip, 8))
        {
            return false;
        }

        _nextRip = target;
        return true;
    }

    private bool ExecuteRet()
    {
        if (!PeekStack(8, out ulong target) || !Branch(target))
        {
            return false;
        }

        _state.Rsp += 8 + (_insn.Opcode == 0xC2 ? _insn.Immediate : 0);
        return true;
    }

    private bool ExecuteJmp()
    {
        ulong target;
        if (_insn.Opcode == 0xFF)
        {
            if (!ReadRm(8, MemoryAccess.Read, out target))
            {
                return false;
            }
        }
        else if (!RelativeTarget(out target))
        {
            return false;
        }

        return Branch(target);
    }

    private bool ExecuteLoop()
    {
        int countSize = _insn.AddressSize;
        ulong count = ReadRegister(Gpr.Rcx, countSize);
        bool taken;
        if (_insn.Op == Mnemonic.Jrcxz)
        {
            taken = count == 0;
        }
        else
        {
            count = (count - 1) & Alu.SizeMask(countSize);
            bool zf = (_state.RFlags & Flags.ZF) != 0;
            taken = count != 0 && _insn.Op switch
            {
                Mnemonic.Loope => zf,
                Mnemonic.Loopne => !zf,
                _ => true,
            };
        }

        if (taken && !(RelativeTarget(out ulong target) && Branch(target)))
        {
            return false;
        }

        if (_insn.Op != Mnemonic.Jrcxz)
        {
            WriteRegister(Gpr.Rcx, countSize, count);
        }

        return true;
    }

    private bool ExecuteCmov()
    {
        int size = _insn.OperandSize;
        if (!ReadRm(size, MemoryAccess.Read, out ulong source))
        {
            return false; // the source is read (and may fault) whether or not the condition holds
        }

        // A 32-bit CMOV writes the destination (zero-extending it) even when the condition is false.
        WriteRegister(_insn.Reg, size, Condition(_insn.Condition) ? source : ReadRegister(_insn.Reg, size));
        return true;
    }

    private bool ExecuteXchg()
    {
        int size = _insn.OperandSize;
        if (_insn.Opcode is >= 0x90 and <= 0x97)
        {
            int other = _insn.OpcodeRegister;
            ulong a = ReadRegister(Gpr.Rax, size);
            ulong b = ReadRegister(other, size);
            WriteRegister(Gpr.Rax, size, b);
            WriteRegister(other, size, a);
            return true;
        }

        if (!ReadRm(size, MemoryAccess.Write, out ulong rm))
        {
            return false;
        }

        ulong reg = ReadRegister(_insn.Reg, size);
        if (!WriteRm(size, reg))
        {
            return false;
        }

        WriteRegister(_insn.Reg, size, rm);
        return true;
    }

    private bool ExecuteBitTest()
    {
        int size = _insn.OperandSize;
        bool immediate = _insn.Opcode == 0xBA;
        ulong offset = immediate ? _insn.Immediate & (ulong)((size << 3) - 1) : ReadRegister(_insn.Reg, size);
        bool writes = _insn.Op != Mnemonic.Bt;
        var access = writes ? MemoryAccess.Write : MemoryAccess.Read;
        ulong address = 0;
        ulong value;
        if (_insn.HasMemoryOperand)
        {
            // A register bit offset addresses a bit string: it may select a unit before or after the operand.
            address = EffectiveAddress();
            if (!immediate)
            {
                address += (ulong)Alu.BitStringDisplacement(offset, size);
            }

            if (!ReadLinear(address, size, access, IsStackOperand, out value))
            {
                return false;
            }
        }
        else
        {
            value = ReadRegister(_insn.Rm, size);
        }

        ulong f = _state.RFlags;
        if (!writes)
        {
            _state.RFlags = Alu.Bt(value, offset, size, f);
            return true;
        }

        var r = _insn.Op switch
        {
            Mnemonic.Bts => Alu.Bts(value, offset, size, f),
            Mnemonic.Btr => Alu.Btr(value, offset, size, f),
            _ => Alu.Btc(value, offset, size, f),
        };
        if (_insn.HasMemoryOperand)
        {
            if (!WriteLinear(address, size, r.Value, IsStackOperand))
            {
                return false;
            }
        }
        else
        {
            WriteRegister(_insn.Rm, size, r.Value);
        }

        _state.RFlags = r.RFlags;
        return true;
    }
}
