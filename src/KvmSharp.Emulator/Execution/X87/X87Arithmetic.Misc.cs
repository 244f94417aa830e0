using System.Numerics;
using static KvmSharp.Emulator.Execution.X87.X87Bits;

namespace KvmSharp.Emulator.Execution.X87;

/// <summary>The outcome of an x87 comparison, in the order of FCOM's C3:C2:C0 meanings.</summary>
public enum X87Comparison
{
    /// <summary>a &gt; b (C3 C2 C0 = 000).</summary>
    Greater,

    /// <summary>a &lt; b (001).</summary>
    Less,

    /// <summary>a = b (100).</summary>
    Equal,

    /// <summary>Unordered: a NaN or an unsupported operand (111).</summary>
    Unordered,
}

/// <summary>Comparison, rounding to an integer, remainders, scaling and exponent extraction.</summary>
public static partial class X87Arithmetic
{
    /// <summary>
    /// Compares a with b. Unsupported operands and SNaNs raise #I; QNaNs too unless <paramref name="quiet"/>
    /// (FUCOM*). A denormal operand raises #D.
    /// </summary>
    public static X87Comparison Compare(Float80 a, Float80 b, bool quiet, ref X87Context ctx, bool denormalSource = false)
    {
        if (a.IsUnsupported || b.IsUnsupported)
        {
            ctx.Raise(IE);
            return X87Comparison.Unordered;
        }

        if (a.IsNaN || b.IsNaN)
        {
            if (!quiet || a.IsSignalingNaN || b.IsSignalingNaN)
            {
                ctx.Raise(IE);
            }

            return X87Comparison.Unordered;
        }

        // An unmasked #D still lets the comparison complete (the instruction only skips its pops).
        DenormalOperands(a, b, ref ctx, denormalSource);
        bool aZero = a.IsZero;
        bool bZero = b.IsZero;
        if (aZero && bZero)
        {
            return X87Comparison.Equal;
        }

        if (aZero || bZero || a.Sign != b.Sign)
        {
            // Different signs (or one zero): the sign of the non-zero one decides.
            bool aNegative = aZero ? !b.Sign : a.Sign;
            return aNegative ? X87Comparison.Less : X87Comparison.Greater;
        }

        int magnitude = CompareMagnitude(a, b);
        if (magnitude == 0)
        {
            return X87Comparison.Equal;
        }

        return (magnitude < 0) ^ a.Sign ? X87Comparison.Less : X87Comparison.Greater;
    }

    /// <summary>Compares |a| with |b| for finite or infinite, non-zero supported values.</summary>
    private static int CompareMagnitude(Float80 a, Float80 b)
    {
        ulong am = Normalize(a, out int ae);
        ulong bm = Normalize(b, out int be);
        return ae != be ? ae.CompareTo(be) : am.CompareTo(bm);
    }

    /// <summary>FRNDINT: rounds to an integral value under the rounding control (precision control does not apply).</summary>
    public static Float80 RoundToIntegral(Float80 a, ref X87Context ctx)
    {
        ctx.RoundedUp = false;
        if (ScreenOperand(a, ref ctx, out var nan))
        {
            return nan;
        }

        if (a.IsZero || a.IsInfinity)
        {
            return a;
        }

        if (a.IsDenormal && ctx.Raise(DE))
        {
            return default;
        }

        ulong sig = Normalize(a, out int exponent);
        int unbiased = exponent - Float80.Bias;
        if (unbiased >= 63)
        {
            return a;
        }

        var integer = RoundToInteger(a.Sign, sig, unbiased, ref ctx);
        if (integer == UInt128.Zero)
        {
            return Float80.Zero(a.Sign);
        }

        return FromMagnitude(a.Sign, (ulong)integer);
    }

