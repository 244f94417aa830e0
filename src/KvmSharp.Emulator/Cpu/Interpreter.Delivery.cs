using KvmSharp.Emulator.Decoding;
using KvmSharp.Emulator.Execution;
using KvmSharp.Emulator.Mmu;
using KvmSharp.Hypervisor;

namespace KvmSharp.Emulator.Cpu;

/// <summary>
/// Event delivery through the IVT (real mode) or the IDT (protected and long mode): exceptions, external
/// interrupts, NMI and software interrupts, with privilege changes, IST stacks, and the double-fault and
/// triple-fault rules (Intel SDM Vol. 3A 6.12, 6.14, 6.15 and Table 6-5).
/// </summary>
public sealed partial class Interpreter
{
    private enum EventKind : byte
    {
        Exception,
        External,
        Software, // INT n, INT3, INTO: the gate's DPL is checked, RIP points after the instruction
        PrivilegedSoftware, // INT1: no DPL check, RIP after
    }

    /// <summary>Whether a maskable interrupt may be delivered now: RFLAGS.IF set and no interrupt shadow.</summary>
    public bool InterruptsEnabled => (_state.RFlags & Flags.IF) != 0 && !_state.InterruptShadow;

    /// <summary>Set once a triple fault shut the CPU down; only INIT/reset revives it.</summary>
    public bool IsShutdown { get; internal set; }

    /// <summary>
    /// Delivers <paramref name="exception"/> (returned by <see cref="Step"/>) through the IDT. Faults during delivery
    /// become #DF by the SDM's classes, and a fault while delivering #DF shuts the CPU down (false).
    /// </summary>
    public bool DeliverException(CpuException exception)
    {
        var vector = exception.Vector;
        var current = exception;
        bool first = true;
        var firstVector = vector;
        while (true)
        {
            _mode = _state.Mode;
            if (Deliver((byte)current.Vector, current.HasErrorCode, current.ErrorCode, EventKind.Exception, _state.Rip))
            {
                return true;
            }

            var second = _fault;
            if (current.Vector == ExceptionVector.DoubleFault || !first && second.Vector == ExceptionVector.DoubleFault)
            {
                IsShutdown = true;
                return false;
            }

            if (IsDoubleFault(firstVector, second.Vector))
            {
                current = new CpuException(ExceptionVector.DoubleFault, 0, true);
            }
            else
            {
                current = second; // the second exception is handled serially
                firstVector = second.Vector;
            }

            first = false;
        }
    }

    /// <summary>Delivers external interrupt <paramref name="vector"/> (the caller checked <see cref="InterruptsEnabled"/>).</summary>
    public bool DeliverInterrupt(byte vector)
    {
        _mode = _state.Mode;
        if (Deliver(vector, false, 0, EventKind.External, _state.Rip))
        {
            return true;
        }

        return DeliverException(WithExternalBit(_fault));
    }

    /// <summary>Delivers an NMI (vector 2).</summary>
    public bool DeliverNmi() => DeliverInterrupt((byte)ExceptionVector.Nmi);

    private static CpuException WithExternalBit(CpuException e) =>
        e.HasErrorCode && e.Vector != ExceptionVector.PageFault ? e with { ErrorCode = e.ErrorCode | 1 } : e;

    /// <summary>SDM Vol. 3A Table 6-5: contributory after contributory, or anything but benign after #PF, is #DF.</summary>
    private static bool IsDoubleFault(ExceptionVector first, ExceptionVector second)
    {
        static bool Contributory(ExceptionVector v) => v is ExceptionVector.DivideError or ExceptionVector.InvalidTss
            or ExceptionVector.SegmentNotPresent or ExceptionVector.StackFault or ExceptionVector.GeneralProtection;

        if (Contributory(first))
        {
            return Contributory(second);
        }

        return first == ExceptionVector.PageFault && (Contributory(second) || second == ExceptionVector.PageFault);
    }

