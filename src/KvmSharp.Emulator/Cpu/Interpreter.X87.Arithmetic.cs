using KvmSharp.Emulator.Execution;
using KvmSharp.Emulator.Execution.X87;
using KvmSharp.Emulator.Mmu;
using static KvmSharp.Emulator.Execution.X87.X87Bits;

namespace KvmSharp.Emulator.Cpu;

/// <summary>x87 arithmetic, comparisons, and the one- and two-operand register instructions (FSQRT ... FCOS).</summary>
public sealed partial class Interpreter
{
    /// <summary>
    /// The eight basic operations by ModRM.reg: 0 add, 1 multiply, 4 ST(0) − other, 5 other − ST(0), 6 ST(0) ÷ other,
    /// 7 other ÷ ST(0) (DC/DE's FSUB/FSUBR and FDIV/FDIVR swap mnemonics, not operand order). 2/3 are compares.
    /// </summary>
    private static Float80 X87Binary(int op, Float80 st0, Float80 other, ref X87Context ctx, bool denormalSource)
    {
        int precision = ctx.Precision;
        return op switch
        {
            0 => X87Arithmetic.Add(st0, other, false, precision, ref ctx, denormalSource),
            1 => X87Arithmetic.Multiply(st0, other, precision, ref ctx, denormalSource),
            4 => X87Arithmetic.Add(st0, other, true, precision, ref ctx, denormalSource),
            5 => X87Arithmetic.Add(other, st0, true, precision, ref ctx, denormalSource),
            6 => X87Arithmetic.Divide(st0, other, precision, ref ctx, denormalSource),
            _ => X87Arithmetic.Divide(other, st0, precision, ref ctx, denormalSource),
        };
    }

    /// <summary>D8/DC/DE register forms: ST(0) op ST(i) into ST(0) or ST(i), DE popping.</summary>
    private bool X87ArithmeticRegister(int op, int i, bool destinationIsSt0, bool pop)
    {
        if (op is 2 or 3)
        {
            return X87Compare(i, quiet: false, pops: op - 2);
        }

        int destination = destinationIsSt0 ? 0 : i;
        if (IsEmpty(0) || IsEmpty(i))
        {
            return X87StackUnderflow(destination, pop ? 1 : 0);
        }

        var ctx = NewX87Context();
        var result = X87Binary(op, St(0), St(i), ref ctx, false);
        if (ctx.Aborted)
        {
            return X87Aborted(ctx);
        }

        SetSt(destination, result);
        if (pop)
        {
            PopX87();
        }

        X87Complete(ctx.Flags, ctx.RoundedUp);
        return true;
    }

    /// <summary>Reads an m16int/m32int/m32fp/m64fp source operand, widened exactly (SNaNs kept).</summary>
    private bool ReadX87Operand(int size, bool integer, out Float80 value, out bool denormal)
    {
        denormal = false;
        value = default;
        if (!ReadMemory(_insn.EffectiveSegment, OperandOffset(), size, MemoryAccess.Read, out ulong raw))
        {
            return false;
        }

        value = integer
            ? X87Arithmetic.FromInteger(Alu.SignExtend(raw, size))
            : size == 4 ? X87Arithmetic.ExactSingle((uint)raw, out denormal) : X87Arithmetic.ExactDouble(raw, out denormal);
        return true;
    }

    /// <summary>D8/DA/DC/DE memory forms: ST(0) op m32fp/m64fp/m32int/m16int into ST(0); /2 /3 compare.</summary>
    private bool X87ArithmeticMemory(int size, bool integer)
    {
        int op = _insn.X87Index & 7;
        if (!ReadX87Operand(size, integer, out var operand, out bool denormal))
        {
            return false;
        }

        if (op is 2 or 3)
        {
            return X87CompareWith(operand, denormal, quiet: false, pops: op - 2);
        }

        if (IsEmpty(0))
        {
            return X87StackUnderflow(0, 0);
        }

        var ctx = NewX87Context();
        var result = X87Binary(op, St(0), operand, ref ctx, denormal);
        if (ctx.Aborted)
        {
            return X87Aborted(ctx);
        }

        SetSt(0, result);
        X87Complete(ctx.Flags, ctx.RoundedUp);
        return true;
    }

    // ---------------------------------------------------------------- comparisons

    private static int ConditionCodesFor(X87Comparison comparison) => comparison switch
    {
        X87Comparison.Greater => 0,
        X87Comparison.Less => C0,
        X87Comparison.Equal => C3,
        _ => C3 | C2 | C0,
    };

    /// <summary>FCOM/FCOMP/FUCOM/FUCOMP ST(i), FCOMPP/FUCOMPP (i = 1, two pops).</summary>
    private bool X87Compare(int i, bool quiet, int pops)
    {
        if (IsEmpty(0) || IsEmpty(i))
        {
            return X87CompareUnderflow(pops);
        }

        return X87CompareWith(St(i), false, quiet, pops);
    }

