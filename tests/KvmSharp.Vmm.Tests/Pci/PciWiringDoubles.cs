using KvmSharp.Devices.Virtio;
using KvmSharp.Hypervisor;
using KvmSharp.Kvm;
using KvmSharp.Native;
using KvmSharp.Vmm.Pci;

namespace KvmSharp.Vmm.Tests.Pci;

/// <summary>Records the KVM calls the PCI wiring makes, with the eventfds it passed (real ones, so tests can signal them).</summary>
internal sealed class RecordingWiring : IKvmInterruptWiring
{
    private readonly Lock _lock = new();

    public List<string> Calls { get; } = [];

    public List<IReadOnlyList<GsiRoute>> Tables { get; } = [];

    public Dictionary<uint, EventFd> Irqfds { get; } = [];

    public Dictionary<ulong, EventFd> Ioeventfds { get; } = [];

    public void SetGsiRouting(IReadOnlyList<GsiRoute> routes)
    {
        lock (_lock)
        {
            Tables.Add([.. routes]);
            Calls.Add($"routing {routes.Count}");
        }
    }

    public void AddIrqfd(EventFd eventFd, uint gsi)
    {
        lock (_lock)
        {
            Irqfds[gsi] = eventFd;
            Calls.Add($"irqfd {gsi}");
        }
    }

    public void RemoveIrqfd(EventFd eventFd, uint gsi)
    {
        lock (_lock)
        {
            Irqfds.Remove(gsi);
            Calls.Add($"irqfd- {gsi}");
        }
    }

    public void AddIoeventfd(EventFd eventFd, ulong address, uint length)
    {
        lock (_lock)
        {
            Ioeventfds[address] = eventFd;
            Calls.Add($"ioeventfd 0x{address:x}/{length}");
        }
    }

    public void RemoveIoeventfd(EventFd eventFd, ulong address, uint length)
    {
        lock (_lock)
        {
            Ioeventfds.Remove(address);
            Calls.Add($"ioeventfd- 0x{address:x}/{length}");
        }
    }
}

/// <summary>A two-queue virtio device that records kicks and can fail on one.</summary>
internal sealed class KickRecordingDevice : IVirtioDevice
{
    private readonly Lock _lock = new();
    private readonly List<int> _kicks = [];

    public ushort DeviceId => 4;

    public ulong DeviceFeatures => VirtioFeatures.Version1;

    public int QueueCount => 2;

    public ushort MaxQueueSize => 64;

    public int ConfigSize => 0;

    public int FailOnQueue { get; set; } = -1;

    public SemaphoreSlim Kicked { get; } = new(0);

    public int[] Kicks
    {
        get
        {
            lock (_lock)
            {
                return [.. _kicks];
            }
        }
    }

    public void ReadConfig(uint offset, Span<byte> data) => data.Clear();

    public void WriteConfig(uint offset, ReadOnlySpan<byte> data)
    {
    }

    public void Activate(ulong negotiatedFeatures, ReadOnlySpan<VirtQueueLayout> queues, IVirtioInterrupt interrupt)
    {
    }

    public void QueueNotify(int queue)
    {
        if (queue == FailOnQueue)
        {
            throw new IOException($"Backend of queue {queue} failed.");
        }

        lock (_lock)
        {
            _kicks.Add(queue);
        }

        Kicked.Release();
    }

    public void Reset()
    {
    }

    public void Dispose() => Kicked.Dispose();
}

internal sealed class NullInterruptSink : IInterruptSink
{
    public void SetLevel(uint gsi, bool level)
    {
    }

    public void SignalMsi(ulong address, uint data)
    {
    }
}
