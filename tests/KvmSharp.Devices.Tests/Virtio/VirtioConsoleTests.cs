using System.Text;
using KvmSharp.Devices.Virtio;
using KvmSharp.Memory;

namespace KvmSharp.Devices.Tests.Virtio;

/// <summary>
/// The virtio console (virtio 1.x 5.3, one port): guest output reaches the stream byte for byte, host input reaches
/// posted receive buffers in order and only when there is some, the configuration space and its size changes.
/// </summary>
[Collection(VirtioTestCollection.Name)]
public sealed class VirtioConsoleTests : IDisposable
{
    private const ushort QueueSize = 16;
    private readonly GuestMemory _memory = GuestMemory.Create(0x10_0000);
    private readonly DriverQueue _receive;
    private readonly DriverQueue _transmit;
    private readonly GuestArena _arena = new(0x10000, 0x10_0000);
    private readonly RecordingVirtioInterrupt _interrupt = new();
    private readonly RecordingStream _output = new();
    private readonly VirtioConsole _console;

    public VirtioConsoleTests()
    {
        _receive = new DriverQueue(_memory, 0x1000, QueueSize);
        _transmit = new DriverQueue(_memory, 0x3000, QueueSize);
        _console = new VirtioConsole(_memory, _output);
    }

    public void Dispose()
    {
        _console.Dispose();
        _output.Dispose();
        _memory.Dispose();
    }

    [Fact]
    public void Identity_AndFeatures()
    {
        Assert.Equal(3, _console.DeviceId);
        Assert.Equal(2, _console.QueueCount);
        Assert.Equal(256, _console.MaxQueueSize);
        Assert.Equal(12, _console.ConfigSize);

        // VERSION_1, RING_EVENT_IDX, RING_INDIRECT_DESC, EMERG_WRITE (2), SIZE (0); no MULTIPORT.
        Assert.Equal(0x1_3000_0005UL, _console.DeviceFeatures);
    }

    [Fact]
    public void Config_IsColsRowsMaxPortsEmergWrite()
    {
        using var console = new VirtioConsole(_memory, _output, columns: 132, rows: 43);
        var config = new byte[12];

        console.ReadConfig(0, config);

        Assert.Equal([132, 0, 43, 0, 1, 0, 0, 0, 0, 0, 0, 0], config);
    }

    [Fact]
    public void Config_PartialAndBeyondTheEnd()
    {
        var rows = new byte[2];
        var tail = new byte[] { 9, 9, 9, 9, 9, 9 };

        _console.ReadConfig(2, rows);
        _console.ReadConfig(8, tail);

        Assert.Equal([25, 0], rows);
        Assert.Equal([0, 0, 0, 0, 0, 0], tail);
    }

    [Fact]
    public void SetSize_ChangesTheConfig_AndSignalsWhenSizeWasNegotiated()
    {
        Activate(_console.DeviceFeatures);
        var config = new byte[4];

        _console.SetSize(100, 30);
        _console.SetSize(100, 30);
        _console.ReadConfig(0, config);

        Assert.Equal([100, 0, 30, 0], config);
        Assert.Equal(1, _interrupt.ConfigChanges);
    }

    [Fact]
    public void SetSize_WithoutTheSizeFeature_DoesNotSignal()
    {
        Activate(VirtioFeatures.Version1);

        _console.SetSize(100, 30);

        Assert.Equal(0, _interrupt.ConfigChanges);
    }

    [Fact]
    public void EmergencyWrite_OutputsTheLowByte_EvenBeforeActivation()
    {
        _console.WriteConfig(8, [(byte)'O', 0, 0, 0]);
        _console.WriteConfig(8, [(byte)'K']);
        _console.WriteConfig(0, [(byte)'X', 0]);
        _console.WriteConfig(9, [(byte)'Y']);

        Assert.Equal("OK", Encoding.ASCII.GetString(_output.ToArray()));
        Assert.Equal(2, _output.Flushes);
        Assert.Equal(2, _console.BytesTransmitted);
    }

    // ---- Transmit (guest to host). ----

    [Fact]
    public void Transmit_WritesEveryReadableBufferInOrder_AndFlushesOnce()
    {
        Activate(_console.DeviceFeatures);
        ulong hello = Buffer("hello, ");
        ulong world = Buffer("world\n");
        _transmit.AddChain(DriverBuffer.Out(hello, 7), DriverBuffer.Out(world, 6));
        _transmit.AddIndirectChain(0x8000, DriverBuffer.Out(Buffer("bye\n"), 4));

        _console.QueueNotify(VirtioConsole.TransmitQueue);

        Assert.Equal("hello, world\nbye\n", Encoding.ASCII.GetString(_output.ToArray()));
        Assert.Equal(1, _output.Flushes);
        Assert.Equal([(0u, 0u), (2u, 0u)], _transmit.TakeUsed());
        Assert.Equal([VirtioConsole.TransmitQueue], _interrupt.QueueSignals);
        Assert.Equal(17, _console.BytesTransmitted);
    }

