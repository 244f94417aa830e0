using KvmSharp.Emulator.Decoding;
using KvmSharp.Memory;

namespace KvmSharp.Emulator.Cpu;

/// <summary>
/// The decoded-instruction cache. Entries are keyed by guest-physical address and CPU mode; every RAM page has a
/// generation number that a write to the page bumps when something was decoded from it, which invalidates all of
/// that page's entries at once (self-modifying code, module loading, exec). Instructions that cross a page and
/// code outside RAM are never cached.
/// </summary>
public sealed partial class Interpreter
{
    private const int DecodeCacheBits = 16;
    private const byte PageNotRam = 0;
    private const byte PageRam = 1;
    private const byte PageHoldsCode = 2;

    private readonly DecodeCacheEntry[] _decodeCache = new DecodeCacheEntry[1 << DecodeCacheBits];
    private readonly byte[] _pageKind;
    private readonly uint[] _pageGeneration;

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

    private static int DecodeCacheIndex(ulong physical) => (int)((physical * 0x9E37_79B9_7F4A_7C15UL) >> (64 - DecodeCacheBits));

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
    }
}