    /// <summary>INT n / INT3 / INTO / INT1 from the instruction being executed: the return address is the next instruction.</summary>
    private bool SoftwareInterrupt(byte vector, bool privileged = false)
    {
        if (Deliver(vector, false, 0, privileged ? EventKind.PrivilegedSoftware : EventKind.Software, _nextRip))
        {
            _nextRip = _state.Rip; // Deliver set RIP to the handler
            return true;
        }

        return false;
    }

    /// <summary>
    /// Delivers one event. On failure nothing of the interrupted context has changed and <see cref="_fault"/> holds
    /// the exception the delivery itself raised.
    /// </summary>
    private bool Deliver(byte vector, bool hasError, uint error, EventKind kind, ulong returnRip)
    {
        if (_mode == CpuMode.Real16)
        {
            return DeliverReal(vector, returnRip);
        }

        bool longMode = (_state.Efer & X86SystemRegisters.EferLma) != 0;
        uint idtError = ((uint)vector << 3) | 2 | (kind == EventKind.External ? 1u : 0u);
        int gateSize = longMode ? 16 : 8;
        if ((ulong)(vector * gateSize) + (ulong)gateSize - 1 > _state.Idtr.Limit)
        {
            return Fault(CpuException.GeneralProtectionCode(idtError));
        }

        ulong gateAddress = _state.Idtr.Base + (ulong)(vector * gateSize);
        if (!ReadLinear(gateAddress, 8, MemoryAccess.Read, AccessPrivilege.Supervisor, out ulong gate))
        {
            return false;
        }

        ulong gateHigh = 0;
        if (longMode && !ReadLinear(gateAddress + 8, 8, MemoryAccess.Read, AccessPrivilege.Supervisor, out gateHigh))
        {
            return false;
        }

        int type = (int)((gate >> 40) & 0x1F); // S bit and type
        bool validType = longMode ? type is 0xE or 0xF : type is 0x6 or 0x7 or 0xE or 0xF;
        if (!validType)
        {
            // Task gates (type 5) are not implemented: task switching is outside what this CPU supports.
            return Fault(CpuException.GeneralProtectionCode(idtError));
        }

        if (kind == EventKind.Software && DescriptorDpl(gate) < _state.Cpl)
        {
            return Fault(CpuException.GeneralProtectionCode(idtError));
        }

        if ((gate & DescriptorP) == 0)
        {
            return Fault(CpuException.SegmentNotPresent(idtError));
        }

        bool trapGate = (type & 1) != 0;
        bool gate32 = (type & 8) != 0;
        ushort selector = (ushort)(gate >> 16);
        ulong offset = (gate & 0xFFFF) | ((gate >> 32) & 0xFFFF_0000);
        if (longMode)
        {
            offset |= gateHigh << 32;
        }
        else if (!gate32)
        {
            offset &= 0xFFFF;
        }

        uint extBit = kind == EventKind.External ? 1u : 0u;
        if ((selector & 0xFFFC) == 0)
        {
            return Fault(CpuException.GeneralProtectionCode(extBit));
        }

        if (!ReadDescriptor(selector, out ulong code, out ulong codeAddress))
        {
            return false;
        }

        uint codeError = SelectorError(selector) | extBit;
        int dpl = DescriptorDpl(code);
        if (!IsCodeDescriptor(code) || dpl > _state.Cpl)
        {
            return Fault(CpuException.GeneralProtectionCode(codeError));
        }

        if ((code & DescriptorP) == 0)
        {
            return Fault(CpuException.SegmentNotPresent(codeError));
        }

        bool target64 = (code & (1UL << 53)) != 0;
        if (longMode && (!target64 || (code & (1UL << 54)) != 0))
        {
            return Fault(CpuException.GeneralProtectionCode(codeError));
        }

        int newCpl = IsConforming(code) ? _state.Cpl : dpl;
        int ist = longMode ? (int)((gate >> 32) & 7) : 0;
        var oldFlags = _state.RFlags;
        var oldCs = _state.Cs;
        var oldSs = _state.Ss;
        ulong oldRsp = _state.Rsp;
        int oldCpl = _state.Cpl;
        var oldMode = _mode;

        if (longMode)
        {
            // 64-bit delivery: a new stack on a privilege change or with an IST; always 16-byte aligned; SS:RSP always pushed.
            ulong rsp;
            if (ist != 0 || newCpl < oldCpl)
            {
                ulong tssOffset = ist != 0 ? 0x24 + ((ulong)(ist - 1) * 8) : 4 + ((ulong)newCpl * 8);
                if (!ReadTss(tssOffset, 8, out rsp, extBit))
                {
                    return false;
                }

                if (!IsCanonical(rsp))
                {
                    return Fault(CpuException.StackFaultCode(extBit));
                }
            }
            else
            {
                rsp = oldRsp;
            }

            rsp &= ~0xFUL;
            Span<ulong> frame = stackalloc ulong[6];
            int count = 0;
            if (hasError)
            {
                frame[count++] = error;
            }

            frame[count++] = returnRip;
            frame[count++] = oldCs.Selector;
            frame[count++] = oldFlags;
            frame[count++] = oldRsp;
            frame[count++] = oldSs.Selector;
            ulong top = rsp - ((ulong)count * 8);
            if (!IsCanonical(top))
            {
                return Fault(CpuException.StackFaultCode(extBit));
            }

            Span<byte> bytes = stackalloc byte[48];
            for (int i = 0; i < count; i++)
            {
                BitConverter.TryWriteBytes(bytes.Slice(i * 8, 8), frame[i]);
            }

            var privilege = newCpl == 3 ? AccessPrivilege.User : AccessPrivilege.Supervisor;
            if (!WriteLinearBytes(top, bytes[..(count * 8)], privilege))
            {
                return false;
            }

            if (!MarkAccessed(codeAddress, code))
            {
                return false;
            }

            if (newCpl < oldCpl)
            {
                // The new SS is a null selector with RPL = the new CPL.
                ref var ss = ref _state.Ss;
                ss = default;
                ss.Selector = (ushort)newCpl;
                ss.Unusable = 1;
                ss.Dpl = (byte)newCpl;
                ss.Type = 3;
                ss.S = 1;
                ss.Db = 1;
            }

            _state.Cs = FromDescriptor((ushort)((selector & 0xFFFC) | newCpl), code | DescriptorAccessed);
            _state.Cpl = newCpl;
            _state.Rsp = top;
            _state.Rip = offset;
        }
        else
        {
            if (!DeliverLegacy(selector, code, codeAddress, newCpl, gate32, hasError, error, returnRip, offset, extBit))
            {
                _state.Cs = oldCs;
                _state.Ss = oldSs;
                _state.Rsp = oldRsp;
                _state.Cpl = oldCpl;
                _state.RFlags = oldFlags;
                _mode = oldMode;
                return false;
            }
        }

        ulong cleared = Flags.TF | Flags.NT | Flags.RF | Flags.VM;
        if (!trapGate)
        {
            cleared |= Flags.IF;
        }

        _state.RFlags &= ~cleared;
        _state.InterruptShadow = false;
        _mode = _state.Mode;
        return true;
    }

