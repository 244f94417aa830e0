using System.Buffers.Binary;
using KvmSharp.Devices.EventLoop;
using KvmSharp.Devices.Virtio;
using KvmSharp.Devices.Virtio.Net;
using KvmSharp.Memory;
using KvmSharp.Native;

namespace KvmSharp.Devices.Tests.Virtio;

/// <summary>
/// virtio-net (virtio 1.2 5.1) at the ring level, with a driver-side mock and a real socket pair standing in for
/// passt (length-prefixed frames): frames go out whole and checksummed, come in spread over mergeable buffers with
/// num_buffers, wait for buffers rather than drop, and every hostile chain, header and control command gets the
/// spec's answer and a counter, never an exception.
/// </summary>
[Collection(VirtioTestCollection.Name)]
public sealed class VirtioNetTests : IDisposable
{
    private const ushort QueueSize = VirtioNetTestValues.QueueSize;
    private const ulong AllFeatures = VirtioNetTestValues.AllFeatures;

    private static readonly byte[] Mac = VirtioNetTestValues.Mac;

    private readonly GuestMemory _memory = GuestMemory.Create(0x80_0000);
    private readonly DriverQueue _rx;
    private readonly DriverQueue _tx;
    private readonly DriverQueue _ctrl;
    private readonly GuestArena _arena = new(0x10000, 0x80_0000);
    private readonly RecordingVirtioInterrupt _interrupt = new();
    private readonly DeviceEventLoop _loop = new("virtio-net-test", e => throw new InvalidOperationException("loop failed", e));
    private readonly FileDescriptor _peer;
    private readonly VirtioNet _net;

    public VirtioNetTests()
    {
        _rx = new DriverQueue(_memory, 0x1000, QueueSize);
        _tx = new DriverQueue(_memory, 0x3000, QueueSize);
        _ctrl = new DriverQueue(_memory, 0x5000, QueueSize);
        var (device, peer) = StreamIo.CreateSocketPair(inheritSecond: false);
        _peer = peer;
        StreamIo.SetNonBlocking(_peer);
        _net = new VirtioNet(_memory, new StreamFramedBackend(device, "test peer", 65520), Mac, _loop);
    }

    public void Dispose()
    {
        _net.Dispose();
        _loop.Dispose();
        _peer.Dispose();
        _memory.Dispose();
    }

    [Fact]
    public void Identity_FeaturesAndConfig()
    {
        Assert.Equal(1, _net.DeviceId);
        Assert.Equal(3, _net.QueueCount);
        Assert.Equal(256, _net.MaxQueueSize);
        Assert.Equal(12, _net.ConfigSize);

        // A stream backend has no vnet header: CSUM and GUEST_CSUM (the device completes checksums), no TSO/ECN bits.
        // VERSION_1 | EVENT_IDX | INDIRECT | CTRL_VQ(17) | STATUS(16) | MRG_RXBUF(15) | MAC(5) | MTU(3) | CTRL_GUEST_OFFLOADS(2) | GUEST_CSUM | CSUM
        Assert.Equal(0x1_3003_802FUL, _net.DeviceFeatures);

        var config = new byte[12];
        _net.ReadConfig(0, config);
        Assert.Equal([0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 1, 0, 1, 0, 0xF0, 0xFF], config);

        var mtu = new byte[2];
        _net.ReadConfig(10, mtu);
        Assert.Equal(65520, BinaryPrimitives.ReadUInt16LittleEndian(mtu));
    }

    [Fact]
    public void Tx_FrameGoesOutLengthPrefixed_HeaderSplitAcrossDescriptors()
    {
        Activate(AllFeatures);
        byte[] frame = Frame(60, seed: 1);
        ulong header = Put(new byte[12]);
        ulong body = Put(frame);

        // Header split 5 + 7, the frame in three pieces.
        _tx.AddChain(
            DriverBuffer.Out(header, 5), DriverBuffer.Out(header + 5, 7),
            DriverBuffer.Out(body, 20), DriverBuffer.Out(body + 20, 30), DriverBuffer.Out(body + 50, 10));
        Kick(VirtioNet.TransmitQueue);

        Assert.Equal(frame, ReadPeerFrame());
        Assert.Equal([(0u, 0u)], _tx.TakeUsed());
        Assert.Equal(1, _net.Counters.TxFrames);
        Assert.Equal(60, _net.Counters.TxBytes);
        Assert.Equal(0, _net.Counters.GuestErrors);
    }

