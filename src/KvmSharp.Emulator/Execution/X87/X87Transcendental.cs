using static KvmSharp.Emulator.Execution.X87.X87Bits;

namespace KvmSharp.Emulator.Execution.X87;

/// <summary>
/// FSIN, FCOS, FSINCOS, FPTAN, FPATAN, F2XM1, FYL2X and FYL2XP1. Special operands (zeros, infinities, NaNs, the
/// domain errors and the out-of-range arguments of the trigonometric instructions) follow the SDM's tables exactly;
/// finite results are evaluated with 128-bit significands (<see cref="WideFloat"/>) and rounded once to 64 bits under
/// RC. They are not bit-exact with the hardware: its approximations are within about one ulp of the true value, so
/// results may differ from it by one ulp (and C1 with them).
/// </summary>
/// <remarks>
/// The trigonometric instructions reduce their argument as the hardware does, by multiples of π/2 taken from π
/// rounded to 66 bits (SDM Vol. 1 8.3.10): x − k·π₆₆/2 is computed exactly, so results for large arguments match the
/// hardware's rather than the true sine.
/// </remarks>
public static class X87Transcendental
{
    /// <summary>π rounded to 66 bits, times 2^64 (π₆₆/2 is this times 2^−65).</summary>
    private static readonly UInt128 Pi66 = new(0x3, 0x243F_6A88_85A3_08D3);

    /// <summary>FSIN. |x| ≥ 2^63 is out of range: nothing is computed and C2 is set.</summary>
    public static Float80 Sine(Float80 x, ref X87Context ctx, out bool outOfRange)
    {
        SineCosine(x, ref ctx, out var sine, out _, out outOfRange, wantSine: true, wantCosine: false);
        return sine;
    }

    /// <summary>FCOS (see <see cref="Sine"/>).</summary>
    public static Float80 Cosine(Float80 x, ref X87Context ctx, out bool outOfRange)
    {
        SineCosine(x, ref ctx, out _, out var cosine, out outOfRange, wantSine: false, wantCosine: true);
        return cosine;
    }

    /// <summary>FSINCOS: both results (C1 reflects the rounding of the cosine, the last one written).</summary>
    public static void SineCosine(Float80 x, ref X87Context ctx, out Float80 sine, out Float80 cosine, out bool outOfRange) =>
        SineCosine(x, ref ctx, out sine, out cosine, out outOfRange, wantSine: true, wantCosine: true);

    private static void SineCosine(Float80 x, ref X87Context ctx, out Float80 sine, out Float80 cosine, out bool outOfRange,
        bool wantSine, bool wantCosine)
    {
        ctx.RoundedUp = false;
        sine = default;
        cosine = default;
        if (!Prepare(x, ref ctx, out outOfRange, out var special))
        {
            sine = special;
            cosine = special;
            return;
        }

        if (x.IsZero)
        {
            sine = x; // sin(±0) = ±0 and cos(±0) = 1, exactly
            cosine = Float80.One;
            return;
        }

        int quadrant = Reduce(x, out var r);
        bool odd = (quadrant & 1) != 0;
        var s = (wantSine && !odd) || (wantCosine && odd) ? SinSeries(r) : WideFloat.Zero;
        var c = (wantSine && odd) || (wantCosine && !odd) ? CosSeries(r) : WideFloat.Zero;
        var (sinValue, cosValue) = (quadrant & 3) switch
        {
            0 => (s, c),
            1 => (c, s.Negate()),
            2 => (s.Negate(), c.Negate()),
            _ => (c.Negate(), s),
        };
        if (x.Sign)
        {
            sinValue = sinValue.Negate();
        }

        if (wantSine)
        {
            sine = sinValue.ToFloat80(ref ctx);
        }

        if (wantCosine)
        {
            cosine = cosValue.ToFloat80(ref ctx);
        }
    }

    /// <summary>FPTAN's ST(0) result (the 1.0 it pushes is the caller's).</summary>
    public static Float80 Tangent(Float80 x, ref X87Context ctx, out bool outOfRange)
    {
        ctx.RoundedUp = false;
        if (!Prepare(x, ref ctx, out outOfRange, out var special))
        {
            return special;
        }

        if (x.IsZero)
        {
            return x;
        }

        int quadrant = Reduce(x, out var r);
        var s = SinSeries(r);
        var c = CosSeries(r);
        var tangent = (quadrant & 1) == 0 ? s / c : (c / s).Negate();
        if (x.Sign)
        {
            tangent = tangent.Negate();
        }

        return tangent.ToFloat80(ref ctx);
    }

