// IEEE 754 binary32/binary64 arithmetic as the SSE/SSE2 unit computes it, in integer arithmetic, so that every
// rounding mode, DAZ/FTZ and each MXCSR exception flag come out as on the hardware (the host's float/double
// operations only round to nearest and report no flags).
//
// The model (SDM Vol. 1 4.8-4.9 and 11.5; checked instruction by instruction against this host by the
// differential tests in tests/KvmSharp.Emulator.Tests/Simd):
//   1. DAZ first: a denormal source becomes a zero of the same sign (and then raises nothing).
//   2. Pre-computation, highest priority first, only the first condition that holds is reported:
//      an SNaN source (IE; the result is the first NaN source, quieted); a QNaN source (no flag; the first NaN
//      source); an invalid operation (IE; the default NaN 0xFFC00000 / 0xFFF8000000000000); a zero divisor of a
//      finite dividend (ZE; an infinity); a denormal source (DE; the computation goes on).
//   3. Rounding with unbounded exponent to the format's precision in the MXCSR.RC direction. Overflow when the
//      rounded exponent exceeds the format's: masked, OE+PE and infinity or the largest finite number by the
//      rounding direction; unmasked, OE and PE only if that rounding was inexact. Tiny (underflow) when the
//      rounded exponent is below the format's minimum ("after rounding" detection): unmasked, UE and PE only if
//      the unbounded rounding was inexact; masked with FTZ, a signed zero with UE+PE; masked without FTZ, the
//      result is rounded again to the denormal grid and UE+PE are set only if that result is inexact.
//   4. PE for any other inexact result.
// Results for unmasked exceptions are never stored by the instructions (the caller discards them).
//
// Every function takes the operands as raw bits (binary32 in the low 32 bits of a ulong), the MXCSR for the
// rounding mode, DAZ, FTZ and the underflow/overflow masks, and ORs the exception flags it raises into
// `flags`. Nothing allocates.
using System.Numerics;
using System.Runtime.CompilerServices;

namespace KvmSharp.Emulator.Execution;

/// <summary>A binary floating-point format: its fraction and exponent widths.</summary>
public interface IBinaryFormat
{
    /// <summary>The stored fraction bits (23 or 52).</summary>
    static abstract int FractionBits { get; }

    /// <summary>The exponent bits (8 or 11).</summary>
    static abstract int ExponentBits { get; }
}

/// <summary>IEEE 754 binary32 (single precision).</summary>
public readonly struct Binary32 : IBinaryFormat
{
    /// <inheritdoc/>
    public static int FractionBits => 23;

    /// <inheritdoc/>
    public static int ExponentBits => 8;
}

/// <summary>IEEE 754 binary64 (double precision).</summary>
public readonly struct Binary64 : IBinaryFormat
{
    /// <inheritdoc/>
    public static int FractionBits => 52;

    /// <inheritdoc/>
    public static int ExponentBits => 11;
}

/// <summary>The outcome of a floating-point comparison.</summary>
public enum FloatOrder
{
    /// <summary>The first operand is less than the second.</summary>
    Less,

    /// <summary>The operands are equal (+0 equals -0).</summary>
    Equal,

    /// <summary>The first operand is greater than the second.</summary>
    Greater,

    /// <summary>At least one operand is a NaN.</summary>
    Unordered,
}

/// <summary>SSE/SSE2 scalar floating-point operations with exact results and MXCSR flags.</summary>
public static class SseFloat
{
    private const ulong Half = 1UL << 63;
    private const uint RoundDown = 1;
    private const uint RoundUp = 2;

    // ---------------------------------------------------------------- format constants

    private static int Bias<F>() where F : IBinaryFormat => (1 << (F.ExponentBits - 1)) - 1;

    private static ulong SignBit<F>() where F : IBinaryFormat => 1UL << (F.FractionBits + F.ExponentBits);

    private static ulong ExponentField<F>() where F : IBinaryFormat => ((1UL << F.ExponentBits) - 1) << F.FractionBits;

    private static ulong FractionMask<F>() where F : IBinaryFormat => (1UL << F.FractionBits) - 1;

    private static ulong QuietBit<F>() where F : IBinaryFormat => 1UL << (F.FractionBits - 1);

