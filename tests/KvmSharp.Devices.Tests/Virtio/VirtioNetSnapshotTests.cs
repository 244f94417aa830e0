using System.Buffers.Binary;
using KvmSharp.Devices.EventLoop;
using KvmSharp.Devices.Virtio;
using KvmSharp.Devices.Virtio.Net;
using KvmSharp.Hypervisor.Snapshots;
using KvmSharp.Memory;
using KvmSharp.Native;

namespace KvmSharp.Devices.Tests.Virtio;

/// <summary>
/// virtio-net Save and Restore: a device with traffic behind it (offloads changed on the control queue, used indices
/// advanced, receive chains popped and held) saves a state that round-trips through the snapshot JSON; a fresh device
/// on the same guest memory restored from it saves the same state and carries on as the first would have (held chains
/// popped again, the next frame in the same buffers, the next used index); a state it cannot take is refused with
/// one line and changes nothing.
/// </summary>
[Collection(VirtioTestCollection.Name)]
public sealed class VirtioNetSnapshotTests : IDisposable
{
    private const ushort QueueSize = VirtioNetTestValues.QueueSize;
    private const ulong AllFeatures = VirtioNetTestValues.AllFeatures;

    private const ulong DirectFeatures = VirtioFeatures.Version1 | VirtioFeatures.EventIndex | VirtioNet.FeatureMac
        | VirtioNet.FeatureMergeableRxBuffers | VirtioNet.FeatureCsum | VirtioNet.FeatureGuestCsum | VirtioNet.FeatureGuestTso4
        | VirtioNet.FeatureHostTso4;

    private static readonly byte[] Mac = VirtioNetTestValues.Mac;

    private readonly GuestMemory _memory = GuestMemory.Create(0x80_0000);
    private readonly GuestArena _arena = new(0x10000, 0x80_0000);
    private readonly DriverQueue _rx;
    private readonly DriverQueue _tx;
    private readonly DriverQueue _ctrl;
    private readonly List<IDisposable> _owned = [];

    public VirtioNetSnapshotTests()
    {
        _rx = new DriverQueue(_memory, 0x1000, QueueSize);
        _tx = new DriverQueue(_memory, 0x3000, QueueSize);
        _ctrl = new DriverQueue(_memory, 0x5000, QueueSize);
    }

    public void Dispose()
    {
        for (int i = _owned.Count - 1; i >= 0; i--)
        {
            _owned[i].Dispose();
        }

        _memory.Dispose();
    }

