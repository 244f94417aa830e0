using System.Globalization;
using KvmSharp.Devices.Bus;
using KvmSharp.Devices.EventLoop;
using KvmSharp.Devices.Pci;
using KvmSharp.Devices.Virtio;
using KvmSharp.Devices.Virtio.Net;
using KvmSharp.Devices.Virtio.Pci;
using KvmSharp.Hypervisor;
using KvmSharp.Hypervisor.Snapshots;
using KvmSharp.Kvm;
using KvmSharp.Memory;
using KvmSharp.Vmm.Config;
using KvmSharp.Vmm.Net;
using KvmSharp.Vmm.Pci;

namespace KvmSharp.Vmm.Pc;

/// <summary>
/// The PC's PCI bus and virtio devices (docs/pci.md, docs/virtio.md): the host bridge and configuration ports always,
/// then one virtio-pci function per <c>--disk</c> (in order: vda, vdb, ...), <c>--rng</c>, <c>--console virtio</c>
/// and <c>--net</c> (eth0, eth1, ...). Network adapters do their packet I/O on one event-loop thread ("virtio-net").
/// On KVM, MSI-X goes through GSI routes and irqfds and queue notifications through ioeventfds served by one worker
/// thread; on the software CPU, messages go straight to the C# interrupt router and notifications are handled on the
/// vCPU thread that wrote the notify register.
/// </summary>
public sealed class PcVirtio : IDisposable
{
    private readonly List<IDisposable> _owned = [];
    private readonly List<VirtioPciTransport> _transports = [];
    private VirtioNotifyWorker? _worker;
    private DeviceEventLoop? _netLoop;

    private PcVirtio(PciBus bus) => Bus = bus;

    public PciBus Bus { get; }

    public IReadOnlyList<VirtioPciTransport> Transports => _transports;

    /// <summary>The virtio console, when <c>--console virtio</c>: feed host input with its Enqueue.</summary>
    public VirtioConsole? Console { get; private set; }

    /// <summary>
    /// Creates the bus and the devices. Images are opened (and locked) here, so a missing or locked image fails the
    /// build with <see cref="BlockImageException"/> before any vCPU runs; a network backend that cannot start (no
    /// passt, a busy TAP) fails it with <see cref="NetworkBackendException"/>. <paramref name="kvm"/> is null on the
    /// software CPU. Transactional: on failure everything opened so far is closed.
    /// </summary>
    public static PcVirtio Create(
        IoDispatcher io,
        IInterruptSink interrupts,
        GuestMemory memory,
        VmConfig config,
        Stream consoleOutput,
        KvmVm? kvm,
        Action<Exception> onWorkerFailure)
    {
        ArgumentNullException.ThrowIfNull(io);
        ArgumentNullException.ThrowIfNull(interrupts);
        ArgumentNullException.ThrowIfNull(memory);
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(consoleOutput);
        var pci = new PcVirtio(new PciBus(io.Mmio, interrupts));
        try
        {
            pci.Bus.RegisterConfigPorts(io.Ports);
            var routing = kvm is null ? null : new KvmMsiRouting(kvm);
            foreach (var disk in config.Disks)
            {
                var image = BlockImage.Open(disk.Path, disk.ReadOnly);
                pci._owned.Add(image);
                pci.Add(new VirtioBlock(memory, image, disk.Serial), interrupts, routing);
            }

            if (config.Rng)
            {
                pci.Add(new VirtioEntropy(memory), interrupts, routing);
            }

            if (config.Console == ConsoleKind.Virtio)
            {
                var console = new VirtioConsole(memory, consoleOutput);
                pci.Console = console;
                pci.Add(console, interrupts, routing);
            }

            for (int i = 0; i < config.Nets.Count; i++)
            {
                pci._netLoop ??= new DeviceEventLoop("virtio-net", onWorkerFailure);
                var backend = NetworkBackends.Open(config.Nets[i]);
                VirtioNet nic;
                try
                {
                    nic = new VirtioNet(memory, backend, config.Nets[i].Mac, pci._netLoop);
                }
                catch
                {
                    backend.Dispose();
                    throw;
                }

                pci.Add(nic, interrupts, routing);
            }

            if (kvm is not null && pci._transports.Count > 0)
            {
                pci._worker = new VirtioNotifyWorker(kvm, onWorkerFailure);
                foreach (var transport in pci._transports)
                {
                    pci._worker.Attach(transport);
                }
            }

            return pci;
        }
        catch
        {
            pci.Dispose();
            throw;
        }
    }

