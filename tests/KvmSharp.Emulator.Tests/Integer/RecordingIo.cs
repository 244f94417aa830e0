using KvmSharp.Hypervisor;

namespace KvmSharp.Emulator.Tests.Integer;

/// <summary>
/// An <see cref="IVcpuIo"/> that records every port and MMIO access in order. Port and MMIO reads return
/// consecutive bytes from <see cref="NextReadByte"/> (so the order of element reads shows in the data);
/// <see cref="StopAfterAccesses"/> makes <see cref="StopRequested"/> true once that many accesses happened.
/// </summary>
internal sealed class RecordingIo : IVcpuIo
{
    public List<IoAccess> Accesses { get; } = [];

    public byte NextReadByte { get; set; } = 0x40;

    public int StopAfterAccesses { get; set; } = int.MaxValue;

    public bool StopRequested => Accesses.Count >= StopAfterAccesses;

    public void PortRead(ushort port, Span<byte> data)
    {
        Fill(data);
        Accesses.Add(new IoAccess(IoKind.PortRead, port, data.ToArray()));
    }

    public void PortWrite(ushort port, ReadOnlySpan<byte> data) => Accesses.Add(new IoAccess(IoKind.PortWrite, port, data.ToArray()));

    public void MmioRead(ulong address, Span<byte> data)
    {
        Fill(data);
        Accesses.Add(new IoAccess(IoKind.MmioRead, address, data.ToArray()));
    }

    public void MmioWrite(ulong address, ReadOnlySpan<byte> data) => Accesses.Add(new IoAccess(IoKind.MmioWrite, address, data.ToArray()));

    private void Fill(Span<byte> data)
    {
        for (int i = 0; i < data.Length; i++)
        {
            data[i] = NextReadByte++;
        }
    }
}

internal enum IoKind
{
    PortRead,
    PortWrite,
    MmioRead,
    MmioWrite,
}

internal sealed record IoAccess(IoKind Kind, ulong Address, byte[] Data)
{
    public override string ToString() => FormattableString.Invariant($"{Kind} 0x{Address:X} {Convert.ToHexString(Data)}");
}