    [Fact]
    public void CopyPath_HeldChainsAreGivenBack_RestoredDeviceFillsTheSameBuffers()
    {
        var a = StreamDevice(out var peerA);
        Activate(a, AllFeatures);

        // Offloads off (no DATA_VALID on received frames), one frame out, one frame in.
        Assert.Equal(VirtioNet.CtrlOk, Control(a, [VirtioNet.CtrlClassGuestOffloads, VirtioNet.CtrlGuestOffloadsSet, 0, 0, 0, 0, 0, 0, 0, 0]));
        _tx.AddChain(DriverBuffer.Out(Put(new byte[12]), 12), DriverBuffer.Out(Put(Frame(60, seed: 1)), 60));
        Kick(a, VirtioNet.TransmitQueue);
        Assert.Equal([(0u, 0u)], _tx.TakeUsed());
        _rx.AddChain(DriverBuffer.In(_arena.Allocate(1500), 1500));
        WritePeerFrame(a, peerA, Frame(100, seed: 2));
        Assert.Equal([(0u, 112u)], _rx.TakeUsed());

        // A 2500-byte frame with room for 2048 of its 2512 bytes: two chains popped, partly filled, held.
        ulong first = _arena.Allocate(1024);
        ulong second = _arena.Allocate(1024);
        _rx.AddChain(DriverBuffer.In(first, 1024));
        _rx.AddChain(DriverBuffer.In(second, 1024));
        WritePeerFrame(a, peerA, Frame(2500, seed: 3));
        Assert.Empty(_rx.TakeUsed());

        var saved = a.Save();
        Assert.Equal(new SplitVirtQueueState(1, 1, 1, false), saved.ReceiveQueue);
        Assert.Equal(new SplitVirtQueueState(1, 1, 1, false), saved.TransmitQueue);
        Assert.Equal(new SplitVirtQueueState(1, 1, 1, false), saved.ControlQueue);
        Assert.Equal((AllFeatures, 0UL, true), (saved.NegotiatedFeatures, saved.GuestOffloads, saved.LinkUp));
        Assert.Equal(Mac, saved.Mac);

        // The new process: a new backend, the same guest RAM, the state through its JSON section.
        var section = SnapshotStateJson.ToSection("virtio-net0", 1, saved);
        var b = StreamDevice(out var peerB);
        b.Activate(AllFeatures, [_rx.Layout, _tx.Layout, _ctrl.Layout], new RecordingVirtioInterrupt());
        b.Restore(SnapshotStateJson.FromSection<VirtioNetState>(section, 1));
        Assert.Equal(section.Payload.ToArray(), SnapshotStateJson.ToSection("virtio-net0", 1, b.Save()).Payload.ToArray());
        Assert.Equal(0UL, b.GuestOffloads);

        // The frame the old backend held is gone with it; the next one lands in the two held buffers and one more.
        ulong third = _arena.Allocate(1024);
        _rx.AddChain(DriverBuffer.In(third, 1024));
        byte[] frame = Frame(2500, seed: 4);
        WritePeerFrame(b, peerB, frame);
        Assert.Equal([(1u, 1024u), (2u, 1024u), (3u, 464u)], _rx.TakeUsed());
        Assert.Equal(4, _rx.UsedIndex);
        byte[] header = ReadGuest(first, 12);
        Assert.Equal(0, header[0]); // offloads stayed off: no DATA_VALID
        Assert.Equal(3, BinaryPrimitives.ReadUInt16LittleEndian(header.AsSpan(10)));
        Assert.Equal(frame.AsSpan(0, 1012).ToArray(), ReadGuest(first + 12, 1012));
        Assert.Equal(frame.AsSpan(2048 - 12).ToArray(), ReadGuest(third, 464));

        // Transmit continues at the next used index.
        byte[] outgoing = Frame(80, seed: 5);
        _tx.AddChain(DriverBuffer.Out(Put(new byte[12]), 12), DriverBuffer.Out(Put(outgoing), 80));
        Kick(b, VirtioNet.TransmitQueue);
        Assert.Equal([(2u, 0u)], _tx.TakeUsed());
        Assert.Equal(outgoing, ReadPeerFrame(peerB));
    }

    [Fact]
    public void DirectPath_PooledChainsAreGivenBack_RestoredDevicePoolsThemAgainInOrder()
    {
        var backendA = new VirtioNetDirectReceiveTests.FrameQueueBackend();
        var a = DirectDevice(backendA);
        Activate(a, DirectFeatures);
        var buffers = new ulong[QueueSize];
        for (int i = 0; i < QueueSize; i++)
        {
            buffers[i] = _arena.Allocate(1536);
            _rx.AddChain(DriverBuffer.In(buffers[i], 1536));
        }

        // The whole ring is pooled; a 512-byte frame takes chain 0; chains 1..15 stay in the pool.
        backendA.Enqueue(TapFrame(500, seed: 6));
        Kick(a, VirtioNet.ReceiveQueue);
        Assert.Equal([(0u, 512u)], _rx.TakeUsed());

        var saved = a.Save();
        Assert.Equal(new SplitVirtQueueState(1, 1, 1, false), saved.ReceiveQueue);

        var backendB = new VirtioNetDirectReceiveTests.FrameQueueBackend();
        var b = DirectDevice(backendB);
        Activate(b, DirectFeatures, restore: saved);
        Assert.Equal(Json(saved), Json(b.Save()));

        // As on the first device: the pool waits for the chain the driver reposts, then a 3000-byte frame takes 1 and 2.
        byte[] frame = TapFrame(2988, seed: 7);
        backendB.Enqueue(frame);
        Kick(b, VirtioNet.ReceiveQueue);
        Assert.Empty(_rx.TakeUsed());
        _rx.AddChain(DriverBuffer.In(buffers[0], 1536));
        Kick(b, VirtioNet.ReceiveQueue);
        Assert.Equal([(1u, 1536u), (2u, 1464u)], _rx.TakeUsed());
        Assert.Equal(2, BinaryPrimitives.ReadUInt16LittleEndian(ReadGuest(buffers[1] + 10, 2)));
        Assert.Equal(frame.AsSpan(12, 1524).ToArray(), ReadGuest(buffers[1] + 12, 1524));
        Assert.Equal(frame.AsSpan(1536).ToArray(), ReadGuest(buffers[2], 1464));
        Assert.Equal(3, _rx.UsedIndex);
    }

