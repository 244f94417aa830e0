using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using KvmSharp.Memory;

namespace KvmSharp.Devices.Virtio;

/// <summary>
/// The device side of a split virtqueue (virtio 1.x section 2.7, "Split Virtqueues"): it pops descriptor chains the
/// driver made available, validates them, and publishes used elements with the driver's notification suppression.
/// </summary>
/// <remarks>
/// <para>Everything the driver wrote is copied out of guest memory first and validated on the copy, so a vCPU
/// rewriting a descriptor while it is read cannot slip an unchecked value past the checks. Every guest access goes
/// through <see cref="GuestMemory"/>'s bounds-checked calls.</para>
/// <para>Chain errors (a buffer outside RAM, a NEXT loop, a bad indirect table, readable after writable; see
/// <see cref="ChainError"/>) are counted and the chain is returned used with length 0 without the device ever seeing
/// it. Ring errors (a head index not below the size, the available index running more than the size ahead, an
/// invalid layout) stop the queue for good and call <see cref="IVirtioInterrupt.NeedsReset"/> once.</para>
/// <para>Not thread-safe: the owning device serializes every call. Nothing here allocates after construction.</para>
/// </remarks>
public sealed class SplitVirtQueue
{
    /// <summary>The largest split queue size (2.7, "Queue Size ... maximum 32768").</summary>
    public const int MaxSize = 32768;

    /// <summary>sizeof(struct virtq_desc).</summary>
    public const int DescriptorSize = 16;

    // struct virtq_desc flags (2.7.5).
    public const ushort DescriptorFlagNext = 1;     // VIRTQ_DESC_F_NEXT
    public const ushort DescriptorFlagWrite = 2;    // VIRTQ_DESC_F_WRITE
    public const ushort DescriptorFlagIndirect = 4; // VIRTQ_DESC_F_INDIRECT

    /// <summary>VIRTQ_AVAIL_F_NO_INTERRUPT (2.7.6): the driver asks for no used-buffer notifications (without EVENT_IDX).</summary>
    public const ushort AvailableFlagNoInterrupt = 1;

    /// <summary>VIRTQ_USED_F_NO_NOTIFY (2.7.8): the device asks for no available-buffer notifications (without EVENT_IDX).</summary>
    public const ushort UsedFlagNoNotify = 1;

    private const int UsedElementSize = 8; // struct virtq_used_elem { le32 id; le32 len; }
    private const int RingHeaderSize = 4;  // le16 flags; le16 idx;

    private readonly GuestMemory _memory;
    private readonly IVirtioInterrupt _interrupt;
    private readonly VirtQueueCounters _counters;
    private readonly ulong _descriptorTable;
    private readonly ulong _availableRing;
    private readonly ulong _usedRing;
    private readonly ushort _size;
    private readonly bool _eventIndex;
    private readonly bool _indirect;
    private readonly ChainSegment[] _segments;

    private ushort _nextAvail;
    private ushort _nextUsed;
    private ushort _signalledUsed;
    private bool _broken;

    /// <param name="memory">Guest RAM holding the rings and buffers.</param>
    /// <param name="layout">Where the driver put the rings; validated here (an invalid layout stops the queue at once).</param>
    /// <param name="negotiatedFeatures">The features the driver accepted: EVENT_IDX and INDIRECT_DESC change the ring's rules.</param>
    /// <param name="queueIndex">The queue's number, passed to <see cref="IVirtioInterrupt.SignalQueue"/>.</param>
    /// <param name="interrupt">Where notifications and reset requests go.</param>
    /// <param name="counters">Shared counters (a device keeps one set across resets); null for a private set.</param>
    public SplitVirtQueue(GuestMemory memory, VirtQueueLayout layout, ulong negotiatedFeatures, int queueIndex, IVirtioInterrupt interrupt, VirtQueueCounters? counters = null)
    {
        ArgumentNullException.ThrowIfNull(memory);
        ArgumentNullException.ThrowIfNull(interrupt);
        _memory = memory;
        _interrupt = interrupt;
        _counters = counters ?? new VirtQueueCounters();
        Index = queueIndex;
        _size = layout.Size;
        _descriptorTable = layout.DescriptorTable;
        _availableRing = layout.AvailableRing;
        _usedRing = layout.UsedRing;
        _eventIndex = (negotiatedFeatures & VirtioFeatures.EventIndex) != 0;
        _indirect = (negotiatedFeatures & VirtioFeatures.IndirectDescriptors) != 0;
        _segments = new ChainSegment[Math.Clamp((int)layout.Size, 1, MaxSize)];

        if (!IsValidLayout(memory, layout))
        {
            Stop(ChainError.InvalidLayout);
        }
    }

