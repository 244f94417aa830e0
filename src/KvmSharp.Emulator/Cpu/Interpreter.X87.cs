using KvmSharp.Emulator.Decoding;
using KvmSharp.Emulator.Execution.X87;
using static KvmSharp.Emulator.Execution.X87.X87Bits;

namespace KvmSharp.Emulator.Cpu;

/// <summary>
/// x87 FPU instructions (D8-DF, FWAIT): dispatch, the #NM/#MF checks, the register stack and the status word.
/// The arithmetic itself is <see cref="X87Arithmetic"/> (exact 80-bit soft-float) and <see cref="X87Transcendental"/>.
/// </summary>
/// <remarks>
/// <para>
/// Exceptions: an unmasked exception sets FSW.ES and B and is delivered as #MF at the start of the next waiting x87
/// instruction or FWAIT; CR0.NE is assumed set (the legacy FERR#/IRQ13 path is not modelled). An unmasked #I, #D or
/// #Z leaves the destination and TOP alone; an unmasked #O/#U stores the bias-adjusted result to a register or
/// nothing to memory.
/// </para>
/// <para>
/// Pointers as this CPU's host (a Sapphire Rapids with CPUID.7.0:EBX[6] FDP_EXCPTN_ONLY and [13] FCS/FDS
/// deprecation) keeps them: every non-control instruction records FIP (the offset of its first byte; the linear
/// address in real mode); FOP, and FDP (the memory operand's offset) when there is one, are recorded only by an
/// instruction that raises an unmasked exception; FCS and FDS read as 0.
/// </para>
/// </remarks>
public sealed partial class Interpreter
{

    private const int TagEmpty = 3;

    private FxState Fx => _state.Fx;

    /// <summary>
    /// Whether an unmasked x87 exception is pending (FSW.ES): the next waiting x87 instruction, FWAIT, and MMX
    /// instructions raise #MF before executing. For the MMX/SSE family too.
    /// </summary>
    private bool X87ExceptionPending => (Fx.Fsw & ES) != 0;

    private bool ExecuteX87()
    {
        if (_insn.Opcode == 0x9B)
        {
            // FWAIT: #NM only when both MP and TS are set (EM does not matter), then any pending #MF.
            if ((_state.Cr0 & (Cr0Mp | Cr0Ts)) == (Cr0Mp | Cr0Ts))
            {
                return Fault(CpuException.DeviceNotAvailable);
            }

            return !X87ExceptionPending || Fault(CpuException.X87FloatingPoint);
        }

        int index = _insn.X87Index;
        bool memory = _insn.HasMemoryOperand;
        if (memory && index is 0x19 or 0x29 or 0x39)
        {
            return Unimplemented(); // FISTTP m32/m64/m16 is SSE3, which this CPU does not advertise
        }

        if ((_state.Cr0 & (Cr0Em | Cr0Ts)) != 0)
        {
            return Fault(CpuException.DeviceNotAvailable);
        }

        if (X87ExceptionPending && !IsNonWaitingX87(index, memory))
        {
            return Fault(CpuException.X87FloatingPoint);
        }

        return memory ? ExecuteX87Memory(index) : ExecuteX87Register(index, _insn.ModRm & 7);
    }

    /// <summary>FNINIT, FNCLEX, FNSTCW, FNSTSW, FNSTENV, FNSAVE and the 8087/287 leftovers FNENI/FNDISI/FNSETPM.</summary>
    private bool IsNonWaitingX87(int index, bool memory)
    {
        if (memory)
        {
            return index is 0x0E or 0x0F or 0x2E or 0x2F; // D9 /6 /7, DD /6 /7
        }

        byte modrm = _insn.ModRm;
        return (_insn.Opcode == 0xDB && modrm is >= 0xE0 and <= 0xE4) || (_insn.Opcode == 0xDF && modrm == 0xE0);
    }

    // ---------------------------------------------------------------- the register stack

    private int Physical(int i) => (Fx.Top + i) & 7;

    private bool IsEmpty(int i) => Fx.Tag(Physical(i)) == TagEmpty;

    private Float80 St(int i)
    {
        int p = Physical(i);
        return new Float80(Fx.Significand(p), Fx.SignExponent(p));
    }

    private void SetSt(int i, Float80 value)
    {
        int p = Physical(i);
        Fx.Significand(p) = value.Significand;
        Fx.SignExponent(p) = value.SignExponent;
        Fx.SetTag(p, Fx.Classify(p));
    }

    private void PopX87()
    {
        Fx.SetTag(Physical(0), TagEmpty);
        Fx.Top = Fx.Top + 1;
    }

