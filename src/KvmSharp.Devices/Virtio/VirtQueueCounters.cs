namespace KvmSharp.Devices.Virtio;

/// <summary>
/// What a device's queues have done, summed over every activation (the counters outlive a reset). Written by the
/// thread that owns the queue, readable from any thread.
/// </summary>
public sealed class VirtQueueCounters
{
    private long _chains;
    private long _malformedChains;
    private long _ringErrors;
    private long _notifications;
    private long _suppressedNotifications;
    private int _lastError;

    /// <summary>Valid chains handed to the device.</summary>
    public long Chains => Volatile.Read(ref _chains);

    /// <summary>Chains refused for a chain error and returned used with length 0.</summary>
    public long MalformedChains => Volatile.Read(ref _malformedChains);

    /// <summary>Ring errors (each stops its queue and requests a device reset).</summary>
    public long RingErrors => Volatile.Read(ref _ringErrors);

    /// <summary>Used-buffer notifications sent.</summary>
    public long Notifications => Volatile.Read(ref _notifications);

    /// <summary>Used-buffer notifications the driver's suppression (event index or NO_INTERRUPT) made unnecessary.</summary>
    public long SuppressedNotifications => Volatile.Read(ref _suppressedNotifications);

    /// <summary>The most recent chain or ring error.</summary>
    public ChainError LastError => (ChainError)Volatile.Read(ref _lastError);

    internal void CountChain() => Volatile.Write(ref _chains, _chains + 1);

    internal void CountMalformed(ChainError error)
    {
        Volatile.Write(ref _malformedChains, _malformedChains + 1);
        Volatile.Write(ref _lastError, (int)error);
    }

    internal void CountRingError(ChainError error)
    {
        Volatile.Write(ref _ringErrors, _ringErrors + 1);
        Volatile.Write(ref _lastError, (int)error);
    }

    internal void CountNotification(bool sent)
    {
        if (sent)
        {
            Volatile.Write(ref _notifications, _notifications + 1);
        }
        else
        {
            Volatile.Write(ref _suppressedNotifications, _suppressedNotifications + 1);
        }
    }
}
