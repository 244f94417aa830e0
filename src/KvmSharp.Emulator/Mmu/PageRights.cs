namespace KvmSharp.Emulator.Mmu;

/// <summary>
/// What a translation permits, after combining R/W, U/S and XD over every level with CR0.WP and EFER.NXE.
/// Bit <c>3 * (user ? 1 : 0) + (int)access</c> answers one (privilege, access) pair: see <see cref="PageRightsExtensions"/>.
/// </summary>
[Flags]
public enum PageRights : byte
{
    None = 0,
    SupervisorRead = 1 << 0,
    SupervisorWrite = 1 << 1,
    SupervisorExecute = 1 << 2,
    UserRead = 1 << 3,
    UserWrite = 1 << 4,
    UserExecute = 1 << 5,
    All = SupervisorRead | SupervisorWrite | SupervisorExecute | UserRead | UserWrite | UserExecute,
    AnyWrite = SupervisorWrite | UserWrite,
}

public static class PageRightsExtensions
{
    /// <summary>The bit of <see cref="PageRights"/> that answers <paramref name="access"/> at <paramref name="privilege"/>.</summary>
    public static int BitIndex(MemoryAccess access, AccessPrivilege privilege)
        => (privilege == AccessPrivilege.User ? 3 : 0) + (int)access;

    public static bool Allows(this PageRights rights, MemoryAccess access, AccessPrivilege privilege)
        => (((int)rights >> BitIndex(access, privilege)) & 1) != 0;
}