    private void PushX87(Float80 value)
    {
        Fx.Top = Fx.Top - 1;
        SetSt(0, value);
    }

    // ---------------------------------------------------------------- status and pointers

    private X87Context NewX87Context() => new(Fx.Fcw);

    /// <summary>Whether the exception <paramref name="flag"/> is masked in FCW.</summary>
    private bool X87Masked(int flag) => (Fx.Fcw & flag) != 0;

    /// <summary>
    /// Records the outcome of a non-control instruction: ORs <paramref name="flags"/> into the exception flags,
    /// sets C1 to <paramref name="c1"/> (unless null), sets ES/B when an exception is unmasked, and updates FIP
    /// (always) and FOP/FDP (when an unmasked exception was raised).
    /// </summary>
    private void X87Complete(int flags, bool? c1)
    {
        int fsw = Fx.Fsw | (flags & (Exceptions | SF));
        if (c1.HasValue)
        {
            fsw = c1.Value ? fsw | C1 : fsw & ~C1;
        }

        bool unmasked = (flags & ~Fx.Fcw & Exceptions) != 0;
        if ((fsw & ~Fx.Fcw & Exceptions) != 0)
        {
            fsw |= ES | B;
        }

        Fx.Fsw = (ushort)fsw;
        Fx.Fip = X87InstructionPointer();
        if (unmasked)
        {
            Fx.Fop = (ushort)(((_insn.Opcode & 7) << 8) | _insn.ModRm);
            if (_insn.HasMemoryOperand)
            {
                Fx.Fdp = X87DataPointer();
            }
        }
    }

    /// <summary>Sets the condition codes in <paramref name="mask"/> to <paramref name="values"/>.</summary>
    private void SetConditionCodes(int mask, int values) => Fx.Fsw = (ushort)((Fx.Fsw & ~mask) | (values & mask));

    private ulong X87InstructionPointer() =>
        _mode == CpuMode.Real16 ? (uint)(_state.Cs.Base + _state.Rip) : _state.Rip;

    private ulong X87DataPointer()
    {
        ulong offset = OperandOffset();
        return _mode == CpuMode.Real16 ? (uint)(_state.Segment(_insn.EffectiveSegment).Base + offset) : offset;
    }

    /// <summary>
    /// #IS: stack underflow (a source register is empty). IE and SF with C1 = 0; masked, the real indefinite goes to
    /// ST(<paramref name="destination"/>) (unless negative) and <paramref name="pops"/> registers are popped.
    /// </summary>
    private bool X87StackUnderflow(int destination, int pops)
    {
        if (X87Masked(IE))
        {
            if (destination >= 0)
            {
                SetSt(destination, Float80.Indefinite);
            }

            for (int i = 0; i < pops; i++)
            {
                PopX87();
            }
        }

        X87Complete(IE | SF, false);
        return true;
    }

    /// <summary>#IS: stack overflow (the push target is not empty). IE and SF with C1 = 1; masked, the real indefinite is pushed.</summary>
    private bool X87StackOverflow()
    {
        if (X87Masked(IE))
        {
            PushX87(Float80.Indefinite);
        }

        X87Complete(IE | SF, true);
        return true;
    }

    /// <summary>An operation stopped by an unmasked #I/#D/#Z: flags only, and C1 cleared.</summary>
    private bool X87Aborted(in X87Context ctx)
    {
        X87Complete(ctx.Flags, false);
        return true;
    }

    // ---------------------------------------------------------------- dispatch

    private bool ExecuteX87Memory(int index) => index switch
    {
        >= 0x00 and <= 0x07 => X87ArithmeticMemory(4, false), // D8: m32fp
        0x08 => X87LoadMemory(4),                             // D9 /0 FLD m32fp
        0x0A or 0x0B => X87StoreFloat(4, index == 0x0B),      // FST/FSTP m32fp
        0x0C => X87LoadEnvironment(false),                    // FLDENV
        0x0D => X87LoadControlWord(),                         // FLDCW
        0x0E => X87StoreEnvironment(false),                   // FNSTENV
        0x0F => WriteRmBytes16(Fx.Fcw),                       // FNSTCW
        >= 0x10 and <= 0x17 => X87ArithmeticMemory(4, true),  // DA: m32int
        0x18 => X87LoadInteger(4),                            // DB /0 FILD m32int
        0x1A or 0x1B => X87StoreInteger(4, index == 0x1B),    // FIST/FISTP m32int
        0x1D => X87LoadMemory(10),                            // FLD m80fp
        0x1F => X87StoreFloat(10, true),                      // FSTP m80fp
        >= 0x20 and <= 0x27 => X87ArithmeticMemory(8, false), // DC: m64fp
        0x28 => X87LoadMemory(8),                             // DD /0 FLD m64fp
        0x2A or 0x2B => X87StoreFloat(8, index == 0x2B),      // FST/FSTP m64fp
        0x2C => X87LoadEnvironment(true),                     // FRSTOR
        0x2E => X87StoreEnvironment(true),                    // FNSAVE
        0x2F => WriteRmBytes16(Fx.Fsw),                       // FNSTSW m16
        >= 0x30 and <= 0x37 => X87ArithmeticMemory(2, true),  // DE: m16int
        0x38 => X87LoadInteger(2),                            // DF /0 FILD m16int
        0x3A or 0x3B => X87StoreInteger(2, index == 0x3B),    // FIST/FISTP m16int
        0x3C => X87LoadBcd(),                                 // FBLD
        0x3D => X87LoadInteger(8),                            // FILD m64int
        0x3E => X87StoreBcd(),                                // FBSTP
        0x3F => X87StoreInteger(8, true),                     // FISTP m64int
        _ => Unimplemented(),                                 // reserved forms (the decoder already rejects them)
    };