    /// <summary>Protected-mode (non-long) delivery through a 16- or 32-bit interrupt/trap gate.</summary>
    private bool DeliverLegacy(ushort selector, ulong code, ulong codeAddress, int newCpl, bool gate32, bool hasError, uint error, ulong returnRip, ulong offset, uint extBit)
    {
        int oldCpl = _state.Cpl;
        var oldCs = _state.Cs;
        var oldSs = _state.Ss;
        ulong oldEsp = _state.Rsp;
        ulong oldFlags = _state.RFlags;
        int width = gate32 ? 4 : 2;
        if (!WithinCodeLimit(code, offset, false))
        {
            return Fault(CpuException.GeneralProtectionCode(extBit));
        }

        if (newCpl < oldCpl)
        {
            // The inner stack from the 32-bit TSS: ESP at 4 + 8 * CPL, SS at 8 + 8 * CPL.
            if (!ReadTss(4 + ((ulong)newCpl * 8), 4, out ulong esp, extBit) || !ReadTss(8 + ((ulong)newCpl * 8), 2, out ulong ssSelector, extBit))
            {
                return false;
            }

            ushort ss = (ushort)ssSelector;
            uint ssError = SelectorError(ss) | extBit;
            if ((ss & 0xFFFC) == 0 || (ss & 3) != newCpl)
            {
                return Fault(CpuException.InvalidTss(ssError));
            }

            if (!ReadDescriptor(ss, out ulong ssd, out ulong ssAddress))
            {
                _fault = CpuException.InvalidTss(ssError);
                return false;
            }

            bool writableData = (ssd & DescriptorS) != 0 && (ssd & (1UL << 43)) == 0 && (ssd & (1UL << 41)) != 0;
            if (!writableData || DescriptorDpl(ssd) != newCpl)
            {
                return Fault(CpuException.InvalidTss(ssError));
            }

            if ((ssd & DescriptorP) == 0)
            {
                return Fault(CpuException.StackFaultCode(ssError));
            }

            if (!MarkAccessed(ssAddress, ssd))
            {
                return false;
            }

            _state.Ss = FromDescriptor(ss, ssd | DescriptorAccessed);
            _state.Cpl = newCpl;
            _mode = CpuMode.Protected32; // for Push: only SS.B matters for the stack width
            _state.Rsp = esp;
            if (!Push(oldSs.Selector, width) || !Push(oldEsp, width))
            {
                return false;
            }
        }
        else
        {
            _state.Cpl = newCpl;
            _mode = CpuMode.Protected32;
        }

        if (!Push(oldFlags, width) || !Push(oldCs.Selector, width) || !Push(returnRip, width))
        {
            return false;
        }

        if (hasError && !Push(error, width))
        {
            return false;
        }

        if (!CommitCodeSegment(selector, code, codeAddress, newCpl))
        {
            return false;
        }

        _state.Rip = offset;
        return true;
    }

