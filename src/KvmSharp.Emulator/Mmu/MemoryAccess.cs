namespace KvmSharp.Emulator.Mmu;

/// <summary>The kind of access being translated. The values index <see cref="PageRights"/> bits.</summary>
public enum MemoryAccess : byte
{
    Read = 0,
    Write = 1,

    /// <summary>An instruction fetch.</summary>
    Execute = 2,
}
