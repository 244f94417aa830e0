using System.Buffers.Binary;
using KvmSharp.Emulator.Execution;
using KvmSharp.Emulator.Execution.X87;
using KvmSharp.Emulator.Mmu;
using static KvmSharp.Emulator.Execution.X87.X87Bits;

namespace KvmSharp.Emulator.Cpu;

/// <summary>x87 loads, stores, constants and register moves.</summary>
public sealed partial class Interpreter
{
    /// <summary>
    /// The seven constants of D9 E8-EE: the significand rounded to nearest and toward zero/−∞ (the +∞ rounding equals
    /// the nearest one for all of them but log2(10), whose nearest rounding is the one toward zero).
    /// </summary>
    private static readonly ulong[] ConstantNearest =
    [
        0x8000_0000_0000_0000, // 1
        0xD49A_784B_CD1B_8AFE, // log2(10)
        0xB8AA_3B29_5C17_F0BC, // log2(e)
        0xC90F_DAA2_2168_C235, // pi
        0x9A20_9A84_FBCF_F799, // log10(2)
        0xB172_17F7_D1CF_79AC, // ln(2)
        0,                     // +0
    ];

    private static readonly ulong[] ConstantTruncated =
    [
        0x8000_0000_0000_0000,
        0xD49A_784B_CD1B_8AFE,
        0xB8AA_3B29_5C17_F0BB,
        0xC90F_DAA2_2168_C234,
        0x9A20_9A84_FBCF_F798,
        0xB172_17F7_D1CF_79AB,
        0,
    ];

    private static readonly ushort[] ConstantExponent = [0x3FFF, 0x4000, 0x3FFF, 0x4000, 0x3FFD, 0x3FFE, 0];

    /// <summary>FLD1, FLDL2T, FLDL2E, FLDPI, FLDLG2, FLDLN2, FLDZ: the constant rounded under RC (not PC).</summary>
    private bool X87LoadConstant(int which)
    {
        if (!IsEmpty(7))
        {
            return X87StackOverflow();
        }

        int rc = (Fx.Fcw >> 10) & 3;
        ulong significand = rc switch
        {
            RoundNearest => ConstantNearest[which],
            RoundUp => which == 1 ? ConstantNearest[which] + 1 : ConstantNearest[which],
            _ => ConstantTruncated[which],
        };
        PushX87(new Float80(significand, ConstantExponent[which]));
        X87Complete(0, false);
        return true;
    }

    /// <summary>FLD m32fp/m64fp/m80fp.</summary>
    private bool X87LoadMemory(int size)
    {
        Span<byte> bytes = stackalloc byte[10];
        if (!ReadMemoryBytes(_insn.EffectiveSegment, OperandOffset(), bytes[..size]))
        {
            return false;
        }

        if (!IsEmpty(7))
        {
            return X87StackOverflow();
        }

        var ctx = NewX87Context();
        var value = size switch
        {
            4 => X87Arithmetic.FromSingle(BinaryPrimitives.ReadUInt32LittleEndian(bytes), ref ctx),
            8 => X87Arithmetic.FromDouble(BinaryPrimitives.ReadUInt64LittleEndian(bytes), ref ctx),
            _ => new Float80(BinaryPrimitives.ReadUInt64LittleEndian(bytes), BinaryPrimitives.ReadUInt16LittleEndian(bytes[8..])),
        };
        if ((ctx.Flags & ~Fx.Fcw & IE) != 0)
        {
            return X87Aborted(ctx);
        }

        // An unmasked #D does not stop the load: the normalized value is pushed and the exception left pending.
        PushX87(value);
        X87Complete(ctx.Flags, false);
        return true;
    }

    /// <summary>FILD m16int/m32int/m64int.</summary>
    private bool X87LoadInteger(int size)
    {
        if (!ReadMemory(_insn.EffectiveSegment, OperandOffset(), size, MemoryAccess.Read, out ulong raw))
        {
            return false;
        }

        if (!IsEmpty(7))
        {
            return X87StackOverflow();
        }

        PushX87(X87Arithmetic.FromInteger(Alu.SignExtend(raw, size)));
        X87Complete(0, false);
        return true;
    }

    /// <summary>FBLD m80bcd.</summary>
    private bool X87LoadBcd()
    {
        Span<byte> bytes = stackalloc byte[10];
        if (!ReadMemoryBytes(_insn.EffectiveSegment, OperandOffset(), bytes))
        {
            return false;
        }

        if (!IsEmpty(7))
        {
            return X87StackOverflow();
        }

        PushX87(X87Arithmetic.FromPackedBcd(bytes));
        X87Complete(0, false);
        return true;
    }

    /// <summary>FLD ST(i): pushes a copy (no exception but #IS).</summary>
    private bool X87LoadRegister(int i)
    {
        if (IsEmpty(i))
        {
            // An empty source is an underflow (C1 = 0) even when the push also overflows.
            if (X87Masked(IE))
            {
                PushX87(Float80.Indefinite);
            }

            X87Complete(IE | SF, false);
            return true;
        }

        if (!IsEmpty(7))
        {
            return X87StackOverflow();
        }

        PushX87(St(i));
        X87Complete(0, false);
        return true;
    }

