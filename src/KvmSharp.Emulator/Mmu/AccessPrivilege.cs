namespace KvmSharp.Emulator.Mmu;

/// <summary>Whether an access is a user-mode or a supervisor-mode access (Intel SDM Vol. 3A 4.6).</summary>
public enum AccessPrivilege : byte
{
    /// <summary>An explicit access made at CPL 0, 1 or 2.</summary>
    Supervisor = 0,

    /// <summary>An explicit access made at CPL 3.</summary>
    User = 1,

    /// <summary>
    /// An implicit supervisor-mode access at any CPL: GDT/LDT/IDT/TSS reads, a task switch, the stack of an
    /// interrupt delivered to ring 0. Checked like <see cref="Supervisor"/> and reported with U/S = 0 in the
    /// error code; SMAP, when added, treats it as if RFLAGS.AC = 0.
    /// </summary>
    ImplicitSupervisor = 2,
}
