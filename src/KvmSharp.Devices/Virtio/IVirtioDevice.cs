namespace KvmSharp.Devices.Virtio;

/// <summary>
/// A virtio device as its transport sees it (virtio 1.x, "Basic Facilities of a Virtio Device"): the device type,
/// the features it offers, its configuration space and its queues. Transport-neutral: the modern PCI transport
/// (src/KvmSharp.Devices/Virtio/Pci) drives it today, virtio-mmio later, and unit tests drive it directly.
/// </summary>
/// <remarks>
/// <para>Life cycle, in the order the transport calls it: <see cref="ReadConfig"/>/<see cref="WriteConfig"/> at any
/// time; <see cref="Activate"/> once the driver set DRIVER_OK, with the negotiated features and the queue layouts
/// the driver wrote; <see cref="QueueNotify"/> for each driver kick of an enabled queue after activation;
/// <see cref="Reset"/> when the driver writes status 0 (the device drops every queue and forgets the features;
/// it may be activated again).</para>
/// <para>Threads: <see cref="QueueNotify"/> is called on vCPU threads or on the transport's notification worker
/// (an ioeventfd on KVM), possibly for different queues at once; config accesses come from vCPU threads. The
/// device serializes what needs it. Nothing here may throw for anything the guest controls: a bad chain is
/// answered as the virtio spec says (status IOERR/UNSUPP, or <see cref="IVirtioInterrupt.NeedsReset"/>).</para>
/// </remarks>
public interface IVirtioDevice : IDisposable
{
    /// <summary>The virtio device ID (2 block, 3 console, 4 entropy); the PCI device ID is 0x1040 + this.</summary>
    ushort DeviceId { get; }

    /// <summary>Every feature bit the device offers, including <see cref="VirtioFeatures.Version1"/> and the ring features it implements.</summary>
    ulong DeviceFeatures { get; }

    /// <summary>Number of virtqueues.</summary>
    int QueueCount { get; }

    /// <summary>The largest queue size the device accepts (a power of two, at most 32768).</summary>
    ushort MaxQueueSize { get; }

    /// <summary>Size in bytes of the device-specific configuration space.</summary>
    int ConfigSize { get; }

    /// <summary>Reads device configuration bytes; bytes beyond <see cref="ConfigSize"/> read as zero.</summary>
    void ReadConfig(uint offset, Span<byte> data);

    /// <summary>Writes device configuration bytes; writes to read-only or absent fields are ignored.</summary>
    void WriteConfig(uint offset, ReadOnlySpan<byte> data);

    /// <summary>
    /// Starts the device after DRIVER_OK. <paramref name="queues"/> has <see cref="QueueCount"/> entries; a queue
    /// the driver did not enable has <see cref="VirtQueueLayout.Enabled"/> false and must not be touched.
    /// </summary>
    void Activate(ulong negotiatedFeatures, ReadOnlySpan<VirtQueueLayout> queues, IVirtioInterrupt interrupt);

    /// <summary>The driver made buffers available on queue <paramref name="queue"/>: process them.</summary>
    void QueueNotify(int queue);

    /// <summary>Device reset (status 0): stop using every queue and return to the state before activation.</summary>
    void Reset();
}

/// <summary>Where the driver put one split virtqueue, as the transport collected it.</summary>
/// <param name="Size">Queue size the driver chose (a power of two, 1..MaxQueueSize).</param>
/// <param name="DescriptorTable">Guest-physical address of the descriptor table (16-byte aligned).</param>
/// <param name="AvailableRing">Guest-physical address of the driver (available) ring (2-byte aligned).</param>
/// <param name="UsedRing">Guest-physical address of the device (used) ring (4-byte aligned).</param>
/// <param name="Enabled">queue_enable was written 1.</param>
public readonly record struct VirtQueueLayout(ushort Size, ulong DescriptorTable, ulong AvailableRing, ulong UsedRing, bool Enabled);

/// <summary>How a device tells the driver something happened; the transport maps it to MSI-X vectors or INTx + ISR.</summary>
public interface IVirtioInterrupt
{
    /// <summary>Used buffers were published on <paramref name="queue"/> and the ring's suppression rules say to notify.</summary>
    void SignalQueue(int queue);

    /// <summary>The device configuration changed.</summary>
    void SignalConfigChange();

    /// <summary>The device hit an error it cannot recover from (a malformed ring): sets DEVICE_NEEDS_RESET and signals a config change.</summary>
    void NeedsReset();

    /// <summary>
    /// Whether the device may read and write guest memory now (on PCI: Bus Master Enable is set). Work the device
    /// starts on its own, such as delivering console input, waits while this is false; the transport does not pass
    /// on notifications then.
    /// </summary>
    bool MemoryAccessAllowed { get; }
}

/// <summary>Transport- and device-independent feature bits (virtio 1.x section 6, "Reserved Feature Bits").</summary>
public static class VirtioFeatures
{
    public const ulong IndirectDescriptors = 1UL << 28;
    public const ulong EventIndex = 1UL << 29;
    public const ulong Version1 = 1UL << 32;
    public const ulong AccessPlatform = 1UL << 33;
    public const ulong RingPacked = 1UL << 34;
}
