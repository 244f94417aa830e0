using System.Buffers.Binary;
using FsCheck;
using FsCheck.Fluent;

namespace KvmSharp.Emulator.Tests.Simd;

/// <summary>FsCheck generators for SIMD operands and machine states: edge values of each data type mixed with random ones.</summary>
internal static class SimdValues
{
    /// <summary>binary32 edge values: zeros, denormals, normal limits, infinities, NaNs of both kinds, integer-conversion limits, rounding ties.</summary>
    public static readonly uint[] SingleEdges =
    [
        0x0000_0000, 0x8000_0000, 0x0000_0001, 0x8000_0001, 0x007F_FFFF, 0x807F_FFFF, 0x0040_0000, 0x0080_0000, 0x8080_0000,
        0x0080_0001, 0x00FF_FFFF, 0x3F80_0000, 0xBF80_0000, 0x3FC0_0000, 0x4000_0000, 0x3F00_0000, 0xBF00_0000, 0x3FFF_FFFF,
        0x3F7F_FFFF, 0x3F80_0001, 0x4020_0000, 0xC020_0000, 0x3EAA_AAAB, 0x7F7F_FFFF, 0xFF7F_FFFF, 0x7F00_0000, 0x7F7F_FFFE,
        0x7F80_0000, 0xFF80_0000, 0x7FC0_0000, 0xFFC0_0000, 0x7FC1_2345, 0xFFC5_4321, 0x7F80_0001, 0xFF80_0001, 0x7FBF_FFFF,
        0x7FA0_0000, 0x4F00_0000, 0xCF00_0000, 0x4EFF_FFFF, 0xCF00_0001, 0x5F00_0000, 0xDF00_0000, 0x5EFF_FFFF, 0xDF00_0001,
        0x4B00_0000, 0x4B7F_FFFF, 0x3400_0000, 0x3380_0000, 0x0100_0000, 0x1F80_0000, 0x5F80_0000, 0x2000_0000, 0x7E80_0000,
    ];

    /// <summary>binary64 edge values, including the binary32 overflow/underflow thresholds and int32/int64 limits.</summary>
    public static readonly ulong[] DoubleEdges =
    [
        0x0000_0000_0000_0000, 0x8000_0000_0000_0000, 0x0000_0000_0000_0001, 0x8000_0000_0000_0001, 0x000F_FFFF_FFFF_FFFF,
        0x0008_0000_0000_0000, 0x0010_0000_0000_0000, 0x8010_0000_0000_0000, 0x0010_0000_0000_0001, 0x3FF0_0000_0000_0000,
        0xBFF0_0000_0000_0000, 0x3FF8_0000_0000_0000, 0x3FE0_0000_0000_0000, 0xBFE0_0000_0000_0000, 0x4004_0000_0000_0000,
        0x3FEF_FFFF_FFFF_FFFF, 0x3FF0_0000_0000_0001, 0x3FD5_5555_5555_5555, 0x7FEF_FFFF_FFFF_FFFF, 0xFFEF_FFFF_FFFF_FFFF,
        0x7FE0_0000_0000_0000, 0x7FF0_0000_0000_0000, 0xFFF0_0000_0000_0000, 0x7FF8_0000_0000_0000, 0xFFF8_0000_0000_0000,
        0x7FF8_0000_1234_5678, 0x7FF0_0000_0000_0001, 0xFFF0_0000_0000_0001, 0x7FF7_FFFF_FFFF_FFFF, 0x7FF4_0000_0000_0000,
        0x41E0_0000_0000_0000, 0xC1E0_0000_0000_0000, 0x41DF_FFFF_FFC0_0000, 0x41DF_FFFF_FFE0_0000, 0xC1E0_0000_0010_0000,
        0xC1E0_0000_0020_0000, 0x43E0_0000_0000_0000, 0xC3E0_0000_0000_0000, 0x43DF_FFFF_FFFF_FFFF, 0xC3E0_0000_0000_0001,
        0x47EF_FFFF_E000_0000, 0x47EF_FFFF_F000_0000, 0x47EF_FFFF_EFFF_FFFF, 0x47F0_0000_0000_0000, 0xC7EF_FFFF_F000_0000,
        0x3810_0000_0000_0000, 0x380F_FFFF_F000_0000, 0x380F_FFFF_E000_0000, 0x36A0_0000_0000_0000, 0x3690_0000_0000_0000,
        0x3690_0000_0000_0001, 0x3680_0000_0000_0000, 0xB6A0_0000_0000_0000, 0x4330_0000_0000_0000, 0x4340_0000_0000_0000,
        0x3CB0_0000_0000_0000, 0x0300_0000_0000_0000, 0x7CF0_0000_0000_0000, 0x2000_0000_0000_0000, 0x5FF0_0000_0000_0000,
    ];