    /// <summary>
    /// Rounds sig × 2^(unbiased − 63) (unbiased ≤ 63) to an integer under the rounding control; raises #P when
    /// inexact and sets C1 when the magnitude was rounded up. The magnitude is returned (at most 2^64).
    /// </summary>
    private static UInt128 RoundToInteger(bool negative, ulong sig, int unbiased, ref X87Context ctx)
    {
        var fixedPoint = ShiftRightJam((UInt128)sig << 64, 63 - unbiased);
        var integer = fixedPoint >> 64;
        ulong fraction = (ulong)fixedPoint;
        const ulong Half = 1UL << 63;
        bool increment = ctx.RoundingControl switch
        {
            RoundNearest => fraction > Half || (fraction == Half && (integer & UInt128.One) != UInt128.Zero),
            RoundUp => fraction != 0 && !negative,
            RoundDown => fraction != 0 && negative,
            _ => false,
        };
        if (fraction != 0)
        {
            ctx.Flags |= PE;
        }

        ctx.RoundedUp = increment;
        return increment ? integer + 1 : integer;
    }

    /// <summary>An exact value from a sign and a 64-bit magnitude (not zero).</summary>
    internal static Float80 FromMagnitude(bool negative, ulong magnitude)
    {
        int shift = BitOperations.LeadingZeroCount(magnitude);
        return Float80.Pack(negative, Float80.Bias + 63 - shift, magnitude << shift);
    }

    /// <summary>
    /// FPREM (<paramref name="ieee"/> false: truncating quotient) and FPREM1 (quotient rounded to nearest) of a by
    /// b. An exponent difference of 64 or more gives a partial remainder: the difference is reduced by
    /// N = 32 + (d mod 32), as this CPU's hardware does, and C2 is set. <paramref name="quotient"/> holds the low
    /// three quotient bits of a complete reduction (C0 = Q2, C3 = Q1, C1 = Q0), or −1 when no reduction took
    /// place (a NaN or invalid result).
    /// </summary>
    public static Float80 Remainder(Float80 a, Float80 b, bool ieee, ref X87Context ctx, out bool partial, out int quotient)
    {
        ctx.RoundedUp = false;
        partial = false;
        quotient = -1;
        if (ScreenOperands(a, b, ref ctx, out var nan))
        {
            return nan;
        }

        if (a.IsInfinity || b.IsZero)
        {
            ctx.Raise(IE);
            return Float80.Indefinite;
        }

        if (DenormalOperands(a, b, ref ctx))
        {
            return default;
        }

        quotient = 0;
        if (a.IsZero)
        {
            return a;
        }

        ulong am = Normalize(a, out int ae);
        if (b.IsInfinity)
        {
            // The quotient is 0 and the remainder a, re-encoded like every remainder.
            return RoundToExtended(a.Sign, ae, (UInt128)am << 64, 64, ref ctx);
        }

        ulong bm = Normalize(b, out int be);
        int d = ae - be;
        bool negative = a.Sign;
        if (d < 0)
        {
            if (!ieee || d < -1 || am <= bm)
            {
                // |a| < |b| / 2 (or FPREM): the quotient is 0 and the remainder a itself, re-encoded (a pseudo-denormal
                // becomes normal; a denormal with #U unmasked underflows like any tiny result).
                return RoundToExtended(negative, ae, (UInt128)am << 64, 64, ref ctx);
            }

            // FPREM1 with |b| / 2 < |a| < |b|: the quotient rounds to 1.
            quotient = 1;
            var difference = ((UInt128)bm << 64) - ((UInt128)am << 63);
            return RoundToExtended(!negative, be, difference, 64, ref ctx);
        }

        if (d >= 64)
        {
            int n = 32 + (d & 31);
            var scaled = (UInt128)am << n;
            var qq = scaled / bm;
            var partialRest = scaled - (qq * bm);
            partial = true;
            if (partialRest == UInt128.Zero)
            {
                return Float80.Zero(negative);
            }

            return RoundToExtended(negative, ae - n, partialRest << 64, 64, ref ctx);
        }

        var numerator = (UInt128)am << d;
        var q = numerator / bm;
        var rest = numerator - (q * bm);
        if (ieee)
        {
            var twice = rest << 1;
            if (twice > bm || (twice == bm && (q & UInt128.One) != UInt128.Zero))
            {
                q++;
                rest = bm - rest;
                negative = !negative;
            }
        }

        quotient = (int)(q & 7);
        if (rest == UInt128.Zero)
        {
            return Float80.Zero(a.Sign);
        }

        // rest × 2^(be − 16383 − 63): exact, though it may need denormalizing.
        return RoundToExtended(negative, be, rest << 64, 64, ref ctx);
    }