    [Fact]
    public void Transmit_WritableBuffersInTheChain_AreIgnored()
    {
        Activate(_console.DeviceFeatures);
        ulong writable = Buffer("zzzz");
        _transmit.AddChain(DriverBuffer.Out(Buffer("ab"), 2), DriverBuffer.In(writable, 4));

        _console.QueueNotify(VirtioConsole.TransmitQueue);

        Assert.Equal("ab", Encoding.ASCII.GetString(_output.ToArray()));
        Assert.Equal("zzzz", Read(writable, 4));
    }

    [Fact]
    public void Transmit_MalformedChain_OutputsNothing()
    {
        Activate(_console.DeviceFeatures);
        _transmit.AddChain(DriverBuffer.Out(Buffer("secret"), 6), DriverBuffer.Out(0x10_0000 - 2, 4));

        _console.QueueNotify(VirtioConsole.TransmitQueue);

        Assert.Empty(_output.ToArray());
        Assert.Equal([(0u, 0u)], _transmit.TakeUsed());
        Assert.Equal(1, _console.QueueCounters.MalformedChains);
    }

    // ---- Receive (host to guest). ----

    [Fact]
    public void InputBeforeActivation_IsDeliveredOnceTheGuestPostsABuffer()
    {
        Assert.Equal(3, _console.Enqueue("abc"u8));
        Activate(_console.DeviceFeatures);
        ulong buffer = Buffer(new string('.', 16));
        _receive.AddChain(DriverBuffer.In(buffer, 16));

        _console.QueueNotify(VirtioConsole.ReceiveQueue);

        Assert.Equal([(0u, 3u)], _receive.TakeUsed());
        Assert.Equal("abc.............", Read(buffer, 16));
        Assert.Equal([VirtioConsole.ReceiveQueue], _interrupt.QueueSignals);
        Assert.Equal(0, _console.PendingInputCount);
        Assert.Equal(3, _console.BytesReceived);
    }

    [Fact]
    public void InputAfterBuffersWerePosted_IsDeliveredAtOnce()
    {
        Activate(_console.DeviceFeatures);
        ulong buffer = Buffer(new string('.', 8));
        _receive.AddChain(DriverBuffer.In(buffer, 8));
        _console.QueueNotify(VirtioConsole.ReceiveQueue);

        _console.Enqueue("hi"u8);

        Assert.Equal([(0u, 2u)], _receive.TakeUsed());
        Assert.Equal("hi......", Read(buffer, 8));
    }

    [Fact]
    public void Input_WaitsWhileTheDeviceMayNotWriteMemory_AndIsDeliveredAtTheNextKickAfter()
    {
        Activate(_console.DeviceFeatures);
        ulong buffer = Buffer(new string('.', 8));
        _receive.AddChain(DriverBuffer.In(buffer, 8));
        _interrupt.MemoryAccessAllowed = false; // the driver cleared Bus Master Enable

        _console.Enqueue("hi"u8);
        _console.QueueNotify(VirtioConsole.ReceiveQueue);
        int usedWhileBlocked = _receive.UsedIndex;
        string memoryWhileBlocked = Read(buffer, 8);
        _interrupt.MemoryAccessAllowed = true;
        _console.QueueNotify(VirtioConsole.ReceiveQueue);

        Assert.Equal(0, usedWhileBlocked);
        Assert.Equal("........", memoryWhileBlocked);
        Assert.Equal([(0u, 2u)], _receive.TakeUsed());
        Assert.Equal("hi......", Read(buffer, 8));
    }

    [Fact]
    public void Quiesced_InputAndTransmitWait_UntilUnquiesce_ThenAreHandledInOrder()
    {
        Activate(_console.DeviceFeatures);
        ulong buffer = Buffer(new string('.', 8));
        _receive.AddChain(DriverBuffer.In(buffer, 8));
        _console.Quiesce();

        // Host input (the pump thread) and a guest kick while paused touch no guest memory and raise nothing.
        _console.Enqueue("hi"u8);
        _console.QueueNotify(VirtioConsole.ReceiveQueue);
        _transmit.AddChain(DriverBuffer.Out(Buffer("out"), 3));
        _console.QueueNotify(VirtioConsole.TransmitQueue);
        Assert.Equal(0, _receive.UsedIndex);
        Assert.Equal(0, _transmit.UsedIndex);
        Assert.Equal("........", Read(buffer, 8));
        Assert.Empty(_interrupt.QueueSignals);
        Assert.Equal(2, _console.PendingInputCount);

        _console.Unquiesce();

        Assert.Equal([(0u, 2u)], _receive.TakeUsed());
        Assert.Equal("hi......", Read(buffer, 8));
        Assert.Equal([(0u, 0u)], _transmit.TakeUsed());
        Assert.Equal("out", Encoding.ASCII.GetString(_output.ToArray()));
    }

