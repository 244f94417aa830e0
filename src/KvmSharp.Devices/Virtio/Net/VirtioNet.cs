using System.Buffers.Binary;
using KvmSharp.Devices.EventLoop;
using KvmSharp.Hypervisor.Snapshots;
using KvmSharp.Memory;
using KvmSharp.Native;

namespace KvmSharp.Devices.Virtio.Net;

/// <summary>
/// A virtio network device (virtio 1.2 section 5.1, device ID 1) with one queue pair and a control queue: receiveq 0,
/// transmitq 1, controlq 2. Transport-neutral; the host side is an <see cref="INetworkBackend"/> (TAP or passt).
/// </summary>
/// <remarks>
/// <para>Features: MAC, STATUS (link up while the backend lives), MTU (the backend's), MRG_RXBUF, CSUM and
/// GUEST_CSUM, CTRL_VQ with CTRL_GUEST_OFFLOADS, EVENT_IDX, INDIRECT_DESC. The TSO and ECN bits are offered only
/// when the backend carries a vnet header and so can segment and checksum (QEMU's rule): then headers pass through
/// to the host kernel, which validates them. Without one (passt), the device itself completes a NEEDS_CSUM
/// checksum on transmit, and marks received frames DATA_VALID (passt's frames come from host sockets, checksummed).</para>
/// <para>Threads: all packet work runs on the <see cref="DeviceEventLoop"/> thread. <see cref="QueueNotify"/>, on a
/// vCPU or the ioeventfd worker, only records the queue and rings an eventfd. One lock serializes the loop's work
/// with <see cref="Activate"/>, <see cref="Reset"/> and configuration reads from vCPUs.</para>
/// <para>The guest is hostile: every chain is validated by <see cref="SplitVirtQueue"/>, and every field the driver
/// wrote (header flags, GSO type, checksum offsets, lengths, control commands) is checked where it is used. Each
/// mistake is answered as the spec says (the chain returned used with length 0, or VIRTIO_NET_ERR on the control
/// queue) and counted in <see cref="Counters"/>; nothing the guest does raises a host exception. Nothing allocates per
/// frame: buffers and vector lists are made once.</para>
/// </remarks>
public sealed class VirtioNet : IVirtioDevice
{
    public const ushort NetDeviceId = 1;

    public const ushort MaxDataQueueSize = 256;

    /// <summary>sizeof(struct virtio_net_hdr_v1): always present with VIRTIO_F_VERSION_1 (5.1.6).</summary>
    public const int HeaderLength = 12;

    /// <summary>The largest Ethernet frame either way (a 64 KiB GSO frame plus headers; Firecracker's limit less the header).</summary>
    public const int MaxFrameLength = 65550;

    /// <summary>The shortest frame sent on: an Ethernet header.</summary>
    public const int MinFrameLength = 14;

    /// <summary>Vectors one transmitted frame may use: the header, then up to a ring's worth of buffers.</summary>
    public const int MaxSendVectors = MaxDataQueueSize + 2;

    /// <summary>Bytes of struct virtio_net_config the device implements: mac, status, max_virtqueue_pairs, mtu.</summary>
    public const int ConfigLength = 12;

    public const int ReceiveQueue = 0;
    public const int TransmitQueue = 1;
    public const int ControlQueue = 2;

    // Feature bits (5.1.3).
    public const ulong FeatureCsum = 1UL << 0;
    public const ulong FeatureGuestCsum = 1UL << 1;
    public const ulong FeatureCtrlGuestOffloads = 1UL << 2;
    public const ulong FeatureMtu = 1UL << 3;
    public const ulong FeatureMac = 1UL << 5;
    public const ulong FeatureGuestTso4 = 1UL << 7;
    public const ulong FeatureGuestTso6 = 1UL << 8;
    public const ulong FeatureGuestEcn = 1UL << 9;
    public const ulong FeatureGuestUfo = 1UL << 10;
    public const ulong FeatureHostTso4 = 1UL << 11;
    public const ulong FeatureHostTso6 = 1UL << 12;
    public const ulong FeatureHostEcn = 1UL << 13;
    public const ulong FeatureMergeableRxBuffers = 1UL << 15;
    public const ulong FeatureStatus = 1UL << 16;
    public const ulong FeatureCtrlVq = 1UL << 17;

    /// <summary>The offloads GUEST_OFFLOADS_SET may switch (5.1.6.5.6.1): the guest receive features.</summary>
    public const ulong GuestOffloadFeatures = FeatureGuestCsum | FeatureGuestTso4 | FeatureGuestTso6 | FeatureGuestEcn | FeatureGuestUfo;

    // struct virtio_net_hdr_v1 (5.1.6).
    public const byte HeaderFlagNeedsCsum = 1;
    public const byte HeaderFlagDataValid = 2;
    public const byte GsoNone = 0;
    public const byte GsoTcpV4 = 1;
    public const byte GsoUdp = 3;
    public const byte GsoTcpV6 = 4;
    public const byte GsoEcn = 0x80;
    private const int HeaderFlags = 0;
    private const int HeaderGsoType = 1;
    private const int HeaderCsumStart = 6;
    private const int HeaderCsumOffset = 8;
    private const int HeaderNumBuffers = 10;

    // Configuration (5.1.4).
    public const ushort StatusLinkUp = 1;
    private const int ConfigStatus = 6;
    private const int ConfigMaxPairs = 8;
    private const int ConfigMtu = 10;

