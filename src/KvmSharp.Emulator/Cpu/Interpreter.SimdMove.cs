using System.Runtime.Intrinsics;
using KvmSharp.Emulator.Decoding;
using KvmSharp.Emulator.Mmu;

namespace KvmSharp.Emulator.Cpu;

/// <summary>SSE/SSE2/MMX data movement: full, scalar and half-register moves, MOVD/MOVQ, non-temporal and masked stores, sign masks.</summary>
public sealed partial class Interpreter
{
    /// <summary>MOVUPS/MOVUPD/MOVDQU (unaligned) and MOVAPS/MOVAPD/MOVDQA (16-byte aligned), loads and stores.</summary>
    private bool ExecuteMoveFull()
    {
        if (!SseAvailable())
        {
            return false;
        }

        byte opcode = _insn.Opcode;
        bool aligned = opcode is 0x28 or 0x29 || _insn.Op == Mnemonic.Movdqa;
        if (opcode is 0x11 or 0x29 or 0x7F)
        {
            if (_insn.HasMemoryOperand)
            {
                return WriteSimdMemory(16, aligned, Xmm(_insn.Reg));
            }

            SetXmm(_insn.Rm, Xmm(_insn.Reg));
            return true;
        }

        if (!ReadXmmOperand(16, aligned, out var value))
        {
            return false;
        }

        SetXmm(_insn.Reg, value);
        return true;
    }

    /// <summary>MOVSS/MOVSD: between registers only the low element moves; a load zeroes the rest; a store writes 4 or 8 bytes.</summary>
    private bool ExecuteMoveScalar()
    {
        if (!SseAvailable())
        {
            return false;
        }

        bool isDouble = _insn.Op == Mnemonic.Movsd;
        int size = isDouble ? 8 : 4;
        if (_insn.Opcode == 0x11)
        {
            if (_insn.HasMemoryOperand)
            {
                return WriteSimdMemory(size, false, Xmm(_insn.Reg));
            }

            SetXmm(_insn.Rm, MergeLow(Xmm(_insn.Rm), Xmm(_insn.Reg), isDouble));
            return true;
        }

        if (_insn.HasMemoryOperand)
        {
            if (!ReadSimdMemory(size, false, out var loaded))
            {
                return false;
            }

            SetXmm(_insn.Reg, loaded);
            return true;
        }

        SetXmm(_insn.Reg, MergeLow(Xmm(_insn.Reg), Xmm(_insn.Rm), isDouble));
        return true;
    }

    /// <summary><paramref name="destination"/> with its low dword (or qword) replaced by that of <paramref name="source"/>.</summary>
    private static Vector128<byte> MergeLow(Vector128<byte> destination, Vector128<byte> source, bool quadword) =>
        quadword
            ? destination.AsUInt64().WithElement(0, source.AsUInt64().ToScalar()).AsByte()
            : destination.AsUInt32().WithElement(0, source.AsUInt32().ToScalar()).AsByte();

    /// <summary>MOVLPS/MOVLPD/MOVHPS/MOVHPD (a qword to or from memory), MOVHLPS and MOVLHPS (between registers).</summary>
    private bool ExecuteMoveHalf()
    {
        if (!SseAvailable())
        {
            return false;
        }

        byte opcode = _insn.Opcode;
        int half = opcode is 0x16 or 0x17 ? 1 : 0;
        var destination = Xmm(_insn.Reg).AsUInt64();
        if (opcode is 0x13 or 0x17)
        {
            return WriteSimdMemory(8, false, Vector128.CreateScalar(destination.GetElement(half)).AsByte());
        }

        ulong value;
        if (_insn.HasMemoryOperand)
        {
            if (!ReadSimdMemory(8, false, out var loaded))
            {
                return false;
            }

            value = loaded.AsUInt64().ToScalar();
        }
        else
        {
            // MOVHLPS takes the source's high qword, MOVLHPS its low one.
            value = Xmm(_insn.Rm).AsUInt64().GetElement(1 - half);
        }

        SetXmm(_insn.Reg, destination.WithElement(half, value).AsByte());
        return true;
    }

    /// <summary>MOVNTPS/MOVNTPD/MOVNTDQ m128, xmm: an aligned store (the cache hint has no effect here).</summary>
    private bool ExecuteMoveNonTemporal() => SseAvailable() && WriteSimdMemory(16, true, Xmm(_insn.Reg));

    /// <summary>MOVNTQ m64, mm.</summary>
    private bool ExecuteMoveNonTemporalMmx()
    {
        if (!MmxAvailable() || !WriteSimdMemory(8, false, Vector128.CreateScalar(Mmx(_insn.Reg)).AsByte()))
        {
            return false;
        }

        TouchMmx();
        return true;
    }

    /// <summary>MOVNTI m32/m64, r32/r64: an ordinary integer store (no x87/SSE state checks apply).</summary>
    private bool ExecuteMoveNonTemporalInteger()
    {
        int size = _insn.RexW ? 8 : 4;
        return WriteRm(size, ReadRegister(_insn.Reg, size));
    }

    /// <summary>MOVMSKPS/MOVMSKPD r32, xmm: the element sign bits, zero-extended.</summary>
    private bool ExecuteMoveMask()
    {
        if (!SseAvailable())
        {
            return false;
        }

        var source = Xmm(_insn.Rm);
        uint mask = _insn.MandatoryPrefix == MandatoryPrefix.P66
            ? Vector128.ExtractMostSignificantBits(source.AsUInt64())
            : Vector128.ExtractMostSignificantBits(source.AsUInt32());
        WriteRegister(_insn.Reg, 8, mask);
        return true;
    }

