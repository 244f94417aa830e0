namespace KvmSharp.Emulator.Cpu;

/// <summary>
/// An exception raised by an instruction. A fault had no architectural effect and RIP still points at the
/// instruction; delivery through the IDT is <see cref="Interpreter.DeliverException"/>'s job.
/// </summary>
/// <param name="Vector">The exception vector.</param>
/// <param name="ErrorCode">The error code pushed on delivery (meaningful when <paramref name="HasErrorCode"/>).</param>
/// <param name="HasErrorCode">Whether the vector pushes an error code (#DF, #TS, #NP, #SS, #GP, #PF, #AC).</param>
public readonly record struct CpuException(ExceptionVector Vector, uint ErrorCode, bool HasErrorCode)
{
    /// <summary>#DE.</summary>
    public static CpuException DivideError => new(ExceptionVector.DivideError, 0, false);

    /// <summary>#DB.</summary>
    public static CpuException Debug => new(ExceptionVector.Debug, 0, false);

    /// <summary>#BR.</summary>
    public static CpuException BoundRange => new(ExceptionVector.BoundRange, 0, false);

    /// <summary>#UD.</summary>
    public static CpuException InvalidOpcode => new(ExceptionVector.InvalidOpcode, 0, false);

    /// <summary>#NM.</summary>
    public static CpuException DeviceNotAvailable => new(ExceptionVector.DeviceNotAvailable, 0, false);

    /// <summary>#GP(0).</summary>
    public static CpuException GeneralProtection => new(ExceptionVector.GeneralProtection, 0, true);

    /// <summary>#SS(0).</summary>
    public static CpuException StackFault => new(ExceptionVector.StackFault, 0, true);

    /// <summary>#MF.</summary>
    public static CpuException X87FloatingPoint => new(ExceptionVector.X87FloatingPoint, 0, false);

    /// <summary>#XM.</summary>
    public static CpuException SimdFloatingPoint => new(ExceptionVector.SimdFloatingPoint, 0, false);

    /// <summary>#AC(0).</summary>
    public static CpuException AlignmentCheck => new(ExceptionVector.AlignmentCheck, 0, true);

    /// <summary>#PF with the given error code (CR2 is written by the interpreter).</summary>
    public static CpuException PageFault(uint errorCode) => new(ExceptionVector.PageFault, errorCode, true);

    /// <summary>#GP with a selector or IDT-vector error code.</summary>
    public static CpuException GeneralProtectionCode(uint errorCode) => new(ExceptionVector.GeneralProtection, errorCode, true);

    /// <summary>#SS with a selector error code.</summary>
    public static CpuException StackFaultCode(uint errorCode) => new(ExceptionVector.StackFault, errorCode, true);

    /// <summary>#NP with a selector error code.</summary>
    public static CpuException SegmentNotPresent(uint errorCode) => new(ExceptionVector.SegmentNotPresent, errorCode, true);

    /// <summary>#TS with a selector error code.</summary>
    public static CpuException InvalidTss(uint errorCode) => new(ExceptionVector.InvalidTss, errorCode, true);
}
