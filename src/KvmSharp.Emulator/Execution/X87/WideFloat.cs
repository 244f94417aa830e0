namespace KvmSharp.Emulator.Execution.X87;

/// <summary>How a <see cref="WideFloat"/> result relates to the value the hardware computes.</summary>
internal enum Accuracy
{
    /// <summary>An approximation: inexact, either way.</summary>
    Approximate,

    /// <summary>The exact value, which the hardware also produces.</summary>
    Exact,

    /// <summary>The exact value, which the hardware misses by a hair toward zero.</summary>
    JustBelow,
}

/// <summary>
/// A binary floating-point number with a 128-bit significand (bit 127 set unless the value is zero) and an
/// unbounded exponent: value = ±Mantissa × 2^(Exponent − 127). Operations truncate, so each costs at most a couple
/// of units in bit 0; that keeps the transcendental functions (which need ~70 good bits for a 64-bit result) well
/// clear of their error budget.
/// </summary>
internal readonly struct WideFloat
{
    public WideFloat(bool negative, int exponent, UInt128 mantissa)
    {
        if (mantissa == UInt128.Zero)
        {
            Negative = negative;
            Exponent = 0;
            Mantissa = UInt128.Zero;
            return;
        }

        int shift = (int)UInt128.LeadingZeroCount(mantissa);
        Negative = negative;
        Exponent = exponent - shift;
        Mantissa = mantissa << shift;
    }

    public bool Negative { get; }

    /// <summary>The value lies in [2^Exponent, 2^(Exponent + 1)).</summary>
    public int Exponent { get; }

    public UInt128 Mantissa { get; }

    public bool IsZero => Mantissa == UInt128.Zero;

    public static WideFloat Zero => default;

    public static WideFloat One => new(false, 0, UInt128.One << 127);

    /// <summary>π to 128 bits.</summary>
    public static WideFloat Pi => new(false, 1, new UInt128(0xC90F_DAA2_2168_C234, 0xC4C6_628B_80DC_1CD1));

    /// <summary>ln 2 to 128 bits.</summary>
    public static WideFloat Ln2 => new(false, -1, new UInt128(0xB172_17F7_D1CF_79AB, 0xC9E3_B398_03F2_F6AF));

    /// <summary>An exact copy of a finite 80-bit value (denormals normalized).</summary>
    public static WideFloat FromFloat80(Float80 value)
    {
        if (value.IsZero)
        {
            return new WideFloat(value.Sign, 0, UInt128.Zero);
        }

        ulong significand = X87Arithmetic.Normalize(value, out int exponent);
        return new WideFloat(value.Sign, exponent - Float80.Bias, (UInt128)significand << 64);
    }

    /// <summary>An exact small integer.</summary>
    public static WideFloat FromInteger(long value) =>
        new(value < 0, 127, (UInt128)(value < 0 ? (ulong)-value : (ulong)value));

    /// <summary>An estimate from a double (for Newton starting points).</summary>
    public static WideFloat FromDouble(double value)
    {
        if (value == 0)
        {
            return Zero;
        }

        long bits = BitConverter.DoubleToInt64Bits(Math.Abs(value));
        int exponent = (int)(bits >> 52) - 1023;
        ulong fraction = (ulong)bits & ((1UL << 52) - 1);
        return new WideFloat(value < 0, exponent, (UInt128)((1UL << 52) | fraction) << 75);
    }

    /// <summary>A double estimate (exponents far outside the double range are not expected here).</summary>
    public double ToDouble()
    {
        if (IsZero)
        {
            return 0;
        }

        double mantissa = (double)(ulong)(Mantissa >> 64) / 9223372036854775808.0; // [1, 2)
        double value = Math.ScaleB(mantissa, Exponent);
        return Negative ? -value : value;
    }

    /// <summary>
    /// Rounds to the extended format (64 bits, the context's rounding control). An approximation is never exact: a
    /// sticky bit marks it inexact. A value the hardware's own approximation is known to hit
    /// (<see cref="Accuracy.Exact"/>) or to miss just toward zero (<see cref="Accuracy.JustBelow"/>) is rounded as
    /// such; either way the result is reported inexact, as the hardware does.
    /// </summary>
    public Float80 ToFloat80(ref X87Context ctx, Accuracy accuracy = Accuracy.Approximate)
    {
        if (IsZero)
        {
            return Float80.Zero(Negative);
        }

        var mantissa = accuracy switch
        {
            Accuracy.Exact => Mantissa,
            Accuracy.JustBelow => Mantissa - UInt128.One, // the exact mantissa has many trailing zero bits
            _ => Mantissa | UInt128.One,
        };
        var result = X87Arithmetic.RoundToExtended(Negative, Exponent + Float80.Bias, mantissa, 64, ref ctx);
        ctx.Flags |= X87Bits.PE;
        if (accuracy == Accuracy.Exact && Exponent + Float80.Bias < 1)
        {
            ctx.Flags |= X87Bits.UE; // tiny and (as far as the hardware is concerned) inexact
        }

        return result;
    }

    public WideFloat Negate() => new(!Negative, Exponent, Mantissa);

    public WideFloat Abs() => new(false, Exponent, Mantissa);

    /// <summary>The value × 2^<paramref name="power"/>.</summary>
    public WideFloat Scale(int power) => IsZero ? this : new(Negative, Exponent + power, Mantissa);

    public static WideFloat operator *(WideFloat a, WideFloat b)
    {
        if (a.IsZero || b.IsZero)
        {
            return new WideFloat(a.Negative ^ b.Negative, 0, UInt128.Zero);
        }

        var high = MultiplyHigh(a.Mantissa, b.Mantissa); // in [2^126, 2^128)
        return new WideFloat(a.Negative ^ b.Negative, a.Exponent + b.Exponent + 1, high);
    }

    public static WideFloat operator +(WideFloat a, WideFloat b)
    {
        if (a.IsZero)
        {
            return b;
        }

        if (b.IsZero)
        {
            return a;
        }

        if (a.Exponent < b.Exponent || (a.Exponent == b.Exponent && a.Mantissa < b.Mantissa))
        {
            (a, b) = (b, a);
        }

        int d = a.Exponent - b.Exponent;
        var am = a.Mantissa >> 1;
        var bm = d + 1 >= 128 ? UInt128.Zero : b.Mantissa >> (d + 1);
        if (a.Negative == b.Negative)
        {
            return new WideFloat(a.Negative, a.Exponent + 1, am + bm);
        }

        return new WideFloat(a.Negative, a.Exponent + 1, am - bm);
    }

    public static WideFloat operator -(WideFloat a, WideFloat b) => a + b.Negate();

    public static WideFloat operator /(WideFloat a, WideFloat b) => a * b.Reciprocal();

    /// <summary>1 / value by Newton's iteration from a double estimate (three steps: 53 → 106 → 212 bits).</summary>
    public WideFloat Reciprocal()
    {
        var normalized = new WideFloat(Negative, 0, Mantissa); // in [1, 2)
        var x = FromDouble(1 / normalized.ToDouble());
        var two = FromInteger(2);
        for (int i = 0; i < 3; i++)
        {
            x *= two - (normalized * x);
        }

        return x.Scale(-Exponent);
    }

    /// <summary>The value divided by a small integer, with the remainder carried into the low bits.</summary>
    public WideFloat DivideBy(ulong divisor)
    {
        if (IsZero)
        {
            return this;
        }

        var quotient = Mantissa / divisor;
        var remainder = Mantissa - (quotient * divisor);
        var extra = (remainder << 64) / divisor;
        int shift = (int)UInt128.LeadingZeroCount(quotient);
        var combined = (quotient << shift) | (shift == 0 ? UInt128.Zero : extra >> (64 - shift));
        return new WideFloat(Negative, Exponent - shift, combined);
    }

    /// <summary>√value (value ≥ 0) by Newton's iteration.</summary>
    public WideFloat SquareRoot()
    {
        if (IsZero)
        {
            return this;
        }

        int half = Exponent >> 1;
        var reduced = Scale(-2 * half); // in [1, 4)
        var x = FromDouble(Math.Sqrt(reduced.ToDouble()));
        for (int i = 0; i < 3; i++)
        {
            x = (x + (reduced / x)).Scale(-1);
        }

        return x.Scale(half);
    }

    /// <summary>The high 128 bits of a 256-bit product.</summary>
    private static UInt128 MultiplyHigh(UInt128 a, UInt128 b)
    {
        ulong ah = (ulong)(a >> 64);
        ulong al = (ulong)a;
        ulong bh = (ulong)(b >> 64);
        ulong bl = (ulong)b;
        var hh = (UInt128)ah * bh;
        var hl = (UInt128)ah * bl;
        var lh = (UInt128)al * bh;
        var ll = (UInt128)al * bl;
        var middle = (hl & ulong.MaxValue) + (lh & ulong.MaxValue) + (ll >> 64);
        return hh + (hl >> 64) + (lh >> 64) + (middle >> 64);
    }

    /// <summary>Whether |value| is below 2^<paramref name="power"/> (true for zero).</summary>
    public bool IsBelow(int power) => IsZero || Exponent < power;

    public override string ToString() => $"{(Negative ? "-" : "")}{Mantissa:X32}p{Exponent}";
}