    /// <summary>FST/FSTP m32fp/m64fp, FSTP m80fp.</summary>
    private bool X87StoreFloat(int size, bool pop)
    {
        Span<byte> bytes = stackalloc byte[10];
        var ctx = NewX87Context();
        int flags;
        bool roundedUp = false;
        if (IsEmpty(0))
        {
            if (!X87Masked(IE))
            {
                X87Complete(IE | SF, false);
                return true;
            }

            flags = IE | SF;
            WriteFloat(bytes, size, Float80.Indefinite, X87Arithmetic.SingleIndefinite, X87Arithmetic.DoubleIndefinite);
        }
        else
        {
            var value = St(0);
            bool store = true;
            uint single = 0;
            ulong dbl = 0;
            if (size == 4)
            {
                store = X87Arithmetic.ToSingle(value, ref ctx, out single);
            }
            else if (size == 8)
            {
                store = X87Arithmetic.ToDouble(value, ref ctx, out dbl);
            }

            if (!store || ctx.Aborted)
            {
                X87Complete(ctx.Flags, false);
                return true;
            }

            flags = ctx.Flags;
            roundedUp = ctx.RoundedUp;
            WriteFloat(bytes, size, value, single, dbl);
        }

        if (!WriteMemoryBytes(_insn.EffectiveSegment, OperandOffset(), bytes[..size]))
        {
            return false;
        }

        if (pop)
        {
            PopX87();
        }

        X87Complete(flags, roundedUp);
        return true;
    }

    private static void WriteFloat(Span<byte> bytes, int size, Float80 extended, uint single, ulong dbl)
    {
        switch (size)
        {
            case 4:
                BinaryPrimitives.WriteUInt32LittleEndian(bytes, single);
                break;
            case 8:
                BinaryPrimitives.WriteUInt64LittleEndian(bytes, dbl);
                break;
            default:
                BinaryPrimitives.WriteUInt64LittleEndian(bytes, extended.Significand);
                BinaryPrimitives.WriteUInt16LittleEndian(bytes[8..], extended.SignExponent);
                break;
        }
    }

    /// <summary>FIST/FISTP m16int/m32int/m64int.</summary>
    private bool X87StoreInteger(int size, bool pop)
    {
        var ctx = NewX87Context();
        long integer;
        int flags;
        bool roundedUp = false;
        if (IsEmpty(0))
        {
            if (!X87Masked(IE))
            {
                X87Complete(IE | SF, false);
                return true;
            }

            flags = IE | SF;
            integer = long.MinValue >> (64 - (size * 8));
        }
        else
        {
            if (!X87Arithmetic.ToInteger(St(0), size, ref ctx, out integer))
            {
                X87Complete(ctx.Flags, false);
                return true;
            }

            flags = ctx.Flags;
            roundedUp = ctx.RoundedUp;
        }

        if (!WriteMemory(_insn.EffectiveSegment, OperandOffset(), size, (ulong)integer))
        {
            return false;
        }

        if (pop)
        {
            PopX87();
        }

        X87Complete(flags, roundedUp);
        return true;
    }

    /// <summary>FBSTP m80bcd.</summary>
    private bool X87StoreBcd()
    {
        Span<byte> bytes = stackalloc byte[10];
        var ctx = NewX87Context();
        int flags;
        bool roundedUp = false;
        if (IsEmpty(0))
        {
            if (!X87Masked(IE))
            {
                X87Complete(IE | SF, false);
                return true;
            }

            flags = IE | SF;
            X87Arithmetic.ToPackedBcd(Float80.Indefinite, ref ctx, bytes);
        }
        else
        {
            if (!X87Arithmetic.ToPackedBcd(St(0), ref ctx, bytes))
            {
                X87Complete(ctx.Flags, false);
                return true;
            }

            flags = ctx.Flags;
            roundedUp = ctx.RoundedUp;
        }

        if (!WriteMemoryBytes(_insn.EffectiveSegment, OperandOffset(), bytes))
        {
            return false;
        }

        PopX87();
        X87Complete(flags, roundedUp);
        return true;
    }

    /// <summary>FST/FSTP ST(i): a raw copy (no exception but #IS).</summary>
    private bool X87StoreRegister(int i, bool pop)
    {
        if (IsEmpty(0))
        {
            return X87StackUnderflow(i, pop ? 1 : 0);
        }

        SetSt(i, St(0));
        if (pop)
        {
            PopX87();
        }

        X87Complete(0, false);
        return true;
    }

    /// <summary>FXCH ST(i); an empty register takes part as the real indefinite when #IS is masked.</summary>
    private bool X87Exchange(int i)
    {
        int flags = 0;
        if (IsEmpty(0) || IsEmpty(i))
        {
            flags = IE | SF;
            if (!X87Masked(IE))
            {
                X87Complete(flags, false);
                return true;
            }

            if (IsEmpty(0))
            {
                SetSt(0, Float80.Indefinite);
            }

            if (IsEmpty(i))
            {
                SetSt(i, Float80.Indefinite);
            }
        }

        var st0 = St(0);
        SetSt(0, St(i));
        SetSt(i, st0);
        X87Complete(flags, false);
        return true;
    }

    /// <summary>FFREE ST(i) / FFREEP ST(i): tag the register empty (and pop).</summary>
    private bool X87Free(int i, bool pop)
    {
        Fx.SetTag(Physical(i), TagEmpty);
        if (pop)
        {
            PopX87();
        }

        X87Complete(0, false);
        return true;
    }
}