    /// <summary>FSCALE: a × 2^trunc(b), rounded to 64 bits; ±0, ±∞ and NaN operands as the SDM's FSCALE table says.</summary>
    public static Float80 Scale(Float80 a, Float80 b, ref X87Context ctx)
    {
        ctx.RoundedUp = false;
        if (ScreenOperands(a, b, ref ctx, out var nan))
        {
            return nan;
        }

        bool aInf = a.IsInfinity;
        bool aZero = a.IsZero;
        if (b.IsInfinity)
        {
            if ((aInf && b.Sign) || (aZero && !b.Sign))
            {
                ctx.Raise(IE);
                return Float80.Indefinite;
            }

            if (DenormalOperands(a, b, ref ctx))
            {
                return default;
            }

            if (aInf || aZero)
            {
                return a;
            }

            return b.Sign ? Float80.Zero(a.Sign) : Float80.Infinity(a.Sign);
        }

        if (DenormalOperands(a, b, ref ctx))
        {
            return default;
        }

        if (aInf || aZero)
        {
            return a;
        }

        if (b.IsZero)
        {
            // Scaling by ±0 returns a exactly, without an underflow even for a denormal (a pseudo-denormal gets
            // its canonical exponent 1), as this CPU's hardware does.
            return a.Class == Float80Class.PseudoDenormal ? Float80.Pack(a.Sign, 1, a.Significand) : a;
        }

        int n = TruncateScale(b);
        ulong am = Normalize(a, out int ae);
        return RoundToExtended(a.Sign, ae + n, (UInt128)am << 64, 64, ref ctx);
    }

    /// <summary>trunc(b) for FSCALE, clamped to ±2^20 (far beyond any exponent range, so the result is the same).</summary>
    private static int TruncateScale(Float80 b)
    {
        if (b.IsZero || b.IsDenormal)
        {
            return 0;
        }

        ulong bm = Normalize(b, out int be);
        int unbiased = be - Float80.Bias;
        if (unbiased < 0)
        {
            return 0;
        }

        int magnitude = unbiased >= 20 ? 1 << 20 : (int)(bm >> (63 - unbiased));
        return b.Sign ? -magnitude : magnitude;
    }

    /// <summary>
    /// FXTRACT: splits a into its unbiased exponent (as a value) and its significand scaled to [1, 2). A zero raises
    /// #Z and gives −∞ and the zero; ∞ gives +∞ and the infinity; a NaN goes to both.
    /// </summary>
    public static void Extract(Float80 a, ref X87Context ctx, out Float80 exponent, out Float80 significand)
    {
        ctx.RoundedUp = false;
        if (ScreenOperand(a, ref ctx, out var nan))
        {
            exponent = nan;
            significand = nan;
            return;
        }

        if (a.IsZero)
        {
            ctx.Raise(ZE);
            exponent = Float80.Infinity(true);
            significand = a;
            return;
        }

        if (a.IsInfinity)
        {
            exponent = Float80.Infinity(false);
            significand = a;
            return;
        }

        if (a.IsDenormal && ctx.Raise(DE))
        {
            exponent = default;
            significand = default;
            return;
        }

        ulong sig = Normalize(a, out int e);
        int unbiased = e - Float80.Bias;
        exponent = unbiased == 0 ? Float80.PositiveZero : FromMagnitude(unbiased < 0, (ulong)Math.Abs(unbiased));
        significand = Float80.Pack(a.Sign, Float80.Bias, sig);
    }
}
