using System.Runtime.Intrinsics;
using KvmSharp.Emulator.Decoding;
using KvmSharp.Emulator.Execution;
using KvmSharp.Emulator.Mmu;

namespace KvmSharp.Emulator.Cpu;

/// <summary>MMX and SSE2 packed-integer instructions: no prefix names the MMX form, 66 the XMM form.</summary>
public sealed partial class Interpreter
{
    private bool IsXmmIntegerForm => _insn.MandatoryPrefix == MandatoryPrefix.P66;

    /// <summary>Checks availability for the MMX or XMM form.</summary>
    private bool IntegerFormAvailable() => IsXmmIntegerForm ? SseAvailable() : MmxAvailable();

    /// <summary>The destination (ModRM.reg) as a vector: an XMM register, or an MMX register in the low half.</summary>
    private Vector128<byte> IntegerDestination(bool xmm) =>
        xmm ? Xmm(_insn.Reg) : Vector128.CreateScalar(Mmx(_insn.Reg)).AsByte();

    /// <summary>The source: xmm/m128 (aligned) or mm/m64; PUNPCKLBW/WD/DQ on MMX read only m32.</summary>
    private bool ReadIntegerSource(bool xmm, out Vector128<byte> value)
    {
        if (xmm)
        {
            return ReadXmmOperand(16, aligned: true, out value);
        }

        bool ok = ReadMmxOperand(_insn.Opcode is >= 0x60 and <= 0x62 ? 4 : 8, out ulong source);
        value = Vector128.CreateScalar(source).AsByte();
        return ok;
    }

    /// <summary>Writes ModRM.reg of the MMX or XMM form.</summary>
    private void SetIntegerDestination(bool xmm, Vector128<byte> value)
    {
        if (xmm)
        {
            SetXmm(_insn.Reg, value);
        }
        else
        {
            SetMmx(_insn.Reg, value.AsUInt64().ToScalar());
        }
    }

    /// <summary>The two-operand packed-integer instructions: unpacks, packs, compares, arithmetic, logic, shifts by a register.</summary>
    private bool ExecutePackedInteger()
    {
        bool xmm = IsXmmIntegerForm;
        if (!IntegerFormAvailable() || !ReadIntegerSource(xmm, out var b))
        {
            return false;
        }

        var a = IntegerDestination(xmm);
        int width = xmm ? 16 : 8;
        byte opcode = _insn.Opcode;
        ulong count = b.AsUInt64().ToScalar();
        bool known = true;
        Vector128<byte> result = opcode switch
        {
            0x60 => SseInteger.Unpack(a, b, 1, width, high: false),
            0x61 => SseInteger.Unpack(a, b, 2, width, high: false),
            0x62 => SseInteger.Unpack(a, b, 4, width, high: false),
            0x68 => SseInteger.Unpack(a, b, 1, width, high: true),
            0x69 => SseInteger.Unpack(a, b, 2, width, high: true),
            0x6A => SseInteger.Unpack(a, b, 4, width, high: true),
            0x6C => SseInteger.Unpack(a, b, 8, width, high: false),
            0x6D => SseInteger.Unpack(a, b, 8, width, high: true),
            0x63 or 0x67 or 0x6B => SseInteger.Pack(opcode, a, b, width),
            0xD1 => SseInteger.ShiftRightLogical(a, 16, count),
            0xD2 => SseInteger.ShiftRightLogical(a, 32, count),
            0xD3 => SseInteger.ShiftRightLogical(a, 64, count),
            0xE1 => SseInteger.ShiftRightArithmetic(a, 16, count),
            0xE2 => SseInteger.ShiftRightArithmetic(a, 32, count),
            0xF1 => SseInteger.ShiftLeftLogical(a, 16, count),
            0xF2 => SseInteger.ShiftLeftLogical(a, 32, count),
            0xF3 => SseInteger.ShiftLeftLogical(a, 64, count),
            _ => SseInteger.Binary(opcode, a, b, out known),
        };
        if (!known)
        {
            return Unimplemented(); // unreachable: the dispatch sends only opcodes handled above or by SseInteger.Binary
        }

        SetIntegerDestination(xmm, result);
        return true;
    }