    [Fact]
    public void NoInput_LeavesPostedBuffersAvailable()
    {
        Activate(_console.DeviceFeatures);
        _receive.AddChain(DriverBuffer.In(Buffer("...."), 4));

        _console.QueueNotify(VirtioConsole.ReceiveQueue);

        Assert.Equal(0, _receive.UsedIndex);
        Assert.Empty(_interrupt.QueueSignals);
        Assert.Equal(0, _receive.AvailEvent); // the posted buffer is still the next one the device will take
    }

    [Fact]
    public void InputLongerThanABuffer_SpreadsOverBuffersInOrder()
    {
        Activate(_console.DeviceFeatures);
        ulong first = Buffer("....");
        ulong second = Buffer("..");
        ulong third = Buffer("......");
        _receive.AddChain(DriverBuffer.In(first, 4));
        _receive.AddChain(DriverBuffer.In(second, 1), DriverBuffer.In(second + 1, 1));
        _receive.AddChain(DriverBuffer.In(third, 6));
        _console.QueueNotify(VirtioConsole.ReceiveQueue);

        _console.Enqueue("0123456789"u8);

        Assert.Equal([(0u, 4u), (1u, 2u), (3u, 4u)], _receive.TakeUsed());
        Assert.Equal("0123", Read(first, 4));
        Assert.Equal("45", Read(second, 2));
        Assert.Equal("6789..", Read(third, 6));
        Assert.Equal(3, _receive.AvailEvent);
    }

    [Fact]
    public void Enqueue_WithNoBuffers_AcceptsOnlyTheCapacity()
    {
        Activate(_console.DeviceFeatures);

        int accepted = _console.Enqueue(new byte[5000]);

        Assert.Equal(VirtioConsole.InputBufferCapacity, accepted);
        Assert.Equal(VirtioConsole.InputBufferCapacity, _console.PendingInputCount);
    }

    [Fact]
    public void Enqueue_CountsWhatTheGuestTookAtOnceBeyondTheCapacity()
    {
        Activate(_console.DeviceFeatures);
        _receive.AddChain(DriverBuffer.In(Buffer(new string('.', 1000)), 1000));
        _console.QueueNotify(VirtioConsole.ReceiveQueue);

        int accepted = _console.Enqueue(new byte[6000]);

        Assert.Equal(1000 + VirtioConsole.InputBufferCapacity, accepted);
        Assert.Equal(VirtioConsole.InputBufferCapacity, _console.PendingInputCount);
    }

    [Fact]
    public void Reset_KeepsPendingInput_ForTheNextActivation()
    {
        Activate(_console.DeviceFeatures);
        _console.Enqueue("xyz"u8);
        _console.Reset();
        var receive = new DriverQueue(_memory, 0x5000, 4);
        var transmit = new DriverQueue(_memory, 0x6000, 4);
        ulong buffer = Buffer("....");
        receive.AddChain(DriverBuffer.In(buffer, 4));

        _console.Activate(_console.DeviceFeatures, [receive.Layout, transmit.Layout], _interrupt);

        Assert.Equal("xyz.", Read(buffer, 4));
        Assert.Equal([(0u, 3u)], receive.TakeUsed());
    }

    [Fact]
    public void InputFromAnotherThread_ArrivesWhole_AndInOrder()
    {
        Activate(_console.DeviceFeatures);
        byte[] input = [.. Enumerable.Range(0, 20000).Select(i => (byte)(i * 7))];
        var producer = new Thread(() =>
        {
            int sent = 0;
            while (sent < input.Length)
            {
                int n = _console.Enqueue(input.AsSpan(sent, Math.Min(333, input.Length - sent)));
                sent += n;
                if (n == 0)
                {
                    Thread.Yield();
                }
            }
        });
        producer.Start();

        var received = new List<byte>();
        var buffers = new ulong[QueueSize];
        for (int i = 0; i < QueueSize; i++)
        {
            buffers[i] = _arena.Allocate(64);
        }

        ushort next = 0;
        ushort taken = 0;
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (received.Count < input.Length && DateTime.UtcNow < deadline)
        {
            // Keep the receive ring topped up with 64-byte buffers, like the hvc driver, and collect what was used.
            // A slot is reposted only after its previous use was read here.
            while ((ushort)(_receive.AvailableIndex - taken) < QueueSize)
            {
                ushort slot = (ushort)(next % QueueSize);
                _receive.WriteDescriptor(slot, buffers[slot], 64, SplitVirtQueue.DescriptorFlagWrite, 0);
                _receive.Publish(slot);
                next++;
            }

            _console.QueueNotify(VirtioConsole.ReceiveQueue);
            foreach (var (id, length) in _receive.TakeUsed())
            {
                var bytes = new byte[length];
                _memory.Read(buffers[id], bytes);
                received.AddRange(bytes);
                taken++;
            }
        }

        producer.Join();
        Assert.Equal(input, received);
    }