    /// <summary>The default NaN ("real indefinite"): 0xFFC00000 or 0xFFF8000000000000.</summary>
    public static ulong DefaultNaN<F>() where F : IBinaryFormat => SignBit<F>() | ExponentField<F>() | QuietBit<F>();

    // ---------------------------------------------------------------- classification

    /// <summary>True for a NaN (quiet or signaling).</summary>
    public static bool IsNaN<F>(ulong x) where F : IBinaryFormat => (x & ~SignBit<F>()) > ExponentField<F>();

    /// <summary>True for a signaling NaN (quiet bit clear).</summary>
    public static bool IsSignalingNaN<F>(ulong x) where F : IBinaryFormat => IsNaN<F>(x) && (x & QuietBit<F>()) == 0;

    /// <summary>True for a denormal (zero exponent, non-zero fraction).</summary>
    public static bool IsDenormal<F>(ulong x) where F : IBinaryFormat => (x & ExponentField<F>()) == 0 && (x & FractionMask<F>()) != 0;

    /// <summary>True for +-infinity.</summary>
    public static bool IsInfinity<F>(ulong x) where F : IBinaryFormat => (x & ~SignBit<F>()) == ExponentField<F>();

    /// <summary>True for +-0.</summary>
    public static bool IsZero<F>(ulong x) where F : IBinaryFormat => (x & ~SignBit<F>()) == 0;

    private static bool IsNegative<F>(ulong x) where F : IBinaryFormat => (x & SignBit<F>()) != 0;

    /// <summary>DAZ: a denormal becomes a zero of its sign when MXCSR.DAZ is set.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong DenormalAsZero<F>(ulong x, uint mxcsr) where F : IBinaryFormat =>
        (mxcsr & Mxcsr.DenormalsAreZero) != 0 && IsDenormal<F>(x) ? x & SignBit<F>() : x;

    /// <summary>The first NaN source, quieted; IE when either source is signaling.</summary>
    private static ulong PropagateNaN<F>(ulong a, ulong b, ref uint flags) where F : IBinaryFormat
    {
        if (IsSignalingNaN<F>(a) || IsSignalingNaN<F>(b))
        {
            flags |= Mxcsr.InvalidFlag;
        }

        return (IsNaN<F>(a) ? a : b) | QuietBit<F>();
    }

    /// <summary>
    /// The significand of a finite non-zero value normalized to bit 63, and its exponent: value = significand *
    /// 2^(exponent - 63). Denormals are normalized.
    /// </summary>
    private static ulong Unpack<F>(ulong x, out int exponent) where F : IBinaryFormat
    {
        int biased = (int)((x >> F.FractionBits) & ((1UL << F.ExponentBits) - 1));
        ulong fraction = x & FractionMask<F>();
        if (biased != 0)
        {
            exponent = biased - Bias<F>();
            return (fraction | (1UL << F.FractionBits)) << (63 - F.FractionBits);
        }

        int leadingZeros = BitOperations.LeadingZeroCount(fraction);
        exponent = 63 - leadingZeros + 1 - Bias<F>() - F.FractionBits;
        return fraction << leadingZeros;
    }

    private static ulong ShiftRightJam(ulong value, int count) => count switch
    {
        0 => value,
        >= 64 => value != 0 ? 1UL : 0UL,
        _ => (value >> count) | ((value << (64 - count)) != 0 ? 1UL : 0UL),
    };

    /// <summary>Whether a value whose kept part is <paramref name="kept"/> and whose discarded bits (top-aligned) are <paramref name="rest"/> rounds away from zero.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool RoundsUp(uint mode, bool negative, ulong kept, ulong rest) => mode switch
    {
        0 => rest > Half || (rest == Half && (kept & 1) != 0),
        RoundDown => negative && rest != 0,
        RoundUp => !negative && rest != 0,
        _ => false,
    };

