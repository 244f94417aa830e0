using KvmSharp.Native;

namespace KvmSharp.Devices.Virtio.Net;

/// <summary>What a backend's receive side has for the device.</summary>
public enum BackendReceive
{
    /// <summary>A whole frame is ready: the span holds it (after the vnet header, if the backend has one).</summary>
    Frame,

    /// <summary>Nothing complete yet: wait until the descriptor is readable.</summary>
    Empty,

    /// <summary>The peer closed the connection (passt exited) or the device went away: no more frames, ever.</summary>
    Closed,
}

/// <summary>What became of a frame handed to a backend's send side.</summary>
public enum BackendSend
{
    /// <summary>The backend took the whole frame.</summary>
    Sent,

    /// <summary>The backend took nothing and would block: offer the same frame again once the descriptor is writable.</summary>
    Blocked,

    /// <summary>The host refused this frame (a TAP device rejecting a bad vnet header): it is dropped.</summary>
    Rejected,

    /// <summary>The peer is gone: the frame is dropped, and so will every later one be.</summary>
    Closed,
}

/// <summary>
/// The host side of a virtio-net device: a TAP device (frames with a virtio_net_hdr_v1) or a stream to passt
/// (length-prefixed frames, no header). Called only on the device event loop's thread; nothing allocates per frame.
/// </summary>
public interface INetworkBackend : IDisposable
{
    /// <summary>"user (passt)" or "tap tap0", for messages and --stats.</summary>
    string Description { get; }

    /// <summary>The non-blocking descriptor the event loop waits on (readable: frames; writable: room to send).</summary>
    FileDescriptor Descriptor { get; }

    /// <summary>
    /// Frames carry a 12-byte virtio_net_hdr_v1 in both directions and the host does checksums and segmentation
    /// (TAP with IFF_VNET_HDR): the device may offer TSO and passes headers through.
    /// </summary>
    bool HasVnetHeader { get; }

    /// <summary>The MTU to advertise to the guest (VIRTIO_NET_F_MTU).</summary>
    ushort Mtu { get; }

    /// <summary>Frames from the host longer than <see cref="VirtioNet.MaxFrameLength"/> (plus header), dropped by the backend.</summary>
    long OversizedFrames { get; }

    /// <summary>
    /// The next complete frame from the host, without consuming it: the same frame comes back until
    /// <see cref="ConsumeFrame"/>. With <see cref="HasVnetHeader"/> the span starts with the header. The span is valid
    /// until the next call on the backend.
    /// </summary>
    BackendReceive TryPeekFrame(out ReadOnlySpan<byte> frame);

    /// <summary>Drops the frame <see cref="TryPeekFrame"/> returned.</summary>
    void ConsumeFrame();

    /// <summary>
    /// Whether the backend can read one frame (with its vnet header) straight into guest buffers with
    /// <see cref="ReceiveVectored"/>: a TAP device, where every read is one frame. A stream needs the length first.
    /// </summary>
    bool SupportsDirectReceive { get; }

    /// <summary>
    /// Reads one frame into <paramref name="vectors"/> (readv): its length, -EAGAIN when none waits, 0 or another
    /// -errno when the frame could not be taken (too big for the vectors: it is dropped). Only when
    /// <see cref="SupportsDirectReceive"/>.
    /// </summary>
    long ReceiveVectored(IoVectorList vectors);

    /// <summary>
    /// Sends one frame: <paramref name="frame"/>'s vectors hold the vnet header first when <see cref="HasVnetHeader"/>,
    /// then the Ethernet frame. The vectors are read during the call only.
    /// </summary>
    BackendSend Send(IoVectorList frame);

    /// <summary>Whether output is waiting for the descriptor to become writable.</summary>
    bool HasPendingOutput { get; }

    /// <summary>Writes waiting output; false while some is still waiting (or the peer is gone).</summary>
    bool FlushPendingOutput();

    /// <summary>Which offloaded frames (TUN_F_* bits: partial checksums, TSO) the host may pass to the guest.</summary>
    void SetGuestOffloads(uint tunOffloads);
}
