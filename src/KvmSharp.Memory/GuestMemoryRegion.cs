using KvmSharp.Native;

namespace KvmSharp.Memory;

/// <summary>One contiguous range of guest-physical RAM backed by one host mapping.</summary>
public sealed class GuestMemoryRegion
{
    private readonly MemoryMapping _mapping;

    internal GuestMemoryRegion(ulong guestPhysicalAddress, MemoryMapping mapping)
    {
        GuestPhysicalAddress = guestPhysicalAddress;
        _mapping = mapping;
        Size = mapping.Length;
    }

    public ulong GuestPhysicalAddress { get; }

    public ulong Size { get; }

    /// <summary>First guest-physical address past the region.</summary>
    public ulong End => GuestPhysicalAddress + Size;

    /// <summary>Host virtual address of the region's first byte (for KVM memory slots and zero-copy I/O).</summary>
    public nint HostAddress => _mapping.Address;

    internal MemoryMapping Mapping => _mapping;

    public bool Contains(ulong address) => address - GuestPhysicalAddress < Size;

    public override string ToString() => $"[0x{GuestPhysicalAddress:x}, 0x{End:x})";
}