    /// <summary>
    /// One line per device for <c>--stats</c>: what it did, and what the guest got wrong (bad requests, malformed
    /// chains, ring errors, notifications it should not have sent), so a misbehaving driver shows without a debugger.
    /// </summary>
    public IEnumerable<string> StatisticsLines()
    {
        foreach (var t in _transports)
        {
            string slot = string.Create(CultureInfo.InvariantCulture, $"virtio 00:{t.DeviceNumber:x2}.0");
            string transport = string.Create(CultureInfo.InvariantCulture,
                $"{t.Notifications:N0} notifications ({t.InvalidNotifications:N0} invalid, {t.NotificationsWithoutBusMaster:N0} without bus master)");
            yield return t.Device switch
            {
                VirtioBlock b => string.Create(CultureInfo.InvariantCulture,
                    $"{slot} blk: {b.Counters.Reads:N0} reads, {b.Counters.Writes:N0} writes, {b.Counters.Flushes:N0} flushes, " +
                    $"{b.Counters.Unsupported:N0} unsupported, {b.Counters.BadRequests:N0} bad requests, {b.Counters.HostErrors:N0} host errors; " +
                    $"{Queues(b.QueueCounters)}; {transport}"),
                VirtioEntropy e => $"{slot} rng: {Queues(e.QueueCounters)}; {transport}",
                VirtioConsole c => string.Create(CultureInfo.InvariantCulture,
                    $"{slot} console: {c.BytesTransmitted:N0} bytes out, {c.BytesReceived:N0} bytes in; {Queues(c.QueueCounters)}; {transport}"),
                VirtioNet n => NetLine(slot, n, transport),
                var other => $"{slot} {other.GetType().Name}: {transport}",
            };
        }

        static string NetLine(string slot, VirtioNet n, string transport)
        {
            var c = n.Counters;
            return string.Create(CultureInfo.InvariantCulture,
                $"{slot} net {n.Backend.Description}: rx {c.RxFrames:N0} packets {c.RxBytes:N0} bytes {c.RxDropped:N0} dropped, " +
                $"tx {c.TxFrames:N0} packets {c.TxBytes:N0} bytes {c.TxDropped:N0} dropped; guest errors {c.GuestErrors:N0} " +
                $"(tx: {c.TxHeaderTooShort} header too short, {c.TxFrameTooShort} frame too short, {c.TxFrameTooLarge} too large, " +
                $"{c.TxOffloadNotNegotiated} offload not negotiated, {c.TxBadChecksumOffsets} bad checksum offsets, {c.TxNumBuffersSet} num_buffers set; " +
                $"rx: {c.RxHeaderTooShort} buffer too short for the header, {c.RxBuffersTooSmall} buffers too small, {c.RxNoWritable} not writable; " +
                $"ctrl: {c.CtrlBadLength} bad length, {c.CtrlBadOffloads} bad offloads, {c.CtrlUnsupported} unsupported); " +
                $"host: {n.Backend.OversizedFrames} oversized, {c.BackendRejected} rejected, link {(n.LinkUp ? "up" : "down")}; " +
                $"{Queues(n.QueueCounters)}; {transport}");
        }

        static string Queues(VirtQueueCounters q) => string.Create(CultureInfo.InvariantCulture,
            $"{q.Chains:N0} chains, {q.MalformedChains:N0} malformed, {q.RingErrors:N0} ring errors");
    }

    /// <summary>
    /// Stops the device threads between requests, for a pause or a snapshot (the vCPUs are parked first): the KVM
    /// notification worker finishes the queue drain it is in (every block request it popped completes) and the network
    /// loop the event it is handling; kicks and frames that arrive meanwhile wait in their eventfds and sockets. On the
    /// software CPU notifications run on the (parked) vCPU threads. Devices that were not started yet simply do not
    /// dispatch until <see cref="Unquiesce"/>.
    /// </summary>
    public void Quiesce()
    {
        _worker?.Pause();
        _netLoop?.Pause();

        // The console's input pump and a block kick on another thread reach the devices directly; they hold off too.
        QuiesceDevices(true);
    }

    /// <summary>Lets the device threads go on; what arrived while quiesced is handled first.</summary>
    public void Unquiesce()
    {
        QuiesceDevices(false);
        _netLoop?.Resume();
        _worker?.Resume();
    }

