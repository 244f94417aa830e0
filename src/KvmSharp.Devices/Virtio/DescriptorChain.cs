namespace KvmSharp.Devices.Virtio;

/// <summary>One validated buffer of a descriptor chain: a guest-physical range that lies inside one RAM region.</summary>
public readonly record struct ChainSegment(ulong Address, uint Length);

/// <summary>
/// A descriptor chain popped from a <see cref="SplitVirtQueue"/>, already copied out of guest memory and validated
/// (virtio 1.x 2.7.5): the device-readable buffers in chain order, then the device-writable ones. The spans alias the
/// queue's reusable segment array, so a chain is valid only until the next <see cref="SplitVirtQueue.TryPop"/>.
/// </summary>
public readonly ref struct DescriptorChain
{
    internal DescriptorChain(ushort headIndex, ReadOnlySpan<ChainSegment> readable, ReadOnlySpan<ChainSegment> writable, ulong readableLength, ulong writableLength)
    {
        HeadIndex = headIndex;
        Readable = readable;
        Writable = writable;
        ReadableLength = readableLength;
        WritableLength = writableLength;
    }

    /// <summary>The descriptor index the driver made available; the id of the used element that completes the chain.</summary>
    public ushort HeadIndex { get; }

    /// <summary>Device-readable buffers, in chain order.</summary>
    public ReadOnlySpan<ChainSegment> Readable { get; }

    /// <summary>Device-writable buffers, in chain order.</summary>
    public ReadOnlySpan<ChainSegment> Writable { get; }

    /// <summary>Total bytes in <see cref="Readable"/>.</summary>
    public ulong ReadableLength { get; }

    /// <summary>Total bytes in <see cref="Writable"/>.</summary>
    public ulong WritableLength { get; }
}