    // Control queue (5.1.6.5).
    public const byte CtrlOk = 0;
    public const byte CtrlErr = 1;
    public const byte CtrlClassGuestOffloads = 5;
    public const byte CtrlGuestOffloadsSet = 0;
    private const ushort ControlQueueSize = 64;

    /// <summary>Vectors of the receive pool: IOV_MAX, one readv's limit.</summary>
    private const int PoolVectorCapacity = 1024;

    /// <summary>Transmit chains handled per wake-up before the loop lets receive work run.</summary>
    private const int TransmitBatch = 256;

    private readonly GuestMemory _memory;
    private readonly INetworkBackend _backend;
    private readonly DeviceEventLoop _loop;
    private readonly byte[] _mac;
    private readonly Lock _lock = new();
    private readonly VirtQueueCounters _queueCounters = new();
    private readonly VirtioNetCounters _counters = new();
    private readonly EventFd _kick = new();
    private readonly int _backendToken;
    private readonly ulong _deviceFeatures;

    // Transmit: the vectors of the frame being sent, the header copy they start with, a staging copy for checksums.
    private readonly IoVectorList _sendVectors = new(MaxSendVectors);
    private readonly byte[] _sendHeader = GC.AllocateArray<byte>(HeaderLength, pinned: true);
    private readonly byte[] _sendStaging = GC.AllocateArray<byte>(MaxFrameLength, pinned: true);

    // Receive with MRG_RXBUF: the chains one frame has filled so far, and the first one's buffers (for num_buffers).
    private readonly ushort[] _rxHeads = new ushort[MaxDataQueueSize];
    private readonly uint[] _rxLengths = new uint[MaxDataQueueSize];
    private readonly ChainSegment[] _rxFirstSegments = new ChainSegment[MaxDataQueueSize];
    private readonly byte[] _rxHeader = new byte[HeaderLength];
    private int _rxHeld;

    // Receive straight from a TAP with MRG_RXBUF: chains popped ahead (a pool), their buffers' host ranges in order in
    // one vector list, so one readv puts a frame into as many of them as it needs.
    private readonly IoVectorList _poolVectors = new(PoolVectorCapacity);
    private readonly ushort[] _poolHeads = new ushort[MaxDataQueueSize];
    private readonly uint[] _poolLengths = new uint[MaxDataQueueSize];
    private readonly int[] _poolVectorCounts = new int[MaxDataQueueSize];
    private int _poolCount;
    private ulong _poolBytes;
    private int _rxFirstSegmentCount;
    private int _rxWritten;

    private SplitVirtQueue? _receive;
    private SplitVirtQueue? _transmit;
    private SplitVirtQueue? _control;
    private IVirtioInterrupt? _interrupt;
    private ulong _negotiated;
    private ulong _guestOffloads;
    private int _pendingKicks;
    private bool _linkUp = true;
    private bool _txBlocked;
    private ushort _txBlockedHead;
    private long _txBlockedLength;
    private uint _backendEvents;
    private bool _receiveStalled;
    private bool _backendHungUp;
    private bool _signalLinkOnKick;

    /// <param name="memory">Guest RAM the buffers point into.</param>
    /// <param name="backend">The host side (owned: disposed with the device).</param>
    /// <param name="mac">The MAC address the guest reads (6 bytes, unicast).</param>
    /// <param name="loop">The event loop the device's work runs on (not started yet: the device registers with it).</param>
    public VirtioNet(GuestMemory memory, INetworkBackend backend, ReadOnlySpan<byte> mac, DeviceEventLoop loop)
    {
        ArgumentNullException.ThrowIfNull(memory);
        ArgumentNullException.ThrowIfNull(backend);
        ArgumentNullException.ThrowIfNull(loop);
        if (mac.Length != 6 || (mac[0] & 1) != 0)
        {
            throw new ArgumentException("A NIC's MAC address is 6 bytes and unicast (the low bit of the first byte clear).", nameof(mac));
        }

        _memory = memory;
        _backend = backend;
        _loop = loop;
        _mac = mac.ToArray();
        _deviceFeatures = VirtioFeatures.Version1 | VirtioFeatures.EventIndex | VirtioFeatures.IndirectDescriptors
            | FeatureMac | FeatureStatus | FeatureMtu | FeatureMergeableRxBuffers | FeatureCsum | FeatureGuestCsum
            | FeatureCtrlVq | FeatureCtrlGuestOffloads
            | (backend.HasVnetHeader
                ? FeatureGuestTso4 | FeatureGuestTso6 | FeatureGuestEcn | FeatureHostTso4 | FeatureHostTso6 | FeatureHostEcn
                : 0);
        loop.Register(_kick.Descriptor, Epoll.Readable, new KickHandler(this));
        _backendToken = loop.Register(backend.Descriptor, 0, new BackendHandler(this));
    }

    public ushort DeviceId => NetDeviceId;

    public ulong DeviceFeatures => _deviceFeatures;

    /// <summary>receiveq1, transmitq1 and the control queue (no MQ).</summary>
    public int QueueCount => 3;

    public ushort MaxQueueSize => MaxDataQueueSize;

    public int ConfigSize => ConfigLength;

    public INetworkBackend Backend => _backend;

    /// <summary>The MAC address the guest reads.</summary>
    public ReadOnlySpan<byte> Mac => _mac;

