namespace KvmSharp.Emulator.Execution;

/// <summary>RFLAGS bits (Intel SDM Vol. 1, 3.4.3 "EFLAGS Register"; AMD APM Vol. 2, 3.1.6).</summary>
public static class Flags
{
    /// <summary>Carry flag, bit 0.</summary>
    public const ulong CF = 1UL << CarryBit;

    /// <summary>Bit 1 is reserved and always reads as 1.</summary>
    public const ulong Reserved1 = 1UL << 1;

    /// <summary>Parity flag, bit 2: set when the low byte of the result has an even number of ones.</summary>
    public const ulong PF = 1UL << ParityBit;

    /// <summary>Auxiliary carry flag, bit 4: carry or borrow out of bit 3.</summary>
    public const ulong AF = 1UL << AuxiliaryBit;

    /// <summary>Zero flag, bit 6.</summary>
    public const ulong ZF = 1UL << ZeroBit;

    /// <summary>Sign flag, bit 7.</summary>
    public const ulong SF = 1UL << SignBit;

    /// <summary>Trap flag, bit 8.</summary>
    public const ulong TF = 1UL << 8;

    /// <summary>Interrupt enable flag, bit 9.</summary>
    public const ulong IF = 1UL << 9;

    /// <summary>Direction flag, bit 10.</summary>
    public const ulong DF = 1UL << 10;

    /// <summary>Overflow flag, bit 11.</summary>
    public const ulong OF = 1UL << OverflowBit;

    /// <summary>IOPL, bits 12-13.</summary>
    public const ulong Iopl = 3UL << 12;

    /// <summary>The IOPL field's shift.</summary>
    public const int IoplShift = 12;

    /// <summary>Nested task.</summary>
    public const ulong NT = 1UL << 14;

    /// <summary>Resume flag.</summary>
    public const ulong RF = 1UL << 16;

    /// <summary>Virtual-8086 mode.</summary>
    public const ulong VM = 1UL << 17;

    /// <summary>Alignment check (with CR0.AM and CPL 3).</summary>
    public const ulong AC = 1UL << 18;

    /// <summary>Virtual interrupt flag.</summary>
    public const ulong VIF = 1UL << 19;

    /// <summary>Virtual interrupt pending.</summary>
    public const ulong VIP = 1UL << 20;

    /// <summary>CPUID-available flag (software may toggle it).</summary>
    public const ulong ID = 1UL << 21;

    /// <summary>The six status flags that arithmetic instructions write: CF, PF, AF, ZF, SF, OF.</summary>
    public const ulong Arithmetic = CF | PF | AF | ZF | SF | OF;

    /// <summary>Bit positions, for shifting a computed 0/1 into place.</summary>
    public const int CarryBit = 0;

    /// <inheritdoc cref="CarryBit"/>
    public const int ParityBit = 2;

    /// <inheritdoc cref="CarryBit"/>
    public const int AuxiliaryBit = 4;

    /// <inheritdoc cref="CarryBit"/>
    public const int ZeroBit = 6;

    /// <inheritdoc cref="CarryBit"/>
    public const int SignBit = 7;

    /// <inheritdoc cref="CarryBit"/>
    public const int OverflowBit = 11;
}
