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
