using System.Buffers.Binary;
using KvmSharp.Devices.Legacy;
using KvmSharp.Memory;

namespace KvmSharp.Devices.Virtio;

/// <summary>
/// A virtio console (virtio 1.x section 5.3, device ID 3) with one port and no MULTIPORT: queue 0 (receiveq)
/// carries host input to the guest, queue 1 (transmitq) guest output to a stream. Linux binds it as /dev/hvc0.
/// </summary>
/// <remarks>
/// <para>Host input arrives on another thread through <see cref="Enqueue"/> into a bounded buffer
/// (<see cref="InputBufferCapacity"/> bytes; the rest is refused, the host's backpressure) and moves into receive
/// buffers as the guest posts them. A receive buffer is taken only when there is input for it, and gets as many
/// bytes as are waiting and fit; its used length is that count.</para>
/// <para>Transmit chains are written to the output stream in order, each readable buffer whole, and flushed after
/// every batch; their used length is 0 (the device writes nothing into them). Device-writable buffers in a transmit
/// chain and device-readable ones in a receive chain (both forbidden to the driver) are ignored. An exception from
/// the output stream is a host failure and propagates.</para>
/// <para>Configuration: cols and rows (VIRTIO_CONSOLE_F_SIZE; <see cref="SetSize"/> changes them and signals a
/// configuration change), max_nr_ports = 1, and emerg_wr (VIRTIO_CONSOLE_F_EMERG_WRITE), whose written low byte
/// goes to the output at any time, even before the driver set the device up. The field order is Linux's and
/// QEMU's (cols, then rows); the spec's listing before 1.2 showed rows first.</para>
/// <para>Thread-safe (one lock); the queue paths allocate nothing.</para>
/// </remarks>
public sealed class VirtioConsole : IVirtioDevice
{
    public const ushort ConsoleDeviceId = 3;

    public const ushort MaxPortQueueSize = 256;

    /// <summary>Host input the device holds before <see cref="Enqueue"/> refuses bytes.</summary>
    public const int InputBufferCapacity = 4096;

    /// <summary>Bytes of struct virtio_console_config.</summary>
    public const int ConfigLength = 12;

    public const int ReceiveQueue = 0;
    public const int TransmitQueue = 1;

    // Feature bits (5.3.3).
    public const ulong FeatureSize = 1UL << 0;           // VIRTIO_CONSOLE_F_SIZE
    public const ulong FeatureMultiport = 1UL << 1;      // VIRTIO_CONSOLE_F_MULTIPORT (not offered)
    public const ulong FeatureEmergencyWrite = 1UL << 2; // VIRTIO_CONSOLE_F_EMERG_WRITE

    // Offsets in struct virtio_console_config (5.3.4, in Linux's order).
    private const int ConfigColumns = 0;
    private const int ConfigRows = 2;
    private const int ConfigMaxPorts = 4;
    private const int ConfigEmergencyWrite = 8;

    /// <summary>The largest piece of a transmit buffer written to the stream at once (a span holds at most 2 GiB).</summary>
    private const uint MaxWriteChunk = 1U << 30;

    private readonly GuestMemory _memory;
    private readonly Stream _output;
    private readonly Lock _lock = new();
    private readonly ByteRing _pendingInput = new(InputBufferCapacity);
    private readonly VirtQueueCounters _queueCounters = new();

    private SplitVirtQueue? _receive;
    private SplitVirtQueue? _transmit;
    private IVirtioInterrupt? _interrupt;
    private ulong _negotiated;
    private ushort _columns;
    private ushort _rows;
    private long _bytesTransmitted;
    private long _bytesReceived;
    private bool _quiesced;
    private int _deferredKicks;
    private bool _deferredConfigChange;

    /// <param name="memory">Guest RAM the buffers point into.</param>
    /// <param name="output">Where guest output goes (not owned); flushed after each transmit batch.</param>
    /// <param name="columns">Console width reported with VIRTIO_CONSOLE_F_SIZE.</param>
    /// <param name="rows">Console height reported with VIRTIO_CONSOLE_F_SIZE.</param>
    public VirtioConsole(GuestMemory memory, Stream output, ushort columns = 80, ushort rows = 25)
    {
        ArgumentNullException.ThrowIfNull(memory);
        ArgumentNullException.ThrowIfNull(output);
        if (!output.CanWrite)
        {
            throw new ArgumentException("The virtio console needs a writable output stream.", nameof(output));
        }

        _memory = memory;
        _output = output;
        _columns = columns;
        _rows = rows;
    }

    public ushort DeviceId => ConsoleDeviceId;

    public ulong DeviceFeatures => VirtioFeatures.Version1 | VirtioFeatures.EventIndex | VirtioFeatures.IndirectDescriptors
        | FeatureSize | FeatureEmergencyWrite;

    /// <summary>receiveq(port0) and transmitq(port0): without MULTIPORT there are no control queues.</summary>
    public int QueueCount => 2;

    public ushort MaxQueueSize => MaxPortQueueSize;

