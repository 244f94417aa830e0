namespace KvmSharp.Hypervisor.Snapshots;

/// <summary>
/// One part of a machine's saved state: a device, a vCPU, an interrupt controller. <paramref name="Id"/> names the part
/// (<c>serial0</c>, <c>vcpu1</c>, <c>virtio-blk0</c>), <paramref name="Version"/> the layout of its payload, so a
/// part's format can change without the others', and a reader can refuse one version it does not know by name.
/// </summary>
public sealed record SnapshotSection(string Id, int Version, ReadOnlyMemory<byte> Payload);
