namespace KvmSharp.Devices.Virtio;

/// <summary>
/// Why a split virtqueue refused a descriptor chain or stopped. Chain errors (the first group) cost the driver one
/// chain, returned used with length 0; ring errors (the second group) leave the ring unusable, so the queue stops
/// and the device asks for a reset (DEVICE_NEEDS_RESET).
/// </summary>
public enum ChainError
{
    None,

    /// <summary>A buffer descriptor's [addr, addr+len) is not inside one guest RAM region (or overflows).</summary>
    BufferOutsideMemory,

    /// <summary>More descriptors were followed in one table than the table holds: the NEXT links loop.</summary>
    DescriptorLoop,

    /// <summary>The chain has more buffers than the queue size (possible with an indirect table after direct descriptors).</summary>
    ChainTooLong,

    /// <summary>A NEXT link names a descriptor beyond the end of its table.</summary>
    NextOutOfRange,

    /// <summary>VIRTQ_DESC_F_INDIRECT without VIRTIO_F_INDIRECT_DESC negotiated.</summary>
    IndirectNotNegotiated,

    /// <summary>VIRTQ_DESC_F_INDIRECT together with VIRTQ_DESC_F_NEXT.</summary>
    IndirectWithNext,

    /// <summary>An indirect descriptor inside an indirect table.</summary>
    NestedIndirect,

    /// <summary>An indirect table whose length is zero, not a multiple of 16, or more entries than the queue size.</summary>
    IndirectTableLength,

    /// <summary>An indirect table that is not inside one guest RAM region.</summary>
    IndirectTableOutsideMemory,

    /// <summary>A device-readable descriptor after a device-writable one.</summary>
    ReadableAfterWritable,

    /// <summary>Ring error: the available ring names a head descriptor index not below the queue size.</summary>
    HeadOutOfRange,

    /// <summary>Ring error: the available index ran more than the queue size ahead of the device.</summary>
    AvailableIndexJump,

    /// <summary>Ring error: the queue size is not a power of two in 1..32768, or a ring is misaligned or not inside guest RAM.</summary>
    InvalidLayout,
}
