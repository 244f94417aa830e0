using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using KvmSharp.Native;

namespace KvmSharp.Memory;

/// <summary>
/// Guest-physical RAM: a few page-aligned regions of anonymous host memory. The only owner of raw guest
/// pointers; every access is bounds-checked with overflow-safe arithmetic, so a guest-controlled address
/// can never reach host memory outside a region.
/// </summary>
public sealed class GuestMemory : IDisposable
{
    public const ulong PageSize = 4096;

    private readonly GuestMemoryRegion[] _regions;
    private readonly Lock _trackingLock = new();
    private DirtyPageBitmap[]? _dirty;
    private bool _disposed;

    private GuestMemory(GuestMemoryRegion[] regions)
    {
        _regions = regions;
        ulong total = 0;
        foreach (var r in regions)
        {
            total += r.Size;
        }

        TotalSize = total;
    }

    /// <summary>Regions in ascending guest-physical order.</summary>
    public IReadOnlyList<GuestMemoryRegion> Regions => _regions;

    public ulong TotalSize { get; }

    /// <summary>One region of <paramref name="size"/> bytes at guest-physical 0.</summary>
    public static GuestMemory Create(ulong size) => Create([new MemoryRange(0, size)]);

    /// <summary>Creates zero-filled RAM for each range; ranges must be page-aligned and must not overlap.</summary>
    public static GuestMemory Create(IReadOnlyList<MemoryRange> ranges)
    {
        var sorted = SortedAndChecked(ranges);
        var regions = new GuestMemoryRegion[sorted.Count];
        try
        {
            for (int i = 0; i < sorted.Count; i++)
            {
                var mapping = MemoryMapping.Anonymous(sorted[i].Size);
                // Guest RAM must not be shared with a forked child (e.g. a helper process).
                mapping.Advise(MemoryAdvice.DontFork);
                regions[i] = new GuestMemoryRegion(sorted[i].Start, mapping);
            }
        }
        catch
        {
            foreach (var r in regions)
            {
                r?.Mapping.Dispose();
            }

            throw;
        }

        return new GuestMemory(regions);
    }

    /// <summary>The ranges in ascending order; throws <see cref="GuestMemoryException"/> unless they are non-empty, page-aligned and disjoint.</summary>
    private static List<MemoryRange> SortedAndChecked(IReadOnlyList<MemoryRange> ranges)
    {
        ArgumentNullException.ThrowIfNull(ranges);
        if (ranges.Count == 0)
        {
            throw new GuestMemoryException("Guest memory needs at least one region.");
        }

        var sorted = new List<MemoryRange>(ranges);
        sorted.Sort(static (a, b) => a.Start.CompareTo(b.Start));
        for (int i = 0; i < sorted.Count; i++)
        {
            var r = sorted[i];
            if (r.Size == 0 || r.Start % PageSize != 0 || r.Size % PageSize != 0)
            {
                throw new GuestMemoryException($"Guest memory region 0x{r.Start:x}+0x{r.Size:x} must be non-empty and 4 KiB aligned.");
            }

            if (r.Start + r.Size < r.Start)
            {
                throw new GuestMemoryException($"Guest memory region 0x{r.Start:x}+0x{r.Size:x} wraps around the address space.");
            }

            if (i > 0 && sorted[i - 1].Start + sorted[i - 1].Size > r.Start)
            {
                throw new GuestMemoryException($"Guest memory regions at 0x{sorted[i - 1].Start:x} and 0x{r.Start:x} overlap.");
            }
        }

        return sorted;
    }

