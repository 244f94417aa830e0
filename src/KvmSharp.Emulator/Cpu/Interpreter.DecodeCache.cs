using System.Runtime.Intrinsics;
using KvmSharp.Emulator.Decoding;
using KvmSharp.Memory;

namespace KvmSharp.Emulator.Cpu;

/// <summary>
/// The decoded-instruction cache. Entries are keyed by guest-physical address and CPU mode; every RAM page has a
/// generation number that a write to the page bumps when something was decoded from it, which invalidates all of
/// that page's entries at once (self-modifying code, module loading, exec). Each entry also keeps the instruction's
/// bytes and a hit compares them with memory, so a write the CPU did not see (a device's DMA, the VMM, another
/// vCPU) can never run stale code. Instructions that cross a page and code outside RAM are never cached.
/// </summary>
public sealed partial class Interpreter
{
    /// <summary>log2 of the decoded-instruction cache's entries: 65,536 entries, about 5 MiB per vCPU.</summary>
    internal const int DefaultDecodeCacheBits = 16;
    private const byte PageNotRam = 0;
    private const byte PageRam = 1;
    private const byte PageHoldsCode = 2;

    private readonly DecodeCacheEntry[] _decodeCache;
    private readonly int _decodeCacheMask;
    private readonly byte[] _pageKind;
    private readonly uint[] _pageGeneration;
    private readonly ulong[] _ramStart;
    private readonly ulong[] _ramSize;
    private readonly nint[] _ramHost;

    /// <summary>Fetches answered from the decoded-instruction cache.</summary>
    public ulong DecodeCacheHits { get; private set; }

    /// <summary>Pages whose decoded instructions were dropped because the page was written.</summary>
    public ulong DecodedPagesInvalidated { get; private set; }

    /// <summary>
    /// Tells the CPU that something other than its own stores (a device's DMA, the VMM) wrote guest RAM at
    /// [<paramref name="address"/>, +<paramref name="length"/>): instructions decoded from there are dropped.
    /// </summary>
    public void NotifyMemoryWritten(ulong address, ulong length)
    {
        if (length == 0)
        {
            return;
        }

        ulong last = (address + length - 1) >> 12;
        for (ulong page = address >> 12; page <= last && page < (ulong)_pageKind.Length; page++)
        {
            if (_pageKind[page] == PageHoldsCode)
            {
                InvalidateDecodedPage(page);
            }
        }
    }

    /// <summary>
    /// Drops everything the CPU derived from guest memory and its own state (decoded instructions and blocks, the
    /// current block, the fetch page, the TLB) and reloads paging from <see cref="State"/>: after a snapshot is
    /// restored both may have changed under it.
    /// </summary>
    /// <exception cref="ArgumentException">The paging state is invalid (a PAE PDPTE with reserved bits).</exception>
    internal void DiscardDerivedState()
    {
        Array.Clear(_decodeCache);
        Array.Clear(_blocks);
        _blockCount = 0;
        _blockIndex = 0;
        _fetchLinearPage = ulong.MaxValue;
        for (int page = 0; page < _pageKind.Length; page++)
        {
            if (_pageKind[page] == PageHoldsCode)
            {
                _pageKind[page] = PageRam;
                _pageGeneration[page]++;
            }
        }

        ReloadPaging();
    }

    /// <summary>The host address of guest-physical <paramref name="physical"/> when it is RAM (the page is whole RAM), else null.</summary>
    private unsafe byte* RamPointer(ulong physical)
    {
        ulong offset = physical - _ramStart[0];
        if (offset < _ramSize[0])
        {
            return (byte*)_ramHost[0] + offset;
        }

        for (int i = 1; i < _ramStart.Length; i++)
        {
            offset = physical - _ramStart[i];
            if (offset < _ramSize[i])
            {
                return (byte*)_ramHost[i] + offset;
            }
        }

        return null;
    }

