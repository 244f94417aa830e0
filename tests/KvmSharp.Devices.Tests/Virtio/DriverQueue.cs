using KvmSharp.Devices.Virtio;
using KvmSharp.Memory;

namespace KvmSharp.Devices.Tests.Virtio;

/// <summary>One buffer a test driver puts in a chain.</summary>
internal readonly record struct DriverBuffer(ulong Address, uint Length, bool Writable)
{
    public static DriverBuffer In(ulong address, uint length) => new(address, length, true);

    public static DriverBuffer Out(ulong address, uint length) => new(address, length, false);
}

/// <summary>
/// The driver side of a split virtqueue, as Linux's virtio_ring.c lays it out: descriptor table, available ring
/// and used ring in guest memory. Builds well-formed chains (direct and indirect) and, through the raw writers,
/// any hostile ring a test needs: loops, bad lengths, bad indices, buffers outside RAM.
/// </summary>
internal sealed class DriverQueue
{
    private ushort _nextDescriptor;
    private ushort _availableIndex;
    private ushort _usedSeen;

    /// <summary>Lays the rings out from <paramref name="ringBase"/> (16-byte aligned) and zeroes them.</summary>
    public DriverQueue(GuestMemory memory, ulong ringBase, ushort size)
    {
        Memory = memory;
        Size = size;
        DescriptorTable = ringBase;
        AvailableRing = ringBase + (16UL * size);
        UsedRing = (AvailableRing + 6 + (2UL * size) + 3) & ~3UL;
        memory.Fill(ringBase, UsedRing + 6 + (8UL * size) - ringBase, 0);
    }

    public GuestMemory Memory { get; }

    public ushort Size { get; }

    public ulong DescriptorTable { get; }

    public ulong AvailableRing { get; }

    public ulong UsedRing { get; }

    /// <summary>First byte after the rings.</summary>
    public ulong End => UsedRing + 6 + (8UL * Size);

    public VirtQueueLayout Layout => new(Size, DescriptorTable, AvailableRing, UsedRing, Enabled: true);

    /// <summary>The used index the device published.</summary>
    public ushort UsedIndex => Memory.Read<ushort>(UsedRing + 2);

    /// <summary>The used ring's flags (VIRTQ_USED_F_NO_NOTIFY).</summary>
    public ushort UsedFlags => Memory.Read<ushort>(UsedRing);

    /// <summary>avail_event, the device's "kick me at" index (EVENT_IDX).</summary>
    public ushort AvailEvent => Memory.Read<ushort>(UsedRing + 4 + (8UL * Size));

    public ushort AvailableIndex => _availableIndex;

    public void WriteDescriptor(int index, ulong address, uint length, ushort flags, ushort next) =>
        WriteDescriptorAt(DescriptorTable, index, address, length, flags, next);

    /// <summary>Writes a raw struct virtq_desc into any table (the queue's, or an indirect one).</summary>
    public void WriteDescriptorAt(ulong table, int index, ulong address, uint length, ushort flags, ushort next)
    {
        ulong at = table + (16UL * (uint)index);
        Memory.Write(at, address);
        Memory.Write(at + 8, length);
        Memory.Write(at + 12, flags);
        Memory.Write(at + 14, next);
    }

    /// <summary>Builds a direct chain in consecutive free descriptors and makes it available; returns its head.</summary>
    public ushort AddChain(params DriverBuffer[] buffers)
    {
        ushort head = WriteChain(buffers);
        Publish(head);
        return head;
    }

    /// <summary>Writes a direct chain without publishing it; returns its head.</summary>
    public ushort WriteChain(params DriverBuffer[] buffers)
    {
        ushort head = _nextDescriptor;
        for (int i = 0; i < buffers.Length; i++)
        {
            ushort index = (ushort)((head + i) % Size);
            ushort next = (ushort)((index + 1) % Size);
            bool last = i == buffers.Length - 1;
            ushort flags = (ushort)((buffers[i].Writable ? SplitVirtQueue.DescriptorFlagWrite : 0) | (last ? 0 : SplitVirtQueue.DescriptorFlagNext));
            WriteDescriptor(index, buffers[i].Address, buffers[i].Length, flags, last ? (ushort)0 : next);
        }

        _nextDescriptor = (ushort)((head + buffers.Length) % Size);
        return head;
    }

    /// <summary>Writes <paramref name="buffers"/> as an indirect table at <paramref name="table"/> and makes one INDIRECT descriptor available.</summary>
    public ushort AddIndirectChain(ulong table, params DriverBuffer[] buffers)
    {
        for (int i = 0; i < buffers.Length; i++)
        {
            bool last = i == buffers.Length - 1;
            ushort flags = (ushort)((buffers[i].Writable ? SplitVirtQueue.DescriptorFlagWrite : 0) | (last ? 0 : SplitVirtQueue.DescriptorFlagNext));
            WriteDescriptorAt(table, i, buffers[i].Address, buffers[i].Length, flags, last ? (ushort)0 : (ushort)(i + 1));
        }

        ushort head = _nextDescriptor;
        WriteDescriptor(head, table, (uint)(16 * buffers.Length), SplitVirtQueue.DescriptorFlagIndirect, 0);
        _nextDescriptor = (ushort)((head + 1) % Size);
        Publish(head);
        return head;
    }

    /// <summary>Puts <paramref name="head"/> in the next available slot and bumps the available index.</summary>
    public void Publish(ushort head)
    {
        Memory.Write(AvailableRing + 4 + (2UL * (uint)(_availableIndex % Size)), head);
        _availableIndex++;
        Memory.Write(AvailableRing + 2, _availableIndex);
    }

    /// <summary>Writes the available index directly (hostile drivers; restoring a driver's view).</summary>
    public void SetAvailableIndex(ushort value)
    {
        _availableIndex = value;
        Memory.Write(AvailableRing + 2, value);
    }

    /// <summary>Sets the driver's view of where it is, for wrap-around tests: the next available and used index.</summary>
    public void StartAt(ushort index)
    {
        SetAvailableIndex(index);
        Memory.Write(UsedRing + 2, index);
        _usedSeen = index;
    }

    public void SetAvailableFlags(ushort flags) => Memory.Write(AvailableRing, flags);

    /// <summary>used_event, the driver's "interrupt me at" index (EVENT_IDX).</summary>
    public void SetUsedEvent(ushort value) => Memory.Write(AvailableRing + 4 + (2UL * Size), value);

    /// <summary>The used element at used index <paramref name="usedIndex"/>.</summary>
    public (uint Id, uint Length) UsedAt(ushort usedIndex)
    {
        ulong at = UsedRing + 4 + (8UL * (uint)(usedIndex % Size));
        return (Memory.Read<uint>(at), Memory.Read<uint>(at + 4));
    }

    /// <summary>The used elements published since the last call, in order.</summary>
    public List<(uint Id, uint Length)> TakeUsed()
    {
        var used = new List<(uint, uint)>();
        ushort end = UsedIndex;
        while (_usedSeen != end)
        {
            used.Add(UsedAt(_usedSeen));
            _usedSeen++;
        }

        return used;
    }
}

/// <summary>A bump allocator over a range of guest memory, for test buffers.</summary>
internal sealed class GuestArena(ulong start, ulong end)
{
    private ulong _next = start;

    public ulong Allocate(ulong length, ulong alignment = 16)
    {
        ulong at = (_next + alignment - 1) & ~(alignment - 1);
        if (at + length > end)
        {
            throw new InvalidOperationException("The test arena is full.");
        }

        _next = at + length;
        return at;
    }
}
