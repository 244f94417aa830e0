using System.Runtime.Intrinsics;

namespace KvmSharp.Emulator.Execution;

/// <summary>
/// MMX and SSE2 packed-integer operations on 128-bit values. A 64-bit MMX operand is passed in the low half with
/// the high half zero, and only the low half of the result is used: every operation here works within 64-bit
/// lanes or narrower unless it takes the register width (<c>registerBytes</c>, 8 or 16).
/// </summary>
public static class SseInteger
{
    /// <summary>
    /// The lane-wise two-operand instructions of the 0F map, by opcode: PCMPGTB/W/D (64-66), PCMPEQB/W/D (74-76),
    /// D4-DF, E0, E3-E5, E8-EF, F4-F6 and F8-FE (the shifts and packs have their own methods).
    /// </summary>
    /// <returns>The result, or false in <paramref name="known"/> for an opcode that is not lane-wise.</returns>
    public static Vector128<byte> Binary(byte opcode, Vector128<byte> a, Vector128<byte> b, out bool known)
    {
        known = true;
        switch (opcode)
        {
            case 0x64: return Vector128.GreaterThan(a.AsSByte(), b.AsSByte()).AsByte();
            case 0x65: return Vector128.GreaterThan(a.AsInt16(), b.AsInt16()).AsByte();
            case 0x66: return Vector128.GreaterThan(a.AsInt32(), b.AsInt32()).AsByte();
            case 0x74: return Vector128.Equals(a, b);
            case 0x75: return Vector128.Equals(a.AsUInt16(), b.AsUInt16()).AsByte();
            case 0x76: return Vector128.Equals(a.AsUInt32(), b.AsUInt32()).AsByte();
            case 0xD4: return (a.AsUInt64() + b.AsUInt64()).AsByte();
            case 0xD5: return (a.AsUInt16() * b.AsUInt16()).AsByte();
            case 0xD8: return Vector128.SubtractSaturate(a, b);
            case 0xD9: return Vector128.SubtractSaturate(a.AsUInt16(), b.AsUInt16()).AsByte();
            case 0xDA: return Vector128.Min(a, b);
            case 0xDB: return a & b;
            case 0xDC: return Vector128.AddSaturate(a, b);
            case 0xDD: return Vector128.AddSaturate(a.AsUInt16(), b.AsUInt16()).AsByte();
            case 0xDE: return Vector128.Max(a, b);
            case 0xDF: return Vector128.AndNot(b, a); // PANDN: (NOT a) AND b
            case 0xE0: return AverageBytes(a, b);
            case 0xE3: return AverageWords(a, b);
            case 0xE4: return MultiplyHighUnsigned(a, b);
            case 0xE5: return MultiplyHighSigned(a, b);
            case 0xE8: return Vector128.SubtractSaturate(a.AsSByte(), b.AsSByte()).AsByte();
            case 0xE9: return Vector128.SubtractSaturate(a.AsInt16(), b.AsInt16()).AsByte();
            case 0xEA: return Vector128.Min(a.AsInt16(), b.AsInt16()).AsByte();
            case 0xEB: return a | b;
            case 0xEC: return Vector128.AddSaturate(a.AsSByte(), b.AsSByte()).AsByte();
            case 0xED: return Vector128.AddSaturate(a.AsInt16(), b.AsInt16()).AsByte();
            case 0xEE: return Vector128.Max(a.AsInt16(), b.AsInt16()).AsByte();
            case 0xEF: return a ^ b;
            case 0xF4: return MultiplyEvenUnsignedDwords(a, b);
            case 0xF5: return MultiplyAddWords(a, b);
            case 0xF6: return SumOfAbsoluteDifferences(a, b);
            case 0xF8: return a - b;
            case 0xF9: return (a.AsUInt16() - b.AsUInt16()).AsByte();
            case 0xFA: return (a.AsUInt32() - b.AsUInt32()).AsByte();
            case 0xFB: return (a.AsUInt64() - b.AsUInt64()).AsByte();
            case 0xFC: return a + b;
            case 0xFD: return (a.AsUInt16() + b.AsUInt16()).AsByte();
            case 0xFE: return (a.AsUInt32() + b.AsUInt32()).AsByte();
            default:
                known = false;
                return a;
        }
    }

    private static Vector128<byte> AverageBytes(Vector128<byte> a, Vector128<byte> b)
    {
        var (aLow, aHigh) = Vector128.Widen(a);
        var (bLow, bHigh) = Vector128.Widen(b);
        var one = Vector128<ushort>.One;
        return Vector128.Narrow((aLow + bLow + one) >> 1, (aHigh + bHigh + one) >> 1);
    }

