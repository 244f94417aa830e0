namespace KvmSharp.Devices.Virtio;

/// <summary>A <see cref="VirtioEntropy"/>'s state for snapshots: its queue's indices, or null when the device was not active.</summary>
public sealed record VirtioEntropyState(SplitVirtQueueState? RequestQueue);
