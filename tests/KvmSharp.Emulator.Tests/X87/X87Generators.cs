using System.Buffers.Binary;
using FsCheck;
using FsCheck.Fluent;
using KvmSharp.Emulator.Execution.X87;

namespace KvmSharp.Emulator.Tests.X87;

/// <summary>What the 16 bytes at the memory operand should hold.</summary>
public enum OperandKind
{
    None,
    Single,
    Double,
    Extended,
    Int16,
    Int32,
    Int64,
    Bcd,
    ControlWord,
    Environment16,
    Environment32,
    Save16,
    Save32,
}

/// <summary>One prepared input: an FXSAVE image, the memory operand area, RAX and RFLAGS.</summary>
public sealed class X87Input
{
    public byte[] Fx { get; } = new byte[512];

    public byte[] Memory { get; } = new byte[X87NativeRunner.MemorySize];

    public ulong Rax { get; set; }

    public ulong Flags { get; set; }
}

/// <summary>FsCheck generators for x87 states and operands, weighted toward the edges of every format.</summary>
internal static class X87Generators
{
    /// <summary>The FIP/FDP/FOP the input images carry, so "unchanged" is visible.</summary>
    public const ulong InputFip = 0x0000_1234_5678_9ABC;
    public const ulong InputFdp = 0x0000_2345_6789_ABCD;
    public const ushort InputFop = 0x123;

    private static readonly Gen<int> Bit = Gen.Choose(0, 1);
    private static readonly Gen<ulong> U16 = Gen.Choose(0, 0xFFFF).Select(static v => (ulong)v);

    public static readonly Gen<ulong> U64 =
        Gen.Zip(Gen.Zip(U16, U16), Gen.Zip(U16, U16), static (a, b) => a.Item1 | (a.Item2 << 16) | (b.Item1 << 32) | (b.Item2 << 48));

    /// <summary>Special and boundary 80-bit values.</summary>
    public static readonly Float80[] EdgeValues =
    [
        new(0, 0), new(0, 0x8000),                                              // ±0
        new(1, 0), new(1, 0x8000), new(0x7FFF_FFFF_FFFF_FFFF, 0),                // denormals
        new(0x4000_0000_0000_0000, 0x8000), new(0x0000_0001_0000_0000, 0),
        new(0x8000_0000_0000_0000, 0), new(0xC000_0000_0000_0001, 0x8000),       // pseudo-denormals
        new(0x8000_0000_0000_0000, 1), new(0xFFFF_FFFF_FFFF_FFFF, 1),            // smallest normals
        new(0x4000_0000_0000_0000, 0x3FFF), new(0x0000_0000_0000_0001, 0x8005), // unnormals
        new(0x8000_0000_0000_0000, 0x7FFF), new(0x8000_0000_0000_0000, 0xFFFF), // ±inf
        new(0, 0x7FFF), new(0x4000_0000_0000_0000, 0xFFFF),                     // pseudo-infinity, pseudo-NaN
        new(0xC000_0000_0000_0000, 0xFFFF), new(0xC000_0000_0000_0000, 0x7FFF), // indefinite, +QNaN
        new(0xC123_4567_89AB_CDEF, 0x7FFF), new(0xFFFF_FFFF_FFFF_FFFF, 0xFFFF),
        new(0x8000_0000_0000_0001, 0x7FFF), new(0xA5A5_5A5A_1234_5678, 0xFFFF), // SNaNs
        new(0xBFFF_FFFF_FFFF_FFFF, 0x7FFF),
        new(0x8000_0000_0000_0000, 0x3FFF), new(0x8000_0000_0000_0000, 0xBFFF), // ±1
        new(0xC000_0000_0000_0000, 0x4000), new(0xA000_0000_0000_0000, 0xC001), // 3, -5
        new(0xFFFF_FFFF_FFFF_FFFF, 0x7FFE), new(0xFFFF_FFFF_FFFF_FFFF, 0xFFFE), // ±max
        new(0xC90F_DAA2_2168_C235, 0x4000), new(0xB504_F333_F9DE_6484, 0x3FFF), // pi, sqrt 2
        new(0x8000_0000_0000_0000, 0x403E), new(0xFFFF_FFFF_FFFF_FFFF, 0x403D), // 2^63, 2^63 - 1
        new(0x8000_0000_0000_0000, 0xC03E), new(0xC000_0000_0000_0000, 0x3FFE), // -2^63, 0.75
        new(0x8000_0000_0000_0000, 0x3FFE), new(0xA000_0000_0000_0000, 0x4000), // 0.5, 2.5
        new(0xFFFF_8000_0000_0000, 0x400D), new(0xFFFF_0000_0000_0000, 0x401E), // 32767.5, 2^31 - 2^15
        new(0xFFFF_FF80_0000_0000, 0x407E), new(0xFFFF_FFFF_FFFF_F800, 0x43FE), // float/double max ±half ulp
        new(0x8000_0000_0000_0000, 0x3F81), new(0x8000_0000_0000_0000, 0x3C01), // float/double min normal
        new(0xFFFF_FF00_0000_0000, 0x3F80), new(0x8000_0000_0000_0000, 0x3F6A), // float denormal range
        new(0xFFFF_FFFF_FFFF_F000, 0x3C00), new(0x8000_0000_0000_0000, 0x3BCD), // double denormal range
        new(0xDE0B_6B3A_763F_FFF0, 0x403A), new(0xDE0B_6B3A_7640_0000, 0xC03A), // 10^18 - 16, -10^18
    ];