    /// <summary>PSRLW/PSRAW/PSLLW (71), PSRLD/PSRAD/PSLLD (72), PSRLQ/PSRLDQ/PSLLQ/PSLLDQ (73) by imm8 on the ModRM.rm register.</summary>
    private bool ExecuteShiftImmediate()
    {
        bool xmm = IsXmmIntegerForm;
        if (!IntegerFormAvailable())
        {
            return false;
        }

        var value = xmm ? Xmm(_insn.Rm) : Vector128.CreateScalar(Mmx(_insn.Rm)).AsByte();
        ulong count = _insn.Immediate & 0xFF;
        int bits = _insn.Opcode switch
        {
            0x71 => 16,
            0x72 => 32,
            _ => 64,
        };
        Vector128<byte> result = _insn.Op switch
        {
            Mnemonic.Psrlw or Mnemonic.Psrld or Mnemonic.Psrlq => SseInteger.ShiftRightLogical(value, bits, count),
            Mnemonic.Psraw or Mnemonic.Psrad => SseInteger.ShiftRightArithmetic(value, bits, count),
            Mnemonic.Psrldq => SseInteger.ShiftBytesRight(value, (int)count),
            Mnemonic.Pslldq => SseInteger.ShiftBytesLeft(value, (int)count),
            _ => SseInteger.ShiftLeftLogical(value, bits, count),
        };
        if (xmm)
        {
            SetXmm(_insn.Rm, result);
        }
        else
        {
            SetMmx(_insn.Rm, result.AsUInt64().ToScalar());
        }

        return true;
    }

    /// <summary>PSHUFW mm, mm/m64, imm8; PSHUFD, PSHUFHW, PSHUFLW xmm, xmm/m128, imm8.</summary>
    private bool ExecuteShuffleInteger()
    {
        bool xmm = _insn.MandatoryPrefix != MandatoryPrefix.None;
        if (!(xmm ? SseAvailable() : MmxAvailable()) || !ReadIntegerSource(xmm, out var source))
        {
            return false;
        }

        byte order = (byte)_insn.Immediate;
        Vector128<byte> result = _insn.Op switch
        {
            Mnemonic.Pshufd => SseInteger.ShuffleDwords(source, order),
            Mnemonic.Pshufhw => SseInteger.ShuffleWords(source, source, 4, order),
            _ => SseInteger.ShuffleWords(source, source, 0, order), // PSHUFW, PSHUFLW
        };
        SetIntegerDestination(xmm, result);
        return true;
    }

    /// <summary>PINSRW mm/xmm, r32/m16, imm8: the word at imm8 mod 4 (MMX) or mod 8 (XMM).</summary>
    private bool ExecuteInsertWord()
    {
        bool xmm = IsXmmIntegerForm;
        if (!IntegerFormAvailable() || !ReadRm(2, MemoryAccess.Read, out ulong word))
        {
            return false;
        }

        int index = (int)(_insn.Immediate & (xmm ? 7UL : 3UL));
        var result = IntegerDestination(xmm).AsUInt16().WithElement(index, (ushort)word).AsByte();
        SetIntegerDestination(xmm, result);
        return true;
    }

    /// <summary>PEXTRW r32, mm/xmm, imm8: the selected word, zero-extended.</summary>
    private bool ExecuteExtractWord()
    {
        bool xmm = IsXmmIntegerForm;
        if (!IntegerFormAvailable())
        {
            return false;
        }

        var source = xmm ? Xmm(_insn.Rm) : Vector128.CreateScalar(Mmx(_insn.Rm)).AsByte();
        int index = (int)(_insn.Immediate & (xmm ? 7UL : 3UL));
        if (!xmm)
        {
            TouchMmx();
        }

        WriteRegister(_insn.Reg, 8, source.AsUInt16().GetElement(index));
        return true;
    }

    /// <summary>PMOVMSKB r32, mm/xmm: the byte sign bits, zero-extended.</summary>
    private bool ExecuteMoveByteMask()
    {
        bool xmm = IsXmmIntegerForm;
        if (!IntegerFormAvailable())
        {
            return false;
        }

        var source = xmm ? Xmm(_insn.Rm) : Vector128.CreateScalar(Mmx(_insn.Rm)).AsByte();
        if (!xmm)
        {
            TouchMmx();
        }

        WriteRegister(_insn.Reg, 8, Vector128.ExtractMostSignificantBits(source));
        return true;
    }
}
