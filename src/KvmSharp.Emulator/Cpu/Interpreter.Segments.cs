using KvmSharp.Emulator.Decoding;
using KvmSharp.Emulator.Mmu;
using KvmSharp.Hypervisor;

namespace KvmSharp.Emulator.Cpu;

/// <summary>Descriptor tables and segment-register loads (Intel SDM Vol. 3A 3.4-3.5, 5.5-5.8).</summary>
public sealed partial class Interpreter
{
    /// <summary>Descriptor type bit 4 (S): code/data rather than system.</summary>
    private const ulong DescriptorS = 1UL << 44;

    /// <summary>Descriptor present bit.</summary>
    private const ulong DescriptorP = 1UL << 47;

    /// <summary>The accessed bit of a code/data descriptor.</summary>
    private const ulong DescriptorAccessed = 1UL << 40;

    private static uint SelectorError(ushort selector) => (uint)(selector & 0xFFFC);

    /// <summary>Reads the 8-byte descriptor <paramref name="selector"/> names from the GDT or LDT; #GP(selector) beyond the table's limit.</summary>
    private bool ReadDescriptor(ushort selector, out ulong descriptor, out ulong address)
    {
        descriptor = 0;
        address = 0;
        ulong tableBase;
        ulong tableLimit;
        if ((selector & 4) != 0)
        {
            if (_state.Ldtr.Unusable != 0 || _state.Ldtr.Present == 0)
            {
                return Fault(CpuException.GeneralProtectionCode(SelectorError(selector)));
            }

            tableBase = _state.Ldtr.Base;
            tableLimit = _state.Ldtr.Limit;
        }
        else
        {
            tableBase = _state.Gdtr.Base;
            tableLimit = _state.Gdtr.Limit;
        }

        ulong index = (ulong)(selector & 0xFFF8);
        if (index + 7 > tableLimit)
        {
            return Fault(CpuException.GeneralProtectionCode(SelectorError(selector)));
        }

        address = tableBase + index;
        return ReadLinear(address, 8, MemoryAccess.Read, AccessPrivilege.Supervisor, out descriptor);
    }

    /// <summary>The upper 8 bytes of a 16-byte system descriptor (long-mode LDT/TSS/gates) at <paramref name="address"/>.</summary>
    private bool ReadDescriptorHigh(ulong address, ushort selector, out ulong high)
    {
        high = 0;
        ulong index = (ulong)(selector & 0xFFF8);
        ulong limit = (selector & 4) != 0 ? _state.Ldtr.Limit : _state.Gdtr.Limit;
        if (index + 15 > limit)
        {
            return Fault(CpuException.GeneralProtectionCode(SelectorError(selector)));
        }

        return ReadLinear(address + 8, 8, MemoryAccess.Read, AccessPrivilege.Supervisor, out high);
    }

    /// <summary>Sets a code/data descriptor's accessed bit in memory, as the CPU does when it loads one.</summary>
    private bool MarkAccessed(ulong address, ulong descriptor)
    {
        if ((descriptor & DescriptorAccessed) != 0)
        {
            return true;
        }

        return WriteLinear(address + 5, 1, (descriptor >> 40) | 1, AccessPrivilege.Supervisor);
    }

    /// <summary>The hidden part a descriptor loads: base, byte-granular limit, attributes.</summary>
    private static SegmentRegister FromDescriptor(ushort selector, ulong d)
    {
        uint limit = (uint)((d & 0xFFFF) | ((d >> 32) & 0xF0000));
        byte g = (byte)((d >> 55) & 1);
        if (g != 0)
        {
            limit = (limit << 12) | 0xFFF;
        }

        return new SegmentRegister
        {
            Base = ((d >> 16) & 0xFF_FFFF) | (((d >> 56) & 0xFF) << 24),
            Limit = limit,
            Selector = selector,
            Type = (byte)((d >> 40) & 0xF),
            S = (byte)((d >> 44) & 1),
            Dpl = (byte)((d >> 45) & 3),
            Present = (byte)((d >> 47) & 1),
            Avl = (byte)((d >> 52) & 1),
            L = (byte)((d >> 53) & 1),
            Db = (byte)((d >> 54) & 1),
            G = g,
        };
    }

    private static int DescriptorDpl(ulong d) => (int)((d >> 45) & 3);

    private static bool IsCodeDescriptor(ulong d) => (d & DescriptorS) != 0 && (d & (1UL << 43)) != 0;

    private static bool IsConforming(ulong d) => (d & (1UL << 42)) != 0;

