using KvmSharp.Kvm;

namespace KvmSharp.Vmm.Pci;

/// <summary>
/// The VM's GSI routing table when MSI-X vectors are routed in the kernel: KVM's PC defaults (GSI 0-15 to the PICs,
/// 0-23 to the IOAPIC pins) plus one MSI route per vector, on GSIs from <see cref="FirstMsiGsi"/> up.
/// KVM_SET_GSI_ROUTING replaces the whole table, so every change sends all of it; changes are rare (a driver
/// programs a vector at probe time and when it moves the interrupt to another CPU). One per VM, shared by every
/// <see cref="KvmIrqfdMsiDelivery"/>. Thread-safe.
/// </summary>
public sealed class KvmMsiRouting
{
    /// <summary>First GSI for MSI routes: the in-kernel IOAPIC has pins 0-23.</summary>
    public const uint FirstMsiGsi = 24;

    /// <summary>GSIs KVM accepts in a routing table (KVM_MAX_IRQ_ROUTES).</summary>
    public const uint MaxGsi = 4096;

    private readonly IKvmInterruptWiring _wiring;
    private readonly Lock _lock = new();
    private readonly List<GsiRoute> _routes = GsiRoute.PcDefaults();
    private readonly int _fixedRoutes;
    private readonly Dictionary<uint, int> _msiRouteIndex = [];
    private uint _nextGsi = FirstMsiGsi;

    /// <summary>Routing for <paramref name="vm"/>, which must have its irqchip (KVM_CREATE_IRQCHIP).</summary>
    public KvmMsiRouting(KvmVm vm)
        : this(new KvmVmWiring(vm ?? throw new ArgumentNullException(nameof(vm))))
    {
    }

    internal KvmMsiRouting(IKvmInterruptWiring wiring)
    {
        _wiring = wiring;
        _fixedRoutes = _routes.Count;
    }

    internal IKvmInterruptWiring Wiring => _wiring;

    /// <summary>MSI routes in the table.</summary>
    public int MsiRouteCount
    {
        get
        {
            lock (_lock)
            {
                return _routes.Count - _fixedRoutes;
            }
        }
    }

    /// <summary>Reserves a GSI for an MSI route (none is installed until <see cref="SetMsiRoute"/>).</summary>
    public uint AllocateGsi()
    {
        lock (_lock)
        {
            if (_nextGsi >= MaxGsi)
            {
                throw new InvalidOperationException($"All {MaxGsi - FirstMsiGsi} MSI GSIs of the VM are in use. Give devices fewer queues.");
            }

            return _nextGsi++;
        }
    }

    /// <summary>Routes <paramref name="gsi"/> to the message (address, data) and installs the table in KVM.</summary>
    public void SetMsiRoute(uint gsi, ulong address, uint data)
    {
        lock (_lock)
        {
            var route = GsiRoute.ToMsi(gsi, address, data);
            if (_msiRouteIndex.TryGetValue(gsi, out int index))
            {
                _routes[index] = route;
            }
            else
            {
                _msiRouteIndex[gsi] = _routes.Count;
                _routes.Add(route);
            }

            _wiring.SetGsiRouting(_routes);
        }
    }

    /// <summary>The routes KVM has now (a copy).</summary>
    public IReadOnlyList<GsiRoute> Snapshot()
    {
        lock (_lock)
        {
            return [.. _routes];
        }
    }
}