    /// <summary>Integer edge values (as 64-bit patterns) for the signed-integer conversions.</summary>
    public static readonly ulong[] IntegerEdges =
    [
        0, 1, ulong.MaxValue, 2, 3, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF_8000_0000, 0xFFFF_FFFF_7FFF_FFFF, 0x0100_0000, 0x0100_0001,
        0xFFFF_FFFF_FEFF_FFFF, 0x00FF_FFFF, 0x7FFF_FFC0, 0x7FFF_FF80, 0x7FFF_FFFF_FFFF_FFFF, 0x8000_0000_0000_0000,
        0x0020_0000_0000_0000, 0x0020_0000_0000_0001, 0x0020_0000_0000_0003, 0xFFE0_0000_0000_0001, 0x7FFF_FFFF_FFFF_FC00,
        0x7FFF_FFFF_FFFF_FE00, 0x7FFF_FFFF_FFFF_FDFF, 0x8000_0000_0000_0001, 0x0000_0000_7FFF_FF7F, 0x1234_5678_9ABC_DEF0,
    ];

    private static readonly Gen<ulong> Random64 =
        Gen.Choose(0, 0xFFFF).Four().Select(static t => (ulong)(uint)t.Item1 | ((ulong)(uint)t.Item2 << 16) | ((ulong)(uint)t.Item3 << 32) | ((ulong)(uint)t.Item4 << 48));

    private static readonly Gen<uint> Random32 = Random64.Select(static v => (uint)v);

    /// <summary>A biased exponent drawn mostly near the ends of the range (underflow, overflow) and around 1.</summary>
    private static Gen<int> Exponent(int max, int bias) => Gen.Frequency(
        (3, Gen.Choose(0, max)),
        (2, Gen.Choose(0, 8)),
        (2, Gen.Choose(max - 8, max)),
        (3, Gen.Choose(bias - 30, bias + 30)));

    /// <summary>A fraction that is random, or has a short run of ones or zeros at the bottom (rounding ties, exact results).</summary>
    private static Gen<ulong> Fraction(int bits) => Gen.Frequency(
        (4, Random64),
        (1, Random64.Select(v => v & ~((1UL << (bits / 2)) - 1))),
        (1, Random64.Select(v => v | ((1UL << (bits / 3)) - 1))),
        (1, Gen.Choose(0, 15).Select(static v => (ulong)v))).Select(v => v & ((1UL << bits) - 1));

    public static readonly Gen<uint> Single = Gen.Frequency(
        (3, Gen.Elements(SingleEdges)),
        (2, Random32),
        (5, Zip3(Gen.Choose(0, 1), Exponent(255, 127), Fraction(23)).Select(static t => ((uint)t.Item1 << 31) | ((uint)t.Item2 << 23) | (uint)t.Item3)));

    public static readonly Gen<ulong> Double = Gen.Frequency(
        (3, Gen.Elements(DoubleEdges)),
        (2, Random64),
        (1, Single.Select(static s => SingleAsDoubleBits(s))),
        (5, Zip3(Gen.Choose(0, 1), Exponent(2047, 1023), Fraction(52)).Select(static t => ((ulong)t.Item1 << 63) | ((ulong)t.Item2 << 52) | t.Item3)));

    public static readonly Gen<ulong> Int64 = Gen.Frequency(
        (3, Gen.Elements(IntegerEdges)),
        (3, Random64),
        (2, Gen.Zip(Random64, Gen.Choose(0, 63)).Select(static t => (ulong)((long)t.Item1 >> t.Item2))));

    public static readonly Gen<ulong> Integer = Gen.Frequency(
        (4, Random64),
        (2, Gen.Elements<ulong>(0UL, ulong.MaxValue, 0x8080_8080_8080_8080, 0x7F7F_7F7F_7F7F_7F7F, 0x8000_8000_8000_8000, 0x7FFF_7FFF_7FFF_7FFF,
            0x8000_0000_8000_0000, 0x7FFF_FFFF_7FFF_FFFF, 0x00FF_00FF_00FF_00FF, 0xFF00_FF00_FF00_FF00, 0x0101_0101_0101_0101)),
        (2, Gen.Choose(0, 255).Select(static b => 0x0101_0101_0101_0101UL * (ulong)b)),
        (2, Gen.Choose(0, 0xFFFF).Select(static w => 0x0001_0001_0001_0001UL * (ulong)w)),
        (2, Gen.Choose(0, 130).Select(static c => (ulong)c)));

