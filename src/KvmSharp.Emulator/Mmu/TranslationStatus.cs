namespace KvmSharp.Emulator.Mmu;

public enum TranslationStatus : byte
{
    Ok,

    /// <summary>#PF: see <see cref="PageFault"/> for CR2 and the error code.</summary>
    PageFault,

    /// <summary>
    /// A non-canonical address under 4-level paging: #GP(0), or #SS(0) for a stack reference. Not a page fault:
    /// nothing is walked and CR2 is not written.
    /// </summary>
    NonCanonical,
}
