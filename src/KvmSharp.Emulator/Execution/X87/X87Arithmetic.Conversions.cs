using System.Numerics;
using static KvmSharp.Emulator.Execution.X87.X87Bits;

namespace KvmSharp.Emulator.Execution.X87;

/// <summary>Conversions between the register format and the memory formats: m32fp, m64fp, m16/32/64int, m80bcd.</summary>
public static partial class X87Arithmetic
{
    /// <summary>The m32fp real indefinite.</summary>
    public const uint SingleIndefinite = 0xFFC0_0000;

    /// <summary>The m64fp real indefinite.</summary>
    public const ulong DoubleIndefinite = 0xFFF8_0000_0000_0000;

    /// <summary>The largest magnitude FBSTP can store: 18 nines.</summary>
    private const ulong MaxBcd = 999_999_999_999_999_999;

    /// <summary>A memory floating-point format: fraction width, exponent width.</summary>
    private readonly record struct Format(int FractionBits, int ExponentBits)
    {
        public int Bias => (1 << (ExponentBits - 1)) - 1;

        public int MaxField => (1 << ExponentBits) - 1;

        /// <summary>The smallest normal exponent in extended-biased terms.</summary>
        public int MinExponent => Float80.Bias - Bias + 1;

        /// <summary>The largest normal exponent in extended-biased terms.</summary>
        public int MaxExponent => Float80.Bias + Bias;
    }

    private static readonly Format Single = new(23, 8);
    private static readonly Format Double = new(52, 11);

    /// <summary>FLD m32fp: exact; an SNaN raises #I and loads quiet, a denormal raises #D and loads normalized (even when #D is unmasked).</summary>
    public static Float80 FromSingle(uint bits, ref X87Context ctx) => Load(ExactSingle(bits, out bool denormal), denormal, ref ctx);

    /// <summary>FLD m64fp (see <see cref="FromSingle"/>).</summary>
    public static Float80 FromDouble(ulong bits, ref X87Context ctx) => Load(ExactDouble(bits, out bool denormal), denormal, ref ctx);

    /// <summary>An m32fp value widened exactly, SNaNs kept signaling, no exception raised (arithmetic operands).</summary>
    public static Float80 ExactSingle(uint bits, out bool denormal) => Widen(bits, Single, out denormal);

    /// <summary>An m64fp value widened exactly (see <see cref="ExactSingle"/>).</summary>
    public static Float80 ExactDouble(ulong bits, out bool denormal) => Widen(bits, Double, out denormal);

    private static Float80 Load(Float80 value, bool denormal, ref X87Context ctx)
    {
        if (value.IsSignalingNaN)
        {
            ctx.Raise(IE);
            return value.Quiet();
        }

        if (denormal)
        {
            ctx.Raise(DE);
        }

        return value;
    }

    private static Float80 Widen(ulong bits, Format format, out bool denormal)
    {
        denormal = false;
        int width = format.FractionBits + format.ExponentBits + 1;
        bool negative = ((bits >> (width - 1)) & 1) != 0;
        int field = (int)((bits >> format.FractionBits) & (ulong)format.MaxField);
        ulong fraction = bits & ((1UL << format.FractionBits) - 1);
        ulong aligned = fraction << (63 - format.FractionBits);
        if (field == format.MaxField)
        {
            if (fraction == 0)
            {
                return Float80.Infinity(negative);
            }

            return Float80.Pack(negative, Float80.MaxExponent, Float80.IntegerBit | aligned);
        }

        if (field == 0)
        {
            if (fraction == 0)
            {
                return Float80.Zero(negative);
            }

            denormal = true;
            int shift = BitOperations.LeadingZeroCount(aligned);
            return Float80.Pack(negative, format.MinExponent - shift, aligned << shift);
        }

        return Float80.Pack(negative, field - format.Bias + Float80.Bias, Float80.IntegerBit | aligned);
    }

    /// <summary>FST m32fp: rounds to single precision under RC. False when nothing may be stored (an unmasked exception).</summary>
    public static bool ToSingle(Float80 value, ref X87Context ctx, out uint bits)
    {
        bool stored = ToBinary(value, Single, SingleIndefinite, ref ctx, out ulong wide);
        bits = (uint)wide;
        return stored;
    }

    /// <summary>FST m64fp (see <see cref="ToSingle"/>).</summary>
    public static bool ToDouble(Float80 value, ref X87Context ctx, out ulong bits) =>
        ToBinary(value, Double, DoubleIndefinite, ref ctx, out bits);