    [Fact]
    public void Tx_NeedsCsum_DeviceCompletesTheUdpChecksum()
    {
        Activate(AllFeatures);
        byte[] frame = UdpFrame(payloadLength: 101, out ushort pseudoSum, out ushort expected);

        // Linux's partial checksum: the pseudo-header sum (not complemented) in the checksum field.
        const int udpStart = 14 + 20;
        BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(udpStart + 6), pseudoSum);
        var header = new byte[12];
        header[0] = VirtioNet.HeaderFlagNeedsCsum;
        BinaryPrimitives.WriteUInt16LittleEndian(header.AsSpan(6), udpStart);
        BinaryPrimitives.WriteUInt16LittleEndian(header.AsSpan(8), 6);
        _tx.AddChain(DriverBuffer.Out(Put(header), 12), DriverBuffer.Out(Put(frame), (uint)frame.Length));
        Kick(VirtioNet.TransmitQueue);

        byte[] sent = ReadPeerFrame();
        Assert.Equal(expected, BinaryPrimitives.ReadUInt16BigEndian(sent.AsSpan(udpStart + 6)));
        frame.AsSpan(udpStart + 6, 2).Clear();
        sent.AsSpan(udpStart + 6, 2).Clear();
        Assert.Equal(frame, sent);
    }

    [Fact]
    public void Tx_HostileChains_AreReturnedUsedAndCounted_AndTheQueueKeepsWorking()
    {
        Activate(AllFeatures & ~VirtioNet.FeatureCsum);
        ulong zeros = Put(new byte[12]);
        ulong body = Put(Frame(200, seed: 2));

        // 1. Shorter than the header.
        _tx.AddChain(DriverBuffer.Out(zeros, 8));

        // 2. A frame shorter than an Ethernet header.
        _tx.AddChain(DriverBuffer.Out(zeros, 12), DriverBuffer.Out(body, 10));

        // 3. NEEDS_CSUM without VIRTIO_NET_F_CSUM.
        var csum = new byte[12];
        csum[0] = VirtioNet.HeaderFlagNeedsCsum;
        _tx.AddChain(DriverBuffer.Out(Put(csum), 12), DriverBuffer.Out(body, 100));

        // 4. A TSO frame (GSO_TCPV4) without HOST_TSO4, which a stream backend never offers.
        var gso = new byte[12];
        gso[1] = VirtioNet.GsoTcpV4;
        _tx.AddChain(DriverBuffer.Out(Put(gso), 12), DriverBuffer.Out(body, 100));

        // 5. A NEXT loop: descriptor 14 -> 15 -> 14.
        _tx.WriteDescriptor(14, zeros, 12, SplitVirtQueue.DescriptorFlagNext, 15);
        _tx.WriteDescriptor(15, body, 100, SplitVirtQueue.DescriptorFlagNext, 14);
        _tx.Publish(14);

        // 6. num_buffers set (the driver must write 0): counted, the frame still goes.
        var numBuffers = new byte[12];
        numBuffers[10] = 3;
        _tx.AddChain(DriverBuffer.Out(Put(numBuffers), 12), DriverBuffer.Out(body, 100));
        Kick(VirtioNet.TransmitQueue);

        var used = _tx.TakeUsed();
        Assert.Equal(6, used.Count);
        Assert.All(used, u => Assert.Equal(0u, u.Length));
        Assert.Equal(Frame(200, seed: 2).AsSpan(0, 100).ToArray(), ReadPeerFrame());
        Assert.False(PeerHasData());

        var c = _net.Counters;
        Assert.Equal((1, 1, 2, 1), (c.TxHeaderTooShort, c.TxFrameTooShort, c.TxOffloadNotNegotiated, c.TxNumBuffersSet));
        Assert.Equal(1, _net.QueueCounters.MalformedChains);
        Assert.Equal(ChainError.DescriptorLoop, _net.QueueCounters.LastError);
        Assert.Equal(1, c.TxFrames);
        Assert.Equal(4, c.TxDropped);
        Assert.Equal(0, _interrupt.NeedsResetCalls);
    }

    [Fact]
    public void Tx_ChecksumOffsetsOutsideTheFrame_AreDropped()
    {
        Activate(AllFeatures);
        var header = new byte[12];
        header[0] = VirtioNet.HeaderFlagNeedsCsum;
        BinaryPrimitives.WriteUInt16LittleEndian(header.AsSpan(6), 50);
        BinaryPrimitives.WriteUInt16LittleEndian(header.AsSpan(8), 9); // 50 + 9 + 2 > 60
        _tx.AddChain(DriverBuffer.Out(Put(header), 12), DriverBuffer.Out(Put(Frame(60, 3)), 60));
        Kick(VirtioNet.TransmitQueue);

        Assert.Equal([(0u, 0u)], _tx.TakeUsed());
        Assert.False(PeerHasData());
        Assert.Equal(1, _net.Counters.TxBadChecksumOffsets);
    }

    [Fact]
    public void Rx_Mergeable_FrameSpansBuffers_PublishedTogetherWithNumBuffers()
    {
        Activate(AllFeatures);
        ulong[] buffers = [_arena.Allocate(1500), _arena.Allocate(1500), _arena.Allocate(1500)];
        foreach (ulong b in buffers)
        {
            _rx.AddChain(DriverBuffer.In(b, 1500));
        }

        byte[] frame = Frame(3000, seed: 4);
        WritePeerFrame(frame);
        Pump();

        // 12 + 3000 bytes: 1500 + 1500 + 12.
        Assert.Equal([(0u, 1500u), (1u, 1500u), (2u, 12u)], _rx.TakeUsed());
        byte[] header = ReadGuest(buffers[0], 12);
        Assert.Equal(VirtioNet.HeaderFlagDataValid, header[0]);
        Assert.Equal(3, BinaryPrimitives.ReadUInt16LittleEndian(header.AsSpan(10)));
        byte[] received = [.. ReadGuest(buffers[0] + 12, 1488), .. ReadGuest(buffers[1], 1500), .. ReadGuest(buffers[2], 12)];
        Assert.Equal(frame, received);
        Assert.Equal(1, _net.Counters.RxFrames);
        Assert.Equal(3000, _net.Counters.RxBytes);
        Assert.Contains(VirtioNet.ReceiveQueue, _interrupt.QueueSignals);
    }

    [Fact]
    public void Rx_WaitsForBuffers_NothingPublishedUntilTheWholeFrameFits()
    {
        Activate(AllFeatures);
        byte[] frame = Frame(2500, seed: 5);
        WritePeerFrame(frame);
        Pump();
        Assert.Empty(_rx.TakeUsed());

        // Two 1024-byte buffers hold 2048 of the 2512 bytes: still nothing visible to the driver.
        ulong a = _arena.Allocate(1024);
        ulong b = _arena.Allocate(1024);
        _rx.AddChain(DriverBuffer.In(a, 1024));
        _rx.AddChain(DriverBuffer.In(b, 1024));
        Kick(VirtioNet.ReceiveQueue);
        Assert.Empty(_rx.TakeUsed());
        Assert.Equal(0, _net.Counters.RxFrames);

        ulong c = _arena.Allocate(1024);
        _rx.AddChain(DriverBuffer.In(c, 1024));
        Kick(VirtioNet.ReceiveQueue);
        Assert.Equal([(0u, 1024u), (1u, 1024u), (2u, 464u)], _rx.TakeUsed());
        Assert.Equal(3, BinaryPrimitives.ReadUInt16LittleEndian(ReadGuest(a + 10, 2)));
        Assert.Equal(frame.AsSpan(2048 - 12).ToArray(), ReadGuest(c, 464));
        Assert.Equal(0, _net.Counters.RxDropped);
    }

    [Fact]
    public void Rx_WithoutMergeable_TooSmallBufferDropsTheFrame_NextFrameArrivesWhole()
    {
        Activate(AllFeatures & ~VirtioNet.FeatureMergeableRxBuffers);
        ulong small = _arena.Allocate(100);
        ulong large = _arena.Allocate(2000);
        _rx.AddChain(DriverBuffer.In(small, 100));
        _rx.AddChain(DriverBuffer.In(large, 2000));
        byte[] second = Frame(1500, seed: 7);
        WritePeerFrame(Frame(200, seed: 6));
        WritePeerFrame(second);
        Pump();

        Assert.Equal([(0u, 0u), (1u, 1512u)], _rx.TakeUsed());
        Assert.Equal(1, BinaryPrimitives.ReadUInt16LittleEndian(ReadGuest(large + 10, 2)));
        Assert.Equal(second, ReadGuest(large + 12, 1500));
        Assert.Equal((1, 1, 1), (_net.Counters.RxBuffersTooSmall, _net.Counters.RxDropped, _net.Counters.RxFrames));
    }

    [Fact]
    public void Rx_HostileBuffers_HeaderTooShortAndReadOnly_AreSkippedAndCounted()
    {
        Activate(AllFeatures);
        _rx.AddChain(DriverBuffer.In(_arena.Allocate(8), 8));           // cannot hold the 12-byte header
        _rx.AddChain(DriverBuffer.Out(_arena.Allocate(64), 64));        // nothing device-writable
        ulong good = _arena.Allocate(256);
        _rx.AddChain(DriverBuffer.In(good, 256));
        byte[] frame = Frame(100, seed: 8);
        WritePeerFrame(frame);
        Pump();

        Assert.Equal([(0u, 0u), (1u, 0u), (2u, 112u)], _rx.TakeUsed());
        Assert.Equal(frame, ReadGuest(good + 12, 100));
        Assert.Equal((1, 1), (_net.Counters.RxHeaderTooShort, _net.Counters.RxNoWritable));
    }

    [Fact]
    public void Rx_ARingOfBuffersTooSmallForOneFrame_DropsItAndReturnsThemEmpty()
    {
        var rx = new DriverQueue(_memory, 0x7000, 4);
        Activate(AllFeatures, rx);
        for (int i = 0; i < 4; i++)
        {
            rx.AddChain(DriverBuffer.In(_arena.Allocate(16), 16));
        }

        WritePeerFrame(Frame(200, seed: 9));
        Pump();

        Assert.Equal([(0u, 0u), (1u, 0u), (2u, 0u), (3u, 0u)], rx.TakeUsed());
        Assert.Equal((1, 1, 0), (_net.Counters.RxBuffersTooSmall, _net.Counters.RxDropped, _net.Counters.RxFrames));
    }

    [Fact]
    public void Rx_OversizedFrameFromTheBackend_IsSkipped_TheStreamStaysInStep()
    {
        Activate(AllFeatures);
        ulong buffer = _arena.Allocate(2048);
        _rx.AddChain(DriverBuffer.In(buffer, 2048));
        var huge = new byte[4 + 70000];
        BinaryPrimitives.WriteUInt32BigEndian(huge, 70000);
        WritePeer(huge);
        byte[] frame = Frame(500, seed: 10);
        WritePeerFrame(frame);
        Pump();

        Assert.Equal([(0u, 512u)], _rx.TakeUsed());
        Assert.Equal(frame, ReadGuest(buffer + 12, 500));
        Assert.Equal(1, _net.Backend.OversizedFrames);
    }

    [Fact]
    public void Ctrl_GuestOffloadsSet_AndBadCommands()
    {
        Activate(AllFeatures);

        // GUEST_OFFLOADS_SET 0: OK; received frames lose DATA_VALID.
        Assert.Equal(VirtioNet.CtrlOk, Control([VirtioNet.CtrlClassGuestOffloads, VirtioNet.CtrlGuestOffloadsSet, 0, 0, 0, 0, 0, 0, 0, 0]));
        Assert.Equal(0UL, _net.GuestOffloads);
        ulong buffer = _arena.Allocate(256);
        _rx.AddChain(DriverBuffer.In(buffer, 256));
        WritePeerFrame(Frame(64, seed: 11));
        Pump();
        Assert.Equal(0, ReadGuest(buffer, 1)[0]);

        // GUEST_TSO4 was not negotiated: ERR.
        Assert.Equal(VirtioNet.CtrlErr, Control([VirtioNet.CtrlClassGuestOffloads, VirtioNet.CtrlGuestOffloadsSet, 0x80, 0, 0, 0, 0, 0, 0, 0]));

        // Four bytes of offloads instead of eight: ERR.
        Assert.Equal(VirtioNet.CtrlErr, Control([VirtioNet.CtrlClassGuestOffloads, VirtioNet.CtrlGuestOffloadsSet, 2, 0, 0, 0]));

        // VIRTIO_NET_CTRL_RX (class 0) is not implemented: ERR.
        Assert.Equal(VirtioNet.CtrlErr, Control([0, 0, 1]));

        // One readable byte, or no room for the ack: used with length 0, no answer.
        ulong ack = _arena.Allocate(1);
        _memory.Write(ack, (byte)0xEE);
        ushort first = _ctrl.AddChain(DriverBuffer.Out(Put([VirtioNet.CtrlClassGuestOffloads]), 1), DriverBuffer.In(ack, 1));
        ushort second = _ctrl.AddChain(DriverBuffer.Out(Put([5, 0, 0, 0, 0, 0, 0, 0, 0, 0]), 10));
        Kick(VirtioNet.ControlQueue);
        Assert.Equal([(first, 0u), (second, 0u)], _ctrl.TakeUsed());
        Assert.Equal(0xEE, ReadGuest(ack, 1)[0]);

        var c = _net.Counters;
        Assert.Equal((2, 2, 1), (c.CtrlBadLength, c.CtrlBadOffloads, c.CtrlUnsupported));
    }

    [Fact]
    public void LinkDown_WhenThePeerCloses_ConfigSaysSo_AndFramesAreDropped()
    {
        Activate(AllFeatures);
        _peer.Dispose();
        Pump();

        Assert.False(_net.LinkUp);
        var status = new byte[2];
        _net.ReadConfig(6, status);
        Assert.Equal(0, BinaryPrimitives.ReadUInt16LittleEndian(status));
        Assert.Equal(1, _interrupt.ConfigChanges);
        Assert.Equal(1, _net.Counters.LinkDown);

        _tx.AddChain(DriverBuffer.Out(Put(new byte[12]), 12), DriverBuffer.Out(Put(Frame(60, 12)), 60));
        Kick(VirtioNet.TransmitQueue);
        Assert.Equal([(0u, 0u)], _tx.TakeUsed());
        Assert.Equal(1, _net.Counters.TxDropped);
    }

    [Fact]
    public void Tx_WhenThePeerDoesNotRead_FramesWaitAndArriveWholeAndInOrder()
    {
        Activate(AllFeatures & ~VirtioNet.FeatureCsum);
        const int Frames = 48;
        const int Length = 60000;
        ulong header = Put(new byte[12]);
        var bodies = new ulong[Frames];
        for (int i = 0; i < Frames; i++)
        {
            bodies[i] = Put(Frame(Length, seed: 100 + i));
        }

        // 48 x 60 KB is far more than a socket buffer holds: the device blocks part-way and resumes on writable.
        int sent = 0;
        var received = new List<byte[]>();
        while (received.Count < Frames)
        {
            while (sent < Frames && _tx.AvailableIndex - _tx.UsedIndex < QueueSize / 2)
            {
                _tx.AddChain(DriverBuffer.Out(header, 12), DriverBuffer.Out(bodies[sent], Length));
                sent++;
            }

            Kick(VirtioNet.TransmitQueue);
            while (TryReadPeerFrame(out byte[] frame))
            {
                received.Add(frame);
            }

            Pump();
        }

        for (int i = 0; i < Frames; i++)
        {
            Assert.Equal(Frame(Length, seed: 100 + i), received[i]);
        }

        Assert.Equal(Frames, _net.Counters.TxFrames);
        Assert.Equal(0, _net.Counters.TxDropped);
    }

    [Fact]
    public void InternetChecksum_Rfc1071Example()
    {
        // RFC 1071 section 3: the words 0001 f203 f4f5 f6f7 sum to ddf2 (folded); the checksum is its complement.
        byte[] data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        ushort stored = InternetChecksum.Complete(data);
        var bytes = new byte[2];
        BinaryPrimitives.WriteUInt16LittleEndian(bytes, stored);
        Assert.Equal(0x220d, BinaryPrimitives.ReadUInt16BigEndian(bytes));
    }

    [Fact]
    public void TunOffloads_FollowTheGuestFeatures()
    {
        Assert.Equal(0u, VirtioNet.TunOffloads(0));
        Assert.Equal(TapDevice.OffloadChecksum, VirtioNet.TunOffloads(VirtioNet.FeatureGuestCsum));
        Assert.Equal(0u, VirtioNet.TunOffloads(VirtioNet.FeatureGuestTso4)); // TSO without checksum offload is refused by tun
        Assert.Equal(TapDevice.OffloadChecksum | TapDevice.OffloadTso4 | TapDevice.OffloadTso6 | TapDevice.OffloadTsoEcn,
            VirtioNet.TunOffloads(VirtioNet.FeatureGuestCsum | VirtioNet.FeatureGuestTso4 | VirtioNet.FeatureGuestTso6 | VirtioNet.FeatureGuestEcn));
    }

    // ------------------------------------------------------------------ helpers

    private void Activate(ulong features, DriverQueue? rx = null)
    {
        _net.Activate(features, [(rx ?? _rx).Layout, _tx.Layout, _ctrl.Layout], _interrupt);
        Pump();
    }

    private void Kick(int queue)
    {
        _net.QueueNotify(queue);
        Pump();
    }

    /// <summary>Runs the loop until nothing is ready.</summary>
    private void Pump()
    {
        for (int i = 0; i < 1000 && _loop.RunOnce(0) > 0; i++)
        {
        }
    }

    private byte Control(byte[] command)
    {
        ulong ack = _arena.Allocate(1);
        _memory.Write(ack, (byte)0xEE);
        _ctrl.AddChain(DriverBuffer.Out(Put(command[..2]), 2), DriverBuffer.Out(Put(command.Length > 2 ? command[2..] : [0]), (uint)(command.Length - 2)), DriverBuffer.In(ack, 1));
        Kick(VirtioNet.ControlQueue);
        var used = _ctrl.TakeUsed();
        Assert.Single(used);
        Assert.Equal(1u, used[0].Length);
        return ReadGuest(ack, 1)[0];
    }

    private ulong Put(byte[] bytes)
    {
        ulong at = _arena.Allocate((ulong)Math.Max(bytes.Length, 1));
        _memory.Write(at, (ReadOnlySpan<byte>)bytes);
        return at;
    }

    private static byte[] Frame(int length, int seed)
    {
        var frame = new byte[length];
        new Random(seed).NextBytes(frame);
        return frame;
    }

    /// <summary>An Ethernet/IPv4/UDP frame and its correct UDP checksum (computed independently, big-endian words).</summary>
    private static byte[] UdpFrame(int payloadLength, out ushort pseudoSum, out ushort expected)
    {
        int udpLength = 8 + payloadLength;
        var frame = new byte[14 + 20 + udpLength];
        new Random(42).NextBytes(frame);
        frame[12] = 0x08;
        frame[13] = 0x00;
        var ip = frame.AsSpan(14, 20);
        ip[0] = 0x45;
        ip[9] = 17;
        BinaryPrimitives.WriteUInt16BigEndian(ip[2..], (ushort)(20 + udpLength));
        var udp = frame.AsSpan(34);
        BinaryPrimitives.WriteUInt16BigEndian(udp[4..], (ushort)udpLength);
        udp[6] = 0;
        udp[7] = 0;

        uint pseudo = 0;
        for (int i = 12; i < 20; i += 2)
        {
            pseudo += BinaryPrimitives.ReadUInt16BigEndian(ip[i..]); // source and destination addresses
        }

        pseudo += 17u + (uint)udpLength;
        pseudoSum = FoldBigEndian(pseudo);
        uint full = pseudo;
        for (int i = 0; i < udpLength; i += 2)
        {
            full += i + 1 < udpLength ? BinaryPrimitives.ReadUInt16BigEndian(udp[i..]) : (uint)(udp[i] << 8);
        }

        ushort c = (ushort)~FoldBigEndian(full);
        expected = c == 0 ? (ushort)0xFFFF : c;
        return frame;
    }

    private static ushort FoldBigEndian(uint sum)
    {
        while (sum > 0xFFFF)
        {
            sum = (sum & 0xFFFF) + (sum >> 16);
        }

        return (ushort)sum;
    }

    private void WritePeerFrame(byte[] frame)
    {
        var message = new byte[4 + frame.Length];
        BinaryPrimitives.WriteUInt32BigEndian(message, (uint)frame.Length);
        frame.CopyTo(message, 4);
        WritePeer(message);
    }

    private void WritePeer(byte[] bytes)
    {
        int done = 0;
        while (done < bytes.Length)
        {
            long n = StreamIo.Write(_peer, bytes.AsSpan(done));
            if (n == -Errno.EAGAIN)
            {
                Pump(); // let the device drain the socket
                continue;
            }

            Assert.True(n > 0, $"write to the device's socket failed: {n}");
            done += (int)n;
        }
    }

    private readonly List<byte> _peerBuffer = [];

    private byte[] ReadGuest(ulong address, int length)
    {
        var bytes = new byte[length];
        _memory.Read(address, bytes);
        return bytes;
    }

    private bool PeerHasData()
    {
        Fill();
        return _peerBuffer.Count > 0;
    }

    private byte[] ReadPeerFrame()
    {
        Assert.True(TryReadPeerFrame(out byte[] frame), "the device sent no frame");
        return frame;
    }

    private bool TryReadPeerFrame(out byte[] frame)
    {
        Fill();
        frame = [];
        if (_peerBuffer.Count < 4)
        {
            return false;
        }

        int length = (int)BinaryPrimitives.ReadUInt32BigEndian(_peerBuffer.GetRange(0, 4).ToArray());
        if (_peerBuffer.Count < 4 + length)
        {
            return false;
        }

        frame = _peerBuffer.GetRange(4, length).ToArray();
        _peerBuffer.RemoveRange(0, 4 + length);
        return true;
    }

    private void Fill()
    {
        var chunk = new byte[256 * 1024];
        while (true)
        {
            long n = StreamIo.Read(_peer, chunk);
            if (n <= 0)
            {
                return;
            }

            _peerBuffer.AddRange(chunk.AsSpan(0, (int)n).ToArray());
        }
    }
}

