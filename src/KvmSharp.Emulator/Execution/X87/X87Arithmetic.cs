using System.Numerics;
using static KvmSharp.Emulator.Execution.X87.X87Bits;

namespace KvmSharp.Emulator.Execution.X87;

/// <summary>
/// Exact x87 arithmetic on 80-bit values: every result is computed exactly (or with a sticky bit) in 128-bit
/// integers and rounded once, under the precision and rounding control of the <see cref="X87Context"/>, with the
/// x87's exception rules: invalid operands (SNaN, unsupported encodings), NaN propagation (the larger significand
/// wins), denormal operands, divide by zero, and overflow/underflow/precision with their masked responses and the
/// 2^24576 bias adjustment when OE/UE are unmasked (Intel SDM Vol. 1 4.9, 8.5).
/// </summary>
/// <remarks>
/// Callers check <see cref="X87Context.Aborted"/> first: when an unmasked #I/#D/#Z was raised the returned value
/// is meaningless and the instruction must leave its destination and the stack alone.
/// </remarks>
public static partial class X87Arithmetic
{
    /// <summary>The exponent bias adjustment for unmasked overflow/underflow on a register destination.</summary>
    public const int BiasAdjust = 24576;

    /// <summary>The smallest and largest normal biased exponents of the extended format.</summary>
    private const int ExtendedMinExponent = 1;
    private const int ExtendedMaxExponent = 0x7FFE;

    // ---------------------------------------------------------------- rounding

    /// <summary>
    /// Rounds <paramref name="significand"/> × 2^(<paramref name="exponent"/> − 16383 − 127) (any significand; a
    /// sticky bit may sit in bit 0) to <paramref name="precision"/> bits in a format whose normal biased exponents
    /// (in extended-biased terms) run from <paramref name="minExponent"/> to <paramref name="maxExponent"/>.
    /// Tininess is detected after rounding (with unbounded exponent, at the target precision); a masked underflow
    /// denormalizes and rounds at the same bit positions. The result is returned as an extended-biased exponent
    /// (<paramref name="minExponent"/> − 1 for denormals and zero, <paramref name="maxExponent"/> + 1 for ∞) and a
    /// 64-bit significand with the integer bit at 63. False when an unmasked overflow or underflow suppresses a
    /// store to memory (<paramref name="toRegister"/> false): only the flag is raised then.
    /// </summary>
    internal static bool RoundCore(bool negative, int exponent, UInt128 significand, int precision, int minExponent, int maxExponent,
        bool toRegister, ref X87Context ctx, out int resultExponent, out ulong resultSignificand)
    {
        ctx.RoundedUp = false;
        if (significand == UInt128.Zero)
        {
            resultExponent = minExponent - 1;
            resultSignificand = 0;
            return true;
        }

        int shift = (int)UInt128.LeadingZeroCount(significand);
        significand <<= shift;
        exponent -= shift;
        int rc = ctx.RoundingControl;
        var rounded = RoundBits(significand, precision, rc, negative, out bool inexact, out bool up, out bool carry);
        int e = carry ? exponent + 1 : exponent;
        if (e > maxExponent)
        {
            if (!ctx.IsMasked(OE))
            {
                if (!toRegister)
                {
                    ctx.Flags |= OE;
                    resultExponent = 0;
                    resultSignificand = 0;
                    return false;
                }

                ctx.Flags |= OE | (inexact ? PE : 0);
                ctx.RoundedUp = up;
                e -= BiasAdjust;
                if (e > maxExponent)
                {
                    // Massive overflow (FSCALE): even the biased result does not fit; ∞, inexact, rounded up.
                    ctx.Flags |= PE;
                    ctx.RoundedUp = true;
                    resultExponent = maxExponent + 1;
                    resultSignificand = Float80.IntegerBit;
                    return true;
                }

                resultExponent = e;
                resultSignificand = (ulong)(rounded >> 64);
                return true;
            }

            ctx.Flags |= OE | PE;
            bool toInfinity = rc == RoundNearest || (rc == RoundUp && !negative) || (rc == RoundDown && negative);
            ctx.RoundedUp = toInfinity;
            if (toInfinity)
            {
                resultExponent = maxExponent + 1;
                resultSignificand = Float80.IntegerBit;
            }
            else
            {
                resultExponent = maxExponent;
                resultSignificand = ulong.MaxValue << (64 - precision);
            }

            return true;
        }

        if (e < minExponent)
        {
            if (!ctx.IsMasked(UE))
            {
                if (!toRegister)
                {
                    ctx.Flags |= UE;
                    resultExponent = 0;
                    resultSignificand = 0;
                    return false;
                }

                ctx.Flags |= UE | (inexact ? PE : 0);
                ctx.RoundedUp = up;
                e += BiasAdjust;
                if (e < minExponent)
                {
                    // Massive underflow (FSCALE): even the biased result is tiny; a signed zero, inexact.
                    ctx.Flags |= PE;
                    ctx.RoundedUp = false;
                    resultExponent = minExponent - 1;
                    resultSignificand = 0;
                    return true;
                }

                resultExponent = e;
                resultSignificand = (ulong)(rounded >> 64);
                return true;
            }

            var denormal = ShiftRightJam(significand, minExponent - exponent);
            rounded = RoundBits(denormal, precision, rc, negative, out inexact, out up, out _);
            if (inexact)
            {
                ctx.Flags |= UE | PE;
            }

            ctx.RoundedUp = up;
            resultSignificand = (ulong)(rounded >> 64);
            resultExponent = (resultSignificand & Float80.IntegerBit) != 0 ? minExponent : minExponent - 1;
            return true;
        }

        if (inexact)
        {
            ctx.Flags |= PE;
        }

        ctx.RoundedUp = up;
        resultExponent = e;
        resultSignificand = (ulong)(rounded >> 64);
        return true;
    }

