namespace KvmSharp.Devices.Virtio;

/// <summary>A <see cref="VirtioBlock"/>'s state for snapshots: its request queue's indices, or null when the device was not active.</summary>
public sealed record VirtioBlockState(SplitVirtQueueState? RequestQueue);