    /// <summary>Whether the link is up (the backend has not gone away).</summary>
    public bool LinkUp => Volatile.Read(ref _linkUp);

    /// <summary>The features the driver accepted at the last activation.</summary>
    public ulong NegotiatedFeatures => Volatile.Read(ref _negotiated);

    /// <summary>The guest receive offloads in force (negotiated, then as GUEST_OFFLOADS_SET changed them).</summary>
    public ulong GuestOffloads => Volatile.Read(ref _guestOffloads);

    public VirtioNetCounters Counters => _counters;

    /// <summary>Chains, malformed chains, ring errors and notifications of all three queues.</summary>
    public VirtQueueCounters QueueCounters => _queueCounters;

    public void ReadConfig(uint offset, Span<byte> data)
    {
        Span<byte> config = stackalloc byte[ConfigLength];
        _mac.CopyTo(config);
        BinaryPrimitives.WriteUInt16LittleEndian(config[ConfigStatus..], LinkUp ? StatusLinkUp : (ushort)0);
        BinaryPrimitives.WriteUInt16LittleEndian(config[ConfigMaxPairs..], 1);
        BinaryPrimitives.WriteUInt16LittleEndian(config[ConfigMtu..], _backend.Mtu);
        data.Clear();
        if (offset < ConfigLength)
        {
            var available = config[(int)offset..];
            available[..Math.Min(available.Length, data.Length)].CopyTo(data);
        }
    }

    /// <summary>Every field is read-only to the driver (the MAC too: VIRTIO_NET_F_CTRL_MAC_ADDR is not offered); writes are ignored.</summary>
    public void WriteConfig(uint offset, ReadOnlySpan<byte> data)
    {
    }

    public void Activate(ulong negotiatedFeatures, ReadOnlySpan<VirtQueueLayout> queues, IVirtioInterrupt interrupt)
    {
        ArgumentNullException.ThrowIfNull(interrupt);
        if (queues.Length != QueueCount)
        {
            throw new ArgumentException($"A virtio-net device with one queue pair has {QueueCount} queues; the transport passed {queues.Length}.", nameof(queues));
        }

        lock (_lock)
        {
            _negotiated = negotiatedFeatures & _deviceFeatures;
            _guestOffloads = _negotiated & GuestOffloadFeatures;
            _interrupt = interrupt;
            _receive = MakeQueue(queues, ReceiveQueue, interrupt);
            _transmit = MakeQueue(queues, TransmitQueue, interrupt);
            _control = (_negotiated & FeatureCtrlVq) != 0 ? MakeQueue(queues, ControlQueue, interrupt) : null;
            ClearReceiveState();
            ClearPool();
            _txBlocked = false;
            _backend.SetGuestOffloads(TunOffloads(_guestOffloads));
        }

        // The loop starts reading the backend and looks at every queue once.
        Interlocked.Or(ref _pendingKicks, 0b111);
        _kick.Signal();
    }

    public void QueueNotify(int queue)
    {
        if ((uint)queue >= QueueCount)
        {
            return;
        }

        Interlocked.Or(ref _pendingKicks, 1 << queue);
        _kick.Signal();
    }

    public void Reset()
    {
        lock (_lock)
        {
            _receive = null;
            _transmit = null;
            _control = null;
            _interrupt = null;
            _negotiated = 0;
            _guestOffloads = 0;
            ClearReceiveState();
            ClearPool();
            _txBlocked = false;
            _signalLinkOnKick = false;
            SetBackendEvents(0);
        }
    }

    /// <summary>
    /// The device's state; call with the device quiescent (its event loop paused, the vCPUs parked). Chains the device
    /// holds without having used them (pooled or partly filled receive buffers, a transmit frame the backend refused for
    /// now) are given back in the saved indices, so nothing the guest posted is lost: the device itself keeps them and
    /// carries on as before. Only when the guest's ring no longer shows them in order (a malformed chain among them was
    /// returned at once) are they returned used now, empty, and counted as a dropped frame, as the saved indices could
    /// not give them back exactly.
    /// </summary>
    public VirtioNetState Save()
    {
        lock (_lock)
        {
            return new VirtioNetState(
                _mac.ToArray(),
                _negotiated,
                _guestOffloads,
                _linkUp,
                SaveReceiveQueue(),
                SaveTransmitQueue(),
                _control?.Save());
        }
    }

    /// <summary>
    /// Restores a state from <see cref="Save"/> into a device the transport has just activated with the saved features
    /// and layouts (and before its event loop runs). Everything is checked before anything changes; a state this device
    /// cannot take throws <see cref="SnapshotStateException"/>. The backend is this process's,
    /// so the link comes back up; if it was down, the driver gets a configuration interrupt when the loop first runs.
    /// </summary>
    public void Restore(VirtioNetState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        lock (_lock)
        {
            CheckIdentity(state, _negotiated);
            CheckQueue("receive", _receive, state.ReceiveQueue);
            CheckQueue("transmit", _transmit, state.TransmitQueue);
            CheckQueue("control", _control, state.ControlQueue);

            if (state.ReceiveQueue is { } receive)
            {
                _receive!.Restore(receive);
            }

            if (state.TransmitQueue is { } transmit)
            {
                _transmit!.Restore(transmit);
            }

            if (state.ControlQueue is { } control)
            {
                _control!.Restore(control);
            }

            _guestOffloads = state.GuestOffloads;
            _backend.SetGuestOffloads(TunOffloads(_guestOffloads));
            _signalLinkOnKick = !state.LinkUp && _linkUp && (_negotiated & FeatureStatus) != 0;
        }
    }

