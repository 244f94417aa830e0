namespace KvmSharp.Memory;

/// <summary>A host-side access (loader, test, device setup) fell outside guest RAM.</summary>
public sealed class GuestMemoryException : Exception
{
    public GuestMemoryException(ulong address, ulong length)
        : base($"Guest-physical range 0x{address:x}+0x{length:x} is not backed by guest RAM.")
    {
        Address = address;
        Length = length;
    }

    public GuestMemoryException(string message)
        : base(message)
    {
    }

    public ulong Address { get; }

    public ulong Length { get; }
}
