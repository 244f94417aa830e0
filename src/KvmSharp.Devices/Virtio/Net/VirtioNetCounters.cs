namespace KvmSharp.Devices.Virtio.Net;

/// <summary>
/// What a virtio-net device moved and what the guest got wrong, over every activation. Written on the event loop
/// thread, readable from any thread (for <c>--stats</c>).
/// </summary>
public sealed class VirtioNetCounters
{
    private long _rxFrames;
    private long _rxBytes;
    private long _rxDropped;
    private long _txFrames;
    private long _txBytes;
    private long _txDropped;
    private long _txHeaderTooShort;
    private long _txFrameTooShort;
    private long _txFrameTooLarge;
    private long _txOffloadNotNegotiated;
    private long _txBadChecksumOffsets;
    private long _txNumBuffersSet;
    private long _rxHeaderTooShort;
    private long _rxBuffersTooSmall;
    private long _rxNoWritable;
    private long _ctrlBadLength;
    private long _ctrlUnsupported;
    private long _ctrlBadOffloads;
    private long _backendRejected;
    private long _linkDown;

    /// <summary>Frames delivered to the guest.</summary>
    public long RxFrames => Volatile.Read(ref _rxFrames);

    /// <summary>Ethernet bytes delivered to the guest (headers not counted).</summary>
    public long RxBytes => Volatile.Read(ref _rxBytes);

    /// <summary>Frames from the host the guest's buffers could not take (too small), dropped.</summary>
    public long RxDropped => Volatile.Read(ref _rxDropped);

    /// <summary>Frames the guest sent that the backend took.</summary>
    public long TxFrames => Volatile.Read(ref _txFrames);

    /// <summary>Ethernet bytes the guest sent that the backend took.</summary>
    public long TxBytes => Volatile.Read(ref _txBytes);

    /// <summary>Frames the guest sent that were dropped (a guest mistake below, a host refusal, or the link down).</summary>
    public long TxDropped => Volatile.Read(ref _txDropped);

    /// <summary>Guest mistake: a transmit chain shorter than the 12-byte virtio_net_hdr_v1.</summary>
    public long TxHeaderTooShort => Volatile.Read(ref _txHeaderTooShort);

    /// <summary>Guest mistake: a transmitted frame shorter than an Ethernet header (14 bytes).</summary>
    public long TxFrameTooShort => Volatile.Read(ref _txFrameTooShort);

    /// <summary>Guest mistake: a transmitted frame longer than <see cref="VirtioNet.MaxFrameLength"/>.</summary>
    public long TxFrameTooLarge => Volatile.Read(ref _txFrameTooLarge);

    /// <summary>Guest mistake: NEEDS_CSUM or a GSO type without the feature that allows it.</summary>
    public long TxOffloadNotNegotiated => Volatile.Read(ref _txOffloadNotNegotiated);

    /// <summary>Guest mistake: NEEDS_CSUM with csum_start/csum_offset outside the frame.</summary>
    public long TxBadChecksumOffsets => Volatile.Read(ref _txBadChecksumOffsets);

    /// <summary>Guest mistake (harmless): num_buffers not zero in a transmit header.</summary>
    public long TxNumBuffersSet => Volatile.Read(ref _txNumBuffersSet);

    /// <summary>Guest mistake: a receive chain whose first buffer cannot hold the 12-byte header.</summary>
    public long RxHeaderTooShort => Volatile.Read(ref _rxHeaderTooShort);

    /// <summary>Guest mistake: receive buffers too small for a frame (without MRG_RXBUF, or more than a ring's worth).</summary>
    public long RxBuffersTooSmall => Volatile.Read(ref _rxBuffersTooSmall);

    /// <summary>Guest mistake: a receive chain with no device-writable buffer.</summary>
    public long RxNoWritable => Volatile.Read(ref _rxNoWritable);

    /// <summary>Guest mistake: a control command without class and command bytes, or without room for the ack.</summary>
    public long CtrlBadLength => Volatile.Read(ref _ctrlBadLength);

    /// <summary>Control commands the device does not implement (answered VIRTIO_NET_ERR).</summary>
    public long CtrlUnsupported => Volatile.Read(ref _ctrlUnsupported);

    /// <summary>Guest mistake: GUEST_OFFLOADS_SET with a wrong length or offloads that were not negotiated (answered VIRTIO_NET_ERR).</summary>
    public long CtrlBadOffloads => Volatile.Read(ref _ctrlBadOffloads);

    /// <summary>Frames the host refused (a TAP device rejecting a header).</summary>
    public long BackendRejected => Volatile.Read(ref _backendRejected);

    /// <summary>Times the backend went away (passt exited, the TAP was deleted): the link went down.</summary>
    public long LinkDown => Volatile.Read(ref _linkDown);

    /// <summary>Every counted guest mistake.</summary>
    public long GuestErrors => TxHeaderTooShort + TxFrameTooShort + TxFrameTooLarge + TxOffloadNotNegotiated + TxBadChecksumOffsets
        + TxNumBuffersSet + RxHeaderTooShort + RxBuffersTooSmall + RxNoWritable + CtrlBadLength + CtrlBadOffloads;

    internal void Received(int bytes)
    {
        Volatile.Write(ref _rxFrames, _rxFrames + 1);
        Volatile.Write(ref _rxBytes, _rxBytes + bytes);
    }

    internal void Sent(long bytes)
    {
        Volatile.Write(ref _txFrames, _txFrames + 1);
        Volatile.Write(ref _txBytes, _txBytes + bytes);
    }

    internal void RxDrop() => Bump(ref _rxDropped);

    internal void TxDrop() => Bump(ref _txDropped);

    internal void TxHeaderShort() => Bump(ref _txHeaderTooShort);

    internal void TxFrameShort() => Bump(ref _txFrameTooShort);

    internal void TxFrameLarge() => Bump(ref _txFrameTooLarge);

    internal void TxOffload() => Bump(ref _txOffloadNotNegotiated);

    internal void TxChecksumOffsets() => Bump(ref _txBadChecksumOffsets);

    internal void TxNumBuffers() => Bump(ref _txNumBuffersSet);

    internal void RxHeaderShort() => Bump(ref _rxHeaderTooShort);

    internal void RxTooSmall() => Bump(ref _rxBuffersTooSmall);

    internal void RxNotWritable() => Bump(ref _rxNoWritable);

    internal void CtrlLength() => Bump(ref _ctrlBadLength);

    internal void CtrlUnknown() => Bump(ref _ctrlUnsupported);

    internal void CtrlOffloads() => Bump(ref _ctrlBadOffloads);

    internal void Rejected() => Bump(ref _backendRejected);

    internal void Down() => Bump(ref _linkDown);

    private static void Bump(ref long counter) => Volatile.Write(ref counter, counter + 1);
}