    public int ConfigSize => ConfigLength;

    /// <summary>Bytes the guest wrote to the output (transmit queue and emergency writes).</summary>
    public long BytesTransmitted => Volatile.Read(ref _bytesTransmitted);

    /// <summary>Host input bytes delivered into guest receive buffers.</summary>
    public long BytesReceived => Volatile.Read(ref _bytesReceived);

    /// <summary>Host input accepted by <see cref="Enqueue"/> that no receive buffer has taken yet.</summary>
    public int PendingInputCount
    {
        get
        {
            lock (_lock)
            {
                return _pendingInput.Count;
            }
        }
    }

    /// <summary>Chains, malformed chains, ring errors and notifications of both queues.</summary>
    public VirtQueueCounters QueueCounters => _queueCounters;

    public void ReadConfig(uint offset, Span<byte> data)
    {
        Span<byte> config = stackalloc byte[ConfigLength];
        lock (_lock)
        {
            BinaryPrimitives.WriteUInt16LittleEndian(config[ConfigColumns..], _columns);
            BinaryPrimitives.WriteUInt16LittleEndian(config[ConfigRows..], _rows);
        }

        BinaryPrimitives.WriteUInt32LittleEndian(config[ConfigMaxPorts..], 1);

        // emerg_wr reads as 0.
        data.Clear();
        if (offset < ConfigLength)
        {
            var available = config[(int)offset..];
            available[..Math.Min(available.Length, data.Length)].CopyTo(data);
        }
    }

    /// <summary>Only emerg_wr is writable: its low byte goes to the output. Writes elsewhere are ignored.</summary>
    public void WriteConfig(uint offset, ReadOnlySpan<byte> data)
    {
        if (offset != ConfigEmergencyWrite || data.IsEmpty)
        {
            return;
        }

        lock (_lock)
        {
            _output.Write(data[..1]);
            _output.Flush();
            Volatile.Write(ref _bytesTransmitted, _bytesTransmitted + 1);
        }
    }

    public void Activate(ulong negotiatedFeatures, ReadOnlySpan<VirtQueueLayout> queues, IVirtioInterrupt interrupt)
    {
        ArgumentNullException.ThrowIfNull(interrupt);
        if (queues.Length != QueueCount)
        {
            throw new ArgumentException($"A virtio console without MULTIPORT has {QueueCount} queues; the transport passed {queues.Length}.", nameof(queues));
        }

        lock (_lock)
        {
            _negotiated = negotiatedFeatures & DeviceFeatures;
            _interrupt = interrupt;
            _receive = queues[ReceiveQueue].Enabled
                ? new SplitVirtQueue(_memory, queues[ReceiveQueue], _negotiated, ReceiveQueue, interrupt, _queueCounters)
                : null;
            _transmit = queues[TransmitQueue].Enabled
                ? new SplitVirtQueue(_memory, queues[TransmitQueue], _negotiated, TransmitQueue, interrupt, _queueCounters)
                : null;
            DeliverInput();
        }
    }

    public void QueueNotify(int queue)
    {
        lock (_lock)
        {
            if (_quiesced)
            {
                if ((uint)queue < QueueCount)
                {
                    _deferredKicks |= 1 << queue;
                }
            }
            else if (queue == ReceiveQueue)
            {
                DeliverInput();
            }
            else if (queue == TransmitQueue)
            {
                Transmit();
            }
        }
    }

    /// <summary>
    /// Offers host input to the guest; any thread. Returns how many leading bytes of <paramref name="bytes"/> were
    /// accepted: the rest did not fit and should be offered again once the guest has taken some.
    /// </summary>
    public int Enqueue(ReadOnlySpan<byte> bytes)
    {
        lock (_lock)
        {
            // Deliver what fits now, then top the buffer up: the bound is InputBufferCapacity beyond what the guest took.
            int accepted = _pendingInput.Write(bytes);
            DeliverInput();
            accepted += _pendingInput.Write(bytes[accepted..]);
            DeliverInput();
            return accepted;
        }
    }

    /// <summary>Changes the console size the guest reads; signals a configuration change when the driver negotiated VIRTIO_CONSOLE_F_SIZE.</summary>
    public void SetSize(ushort columns, ushort rows)
    {
        lock (_lock)
        {
            if (columns == _columns && rows == _rows)
            {
                return;
            }

            _columns = columns;
            _rows = rows;
            if ((_negotiated & FeatureSize) != 0)
            {
                if (_quiesced)
                {
                    _deferredConfigChange = true;
                }
                else
                {
                    _interrupt?.SignalConfigChange();
                }
            }
        }
    }

    /// <summary>Device reset: both queues are dropped; host input already accepted stays buffered for the next activation.</summary>
    public void Reset()
    {
        lock (_lock)
        {
            _receive = null;
            _transmit = null;
            _interrupt = null;
            _negotiated = 0;
        }
    }