    private static Vector128<byte> AverageWords(Vector128<byte> a, Vector128<byte> b)
    {
        var (aLow, aHigh) = Vector128.Widen(a.AsUInt16());
        var (bLow, bHigh) = Vector128.Widen(b.AsUInt16());
        var one = Vector128<uint>.One;
        return Vector128.Narrow((aLow + bLow + one) >> 1, (aHigh + bHigh + one) >> 1).AsByte();
    }

    private static Vector128<byte> MultiplyHighUnsigned(Vector128<byte> a, Vector128<byte> b)
    {
        var (aLow, aHigh) = Vector128.Widen(a.AsUInt16());
        var (bLow, bHigh) = Vector128.Widen(b.AsUInt16());
        return Vector128.Narrow((aLow * bLow) >> 16, (aHigh * bHigh) >> 16).AsByte();
    }

    private static Vector128<byte> MultiplyHighSigned(Vector128<byte> a, Vector128<byte> b)
    {
        var (aLow, aHigh) = Vector128.Widen(a.AsInt16());
        var (bLow, bHigh) = Vector128.Widen(b.AsInt16());
        return Vector128.Narrow((aLow * bLow) >> 16, (aHigh * bHigh) >> 16).AsByte();
    }

    /// <summary>PMULUDQ: the low dwords of each qword multiplied into a 64-bit product.</summary>
    private static Vector128<byte> MultiplyEvenUnsignedDwords(Vector128<byte> a, Vector128<byte> b)
    {
        var mask = Vector128.Create(0xFFFF_FFFFUL);
        return ((a.AsUInt64() & mask) * (b.AsUInt64() & mask)).AsByte();
    }

    /// <summary>PMADDWD: adjacent signed word products summed into dwords (0x8000 * 0x8000 * 2 wraps to 0x80000000).</summary>
    private static Vector128<byte> MultiplyAddWords(Vector128<byte> a, Vector128<byte> b)
    {
        Span<int> result = stackalloc int[4];
        var wa = a.AsInt16();
        var wb = b.AsInt16();
        for (int i = 0; i < 4; i++)
        {
            int low = wa.GetElement(2 * i) * wb.GetElement(2 * i);
            int high = wa.GetElement((2 * i) + 1) * wb.GetElement((2 * i) + 1);
            result[i] = unchecked(low + high);
        }

        return Vector128.Create<int>(result).AsByte();
    }

    /// <summary>PSADBW: per 64-bit half, the sum of the 8 absolute byte differences in the low word, zeros above.</summary>
    private static Vector128<byte> SumOfAbsoluteDifferences(Vector128<byte> a, Vector128<byte> b)
    {
        var differences = Vector128.Max(a, b) - Vector128.Min(a, b);
        ulong low = 0;
        ulong high = 0;
        for (int i = 0; i < 8; i++)
        {
            low += differences.GetElement(i);
            high += differences.GetElement(i + 8);
        }

        return Vector128.Create(low, high).AsByte();
    }

    // ---------------------------------------------------------------- shifts

    /// <summary>PSLLW/D/Q: each lane of <paramref name="elementBits"/> bits shifted left; counts above the lane width give zero.</summary>
    public static Vector128<byte> ShiftLeftLogical(Vector128<byte> value, int elementBits, ulong count)
    {
        if (count >= (ulong)elementBits)
        {
            return Vector128<byte>.Zero;
        }

        int n = (int)count;
        return elementBits switch
        {
            16 => Vector128.ShiftLeft(value.AsUInt16(), n).AsByte(),
            32 => Vector128.ShiftLeft(value.AsUInt32(), n).AsByte(),
            _ => Vector128.ShiftLeft(value.AsUInt64(), n).AsByte(),
        };
    }

    /// <summary>PSRLW/D/Q: each lane shifted right with zeros; counts above the lane width give zero.</summary>
    public static Vector128<byte> ShiftRightLogical(Vector128<byte> value, int elementBits, ulong count)
    {
        if (count >= (ulong)elementBits)
        {
            return Vector128<byte>.Zero;
        }

        int n = (int)count;
        return elementBits switch
        {
            16 => Vector128.ShiftRightLogical(value.AsUInt16(), n).AsByte(),
            32 => Vector128.ShiftRightLogical(value.AsUInt32(), n).AsByte(),
            _ => Vector128.ShiftRightLogical(value.AsUInt64(), n).AsByte(),
        };
    }

    /// <summary>PSRAW/D: each lane shifted right with copies of its sign; counts above the lane width fill with the sign.</summary>
    public static Vector128<byte> ShiftRightArithmetic(Vector128<byte> value, int elementBits, ulong count)
    {
        int n = count >= (ulong)elementBits ? elementBits - 1 : (int)count;
        return elementBits == 16
            ? Vector128.ShiftRightArithmetic(value.AsInt16(), n).AsByte()
            : Vector128.ShiftRightArithmetic(value.AsInt32(), n).AsByte();
    }

