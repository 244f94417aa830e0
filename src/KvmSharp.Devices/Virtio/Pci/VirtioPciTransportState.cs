using KvmSharp.Devices.Pci;

namespace KvmSharp.Devices.Virtio.Pci;

/// <summary>One virtqueue's registers in the common configuration structure.</summary>
public sealed record VirtioPciQueueState(ushort Size, ushort MsixVector, bool Enabled, ulong DescriptorTable, ulong AvailableRing, ulong UsedRing);

/// <summary>
/// The saved state of a <see cref="VirtioPciTransport"/>: the PCI function (configuration space), the MSI-X table,
/// and the common configuration and ISR registers. The device's own state (ring positions, backend) is not part of
/// it: <see cref="IVirtioDevice"/> has no save/restore yet.
/// </summary>
public sealed record VirtioPciTransportState(
    PciFunctionState Function,
    MsixState Msix,
    uint DeviceFeatureSelect,
    uint DriverFeatureSelect,
    ulong DriverFeatures,
    bool UnofferedFeaturesWritten,
    ushort ConfigMsixVector,
    byte DeviceStatus,
    byte ConfigGeneration,
    ushort QueueSelect,
    byte Isr,
    bool Activated,
    VirtioPciQueueState[] Queues);