    /// <summary>
    /// RAM for <paramref name="ranges"/> mapped privately from <paramref name="path"/>, a file holding the ranges'
    /// contents one after another in ascending guest-physical order (what <see cref="WriteTo"/> writes): nothing is read
    /// up front, a page comes from the file when the guest or a device first touches it, and writes stay in this process.
    /// Throws <see cref="GuestMemoryException"/> (one line) if the file is missing or is not exactly that size.
    /// </summary>
    public static GuestMemory MapFromFile(IReadOnlyList<MemoryRange> ranges, string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        var sorted = SortedAndChecked(ranges);
        ulong expected = 0;
        foreach (var r in sorted)
        {
            expected += r.Size;
        }

        Microsoft.Win32.SafeHandles.SafeFileHandle file;
        try
        {
            file = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new GuestMemoryException($"Cannot open the memory file '{path}': {e.Message}");
        }

        using (file)
        {
            long length = RandomAccess.GetLength(file);
            if ((ulong)length != expected)
            {
                throw new GuestMemoryException(
                    $"The memory file '{path}' is {length} bytes but the snapshot's machine has {expected} bytes of RAM: it belongs to another snapshot.");
            }

            var regions = new GuestMemoryRegion[sorted.Count];
            long offset = 0;
            try
            {
                for (int i = 0; i < sorted.Count; i++)
                {
                    var mapping = MemoryMapping.PrivateFile(file, sorted[i].Size, offset);
                    mapping.Advise(MemoryAdvice.DontFork);
                    regions[i] = new GuestMemoryRegion(sorted[i].Start, mapping);
                    offset += (long)sorted[i].Size;
                }
            }
            catch
            {
                foreach (var r in regions)
                {
                    r?.Mapping.Dispose();
                }

                throw;
            }

            // The mappings keep the file's pages reachable; the descriptor is not needed past mmap.
            return new GuestMemory(regions);
        }
    }

