namespace KvmSharp.Devices.Virtio;

/// <summary>
/// What a <see cref="VirtioBlock"/> has answered, by outcome. Written under the device lock, readable from any
/// thread. Chains the queue refused before the device saw them are in <see cref="VirtioBlock.QueueCounters"/>.
/// </summary>
public sealed class VirtioBlockCounters
{
    private long _reads;
    private long _writes;
    private long _flushes;
    private long _getIds;
    private long _discards;
    private long _writeZeroes;
    private long _unsupported;
    private long _badRequests;
    private long _hostErrors;
    private long _missingStatus;
    private long _dataSyncs;

    /// <summary>VIRTIO_BLK_T_IN requests completed with VIRTIO_BLK_S_OK.</summary>
    public long Reads => Volatile.Read(ref _reads);

    /// <summary>VIRTIO_BLK_T_OUT requests completed with VIRTIO_BLK_S_OK.</summary>
    public long Writes => Volatile.Read(ref _writes);

    public long Flushes => Volatile.Read(ref _flushes);

    public long GetIds => Volatile.Read(ref _getIds);

    public long Discards => Volatile.Read(ref _discards);

    public long WriteZeroes => Volatile.Read(ref _writeZeroes);

    /// <summary>Requests answered VIRTIO_BLK_S_UNSUPP (unknown type, feature not negotiated, reserved flags).</summary>
    public long Unsupported => Volatile.Read(ref _unsupported);

    /// <summary>Requests answered VIRTIO_BLK_S_IOERR for a driver mistake (short header, bad length, out of range, wrong direction, write to a read-only disk).</summary>
    public long BadRequests => Volatile.Read(ref _badRequests);

    /// <summary>Requests answered VIRTIO_BLK_S_IOERR because the host's I/O failed or came up short.</summary>
    public long HostErrors => Volatile.Read(ref _hostErrors);

    /// <summary>Chains with no device-writable byte for the status: returned used with length 0, nothing written.</summary>
    public long MissingStatus => Volatile.Read(ref _missingStatus);

    /// <summary>fdatasync calls: one per FLUSH, and one per write when the driver left the cache writethrough (no FLUSH negotiated).</summary>
    public long DataSyncs => Volatile.Read(ref _dataSyncs);

    internal void CountRead() => Volatile.Write(ref _reads, _reads + 1);

    internal void CountWrite() => Volatile.Write(ref _writes, _writes + 1);

    internal void CountFlush() => Volatile.Write(ref _flushes, _flushes + 1);

    internal void CountGetId() => Volatile.Write(ref _getIds, _getIds + 1);

    internal void CountDiscard() => Volatile.Write(ref _discards, _discards + 1);

    internal void CountWriteZeroes() => Volatile.Write(ref _writeZeroes, _writeZeroes + 1);

    internal void CountUnsupported() => Volatile.Write(ref _unsupported, _unsupported + 1);

    internal void CountBadRequest() => Volatile.Write(ref _badRequests, _badRequests + 1);

    internal void CountHostError() => Volatile.Write(ref _hostErrors, _hostErrors + 1);

    internal void CountMissingStatus() => Volatile.Write(ref _missingStatus, _missingStatus + 1);

    internal void CountDataSync() => Volatile.Write(ref _dataSyncs, _dataSyncs + 1);
}