    /// <summary>
    /// Rounds value = <paramref name="significand"/> * 2^(<paramref name="exponent"/> - 63) (bit 63 set; a sticky
    /// bit may be ORed into bit 0) to the format, with overflow, underflow, FTZ and inexact handling.
    /// </summary>
    private static ulong RoundPack<F>(bool negative, int exponent, ulong significand, uint mxcsr, ref uint flags) where F : IBinaryFormat
    {
        int precision = F.FractionBits + 1;
        int shift = 64 - precision;
        uint mode = Mxcsr.Rounding(mxcsr);
        ulong sign = negative ? SignBit<F>() : 0;
        ulong kept = significand >> shift;
        ulong rest = significand << precision;
        bool inexact = rest != 0;
        int rounded = exponent;
        if (RoundsUp(mode, negative, kept, rest))
        {
            kept++;
            if ((kept >> precision) != 0)
            {
                kept >>= 1;
                rounded++;
            }
        }

        int maxExponent = Bias<F>();
        int minExponent = 1 - Bias<F>();
        if (rounded > maxExponent)
        {
            if ((Mxcsr.UnmaskedExceptions(mxcsr) & Mxcsr.OverflowFlag) != 0)
            {
                flags |= Mxcsr.OverflowFlag | (inexact ? Mxcsr.PrecisionFlag : 0);
                return sign | ExponentField<F>();
            }

            flags |= Mxcsr.OverflowFlag | Mxcsr.PrecisionFlag;
            bool toInfinity = mode == 0 || (mode == RoundDown && negative) || (mode == RoundUp && !negative);
            return sign | (toInfinity ? ExponentField<F>() : ExponentField<F>() - 1);
        }

        if (rounded < minExponent)
        {
            if ((Mxcsr.UnmaskedExceptions(mxcsr) & Mxcsr.UnderflowFlag) != 0)
            {
                flags |= Mxcsr.UnderflowFlag | (inexact ? Mxcsr.PrecisionFlag : 0);
                return sign;
            }

            if ((mxcsr & Mxcsr.FlushToZero) != 0)
            {
                flags |= Mxcsr.UnderflowFlag | Mxcsr.PrecisionFlag;
                return sign;
            }

            // Round again on the denormal grid; a carry into the exponent field encodes the smallest normal.
            int denormalShift = shift + (minExponent - exponent);
            ulong denormal;
            ulong denormalRest;
            if (denormalShift < 64)
            {
                denormal = significand >> denormalShift;
                denormalRest = significand << (64 - denormalShift);
            }
            else
            {
                denormal = 0;
                denormalRest = denormalShift == 64 ? significand : 1; // below half an ulp, but not zero
            }

            if (RoundsUp(mode, negative, denormal, denormalRest))
            {
                denormal++;
            }

            if (denormalRest != 0)
            {
                flags |= Mxcsr.UnderflowFlag | Mxcsr.PrecisionFlag;
            }

            return sign | denormal;
        }

        if (inexact)
        {
            flags |= Mxcsr.PrecisionFlag;
        }

        return sign | ((ulong)(rounded + Bias<F>()) << F.FractionBits) | (kept & FractionMask<F>());
    }

    // ---------------------------------------------------------------- arithmetic

    /// <summary>ADDSS/ADDSD: <paramref name="a"/> + <paramref name="b"/>.</summary>
    public static ulong Add<F>(ulong a, ulong b, uint mxcsr, ref uint flags) where F : IBinaryFormat =>
        AddSubtract<F>(a, b, false, mxcsr, ref flags);

    /// <summary>SUBSS/SUBSD: <paramref name="a"/> - <paramref name="b"/>.</summary>
    public static ulong Subtract<F>(ulong a, ulong b, uint mxcsr, ref uint flags) where F : IBinaryFormat =>
        AddSubtract<F>(a, b, true, mxcsr, ref flags);

