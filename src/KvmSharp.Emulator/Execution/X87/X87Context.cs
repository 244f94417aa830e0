namespace KvmSharp.Emulator.Execution.X87;

/// <summary>x87 status and control word bits (Intel SDM Vol. 1 8.1.3, 8.1.5).</summary>
public static class X87Bits
{
    /// <summary>Invalid operation.</summary>
    public const int IE = 1 << 0;

    /// <summary>Denormal operand.</summary>
    public const int DE = 1 << 1;

    /// <summary>Divide by zero.</summary>
    public const int ZE = 1 << 2;

    /// <summary>Overflow.</summary>
    public const int OE = 1 << 3;

    /// <summary>Underflow.</summary>
    public const int UE = 1 << 4;

    /// <summary>Precision (inexact result).</summary>
    public const int PE = 1 << 5;

    /// <summary>Stack fault (with IE; C1 tells overflow from underflow).</summary>
    public const int SF = 1 << 6;

    /// <summary>Exception summary: an unmasked exception is pending.</summary>
    public const int ES = 1 << 7;

    /// <summary>Condition code C0.</summary>
    public const int C0 = 1 << 8;

    /// <summary>Condition code C1.</summary>
    public const int C1 = 1 << 9;

    /// <summary>Condition code C2.</summary>
    public const int C2 = 1 << 10;

    /// <summary>Condition code C3.</summary>
    public const int C3 = 1 << 14;

    /// <summary>Busy: mirrors ES.</summary>
    public const int B = 1 << 15;

    /// <summary>The six exception flags (and, in the control word, their masks).</summary>
    public const int Exceptions = 0x3F;

    /// <summary>All four condition codes.</summary>
    public const int ConditionCodes = C0 | C1 | C2 | C3;

    /// <summary>The control-word bits the FPU keeps: masks, bit 6 (reads as 1), PC, RC and the infinity bit.</summary>
    public const int ControlWordMask = 0x1F7F;

    /// <summary>Round to nearest (even).</summary>
    public const int RoundNearest = 0;

    /// <summary>Round down (toward −∞).</summary>
    public const int RoundDown = 1;

    /// <summary>Round up (toward +∞).</summary>
    public const int RoundUp = 2;

    /// <summary>Round toward zero (chop).</summary>
    public const int RoundToZero = 3;
}

/// <summary>
/// One x87 operation's environment: the control word it runs under, and the exception flags and C1 (round-up) it
/// produces. Operations raise flags through it; an unmasked invalid, denormal or divide-by-zero exception
/// (<see cref="Aborted"/>) means the instruction must not write its result nor pop.
/// </summary>
public struct X87Context
{
    /// <summary>Creates a context for the control word <paramref name="control"/>.</summary>
    public X87Context(ushort control)
    {
        Control = control;
    }

    /// <summary>The FCW.</summary>
    public ushort Control { get; }

    /// <summary>The exception flags raised (FSW bits 0-6).</summary>
    public int Flags { get; set; }

    /// <summary>The result was rounded up in magnitude (C1).</summary>
    public bool RoundedUp { get; set; }

    /// <summary>The rounding control: <see cref="X87Bits.RoundNearest"/> ... <see cref="X87Bits.RoundToZero"/>.</summary>
    public readonly int RoundingControl => (Control >> 10) & 3;

    /// <summary>The significand bits the precision control selects: 24, 53 or 64 (the reserved value 01 acts as 64).</summary>
    public readonly int Precision => ((Control >> 8) & 3) switch
    {
        0 => 24,
        2 => 53,
        _ => 64,
    };

    /// <summary>An unmasked pre-computation exception (#I, #D, #Z) was raised: the instruction has no result.</summary>
    public readonly bool Aborted => (Flags & ~Control & (X87Bits.IE | X87Bits.DE | X87Bits.ZE)) != 0;

    /// <summary>Whether the exception <paramref name="flag"/> is masked.</summary>
    public readonly bool IsMasked(int flag) => (Control & flag) != 0;

    /// <summary>Raises <paramref name="flag"/>; true when it is unmasked (a pre-computation exception then stops the operation).</summary>
    public bool Raise(int flag)
    {
        Flags |= flag;
        return (Control & flag) == 0;
    }
}
