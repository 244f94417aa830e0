namespace KvmSharp.Devices.Virtio;

/// <summary>
/// The device-side indices of a split virtqueue for snapshots: the next available-ring slot to read
/// (last_avail_idx), the next used index to publish, the used index at the last notification decision, and
/// whether the queue stopped on a ring error. The rings themselves live in guest RAM and are saved with it.
/// </summary>
public sealed record SplitVirtQueueState(ushort NextAvailIndex, ushort NextUsedIndex, ushort SignalledUsedIndex, bool Broken);