    private static (ulong[] Start, ulong[] Size, nint[] Host) CreateRamMap(GuestMemory memory)
    {
        int count = memory.Regions.Count;
        var start = new ulong[Math.Max(count, 1)];
        var size = new ulong[Math.Max(count, 1)];
        var host = new nint[Math.Max(count, 1)];
        for (int i = 0; i < count; i++)
        {
            start[i] = memory.Regions[i].GuestPhysicalAddress;
            size[i] = memory.Regions[i].Size;
            host[i] = memory.Regions[i].HostAddress;
        }

        return (start, size, host);
    }

    /// <summary>Whether guest RAM at <paramref name="physical"/> (host address <paramref name="host"/>) still holds the bytes <paramref name="entry"/> was decoded from.</summary>
    private unsafe bool CachedBytesMatch(nint host, ulong physical, ref DecodeCacheEntry entry)
    {
        int length = entry.Instruction.Length;
        if ((physical & PageMask) <= GuestMemory.PageSize - 16)
        {
            // One 16-byte load inside the page (RAM regions are whole pages), masked to the instruction's length.
            var mask = Vector128.Create(LengthMasks.Slice(length * 16, 16));
            var difference = Vector128.Xor(Vector128.Load((byte*)host), entry.Bytes) & mask;
            return difference == Vector128<byte>.Zero;
        }

        for (int i = 0; i < length; i++)
        {
            if (((byte*)host)[i] != entry.Bytes.GetElement(i))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>Row n (0 to 16) holds n bytes of 0xFF, then zeros.</summary>
    private static ReadOnlySpan<byte> LengthMasks =>
    [
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        255, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        255, 255, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        255, 255, 255, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        255, 255, 255, 255, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        255, 255, 255, 255, 255, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        255, 255, 255, 255, 255, 255, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        255, 255, 255, 255, 255, 255, 255, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        255, 255, 255, 255, 255, 255, 255, 255, 0, 0, 0, 0, 0, 0, 0, 0,
        255, 255, 255, 255, 255, 255, 255, 255, 255, 0, 0, 0, 0, 0, 0, 0,
        255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 0, 0, 0, 0, 0, 0,
        255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 0, 0, 0, 0, 0,
        255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 0, 0, 0, 0,
        255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 0, 0, 0,
        255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 0, 0,
        255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 0,
        255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    ];

    private static Vector128<byte> PackBytes(ReadOnlySpan<byte> bytes)
    {
        Span<byte> padded = stackalloc byte[16];
        padded.Clear();
        bytes.CopyTo(padded);
        return Vector128.Create((ReadOnlySpan<byte>)padded);
    }

    // The low bits of the address pick the entry, so the instructions of a loop sit in neighbouring entries (a few cache
    // lines) rather than scattered over the whole cache; higher bits are folded in so that code at the same offset in
    // different 64 KiB blocks does not always collide.
    private int DecodeCacheIndex(ulong physical) => (int)(physical ^ (physical >> 16) ^ (physical >> 29)) & _decodeCacheMask;

    /// <summary>The key of code decoded at <paramref name="physical"/> in <paramref name="mode"/> (never 0, the empty tag).</summary>
    private static ulong DecodeTag(ulong physical, CpuMode mode) => physical | ((ulong)(mode + 1) << 56);

    private void InvalidateDecodedPage(ulong page)
    {
        _pageGeneration[page]++;
        _pageKind[page] = PageRam;
        DecodedPagesInvalidated++;
    }

    private static (byte[] Kind, uint[] Generation) CreatePageTables(GuestMemory memory)
    {
        ulong end = 0;
        foreach (var region in memory.Regions)
        {
            end = Math.Max(end, region.End);
        }

        var kind = new byte[(end + GuestMemory.PageSize - 1) / GuestMemory.PageSize];
        foreach (var region in memory.Regions)
        {
            for (ulong page = region.GuestPhysicalAddress >> 12; page < (region.End) >> 12; page++)
            {
                kind[page] = PageRam;
            }
        }

        return (kind, new uint[kind.Length]);
    }

    private struct DecodeCacheEntry
    {
        public ulong Tag;
        public uint Generation;
        public DecodedInstruction Instruction;
        public Vector128<byte> Bytes;
    }
}