    public void Dispose()
    {
        Reset();
        _backend.Dispose();
        _kick.Dispose();
    }

    /// <summary>The TUN_F_* flags for a set of guest receive features.</summary>
    public static uint TunOffloads(ulong guestFeatures)
    {
        uint flags = 0;
        if ((guestFeatures & FeatureGuestCsum) != 0)
        {
            flags |= TapDevice.OffloadChecksum;

            // TSO needs checksum offload (the kernel refuses TSO flags without TUN_F_CSUM).
            if ((guestFeatures & FeatureGuestTso4) != 0)
            {
                flags |= TapDevice.OffloadTso4;
            }

            if ((guestFeatures & FeatureGuestTso6) != 0)
            {
                flags |= TapDevice.OffloadTso6;
            }

            if ((guestFeatures & FeatureGuestEcn) != 0 && (flags & (TapDevice.OffloadTso4 | TapDevice.OffloadTso6)) != 0)
            {
                flags |= TapDevice.OffloadTsoEcn;
            }
        }

        return flags;
    }

    /// <summary>
    /// Checks the parts of <paramref name="state"/> that do not need the activated queues (the MAC, the features a
    /// transport accepting <paramref name="driverFeatures"/> negotiates, the offloads), so a machine can refuse a
    /// snapshot before it restores anything; throws <see cref="SnapshotStateException"/>.
    /// </summary>
    public void CheckRestore(VirtioNetState state, ulong driverFeatures)
    {
        ArgumentNullException.ThrowIfNull(state);
        CheckIdentity(state, driverFeatures & _deviceFeatures);
    }

    private void CheckIdentity(VirtioNetState state, ulong negotiated)
    {
        if (state.Mac is null || !state.Mac.AsSpan().SequenceEqual(_mac))
        {
            throw new SnapshotStateException(
                $"The snapshot's network adapter has MAC {FormatMac(state.Mac)}; this machine's has {FormatMac(_mac)}. Restore with the same --net options.");
        }

        if (state.NegotiatedFeatures != negotiated)
        {
            throw new SnapshotStateException(
                $"The snapshot's network adapter negotiated features 0x{state.NegotiatedFeatures:x}, but its transport activates it with 0x{negotiated:x}.");
        }

        ulong allowed = negotiated & GuestOffloadFeatures;
        if ((state.GuestOffloads & ~allowed) != 0)
        {
            throw new SnapshotStateException(
                $"The snapshot's network adapter has receive offloads 0x{state.GuestOffloads:x}, outside the negotiated 0x{allowed:x}.");
        }
    }

    private static void CheckQueue(string name, SplitVirtQueue? queue, SplitVirtQueueState? saved)
    {
        if ((queue is null) != (saved is null))
        {
            throw new SnapshotStateException(
                $"The snapshot's network adapter {(saved is null ? "had no" : "had a")} {name} queue, but its transport {(queue is null ? "enables none" : "enables one")}.");
        }

        if (queue is not null && queue.CheckRestore(saved!) is { } problem)
        {
            throw new SnapshotStateException($"The snapshot's network adapter {name} queue cannot be restored: {problem}.");
        }
    }

    private static string FormatMac(byte[]? mac) => mac is null ? "(none)" : Convert.ToHexString(mac);

    /// <summary>Under the lock: the receive queue's state with held chains given back (see <see cref="Save"/>).</summary>
    private SplitVirtQueueState? SaveReceiveQueue()
    {
        if (_receive is not { } receive)
        {
            return null;
        }

        // A device uses the pool (direct receive) or the frame being copied, never both.
        ReadOnlySpan<ushort> held = _poolCount > 0 ? _poolHeads.AsSpan(0, _poolCount) : _rxHeads.AsSpan(0, _rxHeld);
        if (receive.SaveRewound(held) is { } rewound)
        {
            return rewound;
        }

        _counters.RxDrop();
        var lengths = _rxLengths.AsSpan(0, held.Length);
        lengths.Clear();
        receive.AddUsedBatch(held, lengths);
        ClearReceiveState();
        ClearPool();
        receive.NotifyIfNeeded();
        return receive.Save();
    }

    /// <summary>Under the lock: the transmit queue's state with a frame waiting for the backend given back.</summary>
    private SplitVirtQueueState? SaveTransmitQueue()
    {
        if (_transmit is not { } transmit)
        {
            return null;
        }

        if (!_txBlocked)
        {
            return transmit.Save();
        }

        ReadOnlySpan<ushort> held = [_txBlockedHead];
        if (transmit.SaveRewound(held) is { } rewound)
        {
            return rewound;
        }

        _txBlocked = false;
        Drop(transmit, _txBlockedHead);
        transmit.NotifyIfNeeded();
        return transmit.Save();
    }

    private SplitVirtQueue? MakeQueue(ReadOnlySpan<VirtQueueLayout> queues, int index, IVirtioInterrupt interrupt) =>
        queues[index].Enabled ? new SplitVirtQueue(_memory, queues[index], _negotiated, index, interrupt, _queueCounters) : null;

    // ------------------------------------------------------------------ the loop thread