    /// <summary>
    /// Screens a trigonometric argument: NaN/unsupported/∞ (#I), denormal (#D), |x| ≥ 2^63 (out of range). False when
    /// the result is decided (<paramref name="special"/>), or nothing is to be written.
    /// </summary>
    private static bool Prepare(Float80 x, ref X87Context ctx, out bool outOfRange, out Float80 special)
    {
        outOfRange = false;
        if (X87Arithmetic.ScreenOperand(x, ref ctx, out special))
        {
            return false;
        }

        if (x.IsInfinity)
        {
            ctx.Raise(IE);
            special = Float80.Indefinite;
            return false;
        }

        if (x.IsDenormal && ctx.Raise(DE))
        {
            special = default;
            return false;
        }

        if (x.Exponent >= Float80.Bias + 63)
        {
            outOfRange = true;
            special = x;
            return false;
        }

        return true;
    }

    /// <summary>
    /// |x| = k·π₆₆/2 + r with |r| ≤ π₆₆/4, r exact; returns k (mod 4 matters). |x| &lt; 2^−1 needs no reduction.
    /// </summary>
    private static int Reduce(Float80 x, out WideFloat r)
    {
        ulong significand = X87Arithmetic.Normalize(x, out int exponent);
        int unbiased = exponent - Float80.Bias;
        if (unbiased < -1)
        {
            r = WideFloat.FromFloat80(x).Abs();
            return 0;
        }

        // |x| · 2^65 = significand · 2^(unbiased − 63 + 65), an integer below 2^128 since |x| < 2^63.
        int shift = unbiased + 2;
        var scaled = (UInt128)significand << shift;
        var k = scaled / Pi66;
        var magnitude = scaled - (k * Pi66);
        bool negative = false;
        if (magnitude > Pi66 >> 1)
        {
            k++;
            magnitude = Pi66 - magnitude;
            negative = true;
        }

        r = new WideFloat(negative, 127 - 65, magnitude);
        return (int)(k & 3);
    }

    /// <summary>sin r for |r| ≤ π/4 (Taylor series to 2^−128 relative).</summary>
    private static WideFloat SinSeries(WideFloat r)
    {
        var square = r * r;
        var term = r;
        var sum = r;
        for (ulong n = 2; n < 200; n += 2)
        {
            term = (term * square).DivideBy(n * (n + 1)).Negate();
            if (term.IsZero || term.Exponent < sum.Exponent - 130)
            {
                break;
            }

            sum += term;
        }

        return sum;
    }

    /// <summary>cos r for |r| ≤ π/4.</summary>
    private static WideFloat CosSeries(WideFloat r)
    {
        var square = r * r;
        var term = WideFloat.One;
        var sum = WideFloat.One;
        for (ulong n = 1; n < 200; n += 2)
        {
            term = (term * square).DivideBy(n * (n + 1)).Negate();
            if (term.IsZero || term.Exponent < sum.Exponent - 130)
            {
                break;
            }

            sum += term;
        }

        return sum;
    }

    /// <summary>atan t for 0 ≤ t ≤ 1: four argument halvings (t / (1 + √(1 + t²))) then the Taylor series.</summary>
    private static WideFloat ArcTanSeries(WideFloat t)
    {
        const int Halvings = 4;
        for (int i = 0; i < Halvings; i++)
        {
            t /= WideFloat.One + (WideFloat.One + (t * t)).SquareRoot();
        }

        var square = t * t;
        var power = t;
        var sum = t;
        for (ulong n = 3; n < 400; n += 2)
        {
            power = (power * square).Negate();
            var term = power.DivideBy(n);
            if (term.IsZero || term.Exponent < sum.Exponent - 130)
            {
                break;
            }

            sum += term;
        }

        return sum.Scale(Halvings);
    }