    /// <summary>Rounds a value to the extended format at <paramref name="precision"/> bits, for a register destination.</summary>
    internal static Float80 RoundToExtended(bool negative, int exponent, UInt128 significand, int precision, ref X87Context ctx)
    {
        RoundCore(negative, exponent, significand, precision, ExtendedMinExponent, ExtendedMaxExponent, true, ref ctx, out int e, out ulong s);
        return Float80.Pack(negative, e, s);
    }

    /// <summary>Keeps the top <paramref name="precision"/> bits of <paramref name="value"/>, rounded; carry means the result wrapped to 2^127 (exponent + 1).</summary>
    private static UInt128 RoundBits(UInt128 value, int precision, int rc, bool negative, out bool inexact, out bool up, out bool carry)
    {
        var lsb = UInt128.One << (128 - precision);
        var rest = value & (lsb - 1);
        var kept = value & ~(lsb - 1);
        inexact = rest != UInt128.Zero;
        var half = lsb >> 1;
        bool increment = rc switch
        {
            RoundNearest => rest > half || (rest == half && (kept & lsb) != UInt128.Zero),
            RoundUp => inexact && !negative,
            RoundDown => inexact && negative,
            _ => false,
        };
        up = increment;
        carry = false;
        if (increment)
        {
            kept += lsb;
            if (kept == UInt128.Zero)
            {
                kept = UInt128.One << 127;
                carry = true;
            }
        }

        return kept;
    }

    /// <summary>Shifts right, ORing every bit shifted out into bit 0.</summary>
    internal static UInt128 ShiftRightJam(UInt128 value, int count)
    {
        if (count <= 0)
        {
            return value;
        }

        if (count >= 128)
        {
            return value != UInt128.Zero ? UInt128.One : UInt128.Zero;
        }

        var lost = value & ((UInt128.One << count) - 1);
        return (value >> count) | (lost != UInt128.Zero ? UInt128.One : UInt128.Zero);
    }

    /// <summary>
    /// Splits a finite non-zero value into sign, exponent and a significand with bit 63 set: value =
    /// significand × 2^(exponent − 16383 − 63). Denormals get an exponent below 1; pseudo-denormals exponent 1.
    /// </summary>
    internal static ulong Normalize(Float80 value, out int exponent)
    {
        ulong significand = value.Significand;
        exponent = value.Exponent;
        if (exponent == 0)
        {
            int shift = BitOperations.LeadingZeroCount(significand);
            significand <<= shift;
            exponent = 1 - shift;
        }

        return significand;
    }

    // ---------------------------------------------------------------- operand screening

    /// <summary>
    /// Handles unsupported and NaN operands of a two-operand operation: an unsupported encoding gives the real
    /// indefinite, NaNs propagate (SNaNs raise #I). True when the result is decided.
    /// </summary>
    internal static bool ScreenOperands(Float80 a, Float80 b, ref X87Context ctx, out Float80 result)
    {
        if (a.IsUnsupported || b.IsUnsupported)
        {
            ctx.Raise(IE);
            result = Float80.Indefinite;
            return true;
        }

        bool aNaN = a.IsNaN;
        bool bNaN = b.IsNaN;
        if (!aNaN && !bNaN)
        {
            result = default;
            return false;
        }

        if (a.IsSignalingNaN || b.IsSignalingNaN)
        {
            ctx.Raise(IE);
        }

        result = PropagateNaN(a, b);
        return true;
    }

    /// <summary>Handles an unsupported or NaN single operand. True when the result is decided.</summary>
    internal static bool ScreenOperand(Float80 a, ref X87Context ctx, out Float80 result)
    {
        if (a.IsUnsupported)
        {
            ctx.Raise(IE);
            result = Float80.Indefinite;
            return true;
        }

        if (a.IsNaN)
        {
            if (a.IsSignalingNaN)
            {
                ctx.Raise(IE);
            }

            result = a.Quiet();
            return true;
        }

        result = default;
        return false;
    }