    /// <summary>
    /// Stops touching guest memory and raising interrupts, for a pause or a snapshot; returns once a delivery or
    /// transmit in progress (on another thread) has finished. Meanwhile <see cref="Enqueue"/> still buffers host input
    /// (it is saved with the state, and the pump's backpressure holds the rest), and kicks and size changes are
    /// recorded for <see cref="Unquiesce"/>.
    /// </summary>
    public void Quiesce()
    {
        lock (_lock)
        {
            _quiesced = true;
        }
    }

    /// <summary>Resumes: delivers buffered input, handles the kicks and the size change recorded while quiesced.</summary>
    public void Unquiesce()
    {
        lock (_lock)
        {
            if (!_quiesced)
            {
                return;
            }

            _quiesced = false;
            int kicks = _deferredKicks;
            _deferredKicks = 0;
            if (_deferredConfigChange)
            {
                _deferredConfigChange = false;
                _interrupt?.SignalConfigChange();
            }

            if ((kicks & (1 << TransmitQueue)) != 0)
            {
                Transmit();
            }

            DeliverInput();
        }
    }

    public VirtioConsoleState Save()
    {
        lock (_lock)
        {
            return new VirtioConsoleState(_columns, _rows, _pendingInput.ToArray(), _receive?.Save(), _transmit?.Save());
        }
    }

    /// <summary>
    /// Restores a state from <see cref="Save"/>: size and buffered input always, queue indices after
    /// <see cref="Activate"/> with the saved features and layouts.
    /// </summary>
    public void Restore(VirtioConsoleState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        ArgumentNullException.ThrowIfNull(state.PendingInput);
        if (state.PendingInput.Length > InputBufferCapacity)
        {
            throw new ArgumentException(
                $"Console state holds {state.PendingInput.Length} bytes of pending input, more than the {InputBufferCapacity} the device buffers. Restore a state saved by this device model.",
                nameof(state));
        }

        lock (_lock)
        {
            if ((state.ReceiveQueue is not null && _receive is null) || (state.TransmitQueue is not null && _transmit is null))
            {
                throw new InvalidOperationException("The saved console had active queues: activate the device with the saved layouts before restoring it.");
            }

            _columns = state.Columns;
            _rows = state.Rows;
            _pendingInput.Clear();
            _pendingInput.Write(state.PendingInput);
            if (state.ReceiveQueue is { } receive)
            {
                _receive!.Restore(receive);
            }

            if (state.TransmitQueue is { } transmit)
            {
                _transmit!.Restore(transmit);
            }
        }
    }

    public void Dispose() => Reset();

    /// <summary>Moves waiting input into posted receive buffers; takes a buffer only when there is input for it.</summary>
    private void DeliverInput()
    {
        if (_quiesced || _receive is not { } receive || _interrupt?.MemoryAccessAllowed != true)
        {
            return; // input waits: no queue yet, or the device may not write guest memory now (no bus mastering)
        }

        while (true)
        {
            while (_pendingInput.Count != 0 && receive.TryPop(out var chain))
            {
                receive.AddUsed(chain.HeadIndex, FillReceiveBuffer(chain.Writable));
            }

            // Ask for a kick at the next buffer the driver posts; go round again if one arrived meanwhile and input waits.
            if (!receive.EnableNotifications() || _pendingInput.Count == 0)
            {
                break;
            }
        }

        receive.NotifyIfNeeded();
    }

    private uint FillReceiveBuffer(ReadOnlySpan<ChainSegment> writable)
    {
        uint delivered = 0;
        foreach (var segment in writable)
        {
            int length = (int)Math.Min(segment.Length, (uint)_pendingInput.Count);
            if (length == 0)
            {
                break;
            }

            if (!_memory.TryGetSpan(segment.Address, length, out var span))
            {
                break;
            }

            _pendingInput.Read(span);
            _memory.MarkDirty(segment.Address, (ulong)length);
            delivered += (uint)length;
        }

        Volatile.Write(ref _bytesReceived, _bytesReceived + delivered);
        return delivered;
    }

    private void Transmit()
    {
        if (_quiesced || _transmit is not { } transmit)
        {
            return;
        }

        bool wrote = false;
        do
        {
            transmit.DisableNotifications();
            while (transmit.TryPop(out var chain))
            {
                foreach (var segment in chain.Readable)
                {
                    WriteSegment(segment);
                    wrote |= segment.Length != 0;
                }

                transmit.AddUsed(chain.HeadIndex, 0);
            }
        }
        while (transmit.EnableNotifications());

        if (wrote)
        {
            _output.Flush();
        }

        transmit.NotifyIfNeeded();
    }

    private void WriteSegment(ChainSegment segment)
    {
        ulong address = segment.Address;
        uint remaining = segment.Length;
        while (remaining > 0)
        {
            int chunk = (int)Math.Min(remaining, MaxWriteChunk);
            if (!_memory.TryGetSpan(address, chunk, out var span))
            {
                return;
            }

            _output.Write(span);
            Volatile.Write(ref _bytesTransmitted, _bytesTransmitted + chunk);
            address += (ulong)chunk;
            remaining -= (uint)chunk;
        }
    }
}