/// <summary>
/// Receive straight into guest buffers (readv) from a backend that reads one frame per call, as a TAP does, with
/// MRG_RXBUF: chains are pooled until they hold a largest frame, a frame takes the pool's first chains in order, and
/// a frame the pool cannot hold is dropped and counted. The backend is a test double behind an eventfd.
/// </summary>
[Collection(VirtioTestCollection.Name)]
public sealed class VirtioNetDirectReceiveTests : IDisposable
{
    private const ulong Features = VirtioFeatures.Version1 | VirtioFeatures.EventIndex | VirtioNet.FeatureMac | VirtioNet.FeatureMergeableRxBuffers
        | VirtioNet.FeatureCsum | VirtioNet.FeatureGuestCsum | VirtioNet.FeatureGuestTso4 | VirtioNet.FeatureHostTso4;

    private readonly GuestMemory _memory = GuestMemory.Create(0x80_0000);
    private readonly GuestArena _arena = new(0x20000, 0x80_0000);
    private readonly RecordingVirtioInterrupt _interrupt = new();
    private readonly DeviceEventLoop _loop = new("virtio-net-test", e => throw new InvalidOperationException("loop failed", e));
    private readonly FrameQueueBackend _backend = new();
    private readonly DriverQueue _tx;
    private readonly VirtioNet _net;