    private static ulong AddSubtract<F>(ulong a, ulong b, bool subtract, uint mxcsr, ref uint flags) where F : IBinaryFormat
    {
        a = DenormalAsZero<F>(a, mxcsr);
        b = DenormalAsZero<F>(b, mxcsr);
        if (IsNaN<F>(a) || IsNaN<F>(b))
        {
            return PropagateNaN<F>(a, b, ref flags);
        }

        bool signA = IsNegative<F>(a);
        bool signB = IsNegative<F>(b) ^ subtract;
        bool infinityA = IsInfinity<F>(a);
        bool infinityB = IsInfinity<F>(b);
        if (infinityA && infinityB && signA != signB)
        {
            flags |= Mxcsr.InvalidFlag;
            return DefaultNaN<F>();
        }

        if (IsDenormal<F>(a) || IsDenormal<F>(b))
        {
            flags |= Mxcsr.DenormalFlag;
        }

        if (infinityA || infinityB)
        {
            return ExponentField<F>() | ((infinityA ? signA : signB) ? SignBit<F>() : 0);
        }

        bool zeroA = IsZero<F>(a);
        bool zeroB = IsZero<F>(b);
        if (zeroA && zeroB)
        {
            bool negativeZero = signA == signB ? signA : Mxcsr.Rounding(mxcsr) == RoundDown;
            return negativeZero ? SignBit<F>() : 0;
        }

        if (zeroB || zeroA)
        {
            // The other operand is the exact result; it still goes through rounding for FTZ on a denormal.
            ulong only = zeroB ? a : b;
            ulong significand = Unpack<F>(only, out int exponent);
            return RoundPack<F>(zeroB ? signA : signB, exponent, significand, mxcsr, ref flags);
        }

        ulong ma = Unpack<F>(a, out int ea);
        ulong mb = Unpack<F>(b, out int eb);
        if (eb > ea || (eb == ea && mb > ma))
        {
            (ma, mb) = (mb, ma);
            (ea, eb) = (eb, ea);
            (signA, signB) = (signB, signA);
        }

        // |a| >= |b|: one bit of headroom for the carry, then align b with a sticky bit.
        ma >>= 1;
        mb = ShiftRightJam(mb >> 1, ea - eb);
        ulong sum = signA == signB ? ma + mb : ma - mb;
        if (sum == 0)
        {
            return Mxcsr.Rounding(mxcsr) == RoundDown ? SignBit<F>() : 0;
        }

        int leadingZeros = BitOperations.LeadingZeroCount(sum);
        return RoundPack<F>(signA, ea + 1 - leadingZeros, sum << leadingZeros, mxcsr, ref flags);
    }

    /// <summary>MULSS/MULSD.</summary>
    public static ulong Multiply<F>(ulong a, ulong b, uint mxcsr, ref uint flags) where F : IBinaryFormat
    {
        a = DenormalAsZero<F>(a, mxcsr);
        b = DenormalAsZero<F>(b, mxcsr);
        if (IsNaN<F>(a) || IsNaN<F>(b))
        {
            return PropagateNaN<F>(a, b, ref flags);
        }

        bool negative = IsNegative<F>(a) ^ IsNegative<F>(b);
        ulong sign = negative ? SignBit<F>() : 0;
        bool infinity = IsInfinity<F>(a) || IsInfinity<F>(b);
        bool zero = IsZero<F>(a) || IsZero<F>(b);
        if (infinity && zero)
        {
            flags |= Mxcsr.InvalidFlag;
            return DefaultNaN<F>();
        }

        if (IsDenormal<F>(a) || IsDenormal<F>(b))
        {
            flags |= Mxcsr.DenormalFlag;
        }

        if (infinity)
        {
            return sign | ExponentField<F>();
        }

        if (zero)
        {
            return sign;
        }

        ulong ma = Unpack<F>(a, out int ea);
        ulong mb = Unpack<F>(b, out int eb);
        ulong high = Math.BigMul(ma, mb, out ulong low);
        int exponent = ea + eb + 1;
        if ((high >> 63) == 0)
        {
            high = (high << 1) | (low >> 63);
            low <<= 1;
            exponent--;
        }

        return RoundPack<F>(negative, exponent, high | (low != 0 ? 1UL : 0UL), mxcsr, ref flags);
    }

