namespace KvmSharp.Emulator.Cpu;

/// <summary>The x86 exception vectors (Intel SDM Vol. 3A 6.3.1).</summary>
public enum ExceptionVector : byte
{
    /// <summary>#DE: divide error.</summary>
    DivideError = 0,

    /// <summary>#DB: debug.</summary>
    Debug = 1,

    /// <summary>NMI.</summary>
    Nmi = 2,

    /// <summary>#BP: INT3.</summary>
    Breakpoint = 3,

    /// <summary>#OF: INTO with OF set.</summary>
    Overflow = 4,

    /// <summary>#BR: BOUND range exceeded.</summary>
    BoundRange = 5,

    /// <summary>#UD: invalid opcode.</summary>
    InvalidOpcode = 6,

    /// <summary>#NM: device not available (CR0.TS/EM).</summary>
    DeviceNotAvailable = 7,

    /// <summary>#DF: double fault.</summary>
    DoubleFault = 8,

    /// <summary>#TS: invalid TSS.</summary>
    InvalidTss = 10,

    /// <summary>#NP: segment not present.</summary>
    SegmentNotPresent = 11,

    /// <summary>#SS: stack fault.</summary>
    StackFault = 12,

    /// <summary>#GP: general protection.</summary>
    GeneralProtection = 13,

    /// <summary>#PF: page fault.</summary>
    PageFault = 14,

    /// <summary>#MF: x87 floating-point error.</summary>
    X87FloatingPoint = 16,

    /// <summary>#AC: alignment check.</summary>
    AlignmentCheck = 17,

    /// <summary>#MC: machine check.</summary>
    MachineCheck = 18,

    /// <summary>#XM: SIMD floating-point exception.</summary>
    SimdFloatingPoint = 19,
}
