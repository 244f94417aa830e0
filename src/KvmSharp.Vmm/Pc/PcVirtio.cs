using System.Globalization;
using KvmSharp.Devices.Bus;
using KvmSharp.Devices.Pci;
using KvmSharp.Devices.Virtio;
using KvmSharp.Devices.Virtio.Pci;
using KvmSharp.Hypervisor;
using KvmSharp.Kvm;
using KvmSharp.Memory;
using KvmSharp.Vmm.Config;
using KvmSharp.Vmm.Pci;

namespace KvmSharp.Vmm.Pc;

/// <summary>
/// The PC's PCI bus and virtio devices (docs/pci.md, docs/virtio.md): the host bridge and configuration ports always,
/// then one virtio-pci function per <c>--disk</c> (in order: vda, vdb, ...), <c>--rng</c> and <c>--console virtio</c>.
/// On KVM, MSI-X goes through GSI routes and irqfds and queue notifications through ioeventfds served by one worker
/// thread; on the software CPU, messages go straight to the C# interrupt router and notifications are handled on the
/// vCPU thread that wrote the notify register.
/// </summary>
public sealed class PcVirtio : IDisposable
{
    private readonly List<IDisposable> _owned = [];
    private readonly List<VirtioPciTransport> _transports = [];
    private VirtioNotifyWorker? _worker;

    private PcVirtio(PciBus bus) => Bus = bus;

    public PciBus Bus { get; }

    public IReadOnlyList<VirtioPciTransport> Transports => _transports;

    /// <summary>The virtio console, when <c>--console virtio</c>: feed host input with its Enqueue.</summary>
    public VirtioConsole? Console { get; private set; }

    /// <summary>
    /// Creates the bus and the devices. Images are opened (and locked) here, so a missing or locked image fails the
    /// build with <see cref="BlockImageException"/> before any vCPU runs. <paramref name="kvm"/> is null on the
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
                var other => $"{slot} {other.GetType().Name}: {transport}",
            };
        }

        static string Queues(VirtQueueCounters q) => string.Create(CultureInfo.InvariantCulture,
            $"{q.Chains:N0} chains, {q.MalformedChains:N0} malformed, {q.RingErrors:N0} ring errors");
    }

    /// <summary>Starts the notification worker (KVM); call before the vCPUs run.</summary>
    public void Start() => _worker?.Start();

    /// <summary>Stops the worker, then closes devices and images. Call after the vCPUs stopped and before the VM closes.</summary>
    public void Dispose()
    {
        _worker?.Dispose();
        _worker = null;
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
