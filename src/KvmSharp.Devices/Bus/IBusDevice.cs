namespace KvmSharp.Devices.Bus;

/// <summary>
/// A device model reached through a port or MMIO range. Called on vCPU threads: implementations must not
/// allocate or block, and must answer every access (a guest mistake is answered like hardware, never thrown).
/// </summary>
public interface IBusDevice
{
    /// <summary>Fills <paramref name="data"/> for a read at <paramref name="offset"/> bytes into the device's range.</summary>
    void Read(ulong offset, Span<byte> data);

    /// <summary>Handles a write of <paramref name="data"/> at <paramref name="offset"/> bytes into the device's range.</summary>
    void Write(ulong offset, ReadOnlySpan<byte> data);
}