    private void QuiesceDevices(bool quiesce)
    {
        foreach (var transport in _transports)
        {
            Action? change = (transport.Device, quiesce) switch
            {
                (VirtioConsole console, true) => console.Quiesce,
                (VirtioConsole console, false) => console.Unquiesce,
                (VirtioBlock block, true) => block.Quiesce,
                (VirtioBlock block, false) => block.Unquiesce,
                _ => null,
            };
            change?.Invoke();
        }
    }

    /// <summary>Section ids of the transports' devices, in slot order: <c>virtio-blk0</c>, <c>virtio-net1</c>, ...</summary>
    private string[] DeviceIds()
    {
        var ids = new string[_transports.Count];
        var perKind = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < ids.Length; i++)
        {
            string kind = KindOf(_transports[i].Device);
            int n = perKind.GetValueOrDefault(kind);
            perKind[kind] = n + 1;
            ids[i] = string.Create(CultureInfo.InvariantCulture, $"virtio-{kind}{n}");
        }

        return ids;
    }

    /// <summary>
    /// How one device is saved and restored: <c>Save</c> makes its section; <c>Read</c> reads its record from a
    /// snapshot (throwing for a missing or unreadable one) and returns what applies it, so every record is read before
    /// anything is applied.
    /// </summary>
    private static (Func<SnapshotSection> Save, Func<SnapshotSections, Action> Read) Snapshotter(IVirtioDevice device, string id) => device switch
    {
        VirtioBlock b => (() => Section(id, b.Save()), s => Apply(s.Get<VirtioBlockState>(id, PcSnapshotVersions.Device), b.Restore)),
        VirtioEntropy e => (() => Section(id, e.Save()), s => Apply(s.Get<VirtioEntropyState>(id, PcSnapshotVersions.Device), e.Restore)),
        VirtioConsole c => (() => Section(id, c.Save()), s => Apply(s.Get<VirtioConsoleState>(id, PcSnapshotVersions.Device), c.Restore)),
        VirtioNet n => (() => Section(id, n.Save()), s => Apply(s.Get<VirtioNetState>(id, PcSnapshotVersions.Device), n.Restore)),
        var other => throw new InvalidOperationException($"{other.GetType().Name} has no saved state."),
    };

    private static SnapshotSection Section<T>(string id, T state)
        where T : class => SnapshotStateJson.ToSection(id, PcSnapshotVersions.Device, state);

    private static Action Apply<T>(T state, Action<T> restore) => () => restore(state);

    private static string KindOf(IVirtioDevice device) => device switch
    {
        VirtioBlock => "blk",
        VirtioEntropy => "rng",
        VirtioConsole => "console",
        VirtioNet => "net",
        _ => device.GetType().Name.ToLowerInvariant(),
    };

    /// <summary>
    /// The state of the PCI bus and every virtio function, while quiesced: <c>pci</c> (host bridge and configuration
    /// address port), then per device <c>virtio-KINDn.pci</c> (configuration space, MSI-X, transport registers, queue
    /// layouts) and <c>virtio-KINDn</c> (the device and its ring positions).
    /// </summary>
    public IReadOnlyList<SnapshotSection> SaveState()
    {
        var sections = new List<SnapshotSection>
        {
            SnapshotStateJson.ToSection("pci", PcSnapshotVersions.Device, new PcPciState(Bus.HostBridge.Save(), Bus.ConfigIo.Save())),
        };
        string[] ids = DeviceIds();
        for (int i = 0; i < _transports.Count; i++)
        {
            sections.Add(SnapshotStateJson.ToSection(ids[i] + ".pci", PcSnapshotVersions.Device, _transports[i].Save()));
            sections.Add(Snapshotter(_transports[i].Device, ids[i]).Save());
        }

        return sections;
    }

    /// <summary>
    /// Restores <see cref="SaveState"/>'s sections into this bus, built for the same configuration and not started:
    /// every record is read first (a missing or unreadable one changes nothing), then each transport (which activates
    /// its device again with the saved layouts), then each device's ring positions.
    /// </summary>
    public void RestoreState(SnapshotSections sections)
    {
        ArgumentNullException.ThrowIfNull(sections);
        var pci = sections.Get<PcPciState>("pci", PcSnapshotVersions.Device);
        string[] ids = DeviceIds();
        var transports = new VirtioPciTransportState[_transports.Count];
        var devices = new Action[_transports.Count];
        for (int i = 0; i < _transports.Count; i++)
        {
            transports[i] = sections.Get<VirtioPciTransportState>(ids[i] + ".pci", PcSnapshotVersions.Device);
            devices[i] = Snapshotter(_transports[i].Device, ids[i]).Read(sections);
        }

        var ours = new HashSet<string>(ids.Concat(ids.Select(id => id + ".pci")), StringComparer.Ordinal);
        foreach (var section in sections.All)
        {
            if (section.Id.StartsWith("virtio-", StringComparison.Ordinal) && !ours.Contains(section.Id))
            {
                throw new SnapshotStateException($"The snapshot has a device '{section.Id}' this machine does not: it was taken of a different machine.");
            }
        }

        Bus.HostBridge.Restore(pci.HostBridge);
        Bus.ConfigIo.Restore(pci.ConfigIo);
        for (int i = 0; i < _transports.Count; i++)
        {
            _transports[i].Restore(transports[i]);
            devices[i]();
        }
    }

    /// <summary>Each device's counters (what <see cref="StatisticsLines"/> prints), by device id and snake_case name.</summary>
    public IReadOnlyDictionary<string, IReadOnlyDictionary<string, long>> DeviceCounters()
    {
        var all = new SortedDictionary<string, IReadOnlyDictionary<string, long>>(StringComparer.Ordinal);
        string[] ids = DeviceIds();
        for (int i = 0; i < _transports.Count; i++)
        {
            var t = _transports[i];
            var c = new SortedDictionary<string, long>(StringComparer.Ordinal)
            {
                ["notifications"] = t.Notifications,
                ["invalid_notifications"] = t.InvalidNotifications,
            };
            switch (t.Device)
            {
                case VirtioBlock b:
                    c["reads"] = b.Counters.Reads;
                    c["writes"] = b.Counters.Writes;
                    c["flushes"] = b.Counters.Flushes;
                    c["bad_requests"] = b.Counters.BadRequests;
                    c["host_errors"] = b.Counters.HostErrors;
                    break;
                case VirtioConsole console:
                    c["bytes_out"] = console.BytesTransmitted;
                    c["bytes_in"] = console.BytesReceived;
                    break;
                case VirtioNet n:
                    c["rx_frames"] = n.Counters.RxFrames;
                    c["rx_bytes"] = n.Counters.RxBytes;
                    c["rx_dropped"] = n.Counters.RxDropped;
                    c["tx_frames"] = n.Counters.TxFrames;
                    c["tx_bytes"] = n.Counters.TxBytes;
                    c["tx_dropped"] = n.Counters.TxDropped;
                    break;
            }

            all[ids[i]] = c;
        }

        return all;
    }

    /// <summary>Starts the notification worker (KVM) and the network event loop; call before the vCPUs run.</summary>
    public void Start()
    {
        // A passt that could not set itself up has exited by now: fail the build with its reason.
        foreach (var t in _transports)
        {
            if (t.Device is VirtioNet { Backend: PasstBackend passt })
            {
                passt.EnsureServing();
            }
        }

        _worker?.Start();
        _netLoop?.Start();
    }

    /// <summary>Stops the worker, then closes devices and images. Call after the vCPUs stopped and before the VM closes.</summary>
    public void Dispose()
    {
        _worker?.Dispose();
        _worker = null;
        _netLoop?.Dispose();
        _netLoop = null;
        for (int i = _owned.Count - 1; i >= 0; i--)
        {
            _owned[i].Dispose();
        }

        _owned.Clear();
    }

    private void Add(IVirtioDevice device, IInterruptSink interrupts, KvmMsiRouting? routing)
    {
        // The image (if any) was added before the device: disposing in reverse closes the device first.
        _owned.Add(device);
        IMsiDelivery delivery;
        if (routing is null)
        {
            delivery = new DirectMsiDelivery(interrupts);
        }
        else
        {
            var irqfds = new KvmIrqfdMsiDelivery(routing, VirtioPciTransport.MsixVectorCount(device));
            _owned.Add(irqfds);
            delivery = irqfds;
        }

        var transport = new VirtioPciTransport(device, delivery);
        Bus.Add(transport);
        _transports.Add(transport);
    }
}

/// <summary>The saved state of the PCI host bridge and the configuration address port.</summary>
public sealed record PcPciState(PciFunctionState HostBridge, PciConfigIoState ConfigIo);

/// <summary>Section versions of the PC's snapshot parts.</summary>
public static class PcSnapshotVersions
{
    public const int Device = 1;
}