    /// <summary>
    /// The NaN two operands produce (SDM Vol. 1 Table 4-7, x87 column): a QNaN beats an SNaN; between two NaNs of
    /// the same kind the larger significand wins, and on a tie the one with the smaller sign+exponent (positive).
    /// The result is quiet.
    /// </summary>
    internal static Float80 PropagateNaN(Float80 a, Float80 b)
    {
        bool aNaN = a.IsNaN;
        bool bNaN = b.IsNaN;
        if (!bNaN)
        {
            return a.Quiet();
        }

        if (!aNaN)
        {
            return b.Quiet();
        }

        bool aSignaling = a.IsSignalingNaN;
        bool bSignaling = b.IsSignalingNaN;
        if (aSignaling != bSignaling)
        {
            return aSignaling ? b.Quiet() : a.Quiet();
        }

        ulong aq = a.Significand | Float80.QuietBit;
        ulong bq = b.Significand | Float80.QuietBit;
        if (aq != bq)
        {
            return aq > bq ? a.Quiet() : b.Quiet();
        }

        return a.SignExponent < b.SignExponent ? a.Quiet() : b.Quiet();
    }

    /// <summary>
    /// Raises #D when either operand is a denormal, or <paramref name="denormalSource"/> says the memory operand
    /// was one in its own format (m32fp/m64fp denormals are normal once widened); true when it is unmasked (stop).
    /// </summary>
    private static bool DenormalOperands(Float80 a, Float80 b, ref X87Context ctx, bool denormalSource = false) =>
        (a.IsDenormal || b.IsDenormal || denormalSource) && ctx.Raise(DE);

    // ---------------------------------------------------------------- the four operations

    /// <summary>a + b (or a − b), rounded to <paramref name="precision"/> bits.</summary>
    public static Float80 Add(Float80 a, Float80 b, bool subtract, int precision, ref X87Context ctx, bool denormalSource = false)
    {
        ctx.RoundedUp = false;
        if (ScreenOperands(a, b, ref ctx, out var nan))
        {
            return nan;
        }

        bool aSign = a.Sign;
        bool bSign = b.Sign ^ subtract;
        bool aInf = a.IsInfinity;
        bool bInf = b.IsInfinity;
        if (aInf && bInf && aSign != bSign)
        {
            ctx.Raise(IE);
            return Float80.Indefinite;
        }

        if (DenormalOperands(a, b, ref ctx, denormalSource))
        {
            return default;
        }

        if (aInf || bInf)
        {
            return Float80.Infinity(aInf ? aSign : bSign);
        }

        bool aZero = a.IsZero;
        bool bZero = b.IsZero;
        if (aZero && bZero)
        {
            return Float80.Zero(aSign == bSign ? aSign : ctx.RoundingControl == RoundDown);
        }

        if (aZero || bZero)
        {
            // x ± 0 is x, rounded to the precision control.
            var x = aZero ? b : a;
            bool sign = aZero ? bSign : aSign;
            ulong sig = Normalize(x, out int exp);
            return RoundToExtended(sign, exp, (UInt128)sig << 64, precision, ref ctx);
        }

        ulong am = Normalize(a, out int ae);
        ulong bm = Normalize(b, out int be);
        var av = (UInt128)am << 63;
        var bv = (UInt128)bm << 63;
        int exponent;
        if (ae >= be)
        {
            bv = ShiftRightJam(bv, ae - be);
            exponent = ae;
        }
        else
        {
            av = ShiftRightJam(av, be - ae);
            exponent = be;
        }

        // value = sum × 2^(exponent − 16383 − 126): RoundCore's exponent is one more.
        if (aSign == bSign)
        {
            return RoundToExtended(aSign, exponent + 1, av + bv, precision, ref ctx);
        }

        if (av == bv)
        {
            return Float80.Zero(ctx.RoundingControl == RoundDown);
        }

        return av > bv
            ? RoundToExtended(aSign, exponent + 1, av - bv, precision, ref ctx)
            : RoundToExtended(bSign, exponent + 1, bv - av, precision, ref ctx);
    }