    private void OnKick()
    {
        _kick.Consume();
        int kicks = Interlocked.Exchange(ref _pendingKicks, 0);
        lock (_lock)
        {
            if (_interrupt is not { MemoryAccessAllowed: true })
            {
                SetBackendEvents(0);
                return;
            }

            if (_signalLinkOnKick)
            {
                _signalLinkOnKick = false;
                _interrupt.SignalConfigChange();
            }

            if ((kicks & (1 << ControlQueue)) != 0)
            {
                ProcessControl();
            }

            if ((kicks & (1 << TransmitQueue)) != 0)
            {
                Transmit();
            }

            // A receive kick means new buffers: deliver what waits and read the backend again.
            Receive();
            UpdateBackendEvents();
        }
    }

    private void OnBackend(uint events)
    {
        lock (_lock)
        {
            if (_interrupt is not { MemoryAccessAllowed: true })
            {
                SetBackendEvents(0);
                return;
            }

            if ((events & Epoll.Writable) != 0 || _txBlocked)
            {
                Transmit();
            }

            if ((events & (Epoll.Readable | Epoll.HangUp | Epoll.Error)) != 0)
            {
                Receive();
            }

            if ((events & (Epoll.HangUp | Epoll.Error)) != 0 && !_backendHungUp)
            {
                // The peer is gone; frames it sent before may still wait in the backend's buffer and drain on receive
                // kicks. epoll reports a hang-up whatever it is asked, so the descriptor leaves the wait set.
                _backendHungUp = true;
                _loop.Remove(_backendToken);
            }

            UpdateBackendEvents();
        }
    }

    /// <summary>Waits for readable while the guest has room and the link is up, for writable while output waits.</summary>
    private void UpdateBackendEvents()
    {
        uint events = 0;
        if (_linkUp && _receive is { IsBroken: false } && !_receiveStalled)
        {
            events |= Epoll.Readable;
        }

        if (_linkUp && (_backend.HasPendingOutput || _txBlocked))
        {
            events |= Epoll.Writable;
        }

        SetBackendEvents(events);
    }

    private void SetBackendEvents(uint events)
    {
        if (events != _backendEvents && !_backendHungUp)
        {
            _backendEvents = events;
            _loop.Modify(_backendToken, events);
        }
    }

    private void BackendClosed()
    {
        if (!_linkUp)
        {
            return;
        }

        _linkUp = false;
        _counters.Down();
        if ((_negotiated & FeatureStatus) != 0)
        {
            _interrupt?.SignalConfigChange();
        }
    }

    // ------------------------------------------------------------------ receive

    private void Receive()
    {
        _receiveStalled = false;
        if (_receive is not { } receive || receive.IsBroken || !_linkUp)
        {
            return;
        }

        if (_backend.SupportsDirectReceive && (_negotiated & FeatureMergeableRxBuffers) != 0)
        {
            // Out of buffers: ask for a kick when the driver posts some, and look again in case it just did.
            while (!ReceiveDirect(receive))
            {
                if (!receive.EnableNotifications())
                {
                    _receiveStalled = true;
                    break;
                }
            }

            receive.NotifyIfNeeded();
            return;
        }

        while (true)
        {
            var state = _backend.TryPeekFrame(out var frame);
            if (state == BackendReceive.Closed)
            {
                BackendClosed();
                break;
            }

            if (state == BackendReceive.Empty)
            {
                break;
            }

            if (!DeliverFrame(receive, frame))
            {
                // Out of buffers: ask for a kick when the driver posts some, and look again in case it just did.
                if (receive.EnableNotifications())
                {
                    continue;
                }

                _receiveStalled = true;
                break;
            }

            _backend.ConsumeFrame();
        }

        receive.NotifyIfNeeded();
    }

    /// <summary>
    /// Reads frames from the backend straight into pooled receive chains until it has none (true) or the pool cannot
    /// hold a largest frame and the ring has nothing more for now (false: wait for buffers). A frame uses the pool's
    /// first chains, in order; the rest wait for the next frame.
    /// </summary>
    private bool ReceiveDirect(SplitVirtQueue receive)
    {
        Span<byte> count = stackalloc byte[2];
        while (true)
        {
            ulong target = PoolTarget();
            FillPool(receive, target);
            bool canGrow = _poolCount < receive.Size && _poolVectors.Count <= PoolVectorCapacity - MaxDataQueueSize;
            if (_poolCount == 0 || (_poolBytes < target && canGrow))
            {
                return false;
            }

            // Either room for the largest frame, or all the ring will ever give (then a larger frame is dropped).
            long n = _backend.ReceiveVectored(_poolVectors);
            if (n == -Errno.EAGAIN)
            {
                return true;
            }

            if (n == 0 || (n < 0 && n != -Errno.EFAULT && n != -Errno.EINVAL && n != -Errno.EMSGSIZE))
            {
                BackendClosed();
                return true;
            }

            if (n < 0 || (ulong)n > _poolBytes)
            {
                // The kernel reports a frame's whole length even when the buffers took only part of it.
                _counters.RxTooSmall();
                _counters.RxDrop();
                continue;
            }

            if (n < HeaderLength + MinFrameLength)
            {
                continue; // nothing a driver could use; the chains stay in the pool
            }

            int used = 0;
            ulong left = (ulong)n;
            int vectors = 0;
            ulong bytes = 0;
            while (left > 0)
            {
                uint take = (uint)Math.Min(_poolLengths[used], left);
                _rxLengths[used] = take;
                left -= take;
                vectors += _poolVectorCounts[used];
                bytes += _poolLengths[used];
                used++;
            }

            BinaryPrimitives.WriteUInt16LittleEndian(count, (ushort)used);
            _poolVectors.WriteAt(HeaderNumBuffers, count);
            _memory.MarkDirtyHost(_poolVectors, (ulong)n); // after the frame and num_buffers are in place, before the driver sees them

            receive.AddUsedBatch(_poolHeads.AsSpan(0, used), _rxLengths.AsSpan(0, used));
            _counters.Received((int)n - HeaderLength);

            _poolVectors.RemoveFirst(vectors);
            _poolHeads.AsSpan(used, _poolCount - used).CopyTo(_poolHeads);
            _poolLengths.AsSpan(used, _poolCount - used).CopyTo(_poolLengths);
            _poolVectorCounts.AsSpan(used, _poolCount - used).CopyTo(_poolVectorCounts);
            _poolCount -= used;
            _poolBytes -= bytes;
        }
    }