    public VirtioNetDirectReceiveTests()
    {
        _tx = new DriverQueue(_memory, 0x9000, 16);
        _net = new VirtioNet(_memory, _backend, [0x52, 0x54, 0, 0, 0, 1], _loop);
    }

    public void Dispose()
    {
        _net.Dispose();
        _loop.Dispose();
        _memory.Dispose();
    }

    [Fact]
    public void FramesTakeThePoolsFirstChains_InOrder_WithNumBuffers()
    {
        var rx = new DriverQueue(_memory, 0x1000, 64);
        Activate(rx);
        var buffers = new ulong[64];
        for (int i = 0; i < 64; i++)
        {
            buffers[i] = _arena.Allocate(1536);
            rx.AddChain(DriverBuffer.In(buffers[i], 1536));
        }

        byte[] first = TapFrame(2988, seed: 1);   // 3000 bytes with the vnet header
        byte[] second = TapFrame(88, seed: 2);    // 100 bytes
        _backend.Enqueue(first);
        _backend.Enqueue(second);
        Kick(VirtioNet.ReceiveQueue);

        Assert.Equal([(0u, 1536u), (1u, 1464u), (2u, 100u)], rx.TakeUsed());
        Assert.Equal(2, BinaryPrimitives.ReadUInt16LittleEndian(Read(buffers[0] + 10, 2)));
        Assert.Equal(1, BinaryPrimitives.ReadUInt16LittleEndian(Read(buffers[2] + 10, 2)));
        Assert.Equal(first.AsSpan(12, 1524).ToArray(), Read(buffers[0] + 12, 1524));
        Assert.Equal(first.AsSpan(1536).ToArray(), Read(buffers[1], 1464));
        Assert.Equal(second.AsSpan(12).ToArray(), Read(buffers[2] + 12, 88));
        Assert.Equal((2, 2988L + 88), (_net.Counters.RxFrames, _net.Counters.RxBytes));
    }