    /// <summary>Compares ST(0) with <paramref name="operand"/>, sets C3/C2/C0 (C1 = 0) and pops.</summary>
    private bool X87CompareWith(Float80 operand, bool denormal, bool quiet, int pops)
    {
        if (IsEmpty(0))
        {
            return X87CompareUnderflow(pops);
        }

        // The condition codes are written even when an unmasked exception suppresses the pops.
        var ctx = NewX87Context();
        var comparison = X87Arithmetic.Compare(St(0), operand, quiet, ref ctx, denormal);
        SetConditionCodes(C0 | C2 | C3, ConditionCodesFor(comparison));
        if (!ctx.Aborted)
        {
            for (int p = 0; p < pops; p++)
            {
                PopX87();
            }
        }

        X87Complete(ctx.Flags, false);
        return true;
    }

    private bool X87CompareUnderflow(int pops)
    {
        SetConditionCodes(C0 | C2 | C3, C0 | C2 | C3);
        if (X87Masked(IE))
        {
            for (int p = 0; p < pops; p++)
            {
                PopX87();
            }
        }

        X87Complete(IE | SF, false);
        return true;
    }

    /// <summary>
    /// FCOMI/FCOMIP/FUCOMI/FUCOMIP: the comparison in ZF/PF/CF, with OF/SF/AF cleared, even when an unmasked
    /// exception suppresses the pop; C1 is cleared by a stack underflow and otherwise left alone (as this CPU's
    /// hardware does).
    /// </summary>
    private bool X87CompareFlags(int i, bool quiet, bool pop)
    {
        X87Comparison comparison;
        int flags;
        bool aborted;
        if (IsEmpty(0) || IsEmpty(i))
        {
            flags = IE | SF;
            comparison = X87Comparison.Unordered;
            aborted = !X87Masked(IE);
        }
        else
        {
            var ctx = NewX87Context();
            comparison = X87Arithmetic.Compare(St(0), St(i), quiet, ref ctx);
            flags = ctx.Flags;
            aborted = ctx.Aborted;
        }

        ulong rflags = _state.RFlags & ~(Flags.ZF | Flags.PF | Flags.CF | Flags.OF | Flags.SF | Flags.AF);
        rflags |= comparison switch
        {
            X87Comparison.Greater => 0,
            X87Comparison.Less => Flags.CF,
            X87Comparison.Equal => Flags.ZF,
            _ => Flags.ZF | Flags.PF | Flags.CF,
        };
        _state.RFlags = rflags;
        bool underflow = IsEmpty(0) || IsEmpty(i);
        if (pop && !aborted)
        {
            PopX87();
        }

        X87Complete(flags, underflow ? false : null);
        return true;
    }

    /// <summary>FTST: ST(0) compared with +0.0.</summary>
    private bool X87Test()
    {
        if (IsEmpty(0))
        {
            return X87CompareUnderflow(0);
        }

        return X87CompareWith(Float80.PositiveZero, false, quiet: false, pops: 0);
    }

    /// <summary>FXAM: the class of ST(0) in C3/C2/C0 and its sign in C1; never raises an exception.</summary>
    private bool X87Examine()
    {
        var value = St(0);
        int codes;
        if (IsEmpty(0))
        {
            codes = C3 | C0;
        }
        else
        {
            codes = value.Class switch
            {
                Float80Class.Unsupported => 0,
                Float80Class.QuietNaN or Float80Class.SignalingNaN => C0,
                Float80Class.Normal => C2,
                Float80Class.Infinity => C2 | C0,
                Float80Class.Zero => C3,
                _ => C3 | C2, // denormal and pseudo-denormal
            };
        }

        SetConditionCodes(C0 | C2 | C3, codes);
        X87Complete(0, value.Sign);
        return true;
    }

    /// <summary>FCHS/FABS: sign changes with no exception (SNaNs untouched); C1 = 0.</summary>
    private bool X87SignOperation(bool negate)
    {
        if (IsEmpty(0))
        {
            return X87StackUnderflow(0, 0);
        }

        var value = St(0);
        SetSt(0, negate ? value.Negate() : value.Abs());
        X87Complete(0, false);
        return true;
    }

    /// <summary>FCMOVcc (DA, or negated DB): ST(0) = ST(i) when the RFLAGS condition holds.</summary>
    private bool X87ConditionalMove(int condition, int i, bool negate)
    {
        if (IsEmpty(0) || IsEmpty(i))
        {
            return X87StackUnderflow(0, 0);
        }

        ulong f = _state.RFlags;
        bool holds = condition switch
        {
            0 => (f & Flags.CF) != 0,
            1 => (f & Flags.ZF) != 0,
            2 => (f & (Flags.CF | Flags.ZF)) != 0,
            _ => (f & Flags.PF) != 0,
        };
        if (holds != negate)
        {
            SetSt(0, St(i));
        }

        X87Complete(0, null);
        return true;
    }