    [Fact]
    public void HeldChainsNotInRingOrder_AreReturnedEmptyOnSave()
    {
        var a = StreamDevice(out var peer);
        Activate(a, AllFeatures);

        // Chain 0 is partly filled and held; chain 1 (read-only) is returned at once after it, so the ring no longer
        // shows chain 0 just before next_avail and the saved index cannot give it back.
        _rx.AddChain(DriverBuffer.In(_arena.Allocate(1024), 1024));
        _rx.AddChain(DriverBuffer.Out(_arena.Allocate(1024), 1024));
        WritePeerFrame(a, peer, Frame(2500, seed: 8));
        Assert.Equal([(1u, 0u)], _rx.TakeUsed());

        var saved = a.Save();
        Assert.Equal([(0u, 0u)], _rx.TakeUsed());
        Assert.Equal(new SplitVirtQueueState(2, 2, 2, false), saved.ReceiveQueue);
        Assert.Equal(1, a.Counters.RxDropped);
    }

    [Fact]
    public void HostileStates_AreRefusedWithOneLine_AndChangeNothing()
    {
        var a = StreamDevice(out _);
        Activate(a, AllFeatures);
        _rx.AddChain(DriverBuffer.In(_arena.Allocate(1024), 1024));
        var good = a.Save() with { GuestOffloads = VirtioNet.FeatureGuestCsum };
        string before = Json(a.Save());

        // avail.idx is 1: next_avail 18 is more than a ring ahead of it.
        var ahead = good with { ReceiveQueue = new SplitVirtQueueState(18, 18, 18, false) };
        var e = Assert.Throws<SnapshotStateException>(() => a.Restore(ahead));
        Assert.Equal(
            "The snapshot's network adapter receive queue cannot be restored: next_avail_index 18 is not within the queue size 16 of the driver's avail.idx 1.",
            e.Message);

        // More chains in flight than the queue has.
        var inFlight = good with { TransmitQueue = new SplitVirtQueueState(0, 65000, 0, false) };
        e = Assert.Throws<SnapshotStateException>(() => a.Restore(inFlight));
        Assert.StartsWith("The snapshot's network adapter transmit queue cannot be restored: next_avail_index 0 is 536 chains ahead", e.Message);

        // GUEST_TSO4 was not negotiated (the stream backend never offers it).
        e = Assert.Throws<SnapshotStateException>(() => a.Restore(good with { GuestOffloads = VirtioNet.FeatureGuestTso4 }));
        Assert.Equal("The snapshot's network adapter has receive offloads 0x80, outside the negotiated 0x2.", e.Message);

        e = Assert.Throws<SnapshotStateException>(() => a.Restore(good with { Mac = [0x52, 0x54, 0, 0, 0, 9] }));
        Assert.Equal("The snapshot's network adapter has MAC 525400000009; this machine's has 525400123456. Restore with the same --net options.", e.Message);

        e = Assert.Throws<SnapshotStateException>(() => a.Restore(good with { ControlQueue = null }));
        Assert.Equal("The snapshot's network adapter had no control queue, but its transport enables one.", e.Message);

        e = Assert.Throws<SnapshotStateException>(() => a.Restore(good with { NegotiatedFeatures = AllFeatures & ~VirtioNet.FeatureCtrlVq }));
        Assert.Contains("negotiated features", e.Message, StringComparison.Ordinal);

        Assert.Equal(before, Json(a.Save()));
        Assert.Equal(VirtioNet.FeatureGuestCsum, a.GuestOffloads);

        // The JSON layer refuses unknown members before the device sees anything.
        var section = new SnapshotSection("virtio-net0", 1, System.Text.Encoding.UTF8.GetBytes("{\"mac\":\"UlQAEjRW\",\"bogus\":1}"));
        Assert.Throws<SnapshotStateException>(() => SnapshotStateJson.FromSection<VirtioNetState>(section, 1));
    }

