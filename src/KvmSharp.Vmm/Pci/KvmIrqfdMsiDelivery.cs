using KvmSharp.Devices.Pci;
using KvmSharp.Kvm;
using KvmSharp.Native;

namespace KvmSharp.Vmm.Pci;

/// <summary>
/// MSI-X delivery through KVM's in-kernel routing: each vector of a function owns a GSI, an MSI route to the vector's
/// message and an irqfd, so a delivery is one eventfd write, from any thread, with no ioctl. The route follows the
/// message lazily: when a delivery finds the vector's address or data changed since the route was installed (the
/// driver reprogrammed the vector while it was masked), it reinstalls the route first. Messages outside the x86
/// interrupt window are dropped and counted, as <see cref="DirectMsiDelivery"/> does.
/// </summary>
/// <remarks>
/// The alternative on KVM is <see cref="DirectMsiDelivery"/> over the VM's interrupt sink (KVM_SIGNAL_MSI per
/// interrupt): simpler, no GSIs, the fallback when the host lacks KVM_CAP_IRQ_ROUTING or KVM_CAP_IRQFD. Steady-state
/// deliveries allocate nothing; reinstalling a route builds the routing table (rare).
/// </remarks>
public sealed class KvmIrqfdMsiDelivery : IMsiDelivery, IDisposable
{
    private readonly KvmMsiRouting _routing;
    private readonly IKvmInterruptWiring _wiring;
    private readonly Vector[] _vectors;
    private readonly Lock _lock = new();
    private long _delivered;
    private long _dropped;
    private long _routeUpdates;
    private bool _disposed;

    /// <param name="routing">The VM's routing table (one per VM).</param>
    /// <param name="vectorCount">Vectors of the function's MSI-X table (VirtioPciTransport.MsixVectorCount).</param>
    public KvmIrqfdMsiDelivery(KvmMsiRouting routing, int vectorCount)
    {
        ArgumentNullException.ThrowIfNull(routing);
        ArgumentOutOfRangeException.ThrowIfLessThan(vectorCount, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(vectorCount, MsixCapability.MaxVectors);
        _routing = routing;
        _wiring = routing.Wiring;
        _vectors = new Vector[vectorCount];
        try
        {
            for (int i = 0; i < vectorCount; i++)
            {
                _vectors[i] = new Vector(routing.AllocateGsi(), new EventFd());
            }
        }
        catch
        {
            DisposeEventFds();
            throw;
        }
    }

    /// <summary>Messages signalled through an irqfd.</summary>
    public long Delivered => Interlocked.Read(ref _delivered);

    /// <summary>Messages dropped: not an interrupt address, or a vector beyond the table.</summary>
    public long Dropped => Interlocked.Read(ref _dropped);

    /// <summary>Times a vector's route was (re)installed.</summary>
    public long RouteUpdates => Interlocked.Read(ref _routeUpdates);

    /// <summary>The GSI that carries <paramref name="vector"/>.</summary>
    public uint GsiOf(int vector) => _vectors[vector].Gsi;

    public void Deliver(int vector, ulong address, uint data)
    {
        if ((uint)vector >= (uint)_vectors.Length || !X86MsiAddress.IsInterrupt(address))
        {
            Interlocked.Increment(ref _dropped);
            return;
        }

        var v = _vectors[vector];
        lock (_lock)
        {
            if (_disposed)
            {
                // The machine is shutting down while a device still completes requests.
                Interlocked.Increment(ref _dropped);
                return;
            }

            if (!v.Routed || v.Address != address || v.Data != data)
            {
                _routing.SetMsiRoute(v.Gsi, address, data);
                v.Address = address;
                v.Data = data;
                v.Routed = true;
                Interlocked.Increment(ref _routeUpdates);
            }

            if (!v.IrqfdBound)
            {
                // The route exists before the irqfd, so the kernel resolves the irqfd to this MSI at once.
                _wiring.AddIrqfd(v.EventFd, v.Gsi);
                v.IrqfdBound = true;
            }

            v.EventFd.Signal();
        }

        Interlocked.Increment(ref _delivered);
    }

    public void Dispose()
    {
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            foreach (var v in _vectors)
            {
                if (v is { IrqfdBound: true })
                {
                    _wiring.RemoveIrqfd(v.EventFd, v.Gsi);
                    v.IrqfdBound = false;
                }
            }

            DisposeEventFds();
        }
    }

    private void DisposeEventFds()
    {
        foreach (var v in _vectors)
        {
            v?.EventFd.Dispose();
        }
    }

    private sealed class Vector(uint gsi, EventFd eventFd)
    {
        public uint Gsi { get; } = gsi;

        public EventFd EventFd { get; } = eventFd;

        public bool Routed { get; set; }

        public bool IrqfdBound { get; set; }

        public ulong Address { get; set; }

        public uint Data { get; set; }
    }
}
