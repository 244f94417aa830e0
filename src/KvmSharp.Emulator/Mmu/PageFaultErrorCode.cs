namespace KvmSharp.Emulator.Mmu;

/// <summary>The #PF error code pushed by the CPU (Intel SDM Vol. 3A 4.7, Figure 4-12).</summary>
[Flags]
public enum PageFaultErrorCode : uint
{
    /// <summary>A not-present page (P = 0) on a supervisor read.</summary>
    None = 0,

    /// <summary>P: 0 for a not-present entry, 1 for a protection or reserved-bit violation.</summary>
    Present = 1 << 0,

    /// <summary>W/R: the access was a write.</summary>
    Write = 1 << 1,

    /// <summary>U/S: the access was a user-mode access (not an implicit supervisor access).</summary>
    User = 1 << 2,

    /// <summary>RSVD: a reserved bit was set in some paging-structure entry.</summary>
    ReservedBit = 1 << 3,

    /// <summary>I/D: an instruction fetch, reported only when CR4.PAE = 1 and EFER.NXE = 1 (or CR4.SMEP = 1).</summary>
    InstructionFetch = 1 << 4,
}