    /// <summary>Any 80-bit value: edges, ordinary magnitudes, the whole exponent range, rounding boundaries, raw bits.</summary>
    public static readonly Gen<Float80> Float80Values = Gen.Frequency(
        (5, Gen.Elements(EdgeValues)),
        (4, Zip3(Gen.Choose(-70, 70), U64, Bit, static (e, s, n) => new Float80(s | Float80.IntegerBit, (ushort)((n << 15) | (Float80.Bias + e))))),
        (2, Zip3(Gen.Choose(1, 0x7FFE), U64, Bit, static (e, s, n) => new Float80(s | Float80.IntegerBit, (ushort)((n << 15) | e)))),
        (3, RoundingBoundaries()),
        (1, Gen.Zip(Gen.Choose(0, 0xFFFF), U64, static (se, s) => new Float80(s, (ushort)se))),
        (2, Gen.Choose(-70000, 70000).Select(static v => X87Arithmetic.FromInteger(v))),
        (1, Gen.Zip(Gen.Choose(-3000, 3000), Gen.Choose(0, 3), static (v, q) => HalfInteger(v, q))),
        (1, TinyAndHuge()));

    /// <summary>Significands just around the rounding points of 24, 53 and 64 bits, and of the integer point.</summary>
    private static Gen<Float80> RoundingBoundaries() =>
        Gen.Zip(Gen.Zip(Gen.Elements(24, 53, 64, 11, 40), Gen.Elements(0, 1, 2, 3, 4)), Zip3(U64, Gen.Choose(-80, 80), Bit),
            static ((int, int) shape, (ulong, int, int) rest) =>
            {
                (int precision, int pattern) = shape;
                (ulong random, int e, int negative) = rest;
                ulong kept = precision == 64 ? random : random & ~(ulong.MaxValue >> precision);
                ulong below = precision == 64 ? 0 : ulong.MaxValue >> precision;
                ulong half = precision == 64 ? 0 : 1UL << (63 - precision);
                ulong significand = pattern switch
                {
                    0 => kept | half,                      // exactly half way
                    1 => kept | (half - 1),                 // just below half
                    2 => kept | half | 1,                   // just above half
                    3 => kept | below,                      // all ones below
                    _ => kept | 1,                          // just above the kept bits
                };
                return new Float80(significand | Float80.IntegerBit, (ushort)((negative << 15) | (Float80.Bias + e)));
            });

    /// <summary>Magnitudes near the extended, double and single underflow and overflow thresholds.</summary>
    private static Gen<Float80> TinyAndHuge() =>
        Zip3(Gen.Elements(1, 2, 64, 0x3C01, 0x3BCD, 0x3F81, 0x3F6A, 0x43FE, 0x43FF, 0x407E, 0x407F, 0x7FFD, 0x7FFE, 0),
            Gen.Choose(-3, 3), Gen.Zip(U64, Bit), static (e, delta, rest) =>
            {
                int exponent = Math.Clamp(e + delta, 0, 0x7FFE);
                ulong significand = exponent == 0 ? rest.Item1 >> 1 : rest.Item1 | Float80.IntegerBit;
                return new Float80(significand, (ushort)((rest.Item2 << 15) | exponent));
            });

    private static Float80 HalfInteger(int value, int quarters)
    {
        // value + quarters/4: exact halves and quarters round differently under each RC.
        var ctx = new X87Context(0x037F);
        return X87Arithmetic.Add(X87Arithmetic.FromInteger(value),
            X87Arithmetic.Divide(X87Arithmetic.FromInteger(quarters), X87Arithmetic.FromInteger(4), 64, ref ctx), false, 64, ref ctx);
    }