    // ---------------------------------------------------------------- D9 F0-FF

    private bool X87Miscellaneous1(int i) => i switch
    {
        0 => X87Unary(X87UnaryOperation.TwoToXMinusOne),
        1 => X87StackBinary(X87BinaryOperation.YLog2X),
        2 => X87PartialTangent(),
        3 => X87StackBinary(X87BinaryOperation.ArcTangent),
        4 => X87ExtractExponent(),
        5 => X87PartialRemainder(ieee: true),
        6 => X87RotateStack(-1),
        _ => X87RotateStack(1),
    };

    private bool X87Miscellaneous2(int i) => i switch
    {
        0 => X87PartialRemainder(ieee: false),
        1 => X87StackBinary(X87BinaryOperation.YLog2XPlusOne),
        2 => X87Unary(X87UnaryOperation.SquareRoot),
        3 => X87SineCosine(),
        4 => X87Unary(X87UnaryOperation.RoundToIntegral),
        5 => X87ScaleInstruction(),
        6 => X87Unary(X87UnaryOperation.Sine),
        _ => X87Unary(X87UnaryOperation.Cosine),
    };

    private enum X87UnaryOperation
    {
        SquareRoot,
        RoundToIntegral,
        TwoToXMinusOne,
        Sine,
        Cosine,
    }

    private enum X87BinaryOperation
    {
        YLog2X,
        YLog2XPlusOne,
        ArcTangent,
    }

    /// <summary>FSQRT, FRNDINT, F2XM1, FSIN, FCOS: ST(0) = f(ST(0)); FSIN/FCOS out of range set C2 and change nothing else.</summary>
    private bool X87Unary(X87UnaryOperation operation)
    {
        bool trigonometric = operation is X87UnaryOperation.Sine or X87UnaryOperation.Cosine;
        if (IsEmpty(0))
        {
            if (trigonometric)
            {
                SetConditionCodes(C2, 0);
            }

            return X87StackUnderflow(0, 0);
        }

        var ctx = NewX87Context();
        var x = St(0);
        bool outOfRange = false;
        if (trigonometric)
        {
            SetConditionCodes(C2, 0);
        }

        var result = operation switch
        {
            X87UnaryOperation.SquareRoot => X87Arithmetic.SquareRoot(x, ctx.Precision, ref ctx),
            X87UnaryOperation.RoundToIntegral => X87Arithmetic.RoundToIntegral(x, ref ctx),
            X87UnaryOperation.TwoToXMinusOne => X87Transcendental.TwoToXMinusOne(x, ref ctx),
            X87UnaryOperation.Sine => X87Transcendental.Sine(x, ref ctx, out outOfRange),
            _ => X87Transcendental.Cosine(x, ref ctx, out outOfRange),
        };
        if (ctx.Aborted)
        {
            return X87Aborted(ctx);
        }

        if (outOfRange)
        {
            SetConditionCodes(C2, C2);
        }
        else
        {
            SetSt(0, result);
        }

        X87Complete(ctx.Flags, ctx.RoundedUp);
        return true;
    }

    /// <summary>FYL2X, FYL2XP1, FPATAN: ST(1) = f(ST(1), ST(0)), then pop.</summary>
    private bool X87StackBinary(X87BinaryOperation operation)
    {
        if (IsEmpty(0) || IsEmpty(1))
        {
            return X87StackUnderflow(1, 1);
        }

        var ctx = NewX87Context();
        var x = St(0);
        var y = St(1);
        var result = operation switch
        {
            X87BinaryOperation.YLog2X => X87Transcendental.YLog2X(y, x, ref ctx),
            X87BinaryOperation.YLog2XPlusOne => X87Transcendental.YLog2XPlusOne(y, x, ref ctx),
            _ => X87Transcendental.ArcTangent(y, x, ref ctx),
        };
        if (ctx.Aborted)
        {
            return X87Aborted(ctx);
        }

        SetSt(1, result);
        PopX87();
        X87Complete(ctx.Flags, ctx.RoundedUp);
        return true;
    }

    /// <summary>FPTAN: ST(0) = tan(ST(0)), then push 1.0; out of range sets C2 and changes nothing else.</summary>
    private bool X87PartialTangent()
    {
        if (IsEmpty(0))
        {
            SetConditionCodes(C2, 0);
            return X87StackUnderflowPush();
        }

        if (!IsEmpty(7))
        {
            SetConditionCodes(C2, 0);
            return X87StackOverflowPush();
        }

        var ctx = NewX87Context();
        var result = X87Transcendental.Tangent(St(0), ref ctx, out bool outOfRange);
        SetConditionCodes(C2, outOfRange ? C2 : 0);
        if (ctx.Aborted)
        {
            return X87Aborted(ctx);
        }

        if (!outOfRange)
        {
            // A NaN result (NaN or invalid operand) is pushed in place of the 1.0 too.
            SetSt(0, result);
            PushX87(result.IsNaN ? result : Float80.One);
        }

        X87Complete(ctx.Flags, ctx.RoundedUp);
        return true;
    }

