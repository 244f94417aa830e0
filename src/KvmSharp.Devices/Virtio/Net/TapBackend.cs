using KvmSharp.Native;

namespace KvmSharp.Devices.Virtio.Net;

/// <summary>
/// A TAP interface as the backend (IFF_TAP | IFF_NO_PI | IFF_VNET_HDR): every read is one frame with its 12-byte
/// virtio_net_hdr_v1, every write one frame with the guest's header, which the kernel validates and acts on
/// (partial checksums, TSO), so the device offers the offloads. Reads (with MRG_RXBUF) and writes go straight
/// between the TAP and guest memory (readv, writev).
/// </summary>
public sealed class TapBackend : INetworkBackend
{
    private const int ReceiveCapacity = VirtioNet.HeaderLength + VirtioNet.MaxFrameLength + 1;

    private readonly TapDevice _tap;
    private readonly byte[] _receive = new byte[ReceiveCapacity];
    private int _frameLength = -1;
    private bool _closed;
    private long _oversized;

    /// <param name="tap">An open TAP device with a 12-byte vnet header (owned).</param>
    /// <param name="mtu">The MTU to advertise (the interface's).</param>
    public TapBackend(TapDevice tap, ushort mtu = 1500)
    {
        ArgumentNullException.ThrowIfNull(tap);
        _tap = tap;
        Mtu = mtu;
        Description = "tap " + tap.Name;
    }

    public string Description { get; }

    public FileDescriptor Descriptor => _tap.Descriptor;

    public bool HasVnetHeader => true;

    public ushort Mtu { get; }

    public long OversizedFrames => Volatile.Read(ref _oversized);

    public bool HasPendingOutput => false;

    public BackendReceive TryPeekFrame(out ReadOnlySpan<byte> frame)
    {
        frame = default;
        while (_frameLength < 0)
        {
            if (_closed)
            {
                return BackendReceive.Closed;
            }

            long n = StreamIo.Read(_tap.Descriptor, _receive);
            if (n == -Errno.EAGAIN)
            {
                return BackendReceive.Empty;
            }

            if (n < 0)
            {
                _closed = true; // EBADFD: the interface was deleted under us
                return BackendReceive.Closed;
            }

            if (n >= ReceiveCapacity)
            {
                Volatile.Write(ref _oversized, _oversized + 1);
                continue;
            }

            if (n < VirtioNet.HeaderLength)
            {
                continue;
            }

            _frameLength = (int)n;
        }

        frame = _receive.AsSpan(0, _frameLength);
        return BackendReceive.Frame;
    }

    public void ConsumeFrame() => _frameLength = -1;

    public bool SupportsDirectReceive => true;

    public long ReceiveVectored(IoVectorList vectors)
    {
        ArgumentNullException.ThrowIfNull(vectors);
        if (_closed)
        {
            return 0;
        }

        long n = StreamIo.ReadVectored(_tap.Descriptor, vectors);
        if (n == -Errno.EBADF || n == -Errno.ENODEV || n == -Errno.EBADFD) // the interface went away
        {
            _closed = true;
        }

        return n;
    }

    public BackendSend Send(IoVectorList frame)
    {
        ArgumentNullException.ThrowIfNull(frame);
        if (_closed)
        {
            return BackendSend.Closed;
        }

        long n = StreamIo.WriteVectored(_tap.Descriptor, frame);
        if (n >= 0)
        {
            return BackendSend.Sent;
        }

        if (n == -Errno.EAGAIN)
        {
            return BackendSend.Blocked;
        }

        if (n == -Errno.EINVAL || n == -Errno.EFAULT || n == -Errno.EMSGSIZE || n == -Errno.ENOMEM)
        {
            return BackendSend.Rejected; // a header or frame the kernel refused; the next one may be fine
        }

        _closed = true;
        return BackendSend.Closed;
    }

    public bool FlushPendingOutput() => !_closed;

    public void SetGuestOffloads(uint tunOffloads) => _tap.SetOffloads(tunOffloads);

    public void Dispose() => _tap.Dispose();
}
