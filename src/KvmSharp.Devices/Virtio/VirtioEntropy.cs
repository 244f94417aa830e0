using KvmSharp.Memory;
using KvmSharp.Native;

namespace KvmSharp.Devices.Virtio;

/// <summary>Fills <paramref name="destination"/> with random bytes; returns 0 or an errno.</summary>
public delegate int EntropySource(Span<byte> destination);

/// <summary>
/// A virtio entropy device (virtio 1.x section 5.4, device ID 4): one request queue whose device-writable buffers
/// it fills from the host's getrandom(2), straight into guest RAM.
/// </summary>
/// <remarks>
/// <para>Each chain gets at most <see cref="MaxBytesPerRequest"/> bytes ("The device MUST place one or more random
/// bytes into the buffer, but it MAY use less than the entire buffer length"), so a guest cannot hold a vCPU in
/// the device by posting gigabytes; the used length says how many. Device-readable buffers in a chain (the driver
/// must not post any) are ignored. If the host source fails, the chain is used with the bytes filled so far and
/// the failure is counted.</para>
/// <para>Thread-safe (one lock); the request path allocates nothing.</para>
/// </remarks>
public sealed class VirtioEntropy : IVirtioDevice
{
    public const ushort EntropyDeviceId = 4;

    public const ushort MaxRequestQueueSize = 64;

    /// <summary>The most random bytes one chain receives.</summary>
    public const int MaxBytesPerRequest = 64 * 1024;

    private readonly GuestMemory _memory;
    private readonly EntropySource _source;
    private readonly Lock _lock = new();
    private readonly VirtQueueCounters _queueCounters = new();

    private SplitVirtQueue? _queue;
    private long _bytesProvided;
    private long _hostErrors;

    /// <param name="memory">Guest RAM the buffers point into.</param>
    /// <param name="source">Where the bytes come from; the host's getrandom(2) when null.</param>
    public VirtioEntropy(GuestMemory memory, EntropySource? source = null)
    {
        ArgumentNullException.ThrowIfNull(memory);
        _memory = memory;
        _source = source ?? HostRandom.Fill;
    }

    public ushort DeviceId => EntropyDeviceId;

    public ulong DeviceFeatures => VirtioFeatures.Version1 | VirtioFeatures.EventIndex | VirtioFeatures.IndirectDescriptors;

    public int QueueCount => 1;

    public ushort MaxQueueSize => MaxRequestQueueSize;

    /// <summary>The entropy device has no configuration space.</summary>
    public int ConfigSize => 0;

    /// <summary>Random bytes written into guest buffers.</summary>
    public long BytesProvided => Volatile.Read(ref _bytesProvided);

    /// <summary>Times the host source failed.</summary>
    public long HostErrors => Volatile.Read(ref _hostErrors);

    public VirtQueueCounters QueueCounters => _queueCounters;

    public void ReadConfig(uint offset, Span<byte> data) => data.Clear();

    public void WriteConfig(uint offset, ReadOnlySpan<byte> data)
    {
    }

    public void Activate(ulong negotiatedFeatures, ReadOnlySpan<VirtQueueLayout> queues, IVirtioInterrupt interrupt)
    {
        ArgumentNullException.ThrowIfNull(interrupt);
        if (queues.Length != QueueCount)
        {
            throw new ArgumentException($"A virtio entropy device has {QueueCount} queue; the transport passed {queues.Length}.", nameof(queues));
        }

        lock (_lock)
        {
            _queue = queues[0].Enabled
                ? new SplitVirtQueue(_memory, queues[0], negotiatedFeatures & DeviceFeatures, 0, interrupt, _queueCounters)
                : null;
        }
    }

    public void QueueNotify(int queue)
    {
        lock (_lock)
        {
            if (queue != 0 || _queue is not { } requests)
            {
                return;
            }

            do
            {
                requests.DisableNotifications();
                while (requests.TryPop(out var chain))
                {
                    requests.AddUsed(chain.HeadIndex, Fill(chain.Writable));
                }
            }
            while (requests.EnableNotifications());

            requests.NotifyIfNeeded();
        }
    }

    public void Reset()
    {
        lock (_lock)
        {
            _queue = null;
        }
    }

    public VirtioEntropyState Save()
    {
        lock (_lock)
        {
            return new VirtioEntropyState(_queue?.Save());
        }
    }

    /// <summary>Restores queue indices from <see cref="Save"/>; call after <see cref="Activate"/> with the saved features and layout.</summary>
    public void Restore(VirtioEntropyState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        lock (_lock)
        {
            if (state.RequestQueue is { } saved)
            {
                if (_queue is null)
                {
                    throw new InvalidOperationException("The saved entropy device had an active queue: activate the device with the saved layout before restoring it.");
                }

                _queue.Restore(saved);
            }
        }
    }

    public void Dispose() => Reset();

    /// <summary>Fills the writable buffers in order, up to the per-request cap; returns the bytes filled.</summary>
    private uint Fill(ReadOnlySpan<ChainSegment> writable)
    {
        int filled = 0;
        foreach (var segment in writable)
        {
            int length = (int)Math.Min(segment.Length, (uint)(MaxBytesPerRequest - filled));
            if (length == 0)
            {
                continue;
            }

            if (!_memory.TryGetSpan(segment.Address, length, out var span))
            {
                break;
            }

            int failed = _source(span);
            _memory.MarkDirty(segment.Address, (ulong)length); // after the write, even a partial one
            if (failed != 0)
            {
                Volatile.Write(ref _hostErrors, _hostErrors + 1);
                break;
            }

            filled += length;
            if (filled == MaxBytesPerRequest)
            {
                break;
            }
        }

        Volatile.Write(ref _bytesProvided, _bytesProvided + filled);
        return (uint)filled;
    }
}