    /// <summary>A quadword of the given kind (two binary32 or int32 values for the 32-bit kinds).</summary>
    public static Gen<ulong> Quadword(ValueKind kind) => kind switch
    {
        ValueKind.Single => Gen.Zip(Single, Single).Select(static t => t.Item1 | ((ulong)t.Item2 << 32)),
        ValueKind.Double => Double,
        ValueKind.Int32 => Gen.Zip(Int64, Int64).Select(static t => (uint)t.Item1 | ((ulong)(uint)t.Item2 << 32)),
        ValueKind.Int64 => Int64,
        _ => Integer,
    };

    /// <summary>MXCSR with every exception masked: any rounding mode, FTZ and DAZ, and random sticky flags.</summary>
    public static readonly Gen<uint> MaskedMxcsr =
        Zip3(Gen.Choose(0, 3), Gen.Choose(0, 3), Gen.Choose(0, 63))
            .Select(static t => 0x1F80u | ((uint)t.Item1 << 13) | ((t.Item2 & 1) != 0 ? 0x8000u : 0) | ((t.Item2 & 2) != 0 ? 0x40u : 0) | (uint)(t.Item3 & 0x3F));

    /// <summary>MXCSR with random masks (for the #XM tests): any rounding mode, FTZ, DAZ; no sticky flags.</summary>
    public static readonly Gen<uint> AnyMxcsr =
        Gen.Zip(MaskedMxcsr, Gen.Choose(0, 63)).Select(static t => (t.Item1 & ~0x1FBFu) | ((uint)t.Item2 << 7));

    /// <summary>A whole machine state: XMM, MMX/x87 registers, data area and GPRs of <paramref name="kind"/>, an MXCSR from <paramref name="mxcsr"/>.</summary>
    public static Gen<SimdMachineState> State(ValueKind kind, Gen<uint> mxcsr, ValueKind gprKind = ValueKind.Int64)
    {
        var quadwords = Gen.ArrayOf(Quadword(kind), 32 + 8 + (SimdMachineState.DataSize / 8));
        var gprs = Gen.ArrayOf(gprKind == ValueKind.Int64 ? Int64 : Quadword(gprKind), 16);
        var x87 = Gen.ArrayOf(Random64, 12);
        return Zip3(quadwords, gprs, x87).Zip(mxcsr, static (t, m) => Build(t.Item1, t.Item2, t.Item3, m));
    }

    private static SimdMachineState Build(ulong[] quadwords, ulong[] gprs, ulong[] x87, uint mxcsr)
    {
        var state = new SimdMachineState();
        var image = state.FxImage.AsSpan();
        BinaryPrimitives.WriteUInt16LittleEndian(image, 0x037F);
        // FSW: TOP and the condition codes random; no exception flags, so nothing is pending (#MF would stop the host).
        state.Fsw = (ushort)(x87[0] & 0x4700 | (x87[0] >> 16) & 0x3800);
        image[4] = (byte)(x87[0] >> 32);                                    // abridged tags
        BinaryPrimitives.WriteUInt16LittleEndian(image[6..], (ushort)((x87[0] >> 40) & 0x7FF)); // FOP
        BinaryPrimitives.WriteUInt64LittleEndian(image[8..], x87[1] & 0x0000_7FFF_FFFF_FFFF);   // FIP
        BinaryPrimitives.WriteUInt64LittleEndian(image[16..], x87[2] & 0x0000_7FFF_FFFF_FFFF);  // FDP
        state.Mxcsr = mxcsr;
        BinaryPrimitives.WriteUInt32LittleEndian(image[28..], 0xFFFF);
        for (int i = 0; i < 8; i++)
        {
            // MMX values in the significands; the sign/exponent words random (an MMX write sets them to all ones).
            state.SetSt(i, quadwords[32 + i], (ushort)(x87[3 + i] >> 48));
        }

        for (int i = 0; i < 16; i++)
        {
            state.SetXmm(i, 0, quadwords[2 * i]);
            state.SetXmm(i, 1, quadwords[(2 * i) + 1]);
        }

        for (int i = 0; i < SimdMachineState.DataSize / 8; i++)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(state.Data.AsSpan(8 * i), quadwords[40 + i]);
        }

        gprs.CopyTo(state.Gpr, 0);
        state.Gpr[SimdMachineState.Rsi] = 256;
        state.Gpr[SimdMachineState.Rdi] = 512 + (x87[11] & 0xFF);
        state.Flags = 0x2 | (x87[11] >> 8 & 0x8D5);
        return state;
    }

    private static Gen<(TA, TB, TC)> Zip3<TA, TB, TC>(Gen<TA> a, Gen<TB> b, Gen<TC> c) =>
        a.Zip(b, static (x, y) => (x, y)).Zip(c, static (xy, z) => (xy.x, xy.y, z));

    private static ulong SingleAsDoubleBits(uint single) =>
        BitConverter.DoubleToUInt64Bits(BitConverter.UInt32BitsToSingle(single));
}