    /// <summary>DIVSS/DIVSD: <paramref name="a"/> / <paramref name="b"/>.</summary>
    public static ulong Divide<F>(ulong a, ulong b, uint mxcsr, ref uint flags) where F : IBinaryFormat
    {
        a = DenormalAsZero<F>(a, mxcsr);
        b = DenormalAsZero<F>(b, mxcsr);
        if (IsNaN<F>(a) || IsNaN<F>(b))
        {
            return PropagateNaN<F>(a, b, ref flags);
        }

        bool negative = IsNegative<F>(a) ^ IsNegative<F>(b);
        ulong sign = negative ? SignBit<F>() : 0;
        bool infinityA = IsInfinity<F>(a);
        bool infinityB = IsInfinity<F>(b);
        bool zeroA = IsZero<F>(a);
        bool zeroB = IsZero<F>(b);
        if ((infinityA && infinityB) || (zeroA && zeroB))
        {
            flags |= Mxcsr.InvalidFlag;
            return DefaultNaN<F>();
        }

        if (zeroB && !infinityA)
        {
            flags |= Mxcsr.ZeroDivideFlag;
            return sign | ExponentField<F>();
        }

        if (IsDenormal<F>(a) || IsDenormal<F>(b))
        {
            flags |= Mxcsr.DenormalFlag;
        }

        if (infinityA || zeroB)
        {
            return sign | ExponentField<F>();
        }

        if (zeroA || infinityB)
        {
            return sign;
        }

        ulong ma = Unpack<F>(a, out int ea);
        ulong mb = Unpack<F>(b, out int eb);
        UInt128 dividend;
        int exponent;
        if (ma >= mb)
        {
            dividend = (UInt128)ma << 63;
            exponent = ea - eb;
        }
        else
        {
            dividend = (UInt128)ma << 64;
            exponent = ea - eb - 1;
        }

        var (quotient, remainder) = UInt128.DivRem(dividend, mb);
        return RoundPack<F>(negative, exponent, (ulong)quotient | (remainder != 0 ? 1UL : 0UL), mxcsr, ref flags);
    }

    /// <summary>SQRTSS/SQRTSD.</summary>
    public static ulong Sqrt<F>(ulong a, uint mxcsr, ref uint flags) where F : IBinaryFormat
    {
        a = DenormalAsZero<F>(a, mxcsr);
        if (IsNaN<F>(a))
        {
            return PropagateNaN<F>(a, a, ref flags);
        }

        if (IsZero<F>(a))
        {
            return a;
        }

        if (IsNegative<F>(a))
        {
            flags |= Mxcsr.InvalidFlag;
            return DefaultNaN<F>();
        }

        if (IsInfinity<F>(a))
        {
            return a;
        }

        if (IsDenormal<F>(a))
        {
            flags |= Mxcsr.DenormalFlag;
        }

        ulong significand = Unpack<F>(a, out int exponent);
        // value = N * 2^e with an even e: N = significand * 2^64 (or 2^63) and sqrt(value) = sqrt(N) * 2^(e/2).
        UInt128 radicand;
        int half;
        if (((exponent - 127) & 1) == 0)
        {
            radicand = (UInt128)significand << 64;
            half = (exponent - 127) / 2;
        }
        else
        {
            radicand = (UInt128)significand << 63;
            half = (exponent - 126) / 2;
        }

        ulong root = IntegerSqrt(radicand, out bool exact);
        return RoundPack<F>(false, half + 63, root | (exact ? 0UL : 1UL), mxcsr, ref flags);
    }

    /// <summary>floor(sqrt(n)) for n in [2^126, 2^128), and whether it is exact.</summary>
    private static ulong IntegerSqrt(UInt128 n, out bool exact)
    {
        double estimate = Math.Sqrt((double)n);
        ulong root = estimate >= 18446744073709551615.0 ? ulong.MaxValue : (ulong)estimate;
        root = (ulong)(((UInt128)root + (n / root)) >> 1); // one Newton step: within one of the floor
        while ((UInt128)root * root > n)
        {
            root--;
        }

        while (root != ulong.MaxValue && (UInt128)(root + 1) * (root + 1) <= n)
        {
            root++;
        }

        exact = (UInt128)root * root == n;
        return root;
    }

    /// <summary>MINSS/MINSD: <paramref name="a"/> &lt; <paramref name="b"/> ? a : b; a NaN (IE) or two zeros give b.</summary>
    public static ulong Min<F>(ulong a, ulong b, uint mxcsr, ref uint flags) where F : IBinaryFormat
    {
        a = DenormalAsZero<F>(a, mxcsr);
        b = DenormalAsZero<F>(b, mxcsr);
        if (IsNaN<F>(a) || IsNaN<F>(b))
        {
            flags |= Mxcsr.InvalidFlag;
            return b;
        }

        if (IsDenormal<F>(a) || IsDenormal<F>(b))
        {
            flags |= Mxcsr.DenormalFlag;
        }

        return OrderKey<F>(a) < OrderKey<F>(b) ? a : b;
    }

