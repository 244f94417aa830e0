using KvmSharp.Emulator.Execution;

namespace KvmSharp.Emulator.Tests.Simd;

/// <summary>
/// Exact results and MXCSR flags of <see cref="SseFloat"/> for cases that pin down the hardware's rules; every
/// row was measured on the Sapphire Rapids host (ADDSS/SUBSS/MULSS/DIVSS/SQRTSS/MINSS/ADDSD/MULSD/DIVSD/SQRTSD/
/// CVTSD2SS xmm0, xmm1 after LDMXCSR): the rounding modes, overflow by rounding direction, tininess after
/// rounding, FTZ of exact tiny results, DAZ, the priority of NaN/invalid/divide-by-zero over the denormal flag,
/// NaN propagation and quieting.
/// </summary>
public sealed class SseFloatTests
{
    [Theory]
    [InlineData("divss", 0x3F800000u, 0x40400000u, 0x1F80u, 0x3EAAAAABu, 0x20u)]
    [InlineData("divss", 0xBF800000u, 0x40400000u, 0x1F80u, 0xBEAAAAABu, 0x20u)]
    [InlineData("mulss", 0x7F7FFFFFu, 0x40000000u, 0x1F80u, 0x7F800000u, 0x28u)]
    [InlineData("subss", 0x3F800000u, 0x3F800000u, 0x1F80u, 0x00000000u, 0x00u)]
    [InlineData("mulss", 0x80800001u, 0x3F000001u, 0x1F80u, 0x80400001u, 0x30u)]
    [InlineData("divss", 0x3F800000u, 0x40400000u, 0x3F80u, 0x3EAAAAAAu, 0x20u)]
    [InlineData("divss", 0xBF800000u, 0x40400000u, 0x3F80u, 0xBEAAAAABu, 0x20u)]
    [InlineData("mulss", 0x7F7FFFFFu, 0x40000000u, 0x3F80u, 0x7F7FFFFFu, 0x28u)]
    [InlineData("subss", 0x3F800000u, 0x3F800000u, 0x3F80u, 0x80000000u, 0x00u)]
    [InlineData("mulss", 0x80800001u, 0x3F000001u, 0x3F80u, 0x80400002u, 0x30u)]
    [InlineData("divss", 0x3F800000u, 0x40400000u, 0x5F80u, 0x3EAAAAABu, 0x20u)]
    [InlineData("divss", 0xBF800000u, 0x40400000u, 0x5F80u, 0xBEAAAAAAu, 0x20u)]
    [InlineData("mulss", 0x7F7FFFFFu, 0x40000000u, 0x5F80u, 0x7F800000u, 0x28u)]
    [InlineData("subss", 0x3F800000u, 0x3F800000u, 0x5F80u, 0x00000000u, 0x00u)]
    [InlineData("mulss", 0x80800001u, 0x3F000001u, 0x5F80u, 0x80400001u, 0x30u)]
    [InlineData("divss", 0x3F800000u, 0x40400000u, 0x7F80u, 0x3EAAAAAAu, 0x20u)]
    [InlineData("divss", 0xBF800000u, 0x40400000u, 0x7F80u, 0xBEAAAAAAu, 0x20u)]
    [InlineData("mulss", 0x7F7FFFFFu, 0x40000000u, 0x7F80u, 0x7F7FFFFFu, 0x28u)]
    [InlineData("subss", 0x3F800000u, 0x3F800000u, 0x7F80u, 0x00000000u, 0x00u)]
    [InlineData("mulss", 0x80800001u, 0x3F000001u, 0x7F80u, 0x80400001u, 0x30u)]
    [InlineData("addss", 0x7FC00001u, 0x00000001u, 0x1F80u, 0x7FC00001u, 0x00u)]
    [InlineData("divss", 0x00000001u, 0x00000000u, 0x1F80u, 0x7F800000u, 0x04u)]
    [InlineData("divss", 0x3F800000u, 0x00000001u, 0x1F80u, 0x7F800000u, 0x2Au)]
    [InlineData("mulss", 0x00000001u, 0x7F800000u, 0x1F80u, 0x7F800000u, 0x02u)]
    [InlineData("addss", 0x00000001u, 0x00000000u, 0x1F80u, 0x00000001u, 0x02u)]
    [InlineData("addss", 0x00000001u, 0x00000000u, 0x9F80u, 0x00000000u, 0x32u)]
    [InlineData("mulss", 0x00800000u, 0x3F7FFFFFu, 0x1F80u, 0x00800000u, 0x30u)]
    [InlineData("minss", 0x00000000u, 0x00000001u, 0x1FC0u, 0x00000000u, 0x00u)]
    [InlineData("minss", 0x7FC00000u, 0x3F800000u, 0x1F80u, 0x3F800000u, 0x01u)]
    [InlineData("sqrtss", 0x00000000u, 0x80000000u, 0x1F80u, 0x80000000u, 0x00u)]
    [InlineData("sqrtss", 0x00000000u, 0x80000001u, 0x1F80u, 0xFFC00000u, 0x01u)]
    [InlineData("sqrtss", 0x00000000u, 0x80000001u, 0x1FC0u, 0x80000000u, 0x00u)]
    [InlineData("sqrtss", 0x00000000u, 0x00000002u, 0x1F80u, 0x1A800000u, 0x02u)]
    [InlineData("sqrtss", 0x00000000u, 0x40000000u, 0x5F80u, 0x3FB504F4u, 0x20u)]
    [InlineData("addss", 0x7F800000u, 0xFF800000u, 0x1F80u, 0xFFC00000u, 0x01u)]
    [InlineData("mulss", 0x00000000u, 0x7F800000u, 0x1F80u, 0xFFC00000u, 0x01u)]
    [InlineData("divss", 0x00000000u, 0x00000000u, 0x1F80u, 0xFFC00000u, 0x01u)]
    [InlineData("divss", 0x7F800000u, 0x7F800000u, 0x1F80u, 0xFFC00000u, 0x01u)]
    [InlineData("addss", 0xFF800001u, 0x7FC00002u, 0x1F80u, 0xFFC00001u, 0x01u)]
    public void Single_MatchesTheHostMeasurement(string op, uint a, uint b, uint mxcsr, uint expected, uint expectedFlags)
    {
        uint flags = 0;
        ulong result = op switch
        {
            "addss" => SseFloat.Add<Binary32>(a, b, mxcsr, ref flags),
            "subss" => SseFloat.Subtract<Binary32>(a, b, mxcsr, ref flags),
            "mulss" => SseFloat.Multiply<Binary32>(a, b, mxcsr, ref flags),
            "divss" => SseFloat.Divide<Binary32>(a, b, mxcsr, ref flags),
            "sqrtss" => SseFloat.Sqrt<Binary32>(b, mxcsr, ref flags),
            "minss" => SseFloat.Min<Binary32>(a, b, mxcsr, ref flags),
            _ => throw new ArgumentOutOfRangeException(nameof(op), op, "No such operation."),
        };
        Assert.Equal(expected.ToString("X8"), result.ToString("X8"));
        Assert.Equal(expectedFlags, flags);
    }