    /// <summary>The queue's number within its device.</summary>
    public int Index { get; }

    /// <summary>The queue size the driver chose.</summary>
    public ushort Size => _size;

    /// <summary>True once a ring error stopped the queue: it pops nothing and publishes nothing until the device is reset.</summary>
    public bool IsBroken => _broken;

    /// <summary>The next available-ring slot the device reads (the spec's last_avail_idx).</summary>
    public ushort NextAvailIndex => _nextAvail;

    /// <summary>The used index the next published element gets.</summary>
    public ushort NextUsedIndex => _nextUsed;

    public VirtQueueCounters Counters => _counters;

    /// <summary>
    /// Pops the next valid chain. Malformed chains met on the way are counted and returned used with length 0;
    /// a ring error stops the queue. False when nothing valid is available or the queue is stopped.
    /// </summary>
    public bool TryPop(out DescriptorChain chain)
    {
        while (!_broken)
        {
            // Acquire: the ring slots and descriptors the driver wrote before bumping idx are visible after this read.
            ushort availableIndex = ReadAvailableIndex();
            ushort pending = (ushort)(availableIndex - _nextAvail);
            if (pending == 0)
            {
                break;
            }

            if (pending > _size)
            {
                Stop(ChainError.AvailableIndexJump);
                break;
            }

            if (!TryReadUInt16(_availableRing + RingHeaderSize + (2UL * (uint)(_nextAvail & (_size - 1))), out ushort head))
            {
                Stop(ChainError.InvalidLayout);
                break;
            }

            if (head >= _size)
            {
                Stop(ChainError.HeadOutOfRange);
                break;
            }

            _nextAvail++;
            var error = WalkChain(head, out int readable, out int writable, out ulong readableLength, out ulong writableLength);
            if (error != ChainError.None)
            {
                _counters.CountMalformed(error);
                AddUsed(head, 0);
                continue;
            }

            _counters.CountChain();
            chain = new DescriptorChain(
                head,
                new ReadOnlySpan<ChainSegment>(_segments, 0, readable),
                new ReadOnlySpan<ChainSegment>(_segments, readable, writable),
                readableLength,
                writableLength);
            return true;
        }

        chain = default;
        return false;
    }

    /// <summary>
    /// Publishes a used element (2.7.8): the element first, then (release) the used index, so the driver never sees
    /// an index covering an unwritten element. <paramref name="length"/> is the number of bytes written into the
    /// chain's device-writable buffers from their start. Ignored once the queue is stopped.
    /// </summary>
    public void AddUsed(ushort headIndex, uint length)
    {
        if (_broken)
        {
            return;
        }

        Span<byte> element = stackalloc byte[UsedElementSize];
        BinaryPrimitives.WriteUInt32LittleEndian(element, headIndex);
        BinaryPrimitives.WriteUInt32LittleEndian(element[4..], length);
        ulong slot = _usedRing + RingHeaderSize + ((ulong)UsedElementSize * (uint)(_nextUsed & (_size - 1)));
        if (!_memory.TryWrite(slot, element) || !TryGetRingField(_usedRing + 2, out var usedIndex))
        {
            Stop(ChainError.InvalidLayout);
            return;
        }

        _nextUsed++;
        Volatile.Write(ref usedIndex[0], ToLittleEndian(_nextUsed));
        _memory.MarkDirty(_usedRing + 2, sizeof(ushort));
    }

    /// <summary>
    /// Publishes several used elements with one used-index update (VIRTIO_NET_F_MRG_RXBUF: a frame spread over
    /// <paramref name="heads"/>.Length buffers must appear to the driver all at once, or it reads num_buffers and
    /// finds some missing). Every element is written first, then (release) the index. Ignored once the queue is stopped.
    /// </summary>
    public void AddUsedBatch(ReadOnlySpan<ushort> heads, ReadOnlySpan<uint> lengths)
    {
        if (_broken || heads.IsEmpty)
        {
            return;
        }

        if (heads.Length != lengths.Length || heads.Length > _size)
        {
            throw new ArgumentException($"A used batch needs one length per head and at most {_size} elements.", nameof(lengths));
        }

        Span<byte> element = stackalloc byte[UsedElementSize];
        for (int i = 0; i < heads.Length; i++)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(element, heads[i]);
            BinaryPrimitives.WriteUInt32LittleEndian(element[4..], lengths[i]);
            ulong slot = _usedRing + RingHeaderSize + ((ulong)UsedElementSize * (uint)((ushort)(_nextUsed + i) & (_size - 1)));
            if (!_memory.TryWrite(slot, element))
            {
                Stop(ChainError.InvalidLayout);
                return;
            }
        }

