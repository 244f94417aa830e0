namespace KvmSharp.Emulator.Cpu;

/// <summary>
/// A fault raised by an instruction. The instruction had no architectural effect and RIP still
/// points at it; delivery through the IDT is the caller's job.
/// </summary>
/// <param name="Vector">The exception vector.</param>
/// <param name="ErrorCode">The error code pushed on delivery (meaningful when <paramref name="HasErrorCode"/>).</param>
/// <param name="HasErrorCode">Whether the vector pushes an error code (#GP, #SS, #PF).</param>
public readonly record struct CpuException(ExceptionVector Vector, uint ErrorCode, bool HasErrorCode)
{
    /// <summary>#DE.</summary>
    public static CpuException DivideError => new(ExceptionVector.DivideError, 0, false);

    /// <summary>#UD.</summary>
    public static CpuException InvalidOpcode => new(ExceptionVector.InvalidOpcode, 0, false);

    /// <summary>#GP(0).</summary>
    public static CpuException GeneralProtection => new(ExceptionVector.GeneralProtection, 0, true);

    /// <summary>#SS(0).</summary>
    public static CpuException StackFault => new(ExceptionVector.StackFault, 0, true);

    /// <summary>#PF with the given error code (CR2 is written by the interpreter).</summary>
    public static CpuException PageFault(uint errorCode) => new(ExceptionVector.PageFault, errorCode, true);
}