    [Fact]
    public void WaitsUntilThePoolHoldsALargestFrame_OrTheWholeRing()
    {
        var rx = new DriverQueue(_memory, 0x1000, 16);
        Activate(rx);
        for (int i = 0; i < 4; i++)
        {
            rx.AddChain(DriverBuffer.In(_arena.Allocate(1536), 1536));
        }

        _backend.Enqueue(TapFrame(500, seed: 3));
        Kick(VirtioNet.ReceiveQueue);

        // 6 KiB pooled, less than a 64 KiB TSO frame, and the driver may post 12 more: nothing is read yet.
        Assert.Empty(rx.TakeUsed());
        Assert.Equal(1, _backend.Pending);

        for (int i = 0; i < 12; i++)
        {
            rx.AddChain(DriverBuffer.In(_arena.Allocate(1536), 1536));
        }

        Kick(VirtioNet.ReceiveQueue);

        // The whole ring (24 KiB) is pooled: all the driver will give, so the frame is read.
        Assert.Equal([(0u, 512u)], rx.TakeUsed());
        Assert.Equal(0, _backend.Pending);
    }

    [Fact]
    public void AFrameLargerThanTheRing_IsDroppedAndCounted_TheNextOneArrives()
    {
        var rx = new DriverQueue(_memory, 0x1000, 4);
        Activate(rx);
        var buffers = new ulong[4];
        for (int i = 0; i < 4; i++)
        {
            buffers[i] = _arena.Allocate(64);
            rx.AddChain(DriverBuffer.In(buffers[i], 64));
        }

        _backend.Enqueue(TapFrame(1000, seed: 4));
        byte[] small = TapFrame(40, seed: 5);
        _backend.Enqueue(small);
        Kick(VirtioNet.ReceiveQueue);

        Assert.Equal([(0u, 52u)], rx.TakeUsed());
        Assert.Equal(small.AsSpan(12).ToArray(), Read(buffers[0] + 12, 40));
        Assert.Equal((1, 1, 1), (_net.Counters.RxBuffersTooSmall, _net.Counters.RxDropped, _net.Counters.RxFrames));
    }

