using System.Buffers.Binary;
using KvmSharp.Native;

namespace KvmSharp.Devices.Virtio.Net;

/// <summary>
/// Ethernet frames over a connected stream socket as QEMU's <c>-netdev stream</c> and passt frame them: a 4-byte
/// big-endian length, then the frame, no vnet header. Reads fill a buffer in large pieces and frames are parsed out
/// of it; a length over <see cref="VirtioNet.MaxFrameLength"/> is skipped byte for byte and counted, so a broken peer
/// cannot make the device allocate or overrun anything. A partial write keeps the frame's unsent tail in a buffer
/// and sends it first once the socket is writable.
/// </summary>
public class StreamFramedBackend : INetworkBackend
{
    private const int PrefixLength = 4;
    private const int ReceiveCapacity = 4 * (VirtioNet.MaxFrameLength + PrefixLength);
    private const int PendingCapacity = VirtioNet.MaxFrameLength + PrefixLength;

    private readonly FileDescriptor _socket;
    private readonly byte[] _receive = new byte[ReceiveCapacity];
    private readonly byte[] _pending = new byte[PendingCapacity];
    private readonly byte[] _prefix = GC.AllocateArray<byte>(PrefixLength, pinned: true);
    private readonly IoVectorList _vectors = new(VirtioNet.MaxSendVectors + 1);
    private int _start;
    private int _end;
    private int _frameLength = -1;
    private long _skipRemaining;
    private int _pendingStart;
    private int _pendingEnd;
    private bool _closed;
    private long _oversized;

    /// <param name="socket">A connected AF_UNIX/TCP stream socket; owned (closed on dispose) and made non-blocking.</param>
    /// <param name="description">What the peer is, for messages.</param>
    /// <param name="mtu">The MTU the peer gives the guest (passt: 65520).</param>
    public StreamFramedBackend(FileDescriptor socket, string description, ushort mtu)
    {
        ArgumentNullException.ThrowIfNull(socket);
        ArgumentNullException.ThrowIfNull(description);
        StreamIo.SetNonBlocking(socket);
        _socket = socket;
        Description = description;
        Mtu = mtu;
    }

    public string Description { get; }

    public FileDescriptor Descriptor => _socket;

    public bool HasVnetHeader => false;

    public ushort Mtu { get; }

    public long OversizedFrames => Volatile.Read(ref _oversized);

    public bool HasPendingOutput => _pendingEnd > _pendingStart;

    /// <summary>Whether the peer closed the stream or failed.</summary>
    public bool IsClosed => _closed;

    public BackendReceive TryPeekFrame(out ReadOnlySpan<byte> frame)
    {
        frame = default;
        while (true)
        {
            if (TryParse(out frame))
            {
                return BackendReceive.Frame;
            }

            if (_closed)
            {
                return BackendReceive.Closed;
            }

            if (!Fill())
            {
                return _closed ? BackendReceive.Closed : BackendReceive.Empty;
            }
        }
    }

    public void ConsumeFrame()
    {
        if (_frameLength >= 0)
        {
            _start += PrefixLength + _frameLength;
            _frameLength = -1;
        }
    }

    /// <summary>A stream carries frames back to back: their length must be read before their bytes, so no.</summary>
    public bool SupportsDirectReceive => false;

    public long ReceiveVectored(IoVectorList vectors) => throw new NotSupportedException("A stream backend receives through TryPeekFrame.");

    public BackendSend Send(IoVectorList frame)
    {
        ArgumentNullException.ThrowIfNull(frame);
        if (_closed)
        {
            return BackendSend.Closed;
        }

        if (HasPendingOutput && !FlushPendingOutput())
        {
            return _closed ? BackendSend.Closed : BackendSend.Blocked;
        }

        ulong total = frame.TotalLength;
        if (total > VirtioNet.MaxFrameLength)
        {
            return BackendSend.Rejected;
        }

        BinaryPrimitives.WriteUInt32BigEndian(_prefix, (uint)total);
        _vectors.Clear();
        unsafe
        {
            // SAFETY: _prefix is pinned for the backend's lifetime.
            fixed (byte* prefix = _prefix)
            {
                _vectors.TryAdd((nint)prefix, PrefixLength);
            }
        }

        if (!_vectors.TryAddAll(frame))
        {
            return BackendSend.Rejected;
        }

        long written = StreamIo.WriteVectored(_socket, _vectors);
        if (written == -Errno.EAGAIN)
        {
            return BackendSend.Blocked;
        }

        if (written < 0)
        {
            _closed = true;
            return BackendSend.Closed;
        }

        ulong all = total + PrefixLength;
        if ((ulong)written < all)
        {
            // Keep the unsent tail: the stream must carry the frame whole before anything else.
            _pendingStart = 0;
            _pendingEnd = _vectors.CopyTo((ulong)written, _pending);
        }

        return BackendSend.Sent;
    }

    public bool FlushPendingOutput()
    {
        while (HasPendingOutput && !_closed)
        {
            long written = StreamIo.Write(_socket, _pending.AsSpan(_pendingStart, _pendingEnd - _pendingStart));
            if (written == -Errno.EAGAIN)
            {
                return false;
            }

            if (written <= 0)
            {
                _closed = true;
                return false;
            }

            _pendingStart += (int)written;
        }

        return !HasPendingOutput && !_closed;
    }

    /// <summary>A stream peer has no offloads to configure: frames it sends carry complete checksums.</summary>
    public void SetGuestOffloads(uint tunOffloads)
    {
    }

    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    protected virtual void Dispose(bool disposing)
    {
        if (disposing)
        {
            _closed = true;
            _socket.Dispose();
        }
    }

    /// <summary>Finds the next whole frame in the receive buffer, skipping oversized ones.</summary>
    private bool TryParse(out ReadOnlySpan<byte> frame)
    {
        frame = default;
        while (true)
        {
            if (_skipRemaining > 0)
            {
                int skip = (int)Math.Min(_skipRemaining, _end - _start);
                _start += skip;
                _skipRemaining -= skip;
                if (_skipRemaining > 0)
                {
                    return false;
                }
            }

            int available = _end - _start;
            if (available < PrefixLength)
            {
                return false;
            }

            uint length = BinaryPrimitives.ReadUInt32BigEndian(_receive.AsSpan(_start));
            if (length > VirtioNet.MaxFrameLength)
            {
                Volatile.Write(ref _oversized, _oversized + 1);
                _start += PrefixLength;
                _skipRemaining = length;
                continue;
            }

            if (length == 0)
            {
                _start += PrefixLength; // an empty frame carries nothing to deliver
                continue;
            }

            if (available < PrefixLength + (int)length)
            {
                return false;
            }

            _frameLength = (int)length;
            frame = _receive.AsSpan(_start + PrefixLength, _frameLength);
            return true;
        }
    }

    /// <summary>Reads what the socket has into the buffer's free space; false when it had nothing (or closed).</summary>
    private bool Fill()
    {
        if (_start == _end)
        {
            _start = _end = 0;
        }
        else if (_start > 0 && _receive.Length - _end < PendingCapacity)
        {
            // Move the partial frame to the front so a whole maximum-size frame fits behind it.
            _receive.AsSpan(_start, _end - _start).CopyTo(_receive);
            _end -= _start;
            _start = 0;
        }

        long n = StreamIo.Read(_socket, _receive.AsSpan(_end));
        if (n == -Errno.EAGAIN)
        {
            return false;
        }

        if (n <= 0)
        {
            _closed = true;
            return false;
        }

        _end += (int)n;
        return true;
    }
}