    /// <summary>
    /// Writes every region, in ascending guest-physical order, to <paramref name="path"/> (the file
    /// <see cref="MapFromFile"/> maps): first to a temporary name beside it, then renamed over it, so a machine that is
    /// itself mapped from a file of that name keeps its own pages. Runs of zero pages become holes (a sparse file).
    /// <paramref name="progress"/> hears the bytes done so far. Call with the vCPUs and devices quiesced.
    /// </summary>
    public unsafe void WriteTo(string path, IProgress<long>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        ObjectDisposedException.ThrowIf(_disposed, this);
        const int Chunk = 1 << 20;
        string temporary = path + ".tmp";
        using (var file = File.OpenHandle(temporary, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            RandomAccess.SetLength(file, (long)TotalSize);
            long fileOffset = 0;
            long done = 0;
            foreach (var r in _regions)
            {
                for (ulong at = 0; at < r.Size; at += Chunk)
                {
                    int length = (int)Math.Min(Chunk, r.Size - at);
                    // SAFETY: [HostAddress + at, + length) lies inside the region's live mapping (at + length <= Size).
                    var span = new ReadOnlySpan<byte>((void*)(r.HostAddress + (nint)at), length);
                    WriteNonZeroPages(file, span, fileOffset + (long)at);
                    done += length;
                    progress?.Report(done);
                }

                fileOffset += (long)r.Size;
            }

            RandomAccess.FlushToDisk(file);
        }

        File.Move(temporary, path, overwrite: true);
    }

    /// <summary>Writes the runs of pages of <paramref name="data"/> that are not all zero; zero pages stay holes.</summary>
    private static void WriteNonZeroPages(Microsoft.Win32.SafeHandles.SafeFileHandle file, ReadOnlySpan<byte> data, long offset)
    {
        int page = (int)PageSize;
        int runStart = -1;
        for (int at = 0; at < data.Length; at += page)
        {
            bool zero = !data.Slice(at, Math.Min(page, data.Length - at)).ContainsAnyExcept((byte)0);
            if (!zero && runStart < 0)
            {
                runStart = at;
            }
            else if (zero && runStart >= 0)
            {
                RandomAccess.Write(file, data[runStart..at], offset + runStart);
                runStart = -1;
            }
        }

        if (runStart >= 0)
        {
            RandomAccess.Write(file, data[runStart..], offset + runStart);
        }
    }

    /// <summary>
    /// Whether writes are being logged (<see cref="StartDirtyLog"/>): every write the VMM makes through this object
    /// (<see cref="TryWrite"/>, <see cref="Write"/>, <see cref="Fill"/>) and every range a writer reports with
    /// <see cref="MarkDirty"/> (spans from <see cref="TryGetSpan"/>, host addresses handed to the kernel, the software
    /// CPU's stores) is recorded per 4 KiB page, for live migration. KVM vCPUs' own writes are in KVM's log, not here.
    /// </summary>
    public bool IsLoggingDirty => Volatile.Read(ref _dirty) is not null;

    /// <summary>Starts logging writes (one bitmap per region, every page clean); a second call changes nothing.</summary>
    public void StartDirtyLog()
    {
        lock (_trackingLock)
        {
            if (_dirty is null)
            {
                Volatile.Write(ref _dirty, CreateDirtyBitmaps());
            }
        }
    }

    /// <summary>Stops logging writes and drops what was logged.</summary>
    public void StopDirtyLog()
    {
        lock (_trackingLock)
        {
            Volatile.Write(ref _dirty, null);
        }
    }

    /// <summary>
    /// Moves the pages written since the last call into <paramref name="into"/> (one bitmap per region, as
    /// <see cref="CreateDirtyBitmaps"/> makes them; ORed in), and clears them here. Pages written meanwhile are moved now
    /// or by the next call, never lost. Throws when the log is not running.
    /// </summary>
    public void CollectDirty(IReadOnlyList<DirtyPageBitmap> into)
    {
        ArgumentNullException.ThrowIfNull(into);
        var dirty = Volatile.Read(ref _dirty) ?? throw new InvalidOperationException("The dirty log is not running: call StartDirtyLog first.");
        if (into.Count != dirty.Length)
        {
            throw new ArgumentException($"Expected {dirty.Length} bitmaps, one per region; got {into.Count}.", nameof(into));
        }

        for (int i = 0; i < dirty.Length; i++)
        {
            dirty[i].MoveInto(into[i]);
        }
    }

    /// <summary>One empty bitmap per region, for <see cref="CollectDirty"/>.</summary>
    public DirtyPageBitmap[] CreateDirtyBitmaps()
    {
        var bitmaps = new DirtyPageBitmap[_regions.Length];
        for (int i = 0; i < bitmaps.Length; i++)
        {
            bitmaps[i] = new DirtyPageBitmap(_regions[i].GuestPhysicalAddress, _regions[i].Size / PageSize);
        }

        return bitmaps;
    }

    /// <summary>
    /// Records that [<paramref name="address"/>, +<paramref name="length"/>) was written, when the dirty log runs; parts
    /// outside RAM are ignored. Call it after the write has happened, never before: a page marked early could be
    /// collected and copied before the write lands, and the write would then be lost to the copy. For writers that
    /// hold spans or host addresses (iovecs for the kernel, the software CPU's store fast path). Any thread; nothing is
    /// allocated.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void MarkDirty(ulong address, ulong length)
    {
        var dirty = Volatile.Read(ref _dirty);
        if (dirty is not null && length != 0)
        {
            MarkDirtySlow(dirty, address, length);
        }
    }

    /// <summary>
    /// As <see cref="MarkDirty"/>, for the first <paramref name="count"/> host ranges of an I/O vector list the kernel
    /// wrote into (a <c>preadv</c> into guest RAM, a socket read): each range is mapped back to guest-physical through
    /// the region that holds it. Call it after the I/O returned.
    /// </summary>
    public void MarkDirtyHost(nint host, ulong length)
    {
        var dirty = Volatile.Read(ref _dirty);
        if (dirty is null || length == 0)
        {
            return;
        }

        for (int i = 0; i < _regions.Length; i++)
        {
            var r = _regions[i];
            ulong offset = (ulong)(host - r.HostAddress);
            if (host >= r.HostAddress && offset < r.Size)
            {
                MarkDirtySlow(dirty, r.GuestPhysicalAddress + offset, Math.Min(length, r.Size - offset));
                return;
            }
        }
    }

    /// <summary>
    /// As <see cref="MarkDirtyHost(nint, ulong)"/> for the first <paramref name="bytes"/> of <paramref name="vectors"/>
    /// (what a <c>preadv</c> or a socket read into guest RAM wrote). Call it after the I/O returned.
    /// </summary>
    public void MarkDirtyHost(KvmSharp.Native.IoVectorList vectors, ulong bytes)
    {
        ArgumentNullException.ThrowIfNull(vectors);
        if (Volatile.Read(ref _dirty) is null)
        {
            return;
        }

        for (int i = 0; i < vectors.Count && bytes > 0; i++)
        {
            var (host, length) = vectors[i];
            ulong written = Math.Min(length, bytes);
            MarkDirtyHost(host, written);
            bytes -= written;
        }
    }

    private void MarkDirtySlow(DirtyPageBitmap[] dirty, ulong address, ulong length)
    {
        ulong end = address + length < address ? ulong.MaxValue : address + length;
        for (int i = 0; i < _regions.Length; i++)
        {
            var r = _regions[i];
            ulong start = Math.Max(address, r.GuestPhysicalAddress);
            ulong stop = Math.Min(end, r.GuestPhysicalAddress + r.Size);
            if (start < stop)
            {
                ulong first = (start - r.GuestPhysicalAddress) / PageSize;
                ulong last = (stop - 1 - r.GuestPhysicalAddress) / PageSize;
                dirty[i].MarkRangeConcurrent(first, last - first + 1);
            }
        }
    }

    /// <summary>The region holding <paramref name="address"/>, or null.</summary>
    public GuestMemoryRegion? FindRegion(ulong address)
    {
        foreach (var r in _regions)
        {
            if (r.Contains(address))
            {
                return r;
            }
        }

        return null;
    }

    /// <summary>True when [address, address+length) lies inside one region.</summary>
    public bool IsValidRange(ulong address, ulong length) => TryGetHostAddress(address, length, out _);

    /// <summary>Host address of [address, address+length) when it lies inside one region (zero-copy I/O).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryGetHostAddress(ulong address, ulong length, out nint host)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var regions = _regions;
        for (int i = 0; i < regions.Length; i++)
        {
            var r = regions[i];
            ulong offset = address - r.GuestPhysicalAddress;
            // offset < Size and length <= Size - offset: no overflow possible in either compare.
            if (offset < r.Size && length <= r.Size - offset)
            {
                host = r.HostAddress + (nint)offset;
                return true;
            }
        }

        host = 0;
        return false;
    }