    /// <summary>
    /// MOVD/MOVQ between a GPR or memory and an MMX or XMM register (0F 6E/7E, REX.W for 64 bits), MOVQ mm, mm/m64
    /// (0F 6F/7F), MOVQ xmm, xmm/m64 (F3 0F 7E) and MOVQ xmm/m64, xmm (66 0F D6). Loads into XMM zero the rest.
    /// </summary>
    private bool ExecuteMoveQuadword()
    {
        byte opcode = _insn.Opcode;
        var prefix = _insn.MandatoryPrefix;
        int size = _insn.RexW ? 8 : 4;
        bool xmm = prefix != MandatoryPrefix.None;
        if (!(xmm ? SseAvailable() : MmxAvailable()))
        {
            return false;
        }

        switch (opcode)
        {
            case 0x6E:
            {
                if (!ReadRm(size, MemoryAccess.Read, out ulong value))
                {
                    return false;
                }

                if (xmm)
                {
                    SetXmm(_insn.Reg, Vector128.CreateScalar(value).AsByte());
                }
                else
                {
                    SetMmx(_insn.Reg, value);
                }

                return true;
            }

            case 0x7E when prefix == MandatoryPrefix.PF3:
            {
                if (!ReadXmmOperand(8, false, out var value))
                {
                    return false;
                }

                SetXmm(_insn.Reg, Vector128.CreateScalar(value.AsUInt64().ToScalar()).AsByte());
                return true;
            }

            case 0x7E:
            {
                ulong value = xmm ? _state.Fx.Xmm(_insn.Reg, 0) : Mmx(_insn.Reg);
                if (!WriteRm(size, value))
                {
                    return false;
                }

                if (!xmm)
                {
                    TouchMmx();
                }

                return true;
            }

            case 0x6F:
            {
                if (!ReadMmxOperand(8, out ulong value))
                {
                    return false;
                }

                SetMmx(_insn.Reg, value);
                return true;
            }

            case 0x7F:
            {
                ulong value = Mmx(_insn.Reg);
                if (!_insn.HasMemoryOperand)
                {
                    SetMmx(_insn.Rm, value);
                    return true;
                }

                if (!WriteSimdMemory(8, false, Vector128.CreateScalar(value).AsByte()))
                {
                    return false;
                }

                TouchMmx();
                return true;
            }

            default: // 66 0F D6: MOVQ xmm/m64, xmm
            {
                ulong value = _state.Fx.Xmm(_insn.Reg, 0);
                if (_insn.HasMemoryOperand)
                {
                    return WriteSimdMemory(8, false, Vector128.CreateScalar(value).AsByte());
                }

                SetXmm(_insn.Rm, Vector128.CreateScalar(value).AsByte());
                return true;
            }
        }
    }

    /// <summary>MOVQ2DQ xmm, mm (zero-extended) and MOVDQ2Q mm, xmm (the low qword).</summary>
    private bool ExecuteMoveBetweenFiles()
    {
        if (!SseWithMmxAvailable())
        {
            return false;
        }

        if (_insn.Op == Mnemonic.Movq2dq)
        {
            SetXmm(_insn.Reg, Vector128.CreateScalar(Mmx(_insn.Rm)).AsByte());
            TouchMmx();
        }
        else
        {
            SetMmx(_insn.Reg, _state.Fx.Xmm(_insn.Rm, 0));
        }

        return true;
    }

    /// <summary>
    /// MASKMOVQ mm1, mm2 and MASKMOVDQU xmm1, xmm2: the bytes of the first register whose mask byte (second
    /// register) has its top bit set are stored at DS:rDI (DS may be overridden). Every page is checked for
    /// writing before any byte is stored; an all-zero mask accesses no memory.
    /// </summary>
    private bool ExecuteMaskMove()
    {
        bool xmm = _insn.Op == Mnemonic.Maskmovdqu;
        if (!(xmm ? SseAvailable() : MmxAvailable()))
        {
            return false;
        }

        int size = xmm ? 16 : 8;
        var data = xmm ? Xmm(_insn.Reg) : Vector128.CreateScalar(Mmx(_insn.Reg)).AsByte();
        var mask = xmm ? Xmm(_insn.Rm) : Vector128.CreateScalar(Mmx(_insn.Rm)).AsByte();
        uint selected = Vector128.ExtractMostSignificantBits(mask);
        if (selected != 0)
        {
            var segment = _insn.SegmentOverride == SegmentName.None || (_mode == CpuMode.Long64 && _insn.SegmentOverride < SegmentName.Fs)
                ? SegmentName.Ds
                : _insn.SegmentOverride;
            if (!Linear(segment, _state.Rdi & AddressMask, size, MemoryAccess.Write, out ulong linear)
                || !TranslateRange(linear, size, MemoryAccess.Write, Privilege, out ulong first, out ulong second, out int firstLength))
            {
                return false;
            }

            Span<byte> bytes = stackalloc byte[16];
            data.CopyTo(bytes);
            for (int i = 0; i < size; i++)
            {
                if ((selected & (1u << i)) != 0)
                {
                    ulong physical = i < firstLength ? first + (ulong)i : second + (ulong)(i - firstLength);
                    WritePhysical(physical, bytes.Slice(i, 1));
                }
            }
        }

        if (!xmm)
        {
            TouchMmx();
        }

        return true;
    }
}
