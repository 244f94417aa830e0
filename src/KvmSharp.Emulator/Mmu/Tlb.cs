using System.Runtime.CompilerServices;

namespace KvmSharp.Emulator.Mmu;

/// <summary>
/// A direct-mapped software TLB of 4 KiB linear pages, shared by instruction fetches and data accesses. Each entry
/// keeps one tag per (privilege, access) pair, set to the page's linear address when the cached rights allow that
/// access and to an impossible value otherwise, so a lookup is one index computation and one compare, and a hit
/// can only grant what the walk that filled the entry allowed. Large pages are cached one 4 KiB piece at a time
/// and remember their size, so INVLPG anywhere in a large page drops every piece of it.
/// </summary>
/// <remarks>
/// Write tags are set only when the leaf entry was already dirty, so the first write to a clean page misses and
/// walks, and the walk sets D. Not thread-safe: one TLB per vCPU, as on hardware.
/// </remarks>
public sealed class Tlb
{
    public const int EntryCount = 256;

    private const int KindCount = 6;
    private const ulong PageOffsetMask = 0xFFF;

    /// <summary>Never equal to a page-aligned address.</summary>
    private const ulong InvalidTag = 1;

    /// <summary>Tags by kind (<see cref="PageRightsExtensions.BitIndex"/>), then by index.</summary>
    private readonly ulong[] _tags = new ulong[KindCount * EntryCount];
    private readonly ulong[] _frames = new ulong[EntryCount];

    /// <summary>The linear page each entry caches, or <see cref="InvalidTag"/>.</summary>
    private readonly ulong[] _pages = new ulong[EntryCount];

    /// <summary>~(page size - 1) of the mapping each entry came from.</summary>
    private readonly ulong[] _sizeMasks = new ulong[EntryCount];
    private readonly bool[] _global = new bool[EntryCount];
    private bool _holdsLargePages;

    public Tlb() => FlushAll();

    /// <summary>
    /// Counts flushes (INVLPG, CR3 writes, full flushes): a translation cached outside the TLB (the CPU's fetch page)
    /// stays usable while this is unchanged, as a hardware TLB entry would.
    /// </summary>
    public uint Epoch { get; private set; }

    /// <summary>The physical address of <paramref name="linear"/> when a cached entry allows the access.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryTranslate(ulong linear, MemoryAccess access, AccessPrivilege privilege, out ulong physicalAddress)
    {
        int index = (int)(linear >> 12) & (EntryCount - 1);
        if (_tags[(PageRightsExtensions.BitIndex(access, privilege) * EntryCount) + index] == (linear & ~PageOffsetMask))
        {
            physicalAddress = _frames[index] | (linear & PageOffsetMask);
            return true;
        }

        physicalAddress = 0;
        return false;
    }

    /// <summary>Caches the 4 KiB piece of <paramref name="translation"/> that holds <paramref name="linear"/>.</summary>
    public void Insert(ulong linear, in Translation translation)
    {
        int index = (int)(linear >> 12) & (EntryCount - 1);
        ulong page = linear & ~PageOffsetMask;
        var rights = translation.Dirty ? translation.Rights : translation.Rights & ~PageRights.AnyWrite;
        for (int kind = 0; kind < KindCount; kind++)
        {
            _tags[(kind * EntryCount) + index] = (((int)rights >> kind) & 1) != 0 ? page : InvalidTag;
        }

        _frames[index] = translation.PhysicalAddress & ~PageOffsetMask;
        _pages[index] = page;
        _sizeMasks[index] = ~(translation.PageSize - 1);
        _global[index] = translation.Global;
        _holdsLargePages |= translation.PageSize > PageOffsetMask + 1;
    }

    /// <summary>INVLPG: drops the page holding <paramref name="linear"/>, global or not, and every piece of a large page covering it.</summary>
    public void FlushPage(ulong linear)
    {
        Epoch++;
        if (!_holdsLargePages)
        {
            int index = (int)(linear >> 12) & (EntryCount - 1);
            if (_pages[index] == (linear & ~PageOffsetMask))
            {
                Invalidate(index);
            }

            return;
        }

        for (int i = 0; i < EntryCount; i++)
        {
            if (_pages[i] != InvalidTag && ((_pages[i] ^ linear) & _sizeMasks[i]) == 0)
            {
                Invalidate(i);
            }
        }
    }

    /// <summary>A CR3 write without PCIDs: drops every entry but the global ones.</summary>
    public void FlushNonGlobal()
    {
        Epoch++;
        bool holdsLargePages = false;
        for (int i = 0; i < EntryCount; i++)
        {
            if (!_global[i])
            {
                Invalidate(i);
            }
            else if (_pages[i] != InvalidTag)
            {
                holdsLargePages |= _sizeMasks[i] != ~PageOffsetMask;
            }
        }

        _holdsLargePages = holdsLargePages;
    }

    /// <summary>Drops every entry, global ones included (CR4.PGE/PAE/PSE, CR0.PG/WP, EFER changes).</summary>
    public void FlushAll()
    {
        Epoch++;
        _tags.AsSpan().Fill(InvalidTag);
        _pages.AsSpan().Fill(InvalidTag);
        _global.AsSpan().Clear();
        _holdsLargePages = false;
    }

    private void Invalidate(int index)
    {
        for (int kind = 0; kind < KindCount; kind++)
        {
            _tags[(kind * EntryCount) + index] = InvalidTag;
        }

        _pages[index] = InvalidTag;
        _global[index] = false;
    }
}