    private static readonly uint[] SingleEdges =
    [
        0x0000_0000, 0x8000_0000, 0x0000_0001, 0x807F_FFFF, 0x0040_0000, 0x0080_0000, 0x7F7F_FFFF, 0xFF7F_FFFF,
        0x7F80_0000, 0xFF80_0000, 0x7FC0_0000, 0xFFC0_0000, 0x7F80_0001, 0xFFBF_FFFF, 0x7FFF_FFFF, 0x3F80_0000,
        0xBF80_0000, 0x3F00_0000, 0x4B00_0000, 0x5F00_0000, 0xDF00_0000, 0x4F00_0000, 0x4700_0000,
    ];

    private static readonly ulong[] DoubleEdges =
    [
        0, 0x8000_0000_0000_0000, 1, 0x800F_FFFF_FFFF_FFFF, 0x0008_0000_0000_0000, 0x0010_0000_0000_0000,
        0x7FEF_FFFF_FFFF_FFFF, 0xFFEF_FFFF_FFFF_FFFF, 0x7FF0_0000_0000_0000, 0xFFF0_0000_0000_0000,
        0x7FF8_0000_0000_0000, 0xFFF8_0000_0000_0000, 0x7FF0_0000_0000_0001, 0xFFF7_FFFF_FFFF_FFFF,
        0x7FFF_FFFF_FFFF_FFFF, 0x3FF0_0000_0000_0000, 0xBFF0_0000_0000_0000, 0x3FE0_0000_0000_0000,
        0x4330_0000_0000_0000, 0x43E0_0000_0000_0000, 0xC3E0_0000_0000_0000, 0x41E0_0000_0000_0000,
    ];

    private static readonly ulong[] IntegerEdges =
    [
        0, 1, ulong.MaxValue, 2, 0xFFFF_FFFF_FFFF_FFFE, 0x7FFF, 0x8000, 0xFFFF, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF,
        0x7FFF_FFFF_FFFF_FFFF, 0x8000_0000_0000_0000, 0x0020_0000_0000_0001, 0x8000_0000_0000_0001,
    ];

    private static Gen<(TA, TB, TC)> Zip3<TA, TB, TC>(Gen<TA> a, Gen<TB> b, Gen<TC> c) =>
        a.SelectMany(x => b.SelectMany(y => c.Select(z => (x, y, z))));

    private static Gen<TR> Zip3<TA, TB, TC, TR>(Gen<TA> a, Gen<TB> b, Gen<TC> c, Func<TA, TB, TC, TR> result) =>
        a.SelectMany(x => b.SelectMany(y => c.Select(z => result(x, y, z))));

    private static Gen<byte[]> Bytes(int count) => Gen.ArrayOf(Gen.Choose(0, 255).Select(static b => (byte)b), count);

