using System.Numerics;

namespace KvmSharp.Memory;

/// <summary>
/// One bit per 4 KiB page of a memory region, in the kernel's layout (bit i of word i/64 is page i),
/// as KVM_GET_DIRTY_LOG returns it and the software CPU fills it.
/// </summary>
public sealed class DirtyPageBitmap
{
    private readonly ulong[] _words;

    public DirtyPageBitmap(ulong baseAddress, ulong pageCount)
    {
        BaseAddress = baseAddress;
        PageCount = pageCount;
        _words = new ulong[(pageCount + 63) / 64];
    }

    public ulong BaseAddress { get; }

    public ulong PageCount { get; }

    /// <summary>The raw words, for the kernel to fill.</summary>
    public Span<ulong> Words => _words;

    public bool IsDirty(ulong page) => page < PageCount && (_words[page / 64] & (1UL << (int)(page % 64))) != 0;

    public void MarkDirty(ulong page)
    {
        if (page < PageCount)
        {
            _words[page / 64] |= 1UL << (int)(page % 64);
        }
    }

    public void Clear() => Array.Clear(_words);

    /// <summary>Marks here every page marked in <paramref name="other"/> (same page count).</summary>
    public void UnionWith(DirtyPageBitmap other)
    {
        ArgumentNullException.ThrowIfNull(other);
        if (other.PageCount != PageCount)
        {
            throw new ArgumentException($"The bitmap has {other.PageCount} pages; this one {PageCount}.", nameof(other));
        }

        for (int i = 0; i < _words.Length; i++)
        {
            _words[i] |= other._words[i];
        }
    }

    /// <summary>Marks pages [<paramref name="firstPage"/>, +<paramref name="count"/>) from any thread (pages past the end are ignored).</summary>
    public void MarkRangeConcurrent(ulong firstPage, ulong count)
    {
        ulong end = Math.Min(firstPage + count, PageCount);
        for (ulong page = firstPage; page < end; page++)
        {
            ref ulong word = ref _words[page / 64];
            ulong bit = 1UL << (int)(page % 64);
            if ((Volatile.Read(ref word) & bit) == 0)
            {
                Interlocked.Or(ref word, bit);
            }
        }
    }

    /// <summary>
    /// Moves every mark into <paramref name="into"/> (ORed in) and clears it here, word by word atomically, so a page
    /// marked concurrently is either moved now or stays for the next call, never lost. Same page count required.
    /// </summary>
    public void MoveInto(DirtyPageBitmap into)
    {
        ArgumentNullException.ThrowIfNull(into);
        if (into.PageCount != PageCount)
        {
            throw new ArgumentException($"The bitmap has {into.PageCount} pages; this one {PageCount}.", nameof(into));
        }

        for (int i = 0; i < _words.Length; i++)
        {
            if (Volatile.Read(ref _words[i]) != 0)
            {
                into._words[i] |= Interlocked.Exchange(ref _words[i], 0);
            }
        }
    }

    public int CountDirty()
    {
        int n = 0;
        foreach (ulong w in _words)
        {
            n += BitOperations.PopCount(w);
        }

        return n;
    }

    /// <summary>Guest-physical addresses of the dirty pages, ascending.</summary>
    public List<ulong> DirtyPageAddresses()
    {
        var result = new List<ulong>();
        for (int i = 0; i < _words.Length; i++)
        {
            ulong w = _words[i];
            while (w != 0)
            {
                int bit = BitOperations.TrailingZeroCount(w);
                result.Add(BaseAddress + (((ulong)i * 64) + (ulong)bit) * GuestMemory.PageSize);
                w &= w - 1;
            }
        }

        return result;
    }
}
