using KvmSharp.Devices.Virtio;
using KvmSharp.Memory;
using KvmSharp.Native;

namespace KvmSharp.Devices.Tests.Virtio;

/// <summary>The virtio entropy device (virtio 1.x 5.4): random bytes land in the writable buffers and nowhere else.</summary>
[Collection(VirtioTestCollection.Name)]
public sealed class VirtioEntropyTests : IDisposable
{
    private const ushort QueueSize = 8;
    private readonly GuestMemory _memory = GuestMemory.Create(0x10_0000);
    private readonly DriverQueue _driver;
    private readonly GuestArena _arena = new(0x10000, 0x10_0000);
    private readonly RecordingVirtioInterrupt _interrupt = new();

    public VirtioEntropyTests()
    {
        _driver = new DriverQueue(_memory, 0x1000, QueueSize);
    }

    public void Dispose() => _memory.Dispose();

    [Fact]
    public void Identity_FeaturesAndEmptyConfig()
    {
        using var device = new VirtioEntropy(_memory);
        var config = new byte[] { 1, 2, 3, 4 };
        device.ReadConfig(0, config);

        Assert.Equal(4, device.DeviceId);
        Assert.Equal(1, device.QueueCount);
        Assert.Equal(64, device.MaxQueueSize);
        Assert.Equal(0, device.ConfigSize);
        Assert.Equal(0x1_3000_0000UL, device.DeviceFeatures); // VERSION_1, RING_EVENT_IDX, RING_INDIRECT_DESC
        Assert.Equal([0, 0, 0, 0], config);
    }

    [Fact]
    public void WritableBuffers_AreFilledInOrderFromTheSource()
    {
        using var device = Activated(Counting());
        ulong first = Filled(16);
        ulong second = Filled(32);

        var used = Submit(device, DriverBuffer.In(first, 16), DriverBuffer.In(second, 32));

        Assert.Equal(48u, used.Length);
        Assert.Equal(Enumerable.Range(0, 16).Select(i => (byte)i), Read(first, 16));
        Assert.Equal(Enumerable.Range(16, 32).Select(i => (byte)i), Read(second, 32));
        Assert.Equal(48, device.BytesProvided);
        Assert.Equal([0], _interrupt.QueueSignals);
    }

    [Fact]
    public void HostGetrandom_FillsTheBuffer()
    {
        using var device = Activated(source: null);
        ulong first = Filled(4096);
        ulong second = Filled(4096);

        var used1 = Submit(device, DriverBuffer.In(first, 4096));
        var used2 = Submit(device, DriverBuffer.In(second, 4096));

        Assert.Equal(4096u, used1.Length);
        Assert.Equal(4096u, used2.Length);
        Assert.Contains(Read(first, 4096), b => b != 0xEE);
        Assert.NotEqual(Read(first, 4096), Read(second, 4096));
    }

    [Fact]
    public void ALargeBuffer_GetsAtMost64KiB_AndTheRestIsUntouched()
    {
        using var device = Activated(Counting());
        ulong big = Filled(100 * 1024);

        var used = Submit(device, DriverBuffer.In(big, 100 * 1024));

        Assert.Equal(65536u, used.Length);
        Assert.All(Read(big + 65536, (100 * 1024) - 65536), b => Assert.Equal(0xEE, b));
        Assert.Equal(0xFF, Read(big + 65535, 1)[0]); // the 65536th byte of 0, 1, 2, ...
    }

    [Fact]
    public void ReadableBuffers_AreIgnoredAndUntouched()
    {
        using var device = Activated(Counting());
        ulong readable = Filled(16);
        ulong writable = Filled(8);

        var used = Submit(device, DriverBuffer.Out(readable, 16), DriverBuffer.In(writable, 8));

        Assert.Equal(8u, used.Length);
        Assert.All(Read(readable, 16), b => Assert.Equal(0xEE, b));
        Assert.Equal(Enumerable.Range(0, 8).Select(i => (byte)i), Read(writable, 8));
    }