    private static bool ToBinary(Float80 value, Format format, ulong indefinite, ref X87Context ctx, out ulong bits)
    {
        ctx.RoundedUp = false;
        int width = format.FractionBits + format.ExponentBits + 1;
        ulong signBit = value.Sign ? 1UL << (width - 1) : 0;
        ulong infinityField = (ulong)format.MaxField << format.FractionBits;
        bits = 0;
        switch (value.Class)
        {
            case Float80Class.Unsupported:
                bits = indefinite;
                return !ctx.Raise(IE);
            case Float80Class.QuietNaN:
            case Float80Class.SignalingNaN:
            {
                bool unmasked = value.IsSignalingNaN && ctx.Raise(IE);
                ulong fraction = ((value.Significand | Float80.QuietBit) << 1) >> (64 - format.FractionBits);
                bits = signBit | infinityField | fraction;
                return !unmasked;
            }

            case Float80Class.Infinity:
                bits = signBit | infinityField;
                return true;
            case Float80Class.Zero:
                bits = signBit;
                return true;
        }

        // A denormal source raises no #D here (as this CPU's hardware does): it simply underflows.
        ulong sig = Normalize(value, out int exponent);
        if (!RoundCore(value.Sign, exponent, (UInt128)sig << 64, format.FractionBits + 1, format.MinExponent, format.MaxExponent,
                false, ref ctx, out int e, out ulong s))
        {
            return false;
        }

        ulong field = (ulong)(e - format.MinExponent + 1);
        ulong fractionBits = (s << 1) >> (64 - format.FractionBits);
        bits = signBit | (field << format.FractionBits) | fractionBits;
        return true;
    }

    /// <summary>FILD: an exact conversion of a signed integer.</summary>
    public static Float80 FromInteger(long value) =>
        value == 0 ? Float80.PositiveZero : FromMagnitude(value < 0, value < 0 ? (ulong)-value : (ulong)value);

    /// <summary>
    /// FIST/FISTP: rounds under RC to a signed integer of <paramref name="bytes"/> (2, 4, 8) bytes. NaNs, infinities,
    /// unsupported encodings and out-of-range values raise #I and give the integer indefinite (the minimum value).
    /// False when nothing may be stored.
    /// </summary>
    public static bool ToInteger(Float80 value, int bytes, ref X87Context ctx, out long result)
    {
        ctx.RoundedUp = false;
        long indefinite = long.MinValue >> (64 - (bytes * 8));
        result = indefinite;
        var kind = value.Class;
        if (kind is Float80Class.Unsupported or Float80Class.QuietNaN or Float80Class.SignalingNaN or Float80Class.Infinity)
        {
            return !ctx.Raise(IE);
        }

        if (kind == Float80Class.Zero)
        {
            result = 0;
            return true;
        }

        ulong sig = Normalize(value, out int exponent);
        int unbiased = exponent - Float80.Bias;
        if (unbiased > 63)
        {
            return !ctx.Raise(IE);
        }

        var probe = ctx;
        var magnitude = RoundToInteger(value.Sign, sig, unbiased, ref probe);
        var limit = (UInt128)(1UL << ((bytes * 8) - 1));
        if (value.Sign ? magnitude > limit : magnitude >= limit)
        {
            return !ctx.Raise(IE);
        }

        ctx = probe;
        result = value.Sign ? -(long)(ulong)magnitude : (long)(ulong)magnitude;
        return true;
    }

    /// <summary>FBLD: 18 packed BCD digits and a sign, exact. Invalid digits (A-F) count with their nibble value.</summary>
    public static Float80 FromPackedBcd(ReadOnlySpan<byte> bcd)
    {
        ulong magnitude = 0;
        for (int i = 8; i >= 0; i--)
        {
            magnitude = (magnitude * 100) + ((ulong)(bcd[i] >> 4) * 10) + (ulong)(bcd[i] & 0xF);
        }

        bool negative = (bcd[9] & 0x80) != 0;
        return magnitude == 0 ? Float80.Zero(negative) : FromMagnitude(negative, magnitude);
    }

    /// <summary>
    /// FBSTP: rounds under RC and stores 18 BCD digits with the sign in byte 9. Values beyond ±(10^18 − 1), NaNs,
    /// infinities and unsupported encodings raise #I and store the BCD indefinite. False when nothing may be stored.
    /// </summary>
    public static bool ToPackedBcd(Float80 value, ref X87Context ctx, Span<byte> bcd)
    {
        ctx.RoundedUp = false;
        bcd[..10].Clear();
        var kind = value.Class;
        ulong magnitude = 0;
        if (kind is Float80Class.Unsupported or Float80Class.QuietNaN or Float80Class.SignalingNaN or Float80Class.Infinity)
        {
            return StoreBcdIndefinite(ref ctx, bcd);
        }

        if (kind != Float80Class.Zero)
        {
            ulong sig = Normalize(value, out int exponent);
            int unbiased = exponent - Float80.Bias;
            if (unbiased > 63)
            {
                return StoreBcdIndefinite(ref ctx, bcd);
            }

            var probe = ctx;
            var rounded = RoundToInteger(value.Sign, sig, unbiased, ref probe);
            if (rounded > MaxBcd)
            {
                return StoreBcdIndefinite(ref ctx, bcd);
            }

            ctx = probe;
            magnitude = (ulong)rounded;
        }

        for (int i = 0; i < 9; i++)
        {
            ulong pair = magnitude % 100;
            magnitude /= 100;
            bcd[i] = (byte)(((pair / 10) << 4) | (pair % 10));
        }

        bcd[9] = value.Sign ? (byte)0x80 : (byte)0;
        return true;
    }

    private static bool StoreBcdIndefinite(ref X87Context ctx, Span<byte> bcd)
    {
        bcd[..10].Clear();
        bcd[7] = 0xC0;
        bcd[8] = 0xFF;
        bcd[9] = 0xFF;
        return !ctx.Raise(IE);
    }
}
