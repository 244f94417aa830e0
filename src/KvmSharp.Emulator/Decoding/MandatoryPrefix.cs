namespace KvmSharp.Emulator.Decoding;

/// <summary>
/// The prefix that selects among SSE (and POPCNT/TZCNT/LZCNT) forms of a 0F, 0F38 or 0F3A opcode.
/// F2/F3 (the last one seen) take precedence over 66, as on hardware.
/// </summary>
public enum MandatoryPrefix : byte
{
    /// <summary>No mandatory prefix: the plain (MMX or SSE packed-single) form.</summary>
    None,

    /// <summary>66: the packed-double or 128-bit integer form.</summary>
    P66,

    /// <summary>F3: the scalar-single form (or POPCNT/TZCNT/LZCNT, MOVDQU ...).</summary>
    PF3,

    /// <summary>F2: the scalar-double form.</summary>
    PF2,
}