    /// <summary>Reads a field of the current TSS (supervisor access); #TS(TR) when it lies beyond TR's limit.</summary>
    private bool ReadTss(ulong offset, int size, out ulong value, uint extBit)
    {
        value = 0;
        ref var tr = ref _state.Tr;
        if (tr.Unusable != 0 || offset + (ulong)size - 1 > tr.Limit)
        {
            return Fault(CpuException.InvalidTss(SelectorError(tr.Selector) | extBit));
        }

        return ReadLinear(tr.Base + offset, size, MemoryAccess.Read, AccessPrivilege.Supervisor, out value);
    }

    /// <summary>Real-mode delivery: FLAGS, CS, IP pushed; CS:IP from the IVT entry; IF, TF, AC cleared.</summary>
    private bool DeliverReal(byte vector, ulong returnRip)
    {
        ulong entry = (ulong)vector * 4;
        if (entry + 3 > _state.Idtr.Limit)
        {
            return GeneralProtection();
        }

        if (!ReadLinear(_state.Idtr.Base + entry, 4, MemoryAccess.Read, AccessPrivilege.Supervisor, out ulong far))
        {
            return false;
        }

        ulong oldRsp = _state.Rsp;
        if (!Push(_state.RFlags & 0xFFFF, 2) || !Push(_state.Cs.Selector, 2) || !Push(returnRip & 0xFFFF, 2))
        {
            _state.Rsp = oldRsp;
            return false;
        }

        ushort cs = (ushort)(far >> 16);
        ref var csReg = ref _state.Cs;
        csReg.Selector = cs;
        csReg.Base = (ulong)cs << 4;
        _state.Rip = far & 0xFFFF;
        _state.RFlags &= ~(Flags.IF | Flags.TF | Flags.AC | Flags.RF);
        _state.InterruptShadow = false;
        return true;
    }
}