        if (!TryGetRingField(_usedRing + 2, out var usedIndex))
        {
            Stop(ChainError.InvalidLayout);
            return;
        }

        _nextUsed += (ushort)heads.Length;
        Volatile.Write(ref usedIndex[0], ToLittleEndian(_nextUsed));
        _memory.MarkDirty(_usedRing + 2, sizeof(ushort));
    }

    /// <summary>
    /// Decides whether the driver wants a used-buffer notification for what was published since the last decision
    /// (2.7.7): with VIRTIO_F_EVENT_IDX, when the used index passed used_event (vring_need_event); without it, unless
    /// the driver set VIRTQ_AVAIL_F_NO_INTERRUPT. False when nothing was published since.
    /// </summary>
    public bool ShouldNotify()
    {
        if (_broken)
        {
            return false;
        }

        // Full fence: the used index store must be visible before the driver's suppression fields are read, or a
        // driver re-enabling interrupts at the same moment could be missed (the driver fences the other way round).
        Interlocked.MemoryBarrier();
        ushort old = _signalledUsed;
        ushort current = _nextUsed;
        _signalledUsed = current;
        if (old == current)
        {
            return false;
        }

        if (_eventIndex)
        {
            // used_event sits after the available ring's Size entries.
            if (!TryReadUInt16(_availableRing + RingHeaderSize + (2UL * _size), out ushort usedEvent))
            {
                return false;
            }

            return NeedsEvent(usedEvent, current, old);
        }

        return TryReadUInt16(_availableRing, out ushort flags) && (flags & AvailableFlagNoInterrupt) == 0;
    }

    /// <summary>Signals the queue's interrupt when <see cref="ShouldNotify"/> says so; counts the decision.</summary>
    public void NotifyIfNeeded()
    {
        if (_broken || _signalledUsed == _nextUsed)
        {
            return;
        }

        bool notify = ShouldNotify();
        _counters.CountNotification(notify);
        if (notify)
        {
            _interrupt.SignalQueue(Index);
        }
    }

    /// <summary>
    /// Asks the driver not to kick while the device is draining the queue (VIRTQ_USED_F_NO_NOTIFY). With
    /// EVENT_IDX nothing is written: avail_event stays behind until <see cref="EnableNotifications"/> moves it.
    /// </summary>
    public void DisableNotifications()
    {
        if (!_broken && !_eventIndex)
        {
            WriteUsedFlags(UsedFlagNoNotify);
        }
    }

    /// <summary>
    /// Asks for a kick on the next available buffer (avail_event = last_avail_idx with EVENT_IDX, else clears
    /// NO_NOTIFY), then re-reads the available index: true when buffers arrived meanwhile and the caller must drain
    /// again, because the driver may have checked the old value and decided not to kick.
    /// </summary>
    public bool EnableNotifications()
    {
        if (_broken)
        {
            return false;
        }

        if (_eventIndex)
        {
            // avail_event sits after the used ring's Size elements.
            if (!TryGetRingField(_usedRing + RingHeaderSize + ((ulong)UsedElementSize * _size), out var availEvent))
            {
                Stop(ChainError.InvalidLayout);
                return false;
            }

            Volatile.Write(ref availEvent[0], ToLittleEndian(_nextAvail));
            _memory.MarkDirty(_usedRing + RingHeaderSize + ((ulong)UsedElementSize * _size), sizeof(ushort));
        }
        else
        {
            WriteUsedFlags(0);
        }

        // Full fence: the store above must be visible before the available index is read again.
        Interlocked.MemoryBarrier();
        return !_broken && ReadAvailableIndex() != _nextAvail;
    }

    public SplitVirtQueueState Save() => new(_nextAvail, _nextUsed, _signalledUsed, _broken);

    /// <summary>
    /// The state with the last <paramref name="heldHeads"/>.Length chains popped but not used given back to the
    /// driver's view (QEMU's virtqueue_rewind): next_avail moves back over them, so a queue restored from the state pops
    /// them again. Null unless the available ring's slots just before next_avail still name exactly those heads in
    /// order (a chain returned used among them, as a malformed one is, would otherwise be popped and used twice).
    /// </summary>
    public SplitVirtQueueState? SaveRewound(ReadOnlySpan<ushort> heldHeads)
    {
        if (_broken || heldHeads.IsEmpty)
        {
            return Save();
        }

        if (heldHeads.Length > _size)
        {
            return null;
        }

        ushort start = (ushort)(_nextAvail - heldHeads.Length);
        for (int i = 0; i < heldHeads.Length; i++)
        {
            ulong slot = _availableRing + RingHeaderSize + (2UL * (uint)((ushort)(start + i) & (_size - 1)));
            if (!TryReadUInt16(slot, out ushort head) || head != heldHeads[i])
            {
                return null;
            }
        }

        return new SplitVirtQueueState(start, _nextUsed, _signalledUsed, _broken);
    }

    /// <summary>
    /// Why <paramref name="state"/> cannot be restored into this queue (one line naming the values), or null when it can:
    /// more chains in flight (popped, not used) than the queue has entries, or next_avail more than a ring behind the
    /// available index the driver wrote (read from guest RAM, which is restored first).
    /// </summary>
    public string? CheckRestore(SplitVirtQueueState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        ushort inFlight = (ushort)(state.NextAvailIndex - state.NextUsedIndex);
        if (inFlight > _size)
        {
            return $"next_avail_index {state.NextAvailIndex} is {inFlight} chains ahead of next_used_index {state.NextUsedIndex}, more than the queue size {_size}";
        }

        if (_broken || state.Broken)
        {
            return null; // a stopped queue reads nothing more
        }

        ushort available = ReadAvailableIndex();
        ushort pending = (ushort)(available - state.NextAvailIndex);
        if (pending > _size)
        {
            return $"next_avail_index {state.NextAvailIndex} is not within the queue size {_size} of the driver's avail.idx {available}";
        }

        return null;
    }

    /// <summary>Restores indices saved by <see cref="Save"/> on a queue built from the same layout and features.</summary>
    public void Restore(SplitVirtQueueState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        _nextAvail = state.NextAvailIndex;
        _nextUsed = state.NextUsedIndex;
        _signalledUsed = state.SignalledUsedIndex;
        _broken = _broken || state.Broken;
    }

    /// <summary>
    /// vring_need_event (2.7.7.2 and include/uapi/linux/virtio_ring.h): notify when <paramref name="eventIndex"/>
    /// lies in [old, new), i.e. the driver's threshold was crossed by the elements published since the last decision.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool NeedsEvent(ushort eventIndex, ushort newIndex, ushort oldIndex) =>
        (ushort)(newIndex - eventIndex - 1) < (ushort)(newIndex - oldIndex);

    private static bool IsValidLayout(GuestMemory memory, VirtQueueLayout layout)
    {
        uint size = layout.Size;
        if (size == 0 || size > MaxSize || (size & (size - 1)) != 0)
        {
            return false;
        }

        // Alignments and sizes from 2.7 ("Virtqueue Part Alignment" table), event fields included.
        return layout.DescriptorTable % 16 == 0
            && layout.AvailableRing % 2 == 0
            && layout.UsedRing % 4 == 0
            && memory.IsValidRange(layout.DescriptorTable, (ulong)DescriptorSize * size)
            && memory.IsValidRange(layout.AvailableRing, RingHeaderSize + (2UL * size) + 2)
            && memory.IsValidRange(layout.UsedRing, RingHeaderSize + ((ulong)UsedElementSize * size) + 2);
    }

    private static ushort ToLittleEndian(ushort value) => BitConverter.IsLittleEndian ? value : BinaryPrimitives.ReverseEndianness(value);

    /// <summary>
    /// Follows the chain from <paramref name="head"/> through at most one indirect table, copying each descriptor
    /// out before looking at it, and fills the segment array: readable buffers first, then writable ones.
    /// </summary>
    private ChainError WalkChain(ushort head, out int readable, out int writable, out ulong readableLength, out ulong writableLength)
    {
        readable = 0;
        writable = 0;
        readableLength = 0;
        writableLength = 0;
        Span<byte> raw = stackalloc byte[DescriptorSize];
        ulong table = _descriptorTable;
        uint tableSize = _size;
        uint index = head;
        uint visited = 0;
        bool inIndirect = false;
        while (true)
        {
            // Without a repeat, a walk visits each descriptor of a table at most once.
            if (++visited > tableSize)
            {
                return ChainError.DescriptorLoop;
            }

            if (!_memory.TryRead(table + ((ulong)DescriptorSize * index), raw))
            {
                return ChainError.IndirectTableOutsideMemory; // Unreachable for the validated tables; kept as a guard.
            }

            ulong address = BinaryPrimitives.ReadUInt64LittleEndian(raw);
            uint length = BinaryPrimitives.ReadUInt32LittleEndian(raw[8..]);
            ushort flags = BinaryPrimitives.ReadUInt16LittleEndian(raw[12..]);
            ushort next = BinaryPrimitives.ReadUInt16LittleEndian(raw[14..]);

            if ((flags & DescriptorFlagIndirect) != 0)
            {
                // 2.7.5.3.1: only with the feature, never nested, never with NEXT. The WRITE flag of the indirect
                // descriptor itself is ignored, as the device must.
                if (!_indirect)
                {
                    return ChainError.IndirectNotNegotiated;
                }

                if (inIndirect)
                {
                    return ChainError.NestedIndirect;
                }

                if ((flags & DescriptorFlagNext) != 0)
                {
                    return ChainError.IndirectWithNext;
                }

                if (length == 0 || length % DescriptorSize != 0 || length / DescriptorSize > _size)
                {
                    return ChainError.IndirectTableLength;
                }

                if (!_memory.IsValidRange(address, length))
                {
                    return ChainError.IndirectTableOutsideMemory;
                }

                table = address;
                tableSize = length / DescriptorSize;
                index = 0;
                visited = 0;
                inIndirect = true;
                continue;
            }

            // One region, overflow-safe: GuestMemory.TryGetHostAddress compares against the region's remaining size.
            if (!_memory.IsValidRange(address, length))
            {
                return ChainError.BufferOutsideMemory;
            }

            bool deviceWritable = (flags & DescriptorFlagWrite) != 0;
            if (!deviceWritable && writable != 0)
            {
                return ChainError.ReadableAfterWritable;
            }

            int count = readable + writable;
            if (count == _segments.Length)
            {
                return ChainError.ChainTooLong;
            }

            _segments[count] = new ChainSegment(address, length);
            if (deviceWritable)
            {
                writable++;
                writableLength += length;
            }
            else
            {
                readable++;
                readableLength += length;
            }

            if ((flags & DescriptorFlagNext) == 0)
            {
                return ChainError.None;
            }

            if (next >= tableSize)
            {
                return ChainError.NextOutOfRange;
            }

            index = next;
        }
    }

    private ushort ReadAvailableIndex()
    {
        if (!TryGetRingField(_availableRing + 2, out var field))
        {
            Stop(ChainError.InvalidLayout);
            return _nextAvail;
        }

        return ToLittleEndian(Volatile.Read(ref field[0]));
    }

    private void WriteUsedFlags(ushort flags)
    {
        if (TryGetRingField(_usedRing, out var field))
        {
            Volatile.Write(ref field[0], ToLittleEndian(flags));
            _memory.MarkDirty(_usedRing, sizeof(ushort));
        }
    }

    private bool TryReadUInt16(ulong address, out ushort value)
    {
        Span<byte> raw = stackalloc byte[2];
        if (_memory.TryRead(address, raw))
        {
            value = BinaryPrimitives.ReadUInt16LittleEndian(raw);
            return true;
        }

        value = 0;
        return false;
    }

    /// <summary>A reference to a 2-byte-aligned le16 ring field in guest RAM, for the volatile accesses the ring protocol needs.</summary>
    private bool TryGetRingField(ulong address, out Span<ushort> field)
    {
        if (_memory.TryGetSpan(address, sizeof(ushort), out var bytes))
        {
            // The layout check proved the rings 2-byte aligned inside one region, so this is an aligned ushort.
            field = MemoryMarshal.Cast<byte, ushort>(bytes);
            return true;
        }

        field = default;
        return false;
    }

    private void Stop(ChainError error)
    {
        if (_broken)
        {
            return;
        }

        _broken = true;
        _counters.CountRingError(error);
        _interrupt.NeedsReset();
    }
}
