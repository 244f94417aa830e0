using KvmSharp.Devices.Virtio;

namespace KvmSharp.Devices.Tests.Virtio.Pci;

/// <summary>A virtio device that records what its transport asks of it.</summary>
internal sealed class FakeVirtioDevice(ushort deviceId = 2, int queueCount = 2, ushort maxQueueSize = 256, int configSize = 8) : IVirtioDevice
{
    public const ulong OfferedFeatures = VirtioFeatures.Version1 | VirtioFeatures.EventIndex | VirtioFeatures.IndirectDescriptors | (1UL << 9);

    private readonly byte[] _config = [.. Enumerable.Range(0, configSize).Select(i => (byte)(0xC0 + i))];

    public ushort DeviceId { get; } = deviceId;

    public ulong DeviceFeatures { get; set; } = OfferedFeatures;

    public int QueueCount { get; } = queueCount;

    public ushort MaxQueueSize { get; } = maxQueueSize;

    public int ConfigSize { get; } = configSize;

    public List<(ulong Features, VirtQueueLayout[] Queues)> Activations { get; } = [];

    public IVirtioInterrupt? Interrupt { get; private set; }

    public List<int> Notifies { get; } = [];

    public int Resets { get; private set; }

    public List<(uint Offset, byte[] Data)> ConfigWrites { get; } = [];

    public List<(uint Offset, int Length)> ConfigReads { get; } = [];

    /// <summary>Runs inside QueueNotify (a device that completes requests synchronously).</summary>
    public Action<int>? OnNotify { get; set; }

    public void ReadConfig(uint offset, Span<byte> data)
    {
        ConfigReads.Add((offset, data.Length));
        for (int i = 0; i < data.Length; i++)
        {
            ulong at = offset + (ulong)i;
            data[i] = at < (ulong)_config.Length ? _config[at] : (byte)0;
        }
    }

    public void WriteConfig(uint offset, ReadOnlySpan<byte> data) => ConfigWrites.Add((offset, data.ToArray()));

    public void Activate(ulong negotiatedFeatures, ReadOnlySpan<VirtQueueLayout> queues, IVirtioInterrupt interrupt)
    {
        Activations.Add((negotiatedFeatures, queues.ToArray()));
        Interrupt = interrupt;
    }

    public void QueueNotify(int queue)
    {
        Notifies.Add(queue);
        OnNotify?.Invoke(queue);
    }

    public void Reset() => Resets++;

    public void Dispose()
    {
    }
}