    /// <summary>Pops receive chains into the pool until it holds a largest frame, the ring is empty, or the pool is full.</summary>
    private void FillPool(SplitVirtQueue receive, ulong target)
    {
        while (_poolBytes < target && _poolCount < receive.Size && _poolVectors.Count <= PoolVectorCapacity - MaxDataQueueSize
            && receive.TryPop(out var chain))
        {
            // Any pooled chain may come first for a frame, so each must hold the header.
            if (chain.WritableLength < HeaderLength)
            {
                if (chain.WritableLength == 0)
                {
                    _counters.RxNotWritable();
                }
                else
                {
                    _counters.RxHeaderShort();
                }

                receive.AddUsed(chain.HeadIndex, 0);
                continue;
            }

            int before = _poolVectors.Count;
            ulong length = Math.Min(chain.WritableLength, uint.MaxValue);
            if (!ChainBuffers.TryAddVectors(_memory, chain.Writable, 0, length, _poolVectors))
            {
                _poolVectors.Truncate(before);
                receive.AddUsed(chain.HeadIndex, 0);
                continue;
            }

            _poolHeads[_poolCount] = chain.HeadIndex;
            _poolLengths[_poolCount] = (uint)length;
            _poolVectorCounts[_poolCount] = _poolVectors.Count - before;
            _poolCount++;
            _poolBytes += length;
        }
    }

    /// <summary>
    /// Bytes the pool holds before a direct read: the header and the largest frame the host may pass, 64 KiB with a
    /// TSO offload on, else the MTU's (plus the Ethernet and VLAN headers).
    /// </summary>
    private ulong PoolTarget() => HeaderLength + ((_guestOffloads & (FeatureGuestTso4 | FeatureGuestTso6)) != 0
        ? (ulong)MaxFrameLength
        : Math.Min((ulong)MaxFrameLength, (ulong)_backend.Mtu + 18));

    private void ClearPool()
    {
        _poolVectors.Clear();
        _poolCount = 0;
        _poolBytes = 0;
    }

    /// <summary>Moves one frame into receive buffers; false when the ring ran out first (the frame stays with the backend).</summary>
    private bool DeliverFrame(SplitVirtQueue receive, ReadOnlySpan<byte> frame)
    {
        ReadOnlySpan<byte> payload;
        if (_backend.HasVnetHeader)
        {
            if (_rxWritten == 0)
            {
                frame[..HeaderLength].CopyTo(_rxHeader);
            }

            payload = frame[HeaderLength..];
        }
        else
        {
            if (_rxWritten == 0)
            {
                Array.Clear(_rxHeader);
                if ((_guestOffloads & FeatureGuestCsum) != 0)
                {
                    _rxHeader[HeaderFlags] = HeaderFlagDataValid;
                }
            }

            payload = frame;
        }

        int total = HeaderLength + payload.Length;
        bool mergeable = (_negotiated & FeatureMergeableRxBuffers) != 0;
        while (_rxWritten < total)
        {
            if (_rxHeld == receive.Size || _rxHeld == _rxHeads.Length)
            {
                // A ring's worth of buffers and the frame still does not fit: the guest posted buffers too small.
                DropHeldFrame(receive);
                return true;
            }

            if (!receive.TryPop(out var chain))
            {
                return false;
            }

            if (chain.WritableLength == 0)
            {
                _counters.RxNotWritable();
                receive.AddUsed(chain.HeadIndex, 0);
                continue;
            }

            if (_rxHeld == 0 && chain.WritableLength < HeaderLength)
            {
                _counters.RxHeaderShort();
                receive.AddUsed(chain.HeadIndex, 0);
                continue;
            }

            if (!mergeable && chain.WritableLength < (ulong)total)
            {
                _counters.RxTooSmall();
                _counters.RxDrop();
                receive.AddUsed(chain.HeadIndex, 0);
                ClearReceiveState();
                return true;
            }

            int length = (int)Math.Min(chain.WritableLength, (ulong)(total - _rxWritten));
            if (!WriteStream(chain.Writable, _rxWritten, length, payload))
            {
                receive.AddUsed(chain.HeadIndex, 0);
                continue;
            }

            if (_rxHeld == 0)
            {
                chain.Writable.CopyTo(_rxFirstSegments);
                _rxFirstSegmentCount = chain.Writable.Length;
            }

            _rxHeads[_rxHeld] = chain.HeadIndex;
            _rxLengths[_rxHeld] = (uint)length;
            _rxHeld++;
            _rxWritten += length;
        }

        Span<byte> count = stackalloc byte[2];
        BinaryPrimitives.WriteUInt16LittleEndian(count, (ushort)_rxHeld);
        ChainBuffers.TryWrite(_memory, _rxFirstSegments.AsSpan(0, _rxFirstSegmentCount), HeaderNumBuffers, count);
        receive.AddUsedBatch(_rxHeads.AsSpan(0, _rxHeld), _rxLengths.AsSpan(0, _rxHeld));
        _counters.Received(payload.Length);
        ClearReceiveState();
        return true;
    }

