namespace KvmSharp.Native;

/// <summary>
/// A fixed-capacity list of host memory ranges for scatter/gather file I/O (<see cref="FileIo.ReadVectored"/>,
/// <see cref="FileIo.WriteVectored"/>): the vectors point straight at the caller's buffers (guest RAM, for a disk),
/// so the kernel moves the data with no bounce buffer. Allocates only at construction; not thread-safe (one per
/// request processor).
/// </summary>
public sealed unsafe class IoVectorList
{
    // Pinned, so the kernel can be handed its address; allocated once on the pinned object heap.
    private readonly Interop.Libc.iovec_t[] _vectors;
    private int _count;
    private ulong _totalLength;

    public IoVectorList(int capacity)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(capacity);
        _vectors = GC.AllocateArray<Interop.Libc.iovec_t>(capacity, pinned: true);
    }

    public int Capacity => _vectors.Length;

    /// <summary>Vectors in the list (zero-length ranges are not stored).</summary>
    public int Count => _count;

    /// <summary>Sum of the lengths added since the last <see cref="Clear"/>.</summary>
    public ulong TotalLength => _totalLength;

    internal Interop.Libc.iovec_t[] Vectors => _vectors;

    public void Clear()
    {
        _count = 0;
        _totalLength = 0;
    }

    /// <summary>
    /// Appends the host range [<paramref name="address"/>, +<paramref name="length"/>); false (nothing added) when
    /// the list is full. The caller guarantees the range stays mapped (and writable, for a read) until the I/O call
    /// that uses the list returns: for guest RAM, an address from <c>GuestMemory.TryGetHostAddress</c>.
    /// </summary>
    public bool TryAdd(nint address, ulong length)
    {
        if (length == 0)
        {
            return true;
        }

        if (_count == _vectors.Length)
        {
            return false;
        }

        _vectors[_count] = new Interop.Libc.iovec_t { iov_base = (void*)address, iov_len = (nuint)length };
        _count++;
        _totalLength += length;
        return true;
    }
}