    [Fact]
    public void ReceiveBufferOutsideRam_IsRefusedAndTheInputWaits()
    {
        Activate(_console.DeviceFeatures);
        _console.Enqueue("keep"u8);
        _receive.AddChain(DriverBuffer.In(0x10_0000 - 2, 4));
        ulong good = Buffer("....");
        _receive.AddChain(DriverBuffer.In(good, 4));

        _console.QueueNotify(VirtioConsole.ReceiveQueue);

        Assert.Equal([(0u, 0u), (1u, 4u)], _receive.TakeUsed());
        Assert.Equal("keep", Read(good, 4));
        Assert.Equal(1, _console.QueueCounters.MalformedChains);
    }

    // ---- Snapshots. ----

    [Fact]
    public void SaveRestore_SizePendingInputAndIndices()
    {
        Activate(_console.DeviceFeatures);
        _console.SetSize(120, 40);
        _transmit.AddChain(DriverBuffer.Out(Buffer("x"), 1));
        _console.QueueNotify(VirtioConsole.TransmitQueue);
        _console.Enqueue("later"u8);
        var state = _console.Save();

        using var output = new RecordingStream();
        using var restored = new VirtioConsole(_memory, output);
        restored.Activate(restored.DeviceFeatures, [_receive.Layout, _transmit.Layout], _interrupt);
        restored.Restore(state);
        var config = new byte[4];
        restored.ReadConfig(0, config);
        ulong buffer = Buffer(".....");
        _receive.AddChain(DriverBuffer.In(buffer, 5));
        restored.QueueNotify(VirtioConsole.ReceiveQueue);
        _transmit.AddChain(DriverBuffer.Out(Buffer("y"), 1));
        restored.QueueNotify(VirtioConsole.TransmitQueue);

        Assert.Equal("later"u8.ToArray(), state.PendingInput);
        Assert.Equal(new SplitVirtQueueState(1, 1, 1, false), state.TransmitQueue);
        Assert.Equal([120, 0, 40, 0], config);
        Assert.Equal("later", Read(buffer, 5));
        Assert.Equal("y", Encoding.ASCII.GetString(output.ToArray()));
        Assert.Equal(2, _transmit.UsedIndex);
    }

    // ---- No allocation on the queue paths. ----

    [Fact]
    public void TransmitAndReceive_AllocateNothing()
    {
        using var output = new RecordingStream(keepBytes: false);
        using var console = new VirtioConsole(_memory, output);
        console.Activate(console.DeviceFeatures, [_receive.Layout, _transmit.Layout], _interrupt);
        ulong text = Buffer("0123456789abcdef");
        ulong inbox = _arena.Allocate(16);
        for (ushort i = 0; i < QueueSize; i++)
        {
            _transmit.WriteDescriptor(i, text, 16, 0, 0);
            _receive.WriteDescriptor(i, inbox, 16, SplitVirtQueue.DescriptorFlagWrite, 0);
        }

        byte[] input = new byte[16];

        void Round()
        {
            for (ushort i = 0; i < QueueSize; i++)
            {
                _transmit.Publish(i);
                _receive.Publish(i);
            }

            console.QueueNotify(VirtioConsole.TransmitQueue);
            console.QueueNotify(VirtioConsole.ReceiveQueue);
            for (int i = 0; i < QueueSize; i++)
            {
                console.Enqueue(input);
            }
        }

        Round();
        GC.Collect(); // see SplitVirtQueueTests.PopUseNotify_AllocatesNothing
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 300; i++)
        {
            Round();
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        Assert.Equal(301L * QueueSize * 16, output.Written);
        Assert.Equal(301L * QueueSize * 16, console.BytesReceived);
    }

    private void Activate(ulong features) =>
        _console.Activate(features, [_receive.Layout, _transmit.Layout], _interrupt);

    private ulong Buffer(string ascii)
    {
        ulong at = _arena.Allocate((ulong)Math.Max(ascii.Length, 1));
        _memory.Write(at, Encoding.ASCII.GetBytes(ascii));
        return at;
    }

    private string Read(ulong address, int length)
    {
        var bytes = new byte[length];
        _memory.Read(address, bytes);
        return Encoding.ASCII.GetString(bytes);
    }
}