    /// <summary>Writes bytes [<paramref name="start"/>, +<paramref name="length"/>) of header ++ payload to the chain's buffers from their start.</summary>
    private bool WriteStream(ReadOnlySpan<ChainSegment> writable, int start, int length, ReadOnlySpan<byte> payload)
    {
        ulong position = 0;
        if (start < HeaderLength)
        {
            int fromHeader = Math.Min(HeaderLength - start, length);
            if (!ChainBuffers.TryWrite(_memory, writable, 0, _rxHeader.AsSpan(start, fromHeader)))
            {
                return false;
            }

            position = (ulong)fromHeader;
            start += fromHeader;
            length -= fromHeader;
        }

        return length == 0 || ChainBuffers.TryWrite(_memory, writable, position, payload.Slice(start - HeaderLength, length));
    }

    private void DropHeldFrame(SplitVirtQueue receive)
    {
        _counters.RxTooSmall();
        _counters.RxDrop();
        _rxLengths.AsSpan(0, _rxHeld).Clear();
        receive.AddUsedBatch(_rxHeads.AsSpan(0, _rxHeld), _rxLengths.AsSpan(0, _rxHeld));
        ClearReceiveState();
    }

    private void ClearReceiveState()
    {
        _rxHeld = 0;
        _rxWritten = 0;
        _rxFirstSegmentCount = 0;
        _receiveStalled = false;
    }

    // ------------------------------------------------------------------ transmit

    private void Transmit()
    {
        if (_transmit is not { } transmit || transmit.IsBroken)
        {
            return;
        }

        if (_txBlocked)
        {
            if (!RetryBlocked(transmit))
            {
                return;
            }
        }
        else if (_backend.HasPendingOutput && !_backend.FlushPendingOutput())
        {
            return;
        }

        int handled = 0;
        do
        {
            transmit.DisableNotifications();
            while (handled < TransmitBatch && transmit.TryPop(out var chain))
            {
                handled++;
                if (!SendChain(transmit, chain))
                {
                    transmit.NotifyIfNeeded();
                    return; // blocked: resumes when the backend is writable
                }
            }

            if (handled >= TransmitBatch)
            {
                // Let receive work run; come back for the rest.
                Interlocked.Or(ref _pendingKicks, 1 << TransmitQueue);
                _kick.Signal();
                break;
            }
        }
        while (transmit.EnableNotifications());

        transmit.NotifyIfNeeded();
    }

    /// <summary>Validates and sends one transmit chain; false when the backend would block (the chain is held).</summary>
    private bool SendChain(SplitVirtQueue transmit, DescriptorChain chain)
    {
        if (chain.ReadableLength < HeaderLength)
        {
            _counters.TxHeaderShort();
            return Drop(transmit, chain.HeadIndex);
        }

        ulong frameLength = chain.ReadableLength - HeaderLength;
        if (frameLength < MinFrameLength)
        {
            _counters.TxFrameShort();
            return Drop(transmit, chain.HeadIndex);
        }

        if (frameLength > MaxFrameLength)
        {
            _counters.TxFrameLarge();
            return Drop(transmit, chain.HeadIndex);
        }

        // One copy of the header, validated and then used: the guest may rewrite its buffer meanwhile.
        var header = _sendHeader.AsSpan();
        if (!ChainBuffers.TryRead(_memory, chain.Readable, 0, header))
        {
            return Drop(transmit, chain.HeadIndex);
        }

        if (BinaryPrimitives.ReadUInt16LittleEndian(header[HeaderNumBuffers..]) != 0)
        {
            _counters.TxNumBuffers();
            header[HeaderNumBuffers..].Clear();
        }

        byte flags = header[HeaderFlags];
        byte gso = header[HeaderGsoType];
        bool needsCsum = (flags & HeaderFlagNeedsCsum) != 0;
        if ((needsCsum && (_negotiated & FeatureCsum) == 0) || !GsoAllowed(gso))
        {
            _counters.TxOffload();
            return Drop(transmit, chain.HeadIndex);
        }

        _sendVectors.Clear();
        if (_backend.HasVnetHeader)
        {
            // The host kernel checks the header and does the checksum and segmentation.
            unsafe
            {
                // SAFETY: _sendHeader is pinned for the device's lifetime.
                fixed (byte* h = _sendHeader)
                {
                    _sendVectors.TryAdd((nint)h, HeaderLength);
                }
            }

            if (!ChainBuffers.TryAddVectors(_memory, chain.Readable, HeaderLength, frameLength, _sendVectors))
            {
                return Drop(transmit, chain.HeadIndex);
            }
        }
        else if (needsCsum)
        {
            int csumStart = BinaryPrimitives.ReadUInt16LittleEndian(header[HeaderCsumStart..]);
            int csumOffset = BinaryPrimitives.ReadUInt16LittleEndian(header[HeaderCsumOffset..]);
            if ((ulong)csumStart + (ulong)csumOffset + 2 > frameLength)
            {
                _counters.TxChecksumOffsets();
                return Drop(transmit, chain.HeadIndex);
            }

            var staging = _sendStaging.AsSpan(0, (int)frameLength);
            if (!ChainBuffers.TryRead(_memory, chain.Readable, HeaderLength, staging))
            {
                return Drop(transmit, chain.HeadIndex);
            }

            ushort checksum = InternetChecksum.Complete(staging[csumStart..]);
            BinaryPrimitives.WriteUInt16LittleEndian(staging[(csumStart + csumOffset)..], checksum);
            unsafe
            {
                // SAFETY: _sendStaging is pinned for the device's lifetime and holds frameLength bytes.
                fixed (byte* s = _sendStaging)
                {
                    _sendVectors.TryAdd((nint)s, frameLength);
                }
            }
        }
        else if (!ChainBuffers.TryAddVectors(_memory, chain.Readable, HeaderLength, frameLength, _sendVectors))
        {
            return Drop(transmit, chain.HeadIndex);
        }

        return Send(transmit, chain.HeadIndex, (long)frameLength);
    }