    /// <summary>PSLLDQ: the whole register shifted left by <paramref name="bytes"/> bytes (above 15: zero).</summary>
    public static Vector128<byte> ShiftBytesLeft(Vector128<byte> value, int bytes)
    {
        if (bytes > 15)
        {
            return Vector128<byte>.Zero;
        }

        Span<byte> source = stackalloc byte[16];
        Span<byte> result = stackalloc byte[16];
        value.CopyTo(source);
        result.Clear();
        source[..(16 - bytes)].CopyTo(result[bytes..]);
        return Vector128.Create<byte>(result);
    }

    /// <summary>PSRLDQ: the whole register shifted right by <paramref name="bytes"/> bytes (above 15: zero).</summary>
    public static Vector128<byte> ShiftBytesRight(Vector128<byte> value, int bytes)
    {
        if (bytes > 15)
        {
            return Vector128<byte>.Zero;
        }

        Span<byte> source = stackalloc byte[16];
        Span<byte> result = stackalloc byte[16];
        value.CopyTo(source);
        result.Clear();
        source[bytes..].CopyTo(result);
        return Vector128.Create<byte>(result);
    }

    // ---------------------------------------------------------------- packs and unpacks

    /// <summary>
    /// PUNPCKL*/PUNPCKH*: elements of <paramref name="elementBytes"/> bytes from the low (or high) half of each
    /// <paramref name="registerBytes"/>-byte operand, interleaved a0 b0 a1 b1 ...
    /// </summary>
    public static Vector128<byte> Unpack(Vector128<byte> a, Vector128<byte> b, int elementBytes, int registerBytes, bool high)
    {
        Span<byte> sa = stackalloc byte[16];
        Span<byte> sb = stackalloc byte[16];
        Span<byte> result = stackalloc byte[16];
        a.CopyTo(sa);
        b.CopyTo(sb);
        result.Clear();
        int half = registerBytes / 2;
        int start = high ? half : 0;
        for (int i = 0; i * elementBytes < half; i++)
        {
            int from = start + (i * elementBytes);
            sa.Slice(from, elementBytes).CopyTo(result.Slice(2 * i * elementBytes, elementBytes));
            sb.Slice(from, elementBytes).CopyTo(result.Slice(((2 * i) + 1) * elementBytes, elementBytes));
        }

        return Vector128.Create<byte>(result);
    }

    /// <summary>
    /// PACKSSWB (63), PACKUSWB (67), PACKSSDW (6B): the elements of <paramref name="a"/> then of <paramref name="b"/>,
    /// each narrowed to half its width with signed (or, for PACKUSWB, unsigned) saturation.
    /// </summary>
    public static Vector128<byte> Pack(byte opcode, Vector128<byte> a, Vector128<byte> b, int registerBytes)
    {
        if (registerBytes == 8)
        {
            // An MMX operand is 64 bits: narrow the concatenation of both.
            var joined = Vector128.Create(a.AsUInt64().ToScalar(), b.AsUInt64().ToScalar()).AsByte();
            ulong packed = Narrow(opcode, joined, joined).AsUInt64().ToScalar();
            return Vector128.CreateScalar(packed).AsByte();
        }

        return Narrow(opcode, a, b);
    }

    private static Vector128<byte> Narrow(byte opcode, Vector128<byte> a, Vector128<byte> b) => opcode switch
    {
        0x63 => Vector128.NarrowWithSaturation(a.AsInt16(), b.AsInt16()).AsByte(),
        0x6B => Vector128.NarrowWithSaturation(a.AsInt32(), b.AsInt32()).AsByte(),
        _ => Vector128.NarrowWithSaturation(
            Vector128.Max(a.AsInt16(), Vector128<short>.Zero).AsUInt16(),
            Vector128.Max(b.AsInt16(), Vector128<short>.Zero).AsUInt16()),
    };

    // ---------------------------------------------------------------- shuffles

    /// <summary>PSHUFD (all four dwords) or, with <paramref name="wordBase"/>, PSHUFW/PSHUFLW/PSHUFHW on four words from that word index.</summary>
    public static Vector128<byte> ShuffleWords(Vector128<byte> source, Vector128<byte> passThrough, int wordBase, byte order)
    {
        var words = source.AsUInt16();
        var result = passThrough.AsUInt16();
        for (int i = 0; i < 4; i++)
        {
            result = result.WithElement(wordBase + i, words.GetElement(wordBase + ((order >> (2 * i)) & 3)));
        }

        return result.AsByte();
    }

    /// <summary>PSHUFD: dword i of the result is dword imm8[2i+1:2i] of the source.</summary>
    public static Vector128<byte> ShuffleDwords(Vector128<byte> source, byte order)
    {
        var dwords = source.AsUInt32();
        return Vector128.Create(
            dwords.GetElement(order & 3),
            dwords.GetElement((order >> 2) & 3),
            dwords.GetElement((order >> 4) & 3),
            dwords.GetElement((order >> 6) & 3)).AsByte();
    }
}
