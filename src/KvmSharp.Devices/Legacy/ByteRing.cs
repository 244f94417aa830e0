namespace KvmSharp.Devices.Legacy;

/// <summary>A fixed-capacity FIFO of bytes; not thread-safe (its owner holds the lock). Allocates only at construction.</summary>
internal sealed class ByteRing
{
    private readonly byte[] _buffer;
    private int _head;
    private int _count;

    public ByteRing(int capacity)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(capacity);
        _buffer = new byte[capacity];
    }

    public int Capacity => _buffer.Length;

    public int Count => _count;

    public int Free => _buffer.Length - _count;

    /// <summary>Appends <paramref name="value"/>; false (and nothing stored) when the ring is full.</summary>
    public bool TryWrite(byte value)
    {
        if (_count == _buffer.Length)
        {
            return false;
        }

        int tail = _head + _count;
        if (tail >= _buffer.Length)
        {
            tail -= _buffer.Length;
        }

        _buffer[tail] = value;
        _count++;
        return true;
    }

    /// <summary>Appends as many of <paramref name="values"/> as fit, in order; returns how many.</summary>
    public int Write(ReadOnlySpan<byte> values)
    {
        int accepted = Math.Min(values.Length, Free);
        for (int i = 0; i < accepted; i++)
        {
            TryWrite(values[i]);
        }

        return accepted;
    }

    /// <summary>Removes and returns the oldest byte; the caller checks <see cref="Count"/> first.</summary>
    public byte Read()
    {
        byte value = _buffer[_head];
        _head++;
        if (_head == _buffer.Length)
        {
            _head = 0;
        }

        _count--;
        return value;
    }

    /// <summary>Removes up to <paramref name="destination"/>.Length oldest bytes into it; returns how many.</summary>
    public int Read(Span<byte> destination)
    {
        int taken = Math.Min(destination.Length, _count);
        int first = Math.Min(taken, _buffer.Length - _head);
        _buffer.AsSpan(_head, first).CopyTo(destination);
        _buffer.AsSpan(0, taken - first).CopyTo(destination[first..]);
        _head += taken;
        if (_head >= _buffer.Length)
        {
            _head -= _buffer.Length;
        }

        _count -= taken;
        return taken;
    }

    public void Clear()
    {
        _head = 0;
        _count = 0;
    }

    /// <summary>The contents, oldest first (for snapshots; allocates).</summary>
    public byte[] ToArray()
    {
        var copy = new byte[_count];
        int index = _head;
        for (int i = 0; i < _count; i++)
        {
            copy[i] = _buffer[index];
            index++;
            if (index == _buffer.Length)
            {
                index = 0;
            }
        }

        return copy;
    }
}