    private bool ExecuteX87Register(int index, int i) => index switch
    {
        >= 0x00 and <= 0x07 => X87ArithmeticRegister(index & 7, i, destinationIsSt0: true, pop: false), // D8
        0x08 => X87LoadRegister(i),                                      // D9 C0 FLD ST(i)
        0x09 => X87Exchange(i),                                          // D9 C8 FXCH
        0x0A => X87Nop(),                                                // D9 D0 FNOP
        0x0C => _insn.ModRm switch
        {
            0xE0 => X87SignOperation(negate: true),                      // FCHS
            0xE1 => X87SignOperation(negate: false),                     // FABS
            0xE4 => X87Test(),                                           // FTST
            _ => X87Examine(),                                           // E5 FXAM
        },
        0x0D => X87LoadConstant(i),                                      // D9 E8-EE
        0x0E => X87Miscellaneous1(i),                                    // D9 F0-F7
        0x0F => X87Miscellaneous2(i),                                    // D9 F8-FF
        >= 0x10 and <= 0x13 => X87ConditionalMove(index & 3, i, negate: false), // DA C0-DF FCMOVcc
        0x15 => X87Compare(1, quiet: true, pops: 2),                    // DA E9 FUCOMPP
        >= 0x18 and <= 0x1B => X87ConditionalMove(index & 3, i, negate: true),  // DB C0-DF FCMOVNcc
        0x1C => _insn.ModRm switch
        {
            0xE2 => X87ClearExceptions(),                                // FNCLEX
            0xE3 => X87Initialize(),                                     // FNINIT
            _ => true,                                                   // FNENI, FNDISI, FNSETPM: no effect since the 387
        },
        0x1D => X87CompareFlags(i, quiet: true, pop: false),            // DB E8 FUCOMI
        0x1E => X87CompareFlags(i, quiet: false, pop: false),           // DB F0 FCOMI
        >= 0x20 and <= 0x27 => X87ArithmeticRegister(index & 7, i, destinationIsSt0: false, pop: false), // DC
        0x28 => X87Free(i, pop: false),                                  // DD C0 FFREE
        0x2A or 0x2B => X87StoreRegister(i, pop: index == 0x2B),        // DD D0/D8 FST/FSTP ST(i)
        0x2C => X87Compare(i, quiet: true, pops: 0),                    // DD E0 FUCOM
        0x2D => X87Compare(i, quiet: true, pops: 1),                    // DD E8 FUCOMP
        0x33 => X87Compare(1, quiet: false, pops: 2),                   // DE D9 FCOMPP
        >= 0x30 and <= 0x37 => X87ArithmeticRegister(index & 7, i, destinationIsSt0: false, pop: true), // DE
        0x38 => X87Free(i, pop: true),                                   // DF C0 FFREEP
        0x3C => X87StoreStatusToAx(),                                    // DF E0 FNSTSW AX
        0x3D => X87CompareFlags(i, quiet: true, pop: true),             // DF E8 FUCOMIP
        0x3E => X87CompareFlags(i, quiet: false, pop: true),            // DF F0 FCOMIP
        _ => Unimplemented(),
    };

    private bool X87Nop()
    {
        X87Complete(0, null);
        return true;
    }

    private bool WriteRmBytes16(ushort value) => WriteMemory(_insn.EffectiveSegment, OperandOffset(), 2, value);

    private bool X87StoreStatusToAx()
    {
        WriteRegister(Gpr.Rax, 2, Fx.Fsw);
        return true;
    }
}