    [Fact]
    public void TinyChains_CannotHoldTheHeader_AreReturnedEmpty()
    {
        var rx = new DriverQueue(_memory, 0x1000, 4);
        Activate(rx);
        rx.AddChain(DriverBuffer.In(_arena.Allocate(8), 8));
        ulong good = _arena.Allocate(2048);
        rx.AddChain(DriverBuffer.In(good, 2048));
        rx.AddChain(DriverBuffer.In(_arena.Allocate(2048), 2048));
        rx.AddChain(DriverBuffer.In(_arena.Allocate(2048), 2048));
        byte[] frame = TapFrame(60, seed: 6);
        _backend.Enqueue(frame);
        Kick(VirtioNet.ReceiveQueue);

        // The tiny chain came back at once; three are pooled and the ring has room for one more, so the device waits.
        Assert.Equal([(0u, 0u)], rx.TakeUsed());
        rx.AddChain(DriverBuffer.In(_arena.Allocate(2048), 2048));
        Kick(VirtioNet.ReceiveQueue);

        Assert.Equal([(1u, 72u)], rx.TakeUsed());
        Assert.Equal(frame.AsSpan(12).ToArray(), Read(good + 12, 60));
        Assert.Equal(1, _net.Counters.RxHeaderTooShort);
    }