    /// <summary>
    /// FPATAN: atan(y / x) in the quadrant of (x, y) (ST(1) = y, ST(0) = x). Signed zeros and infinities give the
    /// exact multiples of π/4 of the SDM's table, never #I.
    /// </summary>
    public static Float80 ArcTangent(Float80 y, Float80 x, ref X87Context ctx)
    {
        ctx.RoundedUp = false;
        if (X87Arithmetic.ScreenOperands(y, x, ref ctx, out var nan))
        {
            return nan;
        }

        if ((x.IsDenormal || y.IsDenormal) && ctx.Raise(DE))
        {
            return default;
        }

        bool yNegative = y.Sign;
        bool xNegative = x.Sign;
        WideFloat angle;
        if (y.IsZero)
        {
            if (!xNegative)
            {
                return y;
            }

            angle = WideFloat.Pi;
        }
        else if (y.IsInfinity)
        {
            angle = x.IsInfinity
                ? (xNegative ? WideFloat.Pi * WideFloat.FromInteger(3) : WideFloat.Pi).Scale(-2)
                : WideFloat.Pi.Scale(-1);
        }
        else if (x.IsInfinity)
        {
            if (!xNegative)
            {
                return Float80.Zero(yNegative);
            }

            angle = WideFloat.Pi;
        }
        else if (x.IsZero)
        {
            angle = WideFloat.Pi.Scale(-1);
        }
        else
        {
            var a = WideFloat.FromFloat80(y).Abs();
            var b = WideFloat.FromFloat80(x).Abs();
            bool swapped = a.Exponent > b.Exponent || (a.Exponent == b.Exponent && a.Mantissa > b.Mantissa);
            angle = swapped ? WideFloat.Pi.Scale(-1) - ArcTanSeries(b / a) : ArcTanSeries(a / b);
            if (xNegative)
            {
                angle = WideFloat.Pi - angle;
            }
        }

        return (yNegative ? angle.Negate() : angle).ToFloat80(ref ctx);
    }

    /// <summary>F2XM1: 2^x − 1 for |x| &lt; 1 (the SDM's range; beyond it the hardware's own behaviour is reproduced).</summary>
    public static Float80 TwoToXMinusOne(Float80 x, ref X87Context ctx)
    {
        ctx.RoundedUp = false;
        if (X87Arithmetic.ScreenOperand(x, ref ctx, out var nan))
        {
            return nan;
        }

        if (x.IsZero)
        {
            return x;
        }

        if (x.IsInfinity)
        {
            return x.Sign ? Float80.Pack(true, Float80.Bias, Float80.IntegerBit) : x;
        }

        if (x.IsDenormal && ctx.Raise(DE))
        {
            return default;
        }

        if (x.Exponent >= Float80.Bias)
        {
            // |x| ≥ 1 is outside the defined range: this CPU's hardware returns x itself (−1 gives −0.5), inexact.
            ctx.Flags |= PE;
            bool minusOne = x.Sign && x.Exponent == Float80.Bias && x.Significand == Float80.IntegerBit;
            return minusOne ? Float80.Pack(true, Float80.Bias - 1, Float80.IntegerBit) : x;
        }

        var u = WideFloat.FromFloat80(x) * WideFloat.Ln2;
        var term = u;
        var sum = u;
        for (ulong n = 2; n < 400; n++)
        {
            term = (term * u).DivideBy(n);
            if (term.IsZero || term.Exponent < sum.Exponent - 130)
            {
                break;
            }

            sum += term;
        }

        return sum.ToFloat80(ref ctx);
    }

    /// <summary>FYL2X: y · log2(x) (ST(1) = y, ST(0) = x), with the SDM's table for zeros, infinities and x ≤ 0.</summary>
    public static Float80 YLog2X(Float80 y, Float80 x, ref X87Context ctx)
    {
        ctx.RoundedUp = false;
        if (X87Arithmetic.ScreenOperands(y, x, ref ctx, out var nan))
        {
            return nan;
        }

        if (x.Sign && !x.IsZero)
        {
            ctx.Raise(IE);
            return Float80.Indefinite;
        }

        bool xOne = x.Exponent == Float80.Bias && x.Significand == Float80.IntegerBit;
        if (x.IsZero)
        {
            // log2(0) = −∞: ±0 × −∞ is invalid, a finite y divides by zero.
            if (y.IsZero)
            {
                ctx.Raise(IE);
                return Float80.Indefinite;
            }

            // A denormal y raises no #D here: the divide-by-zero decides.
            if (!y.IsInfinity && ctx.Raise(ZE))
            {
                return default;
            }

            return Float80.Infinity(!y.Sign);
        }

        if (x.IsInfinity)
        {
            if (y.IsZero)
            {
                ctx.Raise(IE);
                return Float80.Indefinite;
            }

            if (y.IsDenormal && ctx.Raise(DE))
            {
                return default;
            }

            return Float80.Infinity(y.Sign);
        }

        if (y.IsInfinity && xOne)
        {
            ctx.Raise(IE);
            return Float80.Indefinite;
        }

        if ((x.IsDenormal || y.IsDenormal) && ctx.Raise(DE))
        {
            return default;
        }

        bool belowOne = x.Exponent < Float80.Bias;
        if (y.IsInfinity)
        {
            return Float80.Infinity(y.Sign ^ belowOne);
        }

        if (y.IsZero)
        {
            return Float80.Zero(y.Sign ^ belowOne);
        }

        var logarithm = Log2(WideFloat.FromFloat80(x), out var accuracy);
        return (WideFloat.FromFloat80(y) * logarithm).ToFloat80(ref ctx, accuracy);
    }

