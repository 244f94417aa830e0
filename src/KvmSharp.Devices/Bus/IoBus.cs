using System.Runtime.CompilerServices;

namespace KvmSharp.Devices.Bus;

/// <summary>
/// One address space of devices: the 64 KiB x86 port space or the 64-bit MMIO space. Registration is rare and
/// takes a lock; it publishes a new sorted array (copy-on-write), so <see cref="Read"/> and <see cref="Write"/>,
/// called from every vCPU thread, look a device up by binary search with no lock and no allocation.
/// </summary>
/// <remarks>
/// An access is dispatched only when every byte of it lies inside one range; anything else is answered like a PC
/// answers an access nobody decodes: reads see all ones (the floating data bus), writes vanish. Such accesses are
/// counted, never thrown, because their address and size come from the guest.
/// </remarks>
public sealed class IoBus
{
    /// <summary>The last x86 I/O port: the port space is 64 KiB (Intel SDM Vol. 1, 19.2 "I/O Port Addressing").</summary>
    public const ulong PortSpaceLast = 0xFFFF;

    /// <summary>What reads of an address no device decodes return, in every byte.</summary>
    public const byte UnhandledReadValue = 0xFF;

    private readonly Lock _registrationLock = new();
    private readonly string _rangeNoun;

    // Sorted by Start, never overlapping; an array is never written after it is published here.
    private BusRange[] _ranges = [];
    private long _unhandledReads;
    private long _unhandledWrites;
    private ulong _lastUnhandledAddress;

