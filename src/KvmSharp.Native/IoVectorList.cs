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

    /// <summary>The <paramref name="index"/>-th range (0 to <see cref="Count"/> - 1).</summary>
    public (nint Address, ulong Length) this[int index]
    {
        get
        {
            ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual((uint)index, (uint)_count, nameof(index));
            var v = _vectors[index];
            return ((nint)v.iov_base, v.iov_len);
        }
    }

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
    /// <summary>Appends every vector of <paramref name="other"/> (the same ranges, not copies of the bytes); false (nothing added) when they do not fit.</summary>
    public bool TryAddAll(IoVectorList other)
    {
        ArgumentNullException.ThrowIfNull(other);
        if (_count + other._count > _vectors.Length)
        {
            return false;
        }

        Array.Copy(other._vectors, 0, _vectors, _count, other._count);
        _count += other._count;
        _totalLength += other._totalLength;
        return true;
    }

    /// <summary>
    /// Copies the listed bytes from position <paramref name="offset"/> of their concatenation into
    /// <paramref name="destination"/> (as many as fit); returns the count.
    /// </summary>
    public int CopyTo(ulong offset, Span<byte> destination)
    {
        int copied = 0;
        for (int i = 0; i < _count && copied < destination.Length; i++)
        {
            ulong length = _vectors[i].iov_len;
            if (offset >= length)
            {
                offset -= length;
                continue;
            }

            int chunk = (int)Math.Min(length - offset, (ulong)(destination.Length - copied));
            // SAFETY: the vector's range is live memory by TryAdd's contract, and [offset, offset+chunk) lies inside it.
            new ReadOnlySpan<byte>((byte*)_vectors[i].iov_base + offset, chunk).CopyTo(destination[copied..]);
            copied += chunk;
            offset = 0;
        }

        return copied;
    }

    /// <summary>Drops the first <paramref name="count"/> vectors, moving the rest to the front.</summary>
    public void RemoveFirst(int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(count, _count);
        for (int i = 0; i < count; i++)
        {
            _totalLength -= _vectors[i].iov_len;
        }

        Array.Copy(_vectors, count, _vectors, 0, _count - count);
        _count -= count;
    }

    /// <summary>Copies <paramref name="source"/> to position <paramref name="offset"/> of the listed bytes' concatenation; false if it does not fit.</summary>
    public bool WriteAt(ulong offset, ReadOnlySpan<byte> source)
    {
        for (int i = 0; i < _count && !source.IsEmpty; i++)
        {
            ulong length = _vectors[i].iov_len;
            if (offset >= length)
            {
                offset -= length;
                continue;
            }

            int chunk = (int)Math.Min(length - offset, (ulong)source.Length);
            // SAFETY: the vector's range is live writable memory by TryAdd's contract, and [offset, offset+chunk) lies inside it.
            source[..chunk].CopyTo(new Span<byte>((byte*)_vectors[i].iov_base + offset, chunk));
            source = source[chunk..];
            offset = 0;
        }

        return source.IsEmpty;
    }

    /// <summary>Keeps the first <paramref name="count"/> vectors and drops the rest (undoes appends).</summary>
    public void Truncate(int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(count, _count);
        for (int i = count; i < _count; i++)
        {
            _totalLength -= _vectors[i].iov_len;
        }

        _count = count;
    }
}