    /// <summary>MAXSS/MAXSD: <paramref name="a"/> &gt; <paramref name="b"/> ? a : b; a NaN (IE) or two zeros give b.</summary>
    public static ulong Max<F>(ulong a, ulong b, uint mxcsr, ref uint flags) where F : IBinaryFormat
    {
        a = DenormalAsZero<F>(a, mxcsr);
        b = DenormalAsZero<F>(b, mxcsr);
        if (IsNaN<F>(a) || IsNaN<F>(b))
        {
            flags |= Mxcsr.InvalidFlag;
            return b;
        }

        if (IsDenormal<F>(a) || IsDenormal<F>(b))
        {
            flags |= Mxcsr.DenormalFlag;
        }

        return OrderKey<F>(a) > OrderKey<F>(b) ? a : b;
    }

    /// <summary>A signed integer ordered like the (non-NaN) value; +0 and -0 both map to 0.</summary>
    private static long OrderKey<F>(ulong x) where F : IBinaryFormat
    {
        long magnitude = (long)(x & ~SignBit<F>());
        return IsNegative<F>(x) ? -magnitude : magnitude;
    }

    // ---------------------------------------------------------------- comparisons

    /// <summary>
    /// Compares <paramref name="a"/> with <paramref name="b"/>: IE for an SNaN source, or for any NaN when
    /// <paramref name="signalOnQuietNaN"/> (COMISS, the LT/LE/NLT/NLE predicates); DE for a denormal source.
    /// </summary>
    public static FloatOrder Compare<F>(ulong a, ulong b, bool signalOnQuietNaN, uint mxcsr, ref uint flags) where F : IBinaryFormat
    {
        a = DenormalAsZero<F>(a, mxcsr);
        b = DenormalAsZero<F>(b, mxcsr);
        if (IsNaN<F>(a) || IsNaN<F>(b))
        {
            if (signalOnQuietNaN || IsSignalingNaN<F>(a) || IsSignalingNaN<F>(b))
            {
                flags |= Mxcsr.InvalidFlag;
            }

            return FloatOrder.Unordered;
        }

        if (IsDenormal<F>(a) || IsDenormal<F>(b))
        {
            flags |= Mxcsr.DenormalFlag;
        }

        long ka = OrderKey<F>(a);
        long kb = OrderKey<F>(b);
        return ka < kb ? FloatOrder.Less : ka == kb ? FloatOrder.Equal : FloatOrder.Greater;
    }

    /// <summary>CMPPS/CMPSS/CMPPD/CMPSD: predicate imm8[2:0] (EQ, LT, LE, UNORD, NEQ, NLT, NLE, ORD) of <paramref name="a"/> and <paramref name="b"/>.</summary>
    public static bool ComparePredicate<F>(ulong a, ulong b, int predicate, uint mxcsr, ref uint flags) where F : IBinaryFormat
    {
        predicate &= 7;
        bool signaling = predicate is 1 or 2 or 5 or 6;
        var order = Compare<F>(a, b, signaling, mxcsr, ref flags);
        return predicate switch
        {
            0 => order == FloatOrder.Equal,
            1 => order == FloatOrder.Less,
            2 => order is FloatOrder.Less or FloatOrder.Equal,
            3 => order == FloatOrder.Unordered,
            4 => order != FloatOrder.Equal,
            5 => order != FloatOrder.Less,
            6 => order is FloatOrder.Greater or FloatOrder.Unordered,
            _ => order != FloatOrder.Unordered,
        };
    }

    // ---------------------------------------------------------------- conversions

    /// <summary>CVTSI2SS/CVTSI2SD and the packed integer conversions: a signed integer to the format, rounded by MXCSR.RC (PE).</summary>
    public static ulong FromInteger<F>(long value, uint mxcsr, ref uint flags) where F : IBinaryFormat
    {
        if (value == 0)
        {
            return 0;
        }

        bool negative = value < 0;
        ulong magnitude = negative ? 0 - (ulong)value : (ulong)value;
        int leadingZeros = BitOperations.LeadingZeroCount(magnitude);
        return RoundPack<F>(negative, 63 - leadingZeros, magnitude << leadingZeros, mxcsr, ref flags);
    }