    // ------------------------------------------------------------------ helpers

    private static string Json(VirtioNetState state) =>
        System.Text.Encoding.UTF8.GetString(SnapshotStateJson.ToSection("virtio-net0", 1, state).Payload.Span);

    private VirtioNet StreamDevice(out FileDescriptor peer)
    {
        var loop = new DeviceEventLoop("virtio-net-test", e => throw new InvalidOperationException("loop failed", e));
        _owned.Add(loop);
        var (device, p) = StreamIo.CreateSocketPair(inheritSecond: false);
        _owned.Add(p);
        StreamIo.SetNonBlocking(p);
        peer = p;
        var net = new VirtioNet(_memory, new StreamFramedBackend(device, "test peer", 65520), Mac, loop);
        _owned.Add(net);
        _loops[net] = loop;
        return net;
    }

    private VirtioNet DirectDevice(VirtioNetDirectReceiveTests.FrameQueueBackend backend)
    {
        var loop = new DeviceEventLoop("virtio-net-test", e => throw new InvalidOperationException("loop failed", e));
        _owned.Add(loop);
        var net = new VirtioNet(_memory, backend, Mac, loop);
        _owned.Add(net);
        _loops[net] = loop;
        return net;
    }

    private readonly Dictionary<VirtioNet, DeviceEventLoop> _loops = [];

    private void Activate(VirtioNet net, ulong features, VirtioNetState? restore = null)
    {
        net.Activate(features, [_rx.Layout, _tx.Layout, _ctrl.Layout], new RecordingVirtioInterrupt());
        if (restore is not null)
        {
            net.Restore(restore);
        }

        Pump(net);
    }

    private void Kick(VirtioNet net, int queue)
    {
        net.QueueNotify(queue);
        Pump(net);
    }

    private void Pump(VirtioNet net)
    {
        var loop = _loops[net];
        for (int i = 0; i < 1000 && loop.RunOnce(0) > 0; i++)
        {
        }
    }

    private byte Control(VirtioNet net, byte[] command)
    {
        ulong ack = _arena.Allocate(1);
        _ctrl.AddChain(DriverBuffer.Out(Put(command[..2]), 2), DriverBuffer.Out(Put(command[2..]), (uint)(command.Length - 2)), DriverBuffer.In(ack, 1));
        Kick(net, VirtioNet.ControlQueue);
        Assert.Single(_ctrl.TakeUsed());
        return ReadGuest(ack, 1)[0];
    }

    private ulong Put(byte[] bytes)
    {
        ulong at = _arena.Allocate((ulong)Math.Max(bytes.Length, 1));
        _memory.Write(at, (ReadOnlySpan<byte>)bytes);
        return at;
    }

    private byte[] ReadGuest(ulong address, int length)
    {
        var bytes = new byte[length];
        _memory.Read(address, bytes);
        return bytes;
    }

    private static byte[] Frame(int length, int seed)
    {
        var frame = new byte[length];
        new Random(seed).NextBytes(frame);
        return frame;
    }

    private static byte[] TapFrame(int length, int seed)
    {
        var frame = new byte[12 + length];
        new Random(seed).NextBytes(frame.AsSpan(12));
        return frame;
    }

    /// <summary>Writes one length-prefixed frame to the device's socket and lets the device take it.</summary>
    private void WritePeerFrame(VirtioNet net, FileDescriptor peer, byte[] frame)
    {
        var message = new byte[4 + frame.Length];
        BinaryPrimitives.WriteUInt32BigEndian(message, (uint)frame.Length);
        frame.CopyTo(message, 4);
        Assert.Equal(message.Length, StreamIo.Write(peer, message));
        Pump(net);
    }

    private static byte[] ReadPeerFrame(FileDescriptor peer)
    {
        var buffer = new byte[70000];
        long n = StreamIo.Read(peer, buffer);
        Assert.True(n >= 4, $"the device sent no frame ({n})");
        int length = (int)BinaryPrimitives.ReadUInt32BigEndian(buffer);
        Assert.Equal(4 + length, n);
        return buffer.AsSpan(4, length).ToArray();
    }
}