    [Fact]
    public void ChainWithNoWritableBuffer_IsUsedWithLengthZero()
    {
        using var device = Activated(Counting());

        var used = Submit(device, DriverBuffer.Out(Filled(16), 16));

        Assert.Equal(0u, used.Length);
    }

    [Fact]
    public void SourceFailure_UsesTheBytesFilledSoFar_AndIsCounted()
    {
        int calls = 0;
        using var device = Activated(span =>
        {
            calls++;
            if (calls == 2)
            {
                return Errno.EIO;
            }

            span.Fill(0x5A);
            return 0;
        });
        ulong first = Filled(16);
        ulong second = Filled(16);

        var used = Submit(device, DriverBuffer.In(first, 16), DriverBuffer.In(second, 16));

        Assert.Equal(16u, used.Length);
        Assert.Equal(1, device.HostErrors);
        Assert.All(Read(first, 16), b => Assert.Equal(0x5A, b));
    }

    [Fact]
    public void BufferOutsideRam_IsRefusedWithoutTouchingAnything()
    {
        using var device = Activated(Counting());
        ulong inside = Filled(16);

        var used = Submit(device, DriverBuffer.In(inside, 16), DriverBuffer.In(0x10_0000 - 8, 16));

        Assert.Equal(0u, used.Length);
        Assert.All(Read(inside, 16), b => Assert.Equal(0xEE, b));
        Assert.Equal(1, device.QueueCounters.MalformedChains);
    }

    [Fact]
    public void Reset_StopsServing()
    {
        using var device = Activated(Counting());
        device.Reset();
        ulong buffer = Filled(16);
        _driver.AddChain(DriverBuffer.In(buffer, 16));

        device.QueueNotify(0);

        Assert.Equal(0, _driver.UsedIndex);
        Assert.All(Read(buffer, 16), b => Assert.Equal(0xEE, b));
    }

    [Fact]
    public void SaveRestore_CarriesTheIndices()
    {
        using var device = Activated(Counting());
        Submit(device, DriverBuffer.In(Filled(4), 4));
        var state = device.Save();
        using var restored = Activated(Counting());

        restored.Restore(state);
        var used = Submit(restored, DriverBuffer.In(Filled(4), 4));

        Assert.Equal(new SplitVirtQueueState(1, 1, 1, false), state.RequestQueue);
        Assert.Equal(4u, used.Length);
        Assert.Equal(2, _driver.UsedIndex);
    }

    [Fact]
    public void RequestPath_AllocatesNothing()
    {
        using var device = Activated(source: null);
        for (ushort i = 0; i < QueueSize; i++)
        {
            _driver.WriteDescriptor(i, Filled(256), 256, SplitVirtQueue.DescriptorFlagWrite, 0);
        }

        void Round()
        {
            for (ushort i = 0; i < QueueSize; i++)
            {
                _driver.Publish(i);
            }

            device.QueueNotify(0);
        }

        Round();
        GC.Collect(); // see SplitVirtQueueTests.PopUseNotify_AllocatesNothing
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 500; i++)
        {
            Round();
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        Assert.Equal(501L * QueueSize * 256, device.BytesProvided);
    }

    /// <summary>A source that writes 0, 1, 2, ... across calls.</summary>
    private static EntropySource Counting()
    {
        byte next = 0;
        return span =>
        {
            for (int i = 0; i < span.Length; i++)
            {
                span[i] = next++;
            }

            return 0;
        };
    }

    private VirtioEntropy Activated(EntropySource? source)
    {
        var device = new VirtioEntropy(_memory, source);
        device.Activate(device.DeviceFeatures, [_driver.Layout], _interrupt);
        return device;
    }

    private (uint Id, uint Length) Submit(VirtioEntropy device, params DriverBuffer[] chain)
    {
        _driver.AddChain(chain);
        device.QueueNotify(0);
        return Assert.Single(_driver.TakeUsed());
    }

    private ulong Filled(int length)
    {
        ulong at = _arena.Allocate((ulong)length);
        _memory.Fill(at, (ulong)length, 0xEE);
        return at;
    }

    private byte[] Read(ulong address, int length)
    {
        var bytes = new byte[length];
        _memory.Read(address, bytes);
        return bytes;
    }
}
