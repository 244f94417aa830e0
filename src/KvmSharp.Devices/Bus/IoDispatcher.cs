using KvmSharp.Hypervisor;

namespace KvmSharp.Devices.Bus;

/// <summary>
/// The <see cref="IVcpuIo"/> handed to every vCPU: port accesses go to the port bus, MMIO accesses (addresses
/// that are not RAM) to the MMIO bus. Shared by all vCPU threads; it holds no per-access state.
/// </summary>
public sealed class IoDispatcher : IVcpuIo
{
    private volatile bool _stopRequested;

    /// <summary>A dispatcher over a new empty port bus and a new empty MMIO bus.</summary>
    public IoDispatcher()
        : this(IoBus.CreatePortBus(), IoBus.CreateMmioBus())
    {
    }

    public IoDispatcher(IoBus ports, IoBus mmio)
    {
        ArgumentNullException.ThrowIfNull(ports);
        ArgumentNullException.ThrowIfNull(mmio);
        if (ReferenceEquals(ports, mmio))
        {
            throw new ArgumentException("The port bus and the MMIO bus must be two different buses.", nameof(mmio));
        }

        Ports = ports;
        Mmio = mmio;
    }

    public IoBus Ports { get; }

    public IoBus Mmio { get; }

    /// <summary>True once a device asked the VM to stop (see <see cref="RequestStop"/>); every vCPU's Run then returns.</summary>
    public bool StopRequested => _stopRequested;

    /// <summary>Asks the vCPUs to return from Run after the current access (the debug-exit device uses it). Any thread.</summary>
    public void RequestStop() => _stopRequested = true;

    /// <summary>Clears a stop request before the vCPUs run again.</summary>
    public void ClearStopRequest() => _stopRequested = false;

    public void PortRead(ushort port, Span<byte> data) => Ports.Read(port, data);

    public void PortWrite(ushort port, ReadOnlySpan<byte> data) => Ports.Write(port, data);

    public void MmioRead(ulong address, Span<byte> data) => Mmio.Read(address, data);

    public void MmioWrite(ulong address, ReadOnlySpan<byte> data) => Mmio.Write(address, data);
}
