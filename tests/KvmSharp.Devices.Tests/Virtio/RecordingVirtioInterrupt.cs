using KvmSharp.Devices.Virtio;

namespace KvmSharp.Devices.Tests.Virtio;

/// <summary>An interrupt sink that records every call a device makes.</summary>
internal sealed class RecordingVirtioInterrupt : IVirtioInterrupt
{
    private readonly Lock _lock = new();
    private readonly List<int> _queueSignals = [];
    private int _configChanges;
    private int _needsReset;

    public IReadOnlyList<int> QueueSignals
    {
        get
        {
            lock (_lock)
            {
                return [.. _queueSignals];
            }
        }
    }

    public int ConfigChanges => Volatile.Read(ref _configChanges);

    /// <summary>What the device is told about bus mastering; tests clear it to check the device waits.</summary>
    public bool MemoryAccessAllowed { get; set; } = true;

    public int NeedsResetCalls => Volatile.Read(ref _needsReset);

    public void SignalQueue(int queue)
    {
        lock (_lock)
        {
            _queueSignals.Add(queue);
        }
    }

    public void SignalConfigChange() => Interlocked.Increment(ref _configChanges);

    public void NeedsReset() => Interlocked.Increment(ref _needsReset);

    public void Clear()
    {
        lock (_lock)
        {
            _queueSignals.Clear();
        }
    }
}