    /// <summary>The first 16 bytes of the memory operand for <paramref name="kind"/>.</summary>
    public static Gen<byte[]> Operand(OperandKind kind) => kind switch
    {
        OperandKind.Single => Gen.Frequency(
            (3, Gen.Elements(SingleEdges).Select(static v => (ulong)v)),
            (3, Gen.Zip(Gen.Choose(0x60, 0x9F), U64, static (e, s) => ((ulong)e << 23) | (s & 0x807F_FFFF))),
            (2, U64.Select(static v => v & 0xFFFF_FFFF))).Select(static v => Little(v, 16)),
        OperandKind.Double => Gen.Frequency(
            (3, Gen.Elements(DoubleEdges)),
            (3, Gen.Zip(Gen.Choose(0x3B0, 0x450), U64, static (e, s) => ((ulong)e << 52) | (s & 0x800F_FFFF_FFFF_FFFF))),
            (2, U64)).Select(static v => Little(v, 16)),
        OperandKind.Extended => Float80Values.Select(static v =>
        {
            var bytes = new byte[16];
            BinaryPrimitives.WriteUInt64LittleEndian(bytes, v.Significand);
            BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(8), v.SignExponent);
            return bytes;
        }),
        OperandKind.Int16 or OperandKind.Int32 or OperandKind.Int64 => Gen.Frequency(
            (3, Gen.Elements(IntegerEdges)),
            (2, Gen.Choose(-1000, 1000).Select(static v => (ulong)v)),
            (3, U64),
            (2, U64.Select(static v => (ulong)((long)v >> 20)))).Select(static v => Little(v, 16)),
        OperandKind.Bcd => Gen.Frequency(
            (4, Gen.Zip(Gen.ArrayOf(Gen.Choose(0, 9), 18), Gen.Elements<byte>(0, 0x80, 0x80, 0x7F, 0xFF), static (d, s) => Bcd(d, s))),
            (1, Gen.Zip(Gen.ArrayOf(Gen.Choose(0, 15), 18), Gen.Elements<byte>(0, 0x80), static (d, s) => Bcd(d, s))),
            (1, Gen.Zip(Gen.ArrayOf(Gen.Choose(0, 1), 18), Gen.Elements<byte>(0, 0x80), static (d, s) => Bcd(d, s)))),
        OperandKind.ControlWord => Gen.Frequency(
            (3, Gen.Zip(Gen.Choose(0, 0x3F), Gen.Choose(0, 0x3F), static (lo, hi) => (ulong)(lo | 0x40 | ((hi & 0x1F) << 8)))),
            (1, U16)).Select(static v => Little(v, 16)),
        _ => Bytes(16),
    };

    private static byte[] Little(ulong value, int length)
    {
        var bytes = new byte[length];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, value);
        return bytes;
    }

    private static byte[] Bcd(int[] digits, byte sign)
    {
        var bytes = new byte[16];
        for (int i = 0; i < 9; i++)
        {
            bytes[i] = (byte)(digits[2 * i] | (digits[(2 * i) + 1] << 4));
        }

        bytes[9] = sign;
        return bytes;
    }

    /// <summary>FCW: mostly all masked, sometimes random masks; every PC (including the reserved 01) and RC.</summary>
    public static readonly Gen<ushort> ControlWords = Zip3(
        Gen.Frequency((5, Gen.Constant(0x3F)), (2, Gen.Choose(0, 0x3F))),
        Gen.Frequency((3, Gen.Constant(3)), (2, Gen.Elements(0, 1, 2))),
        Gen.Zip(Gen.Choose(0, 3), Bit),
        static (masks, pc, rest) => (ushort)(masks | 0x40 | (pc << 8) | (rest.Item1 << 10) | (rest.Item2 << 12)));

    /// <summary>A whole input for an instruction whose memory operand is <paramref name="kind"/>.</summary>
    public static Gen<X87Input> Inputs(OperandKind kind, bool fullStackOften = false) =>
        Zip3(
            Zip3(ControlWords, Gen.Choose(0, 0xFFFF), Gen.Choose(0, 7)),
            Zip3(Gen.ArrayOf(Float80Values, 8), Gen.Frequency((fullStackOften ? 1 : 3, Gen.Choose(0, 8)), (fullStackOften ? 3 : 1, Gen.Choose(6, 8))), Gen.Choose(0, 9)),
            Zip3(Operand(kind), Bytes(X87NativeRunner.MemorySize), Gen.Zip(U64, U64)),
            (control, stack, memory) => Build(control, stack, memory, kind));

    private static X87Input Build((ushort Fcw, int Status, int Top) control, (Float80[] Values, int Depth, int Pattern) stack,
        (byte[] Operand, byte[] Filler, (ulong Rax, ulong Flags) Registers) memory, OperandKind kind)
    {
        var input = new X87Input();
        var fx = input.Fx.AsSpan();
        ushort fcw = control.Fcw;
        // Condition codes, SF and TOP random; exception flags only where masked (nothing pending), ES/B clear.
        int fsw = control.Status & (0x4700 | 0x40);
        fsw |= control.Status & fcw & 0x3F;
        fsw |= control.Top << 11;
        BinaryPrimitives.WriteUInt16LittleEndian(fx, fcw);
        BinaryPrimitives.WriteUInt16LittleEndian(fx[2..], (ushort)fsw);
        int abridged = 0;
        for (int i = 0; i < 8; i++)
        {
            bool full = stack.Pattern == 0 ? ((control.Status >> i) & 1) != 0 : i < stack.Depth;
            if (full)
            {
                abridged |= 1 << ((control.Top + i) & 7);
            }

            var slot = fx.Slice(32 + (16 * i), 16);
            BinaryPrimitives.WriteUInt64LittleEndian(slot, stack.Values[i].Significand);
            BinaryPrimitives.WriteUInt16LittleEndian(slot[8..], stack.Values[i].SignExponent);
        }

        fx[4] = (byte)abridged;
        BinaryPrimitives.WriteUInt16LittleEndian(fx[6..], InputFop);
        BinaryPrimitives.WriteUInt64LittleEndian(fx[8..], InputFip);
        BinaryPrimitives.WriteUInt64LittleEndian(fx[16..], InputFdp);
        BinaryPrimitives.WriteUInt32LittleEndian(fx[24..], 0x1F80);
        memory.Filler.CopyTo(input.Memory, 0);
        memory.Operand.CopyTo(input.Memory, 0);
        if (kind is OperandKind.Environment16 or OperandKind.Environment32 or OperandKind.Save16 or OperandKind.Save32)
        {
            EnvironmentImage(input.Memory, kind, stack.Values, memory.Registers.Rax);
        }

        input.Rax = memory.Registers.Rax;
        input.Flags = (memory.Registers.Flags & 0x8D5) | 0x2;
        return input;
    }

    /// <summary>
    /// Every pair of <see cref="EdgeValues"/> as ST(0), ST(1) (the rest of the stack empty), under each rounding
    /// control, with all exceptions masked and with all unmasked.
    /// </summary>
    public static IEnumerable<X87Input> EdgePairs()
    {
        foreach (ushort fcw in new ushort[] { 0x037F, 0x077F, 0x0B7F, 0x0F7F, 0x0240, 0x0E40 })
        {
            foreach (var st0 in EdgeValues)
            {
                foreach (var st1 in EdgeValues)
                {
                    yield return Make(fcw, st0, st1);
                }
            }
        }
    }

    /// <summary>An input with FCW <paramref name="fcw"/>, TOP 6 and <paramref name="stack"/> as ST(0), ST(1) ...</summary>
    public static X87Input Make(ushort fcw, params Float80[] stack)
    {
        var input = new X87Input { Flags = 0x2 };
        var fx = input.Fx.AsSpan();
        const int Top = 6;
        BinaryPrimitives.WriteUInt16LittleEndian(fx, fcw);
        BinaryPrimitives.WriteUInt16LittleEndian(fx[2..], Top << 11);
        int abridged = 0;
        for (int i = 0; i < stack.Length; i++)
        {
            abridged |= 1 << ((Top + i) & 7);
            BinaryPrimitives.WriteUInt64LittleEndian(fx[(32 + (16 * i))..], stack[i].Significand);
            BinaryPrimitives.WriteUInt16LittleEndian(fx[(40 + (16 * i))..], stack[i].SignExponent);
        }

        fx[4] = (byte)abridged;
        BinaryPrimitives.WriteUInt16LittleEndian(fx[6..], InputFop);
        BinaryPrimitives.WriteUInt64LittleEndian(fx[8..], InputFip);
        BinaryPrimitives.WriteUInt64LittleEndian(fx[16..], InputFdp);
        BinaryPrimitives.WriteUInt32LittleEndian(fx[24..], 0x1F80);
        return input;
    }

    /// <summary>A protected-mode environment (and register) image with random, partly inconsistent contents.</summary>
    private static void EnvironmentImage(byte[] memory, OperandKind kind, Float80[] values, ulong random)
    {
        bool wide = kind is OperandKind.Environment32 or OperandKind.Save32;
        int size = wide ? 28 : 14;
        var span = memory.AsSpan();
        ushort fcw = (ushort)((random & 0x0F3F) | 0x40);
        ushort fsw = (ushort)(random >> 16);
        ushort ftw = (ushort)(random >> 32);
        if (wide)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(span, 0xABCD_0000u | fcw);
            BinaryPrimitives.WriteUInt32LittleEndian(span[4..], 0x1234_0000u | fsw);
            BinaryPrimitives.WriteUInt32LittleEndian(span[8..], 0xFFFF_0000u | ftw);
        }
        else
        {
            BinaryPrimitives.WriteUInt16LittleEndian(span, fcw);
            BinaryPrimitives.WriteUInt16LittleEndian(span[2..], fsw);
            BinaryPrimitives.WriteUInt16LittleEndian(span[4..], ftw);
        }

        if (kind is OperandKind.Save16 or OperandKind.Save32)
        {
            for (int i = 0; i < 8; i++)
            {
                var value = values[7 - i];
                BinaryPrimitives.WriteUInt64LittleEndian(span[(size + (10 * i))..], value.Significand);
                BinaryPrimitives.WriteUInt16LittleEndian(span[(size + (10 * i) + 8)..], value.SignExponent);
            }
        }
    }
}