    private void Activate(DriverQueue rx)
    {
        var ctrl = new DriverQueue(_memory, 0xB000, 16);
        _net.Activate(Features, [rx.Layout, _tx.Layout, ctrl.Layout], _interrupt);
        Pump();
    }

    private void Kick(int queue)
    {
        _net.QueueNotify(queue);
        Pump();
    }

    private void Pump()
    {
        for (int i = 0; i < 1000 && _loop.RunOnce(0) > 0; i++)
        {
        }
    }

    private byte[] Read(ulong address, int length)
    {
        var bytes = new byte[length];
        _memory.Read(address, bytes);
        return bytes;
    }

    /// <summary>A frame as a TAP hands it over: a 12-byte vnet header (no offload), then <paramref name="length"/> bytes.</summary>
    private static byte[] TapFrame(int length, int seed)
    {
        var frame = new byte[12 + length];
        new Random(seed).NextBytes(frame.AsSpan(12));
        frame[10] = 0x77; // what the kernel leaves in num_buffers is not the device's answer
        return frame;
    }

    /// <summary>Frames handed over one per read, like a TAP: readable (an eventfd) while any wait.</summary>
    internal sealed class FrameQueueBackend : INetworkBackend
    {
        private readonly Queue<byte[]> _frames = new();
        private readonly EventFd _ready = new();