    /// <summary>
    /// CVT(T)SS2SI, CVT(T)SD2SI and the packed forms: to a signed integer of <paramref name="size"/> bytes (4 or
    /// 8), rounded by MXCSR.RC or truncated. NaN, infinity and out-of-range values give the integer indefinite
    /// (the sign bit alone) with IE; inexact results set PE; DAZ applies, and no DE is raised.
    /// </summary>
    public static long ToInteger<F>(ulong x, int size, bool truncate, uint mxcsr, ref uint flags) where F : IBinaryFormat
    {
        long indefinite = size == 4 ? int.MinValue : long.MinValue;
        x = DenormalAsZero<F>(x, mxcsr);
        if (IsNaN<F>(x) || IsInfinity<F>(x))
        {
            flags |= Mxcsr.InvalidFlag;
            return indefinite;
        }

        if (IsZero<F>(x))
        {
            return 0;
        }

        bool negative = IsNegative<F>(x);
        ulong significand = Unpack<F>(x, out int exponent);
        if (exponent >= 64)
        {
            flags |= Mxcsr.InvalidFlag;
            return indefinite;
        }

        ulong integer;
        ulong rest;
        if (exponent >= 0)
        {
            integer = significand >> (63 - exponent);
            rest = exponent == 63 ? 0 : significand << (exponent + 1);
        }
        else
        {
            integer = 0;
            rest = exponent == -1 ? significand : 1; // below one half: only its being non-zero matters
        }

        if (!truncate && RoundsUp(Mxcsr.Rounding(mxcsr), negative, integer, rest))
        {
            integer++;
        }

        ulong limit = size == 4
            ? (negative ? 0x8000_0000UL : 0x7FFF_FFFFUL)
            : (negative ? 0x8000_0000_0000_0000UL : 0x7FFF_FFFF_FFFF_FFFFUL);
        if (integer > limit)
        {
            flags |= Mxcsr.InvalidFlag;
            return indefinite;
        }

        if (rest != 0)
        {
            flags |= Mxcsr.PrecisionFlag;
        }

        return negative ? (long)(0 - integer) : (long)integer;
    }

    /// <summary>CVTSS2SD/CVTPS2PD: binary32 to binary64 (exact; IE for an SNaN, DE for a denormal).</summary>
    public static ulong SingleToDouble(uint x, uint mxcsr, ref uint flags)
    {
        ulong value = DenormalAsZero<Binary32>(x, mxcsr);
        ulong sign = (value & 0x8000_0000UL) << 32;
        if (IsNaN<Binary32>(value))
        {
            if (IsSignalingNaN<Binary32>(value))
            {
                flags |= Mxcsr.InvalidFlag;
            }

            return sign | ExponentField<Binary64>() | (((value | QuietBit<Binary32>()) & FractionMask<Binary32>()) << 29);
        }

        if (IsInfinity<Binary32>(value))
        {
            return sign | ExponentField<Binary64>();
        }

        if (IsZero<Binary32>(value))
        {
            return sign;
        }

        if (IsDenormal<Binary32>(value))
        {
            flags |= Mxcsr.DenormalFlag;
        }

        ulong significand = Unpack<Binary32>(value, out int exponent);
        return RoundPack<Binary64>(sign != 0, exponent, significand, mxcsr, ref flags);
    }

    /// <summary>CVTSD2SS/CVTPD2PS: binary64 to binary32, rounded (IE for an SNaN, DE, OE, UE, PE).</summary>
    public static uint DoubleToSingle(ulong x, uint mxcsr, ref uint flags)
    {
        x = DenormalAsZero<Binary64>(x, mxcsr);
        uint sign = (uint)(x >> 32) & 0x8000_0000;
        if (IsNaN<Binary64>(x))
        {
            if (IsSignalingNaN<Binary64>(x))
            {
                flags |= Mxcsr.InvalidFlag;
            }

            return sign | 0x7FC0_0000 | (uint)((x & FractionMask<Binary64>()) >> 29);
        }

        if (IsInfinity<Binary64>(x))
        {
            return sign | 0x7F80_0000;
        }

        if (IsZero<Binary64>(x))
        {
            return sign;
        }

        if (IsDenormal<Binary64>(x))
        {
            flags |= Mxcsr.DenormalFlag;
        }

        ulong significand = Unpack<Binary64>(x, out int exponent);
        return (uint)RoundPack<Binary32>(sign != 0, exponent, significand, mxcsr, ref flags);
    }
}