    /// <summary>FSINCOS: ST(0) = sin, then push cos; out of range sets C2 and changes nothing else.</summary>
    private bool X87SineCosine()
    {
        if (IsEmpty(0))
        {
            SetConditionCodes(C2, 0);
            return X87StackUnderflowPush();
        }

        if (!IsEmpty(7))
        {
            SetConditionCodes(C2, 0);
            return X87StackOverflowPush();
        }

        var ctx = NewX87Context();
        X87Transcendental.SineCosine(St(0), ref ctx, out var sine, out var cosine, out bool outOfRange);
        SetConditionCodes(C2, outOfRange ? C2 : 0);
        if (ctx.Aborted)
        {
            return X87Aborted(ctx);
        }

        if (!outOfRange)
        {
            SetSt(0, sine);
            PushX87(cosine);
        }

        X87Complete(ctx.Flags, ctx.RoundedUp);
        return true;
    }

    /// <summary>FXTRACT: ST(0) = exponent, then push the significand.</summary>
    private bool X87ExtractExponent()
    {
        if (IsEmpty(0))
        {
            return X87StackUnderflowPush();
        }

        if (!IsEmpty(7))
        {
            return X87StackOverflowPush();
        }

        var ctx = NewX87Context();
        X87Arithmetic.Extract(St(0), ref ctx, out var exponent, out var significand);
        if (ctx.Aborted)
        {
            return X87Aborted(ctx);
        }

        SetSt(0, exponent);
        PushX87(significand);
        X87Complete(ctx.Flags, false);
        return true;
    }

    /// <summary>Stack underflow of an instruction that replaces ST(0) and pushes: masked, both get the indefinite.</summary>
    private bool X87StackUnderflowPush()
    {
        if (X87Masked(IE))
        {
            SetSt(0, Float80.Indefinite);
            PushX87(Float80.Indefinite);
        }

        X87Complete(IE | SF, false);
        return true;
    }

    /// <summary>Stack overflow of an instruction that replaces ST(0) and pushes: masked, both get the indefinite.</summary>
    private bool X87StackOverflowPush()
    {
        if (X87Masked(IE))
        {
            SetSt(0, Float80.Indefinite);
            PushX87(Float80.Indefinite);
        }

        X87Complete(IE | SF, true);
        return true;
    }

    /// <summary>FPREM/FPREM1: the quotient's low bits in C0/C3/C1 and C2 = 1 for a partial remainder.</summary>
    private bool X87PartialRemainder(bool ieee)
    {
        if (IsEmpty(0) || IsEmpty(1))
        {
            SetConditionCodes(C2, 0);
            return X87StackUnderflow(0, 0);
        }

        var ctx = NewX87Context();
        var result = X87Arithmetic.Remainder(St(0), St(1), ieee, ref ctx, out bool partial, out int quotient);
        SetConditionCodes(C2, 0);
        if (ctx.Aborted)
        {
            return X87Aborted(ctx);
        }

        SetSt(0, result);
        if (quotient >= 0)
        {
            // A reduction took place: the quotient bits (or C2 for a partial one). NaN and invalid results leave C0/C3.
            int codes = partial ? C2 : ((quotient & 4) != 0 ? C0 : 0) | ((quotient & 2) != 0 ? C3 : 0);
            SetConditionCodes(C0 | C2 | C3, codes);
        }

        X87Complete(ctx.Flags, !partial && quotient > 0 && (quotient & 1) != 0);
        return true;
    }

    /// <summary>FSCALE: ST(0) = ST(0) × 2^trunc(ST(1)).</summary>
    private bool X87ScaleInstruction()
    {
        if (IsEmpty(0) || IsEmpty(1))
        {
            return X87StackUnderflow(0, 0);
        }

        var ctx = NewX87Context();
        var result = X87Arithmetic.Scale(St(0), St(1), ref ctx);
        if (ctx.Aborted)
        {
            return X87Aborted(ctx);
        }

        SetSt(0, result);
        X87Complete(ctx.Flags, ctx.RoundedUp);
        return true;
    }

    /// <summary>FDECSTP (−1) and FINCSTP (+1): TOP moves, tags and contents stay; C1 = 0.</summary>
    private bool X87RotateStack(int delta)
    {
        Fx.Top = Fx.Top + delta;
        X87Complete(0, false);
        return true;
    }
}