    /// <param name="name">Short name of the bus ("pio", "mmio").</param>
    /// <param name="rangeNoun">What error messages call a range of this bus ("Port", "MMIO").</param>
    /// <param name="lastAddress">The highest address of the space (inclusive).</param>
    public IoBus(string name, string rangeNoun, ulong lastAddress)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentException.ThrowIfNullOrEmpty(rangeNoun);
        Name = name;
        _rangeNoun = rangeNoun;
        LastAddress = lastAddress;
    }

    /// <summary>A bus over the x86 port space, 0x0-0xffff.</summary>
    public static IoBus CreatePortBus() => new("pio", "Port", PortSpaceLast);

    /// <summary>A bus over the whole 64-bit guest-physical space.</summary>
    public static IoBus CreateMmioBus() => new("mmio", "MMIO", ulong.MaxValue);

    public string Name { get; }

    /// <summary>The highest address a range may cover (inclusive).</summary>
    public ulong LastAddress { get; }

    /// <summary>Reads that no device handled (unknown address or an access straddling a range's end).</summary>
    public long UnhandledReads => Interlocked.Read(ref _unhandledReads);

    /// <summary>Writes that no device handled.</summary>
    public long UnhandledWrites => Interlocked.Read(ref _unhandledWrites);

    /// <summary>Address of the most recent unhandled access, for diagnostics; meaningful once a counter is non-zero.</summary>
    public ulong LastUnhandledAddress => Volatile.Read(ref _lastUnhandledAddress);

    /// <summary>The registered ranges in ascending address order (a snapshot: later registrations do not change it).</summary>
    public ReadOnlySpan<BusRange> Ranges => Volatile.Read(ref _ranges);

    /// <summary>Registers <paramref name="device"/> at [start, start+length), named after its type in messages.</summary>
    public void Register(ulong start, ulong length, IBusDevice device)
    {
        ArgumentNullException.ThrowIfNull(device);
        Register(start, length, device, device.GetType().Name);
    }

    /// <summary>
    /// Registers <paramref name="device"/> at [start, start+length); the device then sees offsets from
    /// <paramref name="start"/>. Throws <see cref="ArgumentOutOfRangeException"/> for an empty range or one that
    /// wraps or leaves the space, and <see cref="BusConflictException"/> when it overlaps a registered range.
    /// </summary>
    public void Register(ulong start, ulong length, IBusDevice device, string name)
    {
        if (!TryRegisterCore(start, length, device, name, out var conflict))
        {
            ThrowConflict(start, start + (length - 1), conflict);
        }
    }

    /// <summary>
    /// Registers <paramref name="device"/> at [start, start+length) unless the range overlaps a registered one;
    /// returns false (and registers nothing) on an overlap, with the range it hit in <paramref name="conflict"/>.
    /// For ranges a guest chooses (a PCI BAR it programs), where an overlap is the guest's mistake and must not
    /// throw. An empty, wrapping or out-of-space range still throws <see cref="ArgumentOutOfRangeException"/>.
    /// </summary>
    public bool TryRegister(ulong start, ulong length, IBusDevice device, string name, out BusRange conflict)
        => TryRegisterCore(start, length, device, name, out conflict);

    private bool TryRegisterCore(ulong start, ulong length, IBusDevice device, string name, out BusRange conflict)
    {
        ArgumentNullException.ThrowIfNull(device);
        ArgumentException.ThrowIfNullOrEmpty(name);
        if (length == 0)
        {
            throw new ArgumentOutOfRangeException(
                nameof(length),
                $"{_rangeNoun} range at 0x{start:x} for {name} is empty. Give the device at least one address.");
        }

        if (length - 1 > ulong.MaxValue - start)
        {
            throw new ArgumentOutOfRangeException(
                nameof(length),
                $"{_rangeNoun} range 0x{start:x}+0x{length:x} for {name} wraps around the end of the address space.");
        }

        ulong last = start + (length - 1);
        if (last > LastAddress)
        {
            throw new ArgumentOutOfRangeException(
                nameof(length),
                $"{_rangeNoun} range 0x{start:x}-0x{last:x} for {name} lies outside the {Name} space, which ends at 0x{LastAddress:x}.");
        }

        lock (_registrationLock)
        {
            var current = _ranges;

            // Index of the first range starting after `start`; only its neighbours can overlap.
            int index = 0;
            int high = current.Length;
            while (index < high)
            {
                int mid = (int)((uint)(index + high) >> 1);
                if (current[mid].Start <= start)
                {
                    index = mid + 1;
                }
                else
                {
                    high = mid;
                }
            }

            if (index > 0 && current[index - 1].Last >= start)
            {
                conflict = current[index - 1];
                return false;
            }

            if (index < current.Length && current[index].Start <= last)
            {
                conflict = current[index];
                return false;
            }

            var next = new BusRange[current.Length + 1];
            Array.Copy(current, 0, next, 0, index);
            next[index] = new BusRange(start, last, device, name);
            Array.Copy(current, index, next, index + 1, current.Length - index);
            Publish(next);
        }

        conflict = default;
        return true;
    }

    /// <summary>Removes the range that starts at <paramref name="start"/>; false if there is none.</summary>
    public bool Unregister(ulong start)
    {
        lock (_registrationLock)
        {
            var current = _ranges;
            for (int i = 0; i < current.Length; i++)
            {
                if (current[i].Start == start)
                {
                    Publish(RemoveAt(current, i));
                    return true;
                }
            }

            return false;
        }
    }

    /// <summary>Removes every range registered to <paramref name="device"/>; returns how many were removed.</summary>
    public int Unregister(IBusDevice device)
    {
        ArgumentNullException.ThrowIfNull(device);
        lock (_registrationLock)
        {
            var current = _ranges;
            int kept = 0;
            foreach (var range in current)
            {
                if (!ReferenceEquals(range.Device, device))
                {
                    kept++;
                }
            }

            int removed = current.Length - kept;
            if (removed == 0)
            {
                return 0;
            }

            var next = new BusRange[kept];
            int j = 0;
            foreach (var range in current)
            {
                if (!ReferenceEquals(range.Device, device))
                {
                    next[j++] = range;
                }
            }

            Publish(next);
            return removed;
        }
    }

    /// <summary>The range holding <paramref name="address"/>, if any.</summary>
    public bool TryFind(ulong address, out BusRange range)
    {
        var ranges = Volatile.Read(ref _ranges);
        int i = IndexOf(ranges, address);
        if (i >= 0)
        {
            range = ranges[i];
            return true;
        }

        range = default;
        return false;
    }

    /// <summary>
    /// Dispatches a read to the device whose range holds all of [address, address+data.Length); otherwise fills
    /// <paramref name="data"/> with 0xFF and counts it. Returns whether a device handled it. An empty access does
    /// nothing and returns false.
    /// </summary>
    public bool Read(ulong address, Span<byte> data)
    {
        if (data.IsEmpty)
        {
            return false;
        }

        var device = FindContaining(address, data.Length, out ulong offset);
        if (device is not null)
        {
            device.Read(offset, data);
            return true;
        }

        ReadUnhandled(address, data);
        return false;
    }

    /// <summary>
    /// Dispatches a write to the device whose range holds all of [address, address+data.Length); otherwise drops
    /// it and counts it. Returns whether a device handled it. An empty access does nothing and returns false.
    /// </summary>
    public bool Write(ulong address, ReadOnlySpan<byte> data)
    {
        if (data.IsEmpty)
        {
            return false;
        }

        var device = FindContaining(address, data.Length, out ulong offset);
        if (device is not null)
        {
            device.Write(offset, data);
            return true;
        }

        WriteUnhandled(address);
        return false;
    }

    /// <summary>The device whose range holds all of [address, address+length) (length >= 1), and the offset in it.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private IBusDevice? FindContaining(ulong address, int length, out ulong offset)
    {
        var ranges = Volatile.Read(ref _ranges);
        int i = IndexOf(ranges, address);
        if (i >= 0)
        {
            ref readonly var range = ref ranges[i];
            // address <= range.Last here, so neither side can overflow.
            if ((ulong)(uint)(length - 1) <= range.Last - address)
            {
                offset = address - range.Start;
                return range.Device;
            }
        }

        offset = 0;
        return null;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int IndexOf(BusRange[] ranges, ulong address)
    {
        int low = 0;
        int high = ranges.Length - 1;
        while (low <= high)
        {
            int mid = (int)((uint)(low + high) >> 1);
            ref readonly var range = ref ranges[mid];
            if (address < range.Start)
            {
                high = mid - 1;
            }
            else if (address > range.Last)
            {
                low = mid + 1;
            }
            else
            {
                return mid;
            }
        }

        return -1;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void ReadUnhandled(ulong address, Span<byte> data)
    {
        data.Fill(UnhandledReadValue);
        Volatile.Write(ref _lastUnhandledAddress, address);
        Interlocked.Increment(ref _unhandledReads);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void WriteUnhandled(ulong address)
    {
        Volatile.Write(ref _lastUnhandledAddress, address);
        Interlocked.Increment(ref _unhandledWrites);
    }

    private static BusRange[] RemoveAt(BusRange[] current, int index)
    {
        var next = new BusRange[current.Length - 1];
        Array.Copy(current, 0, next, 0, index);
        Array.Copy(current, index + 1, next, index, current.Length - index - 1);
        return next;
    }

    private void Publish(BusRange[] next) => Volatile.Write(ref _ranges, next);

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void ThrowConflict(ulong start, ulong last, BusRange existing) =>
        throw new BusConflictException(
            $"{_rangeNoun} range 0x{start:x}-0x{last:x} overlaps 0x{existing.Start:x}-0x{existing.Last:x} already registered to {existing.Name}. Move one of the devices or unregister {existing.Name} first.",
            start,
            last,
            existing);
}