    private bool GsoAllowed(byte gso)
    {
        byte type = (byte)(gso & ~GsoEcn);
        if (type == GsoNone)
        {
            return (gso & GsoEcn) == 0;
        }

        if ((gso & GsoEcn) != 0 && (_negotiated & FeatureHostEcn) == 0)
        {
            return false;
        }

        return type switch
        {
            GsoTcpV4 => (_negotiated & FeatureHostTso4) != 0,
            GsoTcpV6 => (_negotiated & FeatureHostTso6) != 0,
            _ => false,
        };
    }

    private bool Send(SplitVirtQueue transmit, ushort head, long frameLength)
    {
        if (!_linkUp)
        {
            return Drop(transmit, head);
        }

        switch (_backend.Send(_sendVectors))
        {
            case BackendSend.Sent:
                _counters.Sent(frameLength);
                transmit.AddUsed(head, 0);
                return true;
            case BackendSend.Blocked:
                _txBlocked = true;
                _txBlockedHead = head;
                _txBlockedLength = frameLength;
                return false;
            case BackendSend.Rejected:
                _counters.Rejected();
                return Drop(transmit, head);
            default:
                BackendClosed();
                return Drop(transmit, head);
        }
    }

    /// <summary>Sends the held frame again; true once it went (or was dropped) and the queue may be drained further.</summary>
    private bool RetryBlocked(SplitVirtQueue transmit)
    {
        _txBlocked = false;
        if (!Send(transmit, _txBlockedHead, _txBlockedLength))
        {
            transmit.NotifyIfNeeded();
            return false;
        }

        return true;
    }

    private bool Drop(SplitVirtQueue transmit, ushort head)
    {
        _counters.TxDrop();
        transmit.AddUsed(head, 0);
        return true;
    }

    // ------------------------------------------------------------------ control

    private void ProcessControl()
    {
        if (_control is not { } control || control.IsBroken)
        {
            return;
        }

        do
        {
            control.DisableNotifications();
            while (control.TryPop(out var chain))
            {
                if (chain.ReadableLength < 2 || chain.WritableLength < 1)
                {
                    _counters.CtrlLength();
                    control.AddUsed(chain.HeadIndex, 0);
                    continue;
                }

                byte ack = Command(chain);
                ReadOnlySpan<byte> answer = [ack];
                control.AddUsed(chain.HeadIndex, ChainBuffers.TryWrite(_memory, chain.Writable, 0, answer) ? 1u : 0u);
            }
        }
        while (control.EnableNotifications());

        control.NotifyIfNeeded();
    }

    private byte Command(DescriptorChain chain)
    {
        Span<byte> head = stackalloc byte[2];
        if (!ChainBuffers.TryRead(_memory, chain.Readable, 0, head))
        {
            return CtrlErr;
        }

        if (head[0] != CtrlClassGuestOffloads || head[1] != CtrlGuestOffloadsSet || (_negotiated & FeatureCtrlGuestOffloads) == 0)
        {
            _counters.CtrlUnknown();
            return CtrlErr;
        }

        Span<byte> data = stackalloc byte[8];
        if (chain.ReadableLength != 2 + 8 || !ChainBuffers.TryRead(_memory, chain.Readable, 2, data))
        {
            _counters.CtrlOffloads();
            return CtrlErr;
        }

        ulong offloads = BinaryPrimitives.ReadUInt64LittleEndian(data);
        ulong allowed = _negotiated & GuestOffloadFeatures;
        if ((offloads & ~allowed) != 0)
        {
            _counters.CtrlOffloads();
            return CtrlErr;
        }

        _guestOffloads = offloads;
        _backend.SetGuestOffloads(TunOffloads(offloads));
        return CtrlOk;
    }

    private sealed class KickHandler(VirtioNet device) : IEventHandler
    {
        public void OnEvents(uint events) => device.OnKick();
    }

    private sealed class BackendHandler(VirtioNet device) : IEventHandler
    {
        public void OnEvents(uint events) => device.OnBackend(events);
    }
}