    [Theory]
    [InlineData("divsd", 0x3FF0000000000000UL, 0x4008000000000000UL, 0x3F80u, 0x3FD5555555555555UL, 0x20u)]
    [InlineData("mulsd", 0x0010000000000001UL, 0x3FE0000000000000UL, 0x1F80u, 0x0008000000000000UL, 0x30u)]
    [InlineData("mulsd", 0x0010000000000001UL, 0x3FE0000000000000UL, 0x9F80u, 0x0000000000000000UL, 0x30u)]
    [InlineData("sqrtsd", 0x0000000000000000UL, 0x4000000000000000UL, 0x1F80u, 0x3FF6A09E667F3BCDUL, 0x20u)]
    [InlineData("sqrtsd", 0x0000000000000000UL, 0x4000000000000000UL, 0x5F80u, 0x3FF6A09E667F3BCDUL, 0x20u)]
    [InlineData("addsd", 0x7FF0000000000001UL, 0x3FF0000000000000UL, 0x1F80u, 0x7FF8000000000001UL, 0x01u)]
    [InlineData("cvtsd2ss", 0x0000000000000000UL, 0x47EFFFFFF0000000UL, 0x1F80u, 0x000000007F800000UL, 0x28u)]
    [InlineData("cvtsd2ss", 0x0000000000000000UL, 0x36A0000000000000UL, 0x1F80u, 0x0000000000000001UL, 0x00u)]
    [InlineData("cvtsd2ss", 0x0000000000000000UL, 0x3690000000000000UL, 0x1F80u, 0x0000000000000000UL, 0x30u)]
    [InlineData("cvtsd2ss", 0x0000000000000000UL, 0x47EFFFFFF0000000UL, 0x3F80u, 0x000000007F7FFFFFUL, 0x20u)]
    [InlineData("cvtsd2ss", 0x0000000000000000UL, 0x36A0000000000000UL, 0x3F80u, 0x0000000000000001UL, 0x00u)]
    [InlineData("cvtsd2ss", 0x0000000000000000UL, 0x3690000000000000UL, 0x3F80u, 0x0000000000000000UL, 0x30u)]
    [InlineData("cvtsd2ss", 0x0000000000000000UL, 0x47EFFFFFF0000000UL, 0x5F80u, 0x000000007F800000UL, 0x28u)]
    [InlineData("cvtsd2ss", 0x0000000000000000UL, 0x36A0000000000000UL, 0x5F80u, 0x0000000000000001UL, 0x00u)]
    [InlineData("cvtsd2ss", 0x0000000000000000UL, 0x3690000000000000UL, 0x5F80u, 0x0000000000000001UL, 0x30u)]
    [InlineData("cvtsd2ss", 0x0000000000000000UL, 0x47EFFFFFF0000000UL, 0x7F80u, 0x000000007F7FFFFFUL, 0x20u)]
    [InlineData("cvtsd2ss", 0x0000000000000000UL, 0x36A0000000000000UL, 0x7F80u, 0x0000000000000001UL, 0x00u)]
    [InlineData("cvtsd2ss", 0x0000000000000000UL, 0x3690000000000000UL, 0x7F80u, 0x0000000000000000UL, 0x30u)]
    [InlineData("cvtsd2ss", 0x0000000000000000UL, 0x7FF0000000000001UL, 0x1F80u, 0x000000007FC00000UL, 0x01u)]
    [InlineData("cvtsd2ss", 0x0000000000000000UL, 0xFFF8123456789ABCUL, 0x1F80u, 0x00000000FFC091A2UL, 0x00u)]
    [InlineData("cvtsd2ss", 0x0000000000000000UL, 0x0000000000000001UL, 0x1F80u, 0x0000000000000000UL, 0x32u)]
    [InlineData("cvtsd2ss", 0x0000000000000000UL, 0x0000000000000001UL, 0x1FC0u, 0x0000000000000000UL, 0x00u)]
    public void Double_MatchesTheHostMeasurement(string op, ulong a, ulong b, uint mxcsr, ulong expected, uint expectedFlags)
    {
        uint flags = 0;
        ulong result = op switch
        {
            "addsd" => SseFloat.Add<Binary64>(a, b, mxcsr, ref flags),
            "mulsd" => SseFloat.Multiply<Binary64>(a, b, mxcsr, ref flags),
            "divsd" => SseFloat.Divide<Binary64>(a, b, mxcsr, ref flags),
            "sqrtsd" => SseFloat.Sqrt<Binary64>(b, mxcsr, ref flags),
            "cvtsd2ss" => SseFloat.DoubleToSingle(b, mxcsr, ref flags),
            _ => throw new ArgumentOutOfRangeException(nameof(op), op, "No such operation."),
        };
        Assert.Equal(expected.ToString("X16"), result.ToString("X16"));
        Assert.Equal(expectedFlags, flags);
    }

