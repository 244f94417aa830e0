namespace KvmSharp.Emulator.Cpu;

/// <summary>Architectural exception vectors (Intel SDM Vol. 3A 6.15, Table 6-1).</summary>
public enum ExceptionVector : byte
{
    /// <summary>#DE: DIV/IDIV by zero or a quotient that does not fit.</summary>
    DivideError = 0,

    /// <summary>#UD: an undefined (or not yet implemented) opcode.</summary>
    InvalidOpcode = 6,

    /// <summary>#SS: a stack reference to a non-canonical address.</summary>
    StackFault = 12,

    /// <summary>#GP: a general protection violation.</summary>
    GeneralProtection = 13,

    /// <summary>#PF: a page fault; CR2 holds the linear address.</summary>
    PageFault = 14,
}
