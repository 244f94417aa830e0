namespace KvmSharp.Emulator.Execution.X87;

/// <summary>The classes of an 80-bit register value (Intel SDM Vol. 1 8.2.2, Table 8-3).</summary>
public enum Float80Class
{
    /// <summary>±0.</summary>
    Zero,

    /// <summary>Exponent 0, integer bit clear, significand not zero.</summary>
    Denormal,

    /// <summary>Exponent 0, integer bit set: read as the normal number with exponent 1.</summary>
    PseudoDenormal,

    /// <summary>Exponent 1-0x7FFE, integer bit set.</summary>
    Normal,

    /// <summary>Exponent 0x7FFF, significand 0x8000_0000_0000_0000.</summary>
    Infinity,

    /// <summary>Exponent 0x7FFF, integer bit and bit 62 set.</summary>
    QuietNaN,

    /// <summary>Exponent 0x7FFF, integer bit set, bit 62 clear, fraction not zero.</summary>
    SignalingNaN,

    /// <summary>Unnormals, pseudo-infinities and pseudo-NaNs: an invalid operand since the 387.</summary>
    Unsupported,
}

/// <summary>An x87 register value: 64-bit significand (explicit integer bit 63) and sign + 15-bit biased exponent.</summary>
/// <param name="Significand">The significand; bit 63 is the integer bit.</param>
/// <param name="SignExponent">Bit 15 the sign, bits 0-14 the exponent biased by 16383.</param>
public readonly record struct Float80(ulong Significand, ushort SignExponent)
{
    /// <summary>The exponent bias.</summary>
    public const int Bias = 16383;

    /// <summary>The all-ones exponent of infinities and NaNs.</summary>
    public const int MaxExponent = 0x7FFF;

    /// <summary>The integer bit.</summary>
    public const ulong IntegerBit = 1UL << 63;

    /// <summary>The bit that makes a NaN quiet.</summary>
    public const ulong QuietBit = 1UL << 62;

    /// <summary>The real indefinite: the QNaN every masked invalid operation without a NaN operand returns.</summary>
    public static Float80 Indefinite => new(0xC000_0000_0000_0000, 0xFFFF);

    /// <summary>+0.</summary>
    public static Float80 PositiveZero => new(0, 0);

    /// <summary>+1.</summary>
    public static Float80 One => new(IntegerBit, Bias);

    /// <summary>The sign bit.</summary>
    public bool Sign => (SignExponent & 0x8000) != 0;

    /// <summary>The biased exponent.</summary>
    public int Exponent => SignExponent & 0x7FFF;

    /// <summary>The value's class.</summary>
    public Float80Class Class
    {
        get
        {
            int exponent = Exponent;
            bool integer = (Significand & IntegerBit) != 0;
            if (exponent == MaxExponent)
            {
                if (!integer)
                {
                    return Float80Class.Unsupported;
                }

                if ((Significand << 1) == 0)
                {
                    return Float80Class.Infinity;
                }

                return (Significand & QuietBit) != 0 ? Float80Class.QuietNaN : Float80Class.SignalingNaN;
            }

            if (exponent == 0)
            {
                return Significand == 0 ? Float80Class.Zero : integer ? Float80Class.PseudoDenormal : Float80Class.Denormal;
            }

            return integer ? Float80Class.Normal : Float80Class.Unsupported;
        }
    }

    /// <summary>A QNaN or SNaN (not a pseudo-NaN).</summary>
    public bool IsNaN => Exponent == MaxExponent && (Significand & IntegerBit) != 0 && (Significand << 1) != 0;

    /// <summary>An SNaN.</summary>
    public bool IsSignalingNaN => IsNaN && (Significand & QuietBit) == 0;

    /// <summary>An unnormal, pseudo-infinity or pseudo-NaN.</summary>
    public bool IsUnsupported => Exponent != 0 && (Significand & IntegerBit) == 0;

    /// <summary>±0.</summary>
    public bool IsZero => Exponent == 0 && Significand == 0;

    /// <summary>±∞.</summary>
    public bool IsInfinity => Exponent == MaxExponent && Significand == IntegerBit;

    /// <summary>A denormal or pseudo-denormal (the denormal-operand exception's trigger).</summary>
    public bool IsDenormal => Exponent == 0 && Significand != 0;

    /// <summary>The value with the sign flipped.</summary>
    public Float80 Negate() => new(Significand, (ushort)(SignExponent ^ 0x8000));

    /// <summary>The value with the sign cleared.</summary>
    public Float80 Abs() => new(Significand, (ushort)(SignExponent & 0x7FFF));

    /// <summary>A NaN made quiet.</summary>
    public Float80 Quiet() => new(Significand | QuietBit, SignExponent);

    /// <summary>±∞.</summary>
    public static Float80 Infinity(bool negative) => new(IntegerBit, (ushort)(negative ? 0xFFFF : 0x7FFF));

    /// <summary>±0.</summary>
    public static Float80 Zero(bool negative) => new(0, (ushort)(negative ? 0x8000 : 0));

    /// <summary>Builds a value from its fields.</summary>
    public static Float80 Pack(bool negative, int exponent, ulong significand) =>
        new(significand, (ushort)((negative ? 0x8000 : 0) | (exponent & 0x7FFF)));

    /// <inheritdoc/>
    public override string ToString() => $"{SignExponent:X4}:{Significand:X16}";
}
