using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using KvmSharp.Emulator.Execution;

namespace KvmSharp.Emulator.Tests.Simd;

/// <summary>
/// RCPSS/RSQRTSS tables against the host's instructions: every fraction in the binades the tables describe, every
/// exponent for a spread of fractions, and the special inputs (zeros, denormals, infinities, NaNs, negatives).
/// </summary>
public sealed class ApproximationTests
{
    private static uint HostReciprocal(uint x) =>
        Sse.ReciprocalScalar(Vector128.CreateScalar(BitConverter.UInt32BitsToSingle(x))).AsUInt32().ToScalar();

    private static uint HostReciprocalSqrt(uint x) =>
        Sse.ReciprocalSqrtScalar(Vector128.CreateScalar(BitConverter.UInt32BitsToSingle(x))).AsUInt32().ToScalar();

    /// <summary>
    /// Equal on an Intel host (the model's tables are Intel's). Elsewhere (AMD's tables differ) both must be equal, or
    /// both normal results within the SDM's bound |error| ≤ 1.5 × 2^-12 × |exact|.
    /// </summary>
    private static bool Agree(uint host, uint emulated, double exact)
    {
        if (host == emulated)
        {
            return true;
        }

        return !HostCpu.IsIntel && WithinBound(host, exact) && WithinBound(emulated, exact);
    }

    private static bool WithinBound(uint result, double exact)
    {
        float value = BitConverter.UInt32BitsToSingle(result);
        return float.IsNormal(value) && double.IsFinite(exact) && Math.Abs(value - exact) <= 1.5 / 4096 * Math.Abs(exact);
    }

    private static void CheckReciprocal(uint x)
    {
        if (!Agree(HostReciprocal(x), SseApproximation.Reciprocal(x), 1 / (double)BitConverter.UInt32BitsToSingle(x)))
        {
            Assert.Fail($"rcpss {x:X8}: host {HostReciprocal(x):X8} emulated {SseApproximation.Reciprocal(x):X8}");
        }
    }

    private static void CheckReciprocalSqrt(uint x)
    {
        if (!Agree(HostReciprocalSqrt(x), SseApproximation.ReciprocalSqrt(x), 1 / Math.Sqrt(BitConverter.UInt32BitsToSingle(x))))
        {
            Assert.Fail($"rsqrtss {x:X8}: host {HostReciprocalSqrt(x):X8} emulated {SseApproximation.ReciprocalSqrt(x):X8}");
        }
    }

    [Fact]
    public void Reciprocal_MatchesTheHost_ForEveryFractionOfOneBinade_AndEveryExponent()
    {
        Assert.SkipUnless(Sse.IsSupported, "The host has no SSE.");
        for (uint fraction = 0; fraction < 1u << 23; fraction++)
        {
            uint x = 0x3F80_0000 | fraction;
            CheckReciprocal(x);
        }

        for (uint exponent = 0; exponent < 256; exponent++)
        {
            for (uint fraction = 0; fraction < 1u << 23; fraction += 4093)
            {
                foreach (uint sign in (ReadOnlySpan<uint>)[0, 0x8000_0000])
                {
                    uint x = sign | (exponent << 23) | fraction;
                    CheckReciprocal(x);
                }
            }
        }
    }

    [Fact]
    public void ReciprocalSqrt_MatchesTheHost_ForEveryFractionOfTwoBinades_AndEveryExponent()
    {
        Assert.SkipUnless(Sse.IsSupported, "The host has no SSE.");
        for (uint x = 0x3F00_0000; x < 0x4000_0000; x++)
        {
            CheckReciprocalSqrt(x);
        }

        for (uint exponent = 0; exponent < 256; exponent++)
        {
            for (uint fraction = 0; fraction < 1u << 23; fraction += 4093)
            {
                foreach (uint sign in (ReadOnlySpan<uint>)[0, 0x8000_0000])
                {
                    uint x = sign | (exponent << 23) | fraction;
                    CheckReciprocalSqrt(x);
                }
            }
        }
    }

    [Theory]
    [InlineData(0x0000_0000u, 0x7F80_0000u, 0x7F80_0000u)]
    [InlineData(0x8000_0000u, 0xFF80_0000u, 0xFF80_0000u)]
    [InlineData(0x0000_0001u, 0x7F80_0000u, 0x7F80_0000u)]
    [InlineData(0x8000_0001u, 0xFF80_0000u, 0xFF80_0000u)]
    [InlineData(0x7F80_0000u, 0x0000_0000u, 0x0000_0000u)]
    [InlineData(0xFF80_0000u, 0x8000_0000u, 0xFFC0_0000u)]
    [InlineData(0x7FC1_2345u, 0x7FC1_2345u, 0x7FC1_2345u)]
    [InlineData(0xFF81_2345u, 0xFFC1_2345u, 0xFFC1_2345u)]
    [InlineData(0xBF80_0000u, 0xBF7F_F000u, 0xFFC0_0000u)]
    [InlineData(0x3F80_0000u, 0x3F7F_F000u, 0x3F7F_F000u)]
    [InlineData(0x7E80_0000u, 0x0000_0000u, 0x1FFF_F000u)]
    public void SpecialInputs_GiveTheDocumentedResults(uint x, uint reciprocal, uint reciprocalSqrt)
    {
        Assert.Equal(reciprocal, SseApproximation.Reciprocal(x));
        Assert.Equal(reciprocalSqrt, SseApproximation.ReciprocalSqrt(x));
    }
}