    /// <summary>a × b, rounded to <paramref name="precision"/> bits.</summary>
    public static Float80 Multiply(Float80 a, Float80 b, int precision, ref X87Context ctx, bool denormalSource = false)
    {
        ctx.RoundedUp = false;
        if (ScreenOperands(a, b, ref ctx, out var nan))
        {
            return nan;
        }

        bool sign = a.Sign ^ b.Sign;
        bool aInf = a.IsInfinity;
        bool bInf = b.IsInfinity;
        bool aZero = a.IsZero;
        bool bZero = b.IsZero;
        if ((aInf && bZero) || (bInf && aZero))
        {
            ctx.Raise(IE);
            return Float80.Indefinite;
        }

        if (DenormalOperands(a, b, ref ctx, denormalSource))
        {
            return default;
        }

        if (aInf || bInf)
        {
            return Float80.Infinity(sign);
        }

        if (aZero || bZero)
        {
            return Float80.Zero(sign);
        }

        ulong am = Normalize(a, out int ae);
        ulong bm = Normalize(b, out int be);
        var product = (UInt128)am * bm;
        return RoundToExtended(sign, ae + be - Float80.Bias + 1, product, precision, ref ctx);
    }

    /// <summary>a ÷ b, rounded to <paramref name="precision"/> bits.</summary>
    public static Float80 Divide(Float80 a, Float80 b, int precision, ref X87Context ctx, bool denormalSource = false)
    {
        ctx.RoundedUp = false;
        if (ScreenOperands(a, b, ref ctx, out var nan))
        {
            return nan;
        }

        bool sign = a.Sign ^ b.Sign;
        bool aInf = a.IsInfinity;
        bool bInf = b.IsInfinity;
        bool aZero = a.IsZero;
        bool bZero = b.IsZero;
        if ((aInf && bInf) || (aZero && bZero))
        {
            ctx.Raise(IE);
            return Float80.Indefinite;
        }

        if (bZero && !aInf)
        {
            // Divide by zero outranks the denormal-operand exception: a denormal dividend raises #Z alone.
            ctx.Raise(ZE);
            return Float80.Infinity(sign);
        }

        if (DenormalOperands(a, b, ref ctx, denormalSource))
        {
            return default;
        }

        if (aInf || bZero)
        {
            return Float80.Infinity(sign);
        }

        if (bInf || aZero)
        {
            return Float80.Zero(sign);
        }

        ulong am = Normalize(a, out int ae);
        ulong bm = Normalize(b, out int be);
        var quotient = DivideSignificands(am, bm);
        return RoundToExtended(sign, ae - be + Float80.Bias, quotient, precision, ref ctx);
    }

    /// <summary>⌊a·2^127 / b⌋ with a sticky bit, for normalized 64-bit significands (the result has bit 126 or 127 set).</summary>
    private static UInt128 DivideSignificands(ulong a, ulong b)
    {
        var numerator = (UInt128)a << 63;
        var high = numerator / b;
        var remainder = numerator - (high * b);
        var low = (remainder << 64) / b;
        var rest = (remainder << 64) - (low * b);
        return (high << 64) | low | (rest != UInt128.Zero ? UInt128.One : UInt128.Zero);
    }

    /// <summary>√a, rounded to <paramref name="precision"/> bits.</summary>
    public static Float80 SquareRoot(Float80 a, int precision, ref X87Context ctx)
    {
        ctx.RoundedUp = false;
        if (ScreenOperand(a, ref ctx, out var nan))
        {
            return nan;
        }

        if (a.IsZero)
        {
            return a;
        }

        if (a.Sign)
        {
            ctx.Raise(IE);
            return Float80.Indefinite;
        }

        if (a.IsDenormal && ctx.Raise(DE))
        {
            return default;
        }

        if (a.IsInfinity)
        {
            return a;
        }

        ulong am = Normalize(a, out int ae);
        int unbiased = ae - Float80.Bias - 63;
        int shift = (unbiased & 1) == 0 ? 64 : 63;
        var radicand = (UInt128)am << shift;
        ulong root = IntegerSquareRoot(radicand);
        var remainder = radicand - ((UInt128)root * root);
        var significand = ((UInt128)root << 64)
            | (remainder > root ? UInt128.One << 63 : UInt128.Zero)
            | (remainder != UInt128.Zero ? UInt128.One : UInt128.Zero);
        int half = (unbiased - shift) / 2;
        return RoundToExtended(false, half + Float80.Bias + 63, significand, precision, ref ctx);
    }

    /// <summary>⌊√n⌋ for n &lt; 2^128.</summary>
    internal static ulong IntegerSquareRoot(UInt128 n)
    {
        if (n == UInt128.Zero)
        {
            return 0;
        }

        double estimate = Math.Sqrt((double)n);
        UInt128 r = estimate >= 18446744073709551615.0 ? ulong.MaxValue : (ulong)estimate;
        if (r == UInt128.Zero)
        {
            r = UInt128.One;
        }

        r = (r + (n / r)) >> 1; // one Newton step from a 52-bit estimate is exact to well beyond 64 bits
        if (r > ulong.MaxValue)
        {
            r = ulong.MaxValue;
        }

        while (r * r > n)
        {
            r--;
        }

        while (r < ulong.MaxValue && (r + 1) * (r + 1) <= n)
        {
            r++;
        }

        return (ulong)r;
    }
}