    /// <summary>
    /// FYL2XP1: y · log2(x + 1) (ST(1) = y, ST(0) = x). The SDM defines |x| &lt; 1 − √2/2; larger x are computed
    /// accurately as the hardware does, and x ≤ −1 reproduces the hardware (x itself).
    /// </summary>
    public static Float80 YLog2XPlusOne(Float80 y, Float80 x, ref X87Context ctx)
    {
        ctx.RoundedUp = false;
        if (X87Arithmetic.ScreenOperands(y, x, ref ctx, out var nan))
        {
            return nan;
        }

        if (x.IsZero)
        {
            if (y.IsInfinity)
            {
                ctx.Raise(IE);
                return Float80.Indefinite;
            }

            if (y.IsDenormal && ctx.Raise(DE))
            {
                return default;
            }

            return Float80.Zero(x.Sign ^ y.Sign);
        }

        if (x.IsInfinity)
        {
            // log2(+∞) = +∞ (times ±0 invalid); x = −∞ is outside the domain.
            if (x.Sign || y.IsZero)
            {
                ctx.Raise(IE);
                return Float80.Indefinite;
            }

            if (y.IsDenormal && ctx.Raise(DE))
            {
                return default;
            }

            return Float80.Infinity(y.Sign);
        }

        if ((x.IsDenormal || y.IsDenormal) && ctx.Raise(DE))
        {
            return default;
        }

        if (y.IsInfinity)
        {
            return Float80.Infinity(y.Sign ^ x.Sign);
        }

        if (y.IsZero)
        {
            return Float80.Zero(y.Sign ^ x.Sign);
        }

        if (x.Sign && x.Exponent >= Float80.Bias)
        {
            // x ≤ −1 is outside the domain: this CPU's hardware returns x itself, inexact, without #I.
            ctx.Flags |= PE;
            return x;
        }

        var w = WideFloat.FromFloat80(x);
        var accuracy = Accuracy.Approximate;
        var logarithm = w.IsBelow(-2)
            ? LogOfRatio(w, w + WideFloat.FromInteger(2)) / WideFloat.Ln2
            : Log2(WideFloat.One + w, out accuracy);
        return (WideFloat.FromFloat80(y) * logarithm).ToFloat80(ref ctx, accuracy);
    }

    /// <summary>
    /// log2 v for v &gt; 0: v = m·2^e with m in [√½, √2), e + 2·atanh((m − 1)/(m + 1)) / ln 2. For v = 2^e the result
    /// is e, which the hardware hits exactly for e ≥ 0 and misses by a hair toward zero for e &lt; 0.
    /// </summary>
    private static WideFloat Log2(WideFloat v, out Accuracy accuracy)
    {
        bool power = v.Mantissa == UInt128.One << 127;
        accuracy = !power ? Accuracy.Approximate : v.Exponent >= 0 ? Accuracy.Exact : Accuracy.JustBelow;
        int exponent = v.Exponent;
        var m = new WideFloat(false, 0, v.Mantissa); // [1, 2)
        if (v.Mantissa > new UInt128(0xB504_F333_F9DE_6484, 0x597D_89B3_754A_BE9F))
        {
            m = m.Scale(-1);
            exponent++;
        }

        var fraction = LogOfRatio(m - WideFloat.One, m + WideFloat.One) / WideFloat.Ln2;
        return exponent == 0 ? fraction : WideFloat.FromInteger(exponent) + fraction;
    }

    /// <summary>2·atanh(n / d) = ln((d + n) / (d − n)) for |n / d| well below 1 (the atanh series).</summary>
    private static WideFloat LogOfRatio(WideFloat numerator, WideFloat denominator)
    {
        var s = numerator / denominator;
        var square = s * s;
        var power = s;
        var sum = s;
        for (ulong n = 3; n < 400; n += 2)
        {
            power *= square;
            var term = power.DivideBy(n);
            if (term.IsZero || term.Exponent < sum.Exponent - 130)
            {
                break;
            }

            sum += term;
        }

        return sum.Scale(1);
    }
}