    [Theory]
    [InlineData(0x0000_0001u, 0x1F80u, 4, false, 0L, 0x20u)]           // a denormal rounds to 0, inexact
    [InlineData(0x0000_0001u, 0x1FC0u, 4, false, 0L, 0x00u)]           // with DAZ it is an exact 0
    [InlineData(0x7FC0_0000u, 0x1F80u, 4, false, int.MinValue, 0x01u)] // NaN: the integer indefinite
    [InlineData(0x4F00_0000u, 0x1F80u, 4, true, int.MinValue, 0x01u)]  // 2^31 does not fit
    [InlineData(0xCF00_0000u, 0x1F80u, 4, false, int.MinValue, 0x00u)] // -2^31 does, exactly
    [InlineData(0x3FC0_0000u, 0x1F80u, 4, false, 2L, 0x20u)]           // 1.5 to nearest even
    [InlineData(0x4020_0000u, 0x1F80u, 4, false, 2L, 0x20u)]           // 2.5 to nearest even
    [InlineData(0x4020_0000u, 0x5F80u, 4, false, 3L, 0x20u)]           // 2.5 up
    [InlineData(0xC020_0000u, 0x3F80u, 4, false, -3L, 0x20u)]          // -2.5 down
    [InlineData(0xC020_0000u, 0x3F80u, 4, true, -2L, 0x20u)]           // -2.5 truncated
    [InlineData(0x5F00_0000u, 0x1F80u, 8, false, long.MinValue, 0x01u)] // 2^63 does not fit 64 bits
    [InlineData(0xDF00_0000u, 0x1F80u, 8, false, long.MinValue, 0x00u)] // -2^63 does
    [InlineData(0x5EFF_FFFFu, 0x1F80u, 8, false, 0x7FFF_FF80_0000_0000L, 0x00u)]
    public void SingleToInteger_GivesTheDocumentedResults(uint x, uint mxcsr, int size, bool truncate, long expected, uint expectedFlags)
    {
        uint flags = 0;
        Assert.Equal(expected, SseFloat.ToInteger<Binary32>(x, size, truncate, mxcsr, ref flags));
        Assert.Equal(expectedFlags, flags);
    }

    [Theory]
    [InlineData(0x7F80_0001u, 0x7FF8_0000_2000_0000UL, 0x01u)] // SNaN: quieted, payload moved up, IE
    [InlineData(0xFFC1_2345u, 0xFFF8_2468_A000_0000UL, 0x00u)]
    [InlineData(0x0000_0001u, 0x36A0_0000_0000_0000UL, 0x02u)] // a denormal widens exactly, DE
    [InlineData(0x8000_0000u, 0x8000_0000_0000_0000UL, 0x00u)]
    public void SingleToDouble_GivesTheDocumentedResults(uint x, ulong expected, uint expectedFlags)
    {
        uint flags = 0;
        Assert.Equal(expected, SseFloat.SingleToDouble(x, 0x1F80, ref flags));
        Assert.Equal(expectedFlags, flags);
    }
}