    /// <summary>A span over guest RAM for [address, address+length) when it lies inside one region.</summary>
    public unsafe bool TryGetSpan(ulong address, int length, out Span<byte> span)
    {
        if (length >= 0 && TryGetHostAddress(address, (ulong)length, out nint host))
        {
            // SAFETY: TryGetHostAddress proved [host, host+length) is inside a live region mapping.
            span = new Span<byte>((void*)host, length);
            return true;
        }

        span = default;
        return false;
    }

    /// <summary>Copies guest RAM into <paramref name="destination"/>; false (and nothing copied) if any byte is outside RAM.</summary>
    public unsafe bool TryRead(ulong address, Span<byte> destination)
    {
        if (TryGetHostAddress(address, (ulong)destination.Length, out nint host))
        {
            // SAFETY: the range was proven to lie inside one region.
            new ReadOnlySpan<byte>((void*)host, destination.Length).CopyTo(destination);
            return true;
        }

        return TryCopySplit(address, destination, default, write: false);
    }

    /// <summary>Copies <paramref name="source"/> into guest RAM; false (and nothing written) if any byte is outside RAM.</summary>
    public unsafe bool TryWrite(ulong address, ReadOnlySpan<byte> source)
    {
        if (TryGetHostAddress(address, (ulong)source.Length, out nint host))
        {
            // SAFETY: the range was proven to lie inside one region.
            source.CopyTo(new Span<byte>((void*)host, source.Length));
            MarkDirty(address, (ulong)source.Length);
            return true;
        }

        if (TryCopySplit(address, default, source, write: true))
        {
            MarkDirty(address, (ulong)source.Length);
            return true;
        }

        return false;
    }