        public string Description => "test tap";

        public FileDescriptor Descriptor => _ready.Descriptor;

        public bool HasVnetHeader => true;

        public ushort Mtu => 1500;

        public long OversizedFrames => 0;

        public bool HasPendingOutput => false;

        public bool SupportsDirectReceive => true;

        public int Pending => _frames.Count;

        public void Enqueue(byte[] frame)
        {
            _frames.Enqueue(frame);
            _ready.Signal();
        }

        public long ReceiveVectored(IoVectorList vectors)
        {
            if (_frames.Count == 0)
            {
                _ready.Consume();
                return -Errno.EAGAIN;
            }

            byte[] frame = _frames.Dequeue();
            vectors.WriteAt(0, frame.AsSpan(0, (int)Math.Min((ulong)frame.Length, vectors.TotalLength)));

            // Like tun: the whole frame's length, even when the buffers took less.
            return frame.Length;
        }

        public BackendReceive TryPeekFrame(out ReadOnlySpan<byte> frame) => throw new InvalidOperationException("a direct backend is read with ReceiveVectored");

        public void ConsumeFrame() => throw new InvalidOperationException("a direct backend is read with ReceiveVectored");

        public BackendSend Send(IoVectorList frame) => BackendSend.Sent;

        public bool FlushPendingOutput() => true;

        public void SetGuestOffloads(uint tunOffloads)
        {
        }

        public void Dispose() => _ready.Dispose();
    }
}