    /// <summary>
    /// MOV Sreg, POP Sreg, LDS/LES/LFS/LGS/LSS: loads <paramref name="segment"/> with <paramref name="selector"/>
    /// under the mode's rules; nothing changes on a fault.
    /// </summary>
    private bool LoadSegment(SegmentName segment, ushort selector)
    {
        if (_mode == CpuMode.Real16)
        {
            ref var real = ref _state.Segment(segment);
            real.Selector = selector;
            real.Base = (ulong)selector << 4;
            real.Present = 1;
            real.Unusable = 0;
            if (segment == SegmentName.Cs)
            {
                real.Type |= 8;
            }

            return true;
        }

        int cpl = _state.Cpl;
        int rpl = selector & 3;
        if ((selector & 0xFFFC) == 0)
        {
            if (segment == SegmentName.Ss && (_mode != CpuMode.Long64 || cpl == 3 || rpl != cpl))
            {
                return GeneralProtection();
            }

            // A null selector makes the register unusable; Intel clears the base (Linux's X86_BUG_NULL_SEG is AMD's behaviour).
            ref var n = ref _state.Segment(segment);
            n = default;
            n.Selector = selector;
            n.Unusable = 1;
            if (segment == SegmentName.Ss)
            {
                n.Dpl = (byte)cpl;
                n.Type = 3;
                n.S = 1;
                n.Db = 1;
            }

            return true;
        }

        if (!ReadDescriptor(selector, out ulong d, out ulong address))
        {
            return false;
        }

        int dpl = DescriptorDpl(d);
        uint error = SelectorError(selector);
        if (segment == SegmentName.Ss)
        {
            bool writableData = (d & DescriptorS) != 0 && (d & (1UL << 43)) == 0 && (d & (1UL << 41)) != 0;
            if (rpl != cpl || !writableData || dpl != cpl)
            {
                return Fault(CpuException.GeneralProtectionCode(error));
            }

            if ((d & DescriptorP) == 0)
            {
                return Fault(CpuException.StackFaultCode(error));
            }
        }
        else
        {
            bool readable = (d & DescriptorS) != 0 && ((d & (1UL << 43)) == 0 || (d & (1UL << 41)) != 0);
            if (!readable)
            {
                return Fault(CpuException.GeneralProtectionCode(error));
            }

            bool checkPrivilege = !IsCodeDescriptor(d) || !IsConforming(d);
            if (checkPrivilege && (rpl > dpl || cpl > dpl))
            {
                return Fault(CpuException.GeneralProtectionCode(error));
            }

            if ((d & DescriptorP) == 0)
            {
                return Fault(CpuException.SegmentNotPresent(error));
            }
        }

        if (!MarkAccessed(address, d))
        {
            return false;
        }

        ref var s = ref _state.Segment(segment);
        ulong keepBase = s.Base;
        s = FromDescriptor(selector, d | DescriptorAccessed);
        if (_mode == CpuMode.Long64 && segment is SegmentName.Fs or SegmentName.Gs)
        {
            s.Base = (uint)s.Base; // the 32-bit base from the descriptor; WRMSR sets the full base
        }

        _ = keepBase;
        return true;
    }

    /// <summary>
    /// Loads CS for a far JMP/CALL/RET or IRET to a code segment at privilege <paramref name="newCpl"/>: the
    /// descriptor <paramref name="d"/> was read and checked by the caller. Sets the accessed bit and the CPL.
    /// </summary>
    private bool CommitCodeSegment(ushort selector, ulong d, ulong address, int newCpl)
    {
        if (!MarkAccessed(address, d))
        {
            return false;
        }

        _state.Cs = FromDescriptor((ushort)((selector & 0xFFFC) | newCpl), d | DescriptorAccessed);
        _state.Cpl = newCpl;
        return true;
    }

    /// <summary>Checks a code-segment descriptor for a direct far JMP/CALL (SDM Vol. 2A JMP): #GP(sel)/#NP(sel).</summary>
    private bool CheckDirectCodeTarget(ushort selector, ulong d)
    {
        uint error = SelectorError(selector);
        if (!IsCodeDescriptor(d))
        {
            return Fault(CpuException.GeneralProtectionCode(error));
        }

        int dpl = DescriptorDpl(d);
        int cpl = _state.Cpl;
        if (IsConforming(d) ? dpl > cpl : (selector & 3) > cpl || dpl != cpl)
        {
            return Fault(CpuException.GeneralProtectionCode(error));
        }

        if ((d & DescriptorP) == 0)
        {
            return Fault(CpuException.SegmentNotPresent(error));
        }

        if ((_state.Efer & X86SystemRegisters.EferLma) != 0 && (d & (1UL << 53)) != 0 && (d & (1UL << 54)) != 0)
        {
            return Fault(CpuException.GeneralProtectionCode(error)); // L and D both set
        }

        return true;
    }

    /// <summary>The effective limit check of a new CS for a target offset (not in 64-bit code segments).</summary>
    private static bool WithinCodeLimit(ulong d, ulong offset, bool longMode)
    {
        if (longMode && (d & (1UL << 53)) != 0)
        {
            return IsCanonical(offset);
        }

        var s = FromDescriptor(0, d);
        return offset <= s.Limit;
    }

    /// <summary>After a privilege drop (RET far/IRET to an outer level): data segments the new CPL may not use become null.</summary>
    private void InvalidateSegmentsForOuterPrivilege()
    {
        foreach (var name in (ReadOnlySpan<SegmentName>)[SegmentName.Es, SegmentName.Ds, SegmentName.Fs, SegmentName.Gs])
        {
            ref var s = ref _state.Segment(name);
            bool conformingCode = (s.Type & 0xC) == 0xC;
            if (s.Unusable == 0 && (s.Selector & 0xFFFC) != 0 && !conformingCode && s.Dpl < _state.Cpl)
            {
                ulong keepBase = s.Base;
                s = default;
                s.Unusable = 1;
                if (name is SegmentName.Fs or SegmentName.Gs && _mode == CpuMode.Long64)
                {
                    s.Base = keepBase;
                }
            }
        }
    }
}