    /// <summary>Host-side read (loaders, tests): throws <see cref="GuestMemoryException"/> outside RAM.</summary>
    public void Read(ulong address, Span<byte> destination)
    {
        if (!TryRead(address, destination))
        {
            throw new GuestMemoryException(address, (ulong)destination.Length);
        }
    }

    /// <summary>Host-side write (loaders, tests): throws <see cref="GuestMemoryException"/> outside RAM.</summary>
    public void Write(ulong address, ReadOnlySpan<byte> source)
    {
        if (!TryWrite(address, source))
        {
            throw new GuestMemoryException(address, (ulong)source.Length);
        }
    }

    public T Read<T>(ulong address)
        where T : unmanaged
    {
        T value = default;
        Read(address, MemoryMarshal.AsBytes(new Span<T>(ref value)));
        return value;
    }

    public void Write<T>(ulong address, T value)
        where T : unmanaged
        => Write(address, MemoryMarshal.AsBytes(new ReadOnlySpan<T>(in value)));

    /// <summary>Fills [address, address+length) with <paramref name="value"/>; may span adjacent regions.</summary>
    public void Fill(ulong address, ulong length, byte value)
    {
        // Prove every byte is backed first, as the copies do, so a failed fill writes nothing.
        ulong cursor = address;
        ulong remaining = length;
        while (remaining > 0)
        {
            var r = FindRegion(cursor) ?? throw new GuestMemoryException(address, length);
            ulong chunk = Math.Min(remaining, r.End - cursor);
            cursor += chunk;
            remaining -= chunk;
        }

        cursor = address;
        remaining = length;
        while (remaining > 0)
        {
            var r = FindRegion(cursor)!;
            int chunk = (int)Math.Min(Math.Min(remaining, r.End - cursor), int.MaxValue);
            TryGetSpan(cursor, chunk, out var span);
            span.Fill(value);
            MarkDirty(cursor, (ulong)chunk);
            cursor += (ulong)chunk;
            remaining -= (ulong)chunk;
        }
    }

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        foreach (var r in _regions)
        {
            r.Mapping.Dispose();
        }
    }

    /// <summary>A copy that spans adjacent regions with no gap between them; all-or-nothing.</summary>
    private unsafe bool TryCopySplit(ulong address, Span<byte> destination, ReadOnlySpan<byte> source, bool write)
    {
        int length = write ? source.Length : destination.Length;
        if (length == 0)
        {
            return FindRegion(address) is not null;
        }

        // First prove every byte is backed, then copy: nothing is half-done on failure.
        ulong cursor = address;
        ulong remaining = (ulong)length;
        while (remaining > 0)
        {
            var r = FindRegion(cursor);
            if (r is null)
            {
                return false;
            }

            ulong chunk = Math.Min(remaining, r.End - cursor);
            cursor += chunk;
            remaining -= chunk;
        }

        cursor = address;
        int done = 0;
        while (done < length)
        {
            var r = FindRegion(cursor)!;
            int chunk = (int)Math.Min((ulong)(length - done), r.End - cursor);
            nint host = r.HostAddress + (nint)(cursor - r.GuestPhysicalAddress);
            // SAFETY: [cursor, cursor+chunk) lies inside region r, proven by the loop above.
            var guest = new Span<byte>((void*)host, chunk);
            if (write)
            {
                source.Slice(done, chunk).CopyTo(guest);
            }
            else
            {
                guest.CopyTo(destination.Slice(done, chunk));
            }

            cursor += (ulong)chunk;
            done += chunk;
        }

        return true;
    }
}

/// <summary>A guest-physical range.</summary>
public readonly record struct MemoryRange(ulong Start, ulong Size)
{
    public ulong End => Start + Size;
}
