using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;
using KvmSharp.Memory;
using KvmSharp.Native;

namespace KvmSharp.Devices.Virtio;

/// <summary>
/// A virtio block device (virtio 1.x section 5.2, device ID 2) over a raw <see cref="BlockImage"/>, with one request
/// queue. Requests are served synchronously in <see cref="QueueNotify"/>, with the data moved by preadv/pwritev
/// straight between the image and guest RAM.
/// </summary>
/// <remarks>
/// <para>Requests are parsed as byte streams (2.6.4, "Message Framing"): the readable buffers hold the 16-byte
/// header (type, reserved, sector) and, for writes, discards and write-zeroes, the payload; the writable buffers
/// hold the data of a read or GET_ID, and their last byte is the status.</para>
/// <para>Answers: unknown request types, DISCARD/WRITE_ZEROES without their feature, and reserved or (for
/// DISCARD) unmap flags get VIRTIO_BLK_S_UNSUPP (5.2.6.2). Driver mistakes get VIRTIO_BLK_S_IOERR: a header
/// shorter than 16 bytes, a data length that is not a multiple of 512, a range past the capacity, read data in
/// device-readable buffers or write data in device-writable ones, too many or misshapen discard segments, and any
/// write, discard or write-zeroes to a read-only image (5.2.6.2: "A device MUST set the status byte to
/// VIRTIO_BLK_S_IOERR for a write request if the VIRTIO_BLK_F_RO feature if offered, and MUST NOT write any
/// data"; Linux's and QEMU's block layers also fail such writes with an I/O error). A chain with no writable byte
/// has nowhere to put a status: it is returned used with length 0 and counted. A FLUSH on a read-only image
/// succeeds (there is nothing to flush; OVMF sends them).</para>
/// <para>Used length (2.7.8.2: the device must have written at least len bytes from the start of the writable
/// buffers): the whole writable length when the data area was filled (a successful read or GET_ID), 1 when the
/// status byte is the only writable byte, and 0 otherwise, where only the status at the end was written.</para>
/// <para>Caching: with VIRTIO_BLK_F_FLUSH negotiated the cache is writeback (written data sits in the host page
/// cache until a FLUSH, which is an fdatasync); without it every write, discard and write-zeroes is followed by an
/// fdatasync before it completes, as 5.2.6.2 requires of a device that offered FLUSH to a driver that declined it.</para>
/// <para>Thread-safe (one lock); the request path allocates nothing.</para>
/// </remarks>
public sealed class VirtioBlock : IVirtioDevice
{
    /// <summary>Virtio device ID of a block device.</summary>
    public const ushort BlockDeviceId = 2;

    /// <summary>The largest request queue the device takes.</summary>
    public const ushort MaxRequestQueueSize = 256;

    /// <summary>seg_max: data segments per request; the header and the status take one descriptor each.</summary>
    public const uint MaxDataSegments = MaxRequestQueueSize - 2;

    /// <summary>Bytes of struct virtio_blk_config exposed: up to and including unused1 (the secure-erase and zoned fields are not offered).</summary>
    public const int ConfigLength = 60;

    /// <summary>VIRTIO_BLK_ID_BYTES: the GET_ID string length.</summary>
    public const int SerialLength = 20;

    /// <summary>max_discard_sectors and max_write_zeroes_sectors: just under 2 GiB per segment.</summary>
    public const uint MaxDiscardSectors = int.MaxValue / BlockImage.SectorSize;

    /// <summary>max_discard_seg and max_write_zeroes_seg.</summary>
    public const int MaxDiscardSegments = 32;

    /// <summary>discard_sector_alignment: 4 KiB, the host file systems' block size.</summary>
    public const uint DiscardSectorAlignment = 8;

    // Feature bits (5.2.3).
    public const ulong FeatureSegMax = 1UL << 2;      // VIRTIO_BLK_F_SEG_MAX
    public const ulong FeatureReadOnly = 1UL << 5;    // VIRTIO_BLK_F_RO
    public const ulong FeatureBlockSize = 1UL << 6;   // VIRTIO_BLK_F_BLK_SIZE
    public const ulong FeatureFlush = 1UL << 9;       // VIRTIO_BLK_F_FLUSH
    public const ulong FeatureDiscard = 1UL << 13;    // VIRTIO_BLK_F_DISCARD
    public const ulong FeatureWriteZeroes = 1UL << 14; // VIRTIO_BLK_F_WRITE_ZEROES

    // Request types (5.2.6).
    public const uint RequestIn = 0;          // VIRTIO_BLK_T_IN
    public const uint RequestOut = 1;         // VIRTIO_BLK_T_OUT
    public const uint RequestFlush = 4;       // VIRTIO_BLK_T_FLUSH
    public const uint RequestGetId = 8;       // VIRTIO_BLK_T_GET_ID
    public const uint RequestDiscard = 11;    // VIRTIO_BLK_T_DISCARD
    public const uint RequestWriteZeroes = 13; // VIRTIO_BLK_T_WRITE_ZEROES

    // Status values (5.2.6).
    public const byte StatusOk = 0;          // VIRTIO_BLK_S_OK
    public const byte StatusIoError = 1;     // VIRTIO_BLK_S_IOERR
    public const byte StatusUnsupported = 2; // VIRTIO_BLK_S_UNSUPP

    /// <summary>struct virtio_blk_discard_write_zeroes flags.unmap.</summary>
    public const uint DiscardFlagUnmap = 1;

    private const int RequestHeaderLength = 16;   // le32 type; le32 reserved; le64 sector;
    private const int DiscardSegmentLength = 16;  // le64 sector; le32 num_sectors; le32 flags;
    private const int ZeroChunkLength = 64 * 1024;
    private const int ZeroChunksPerWrite = 16;

    // Offsets in struct virtio_blk_config (5.2.4).
    private const int ConfigCapacity = 0;
    private const int ConfigSegMax = 12;
    private const int ConfigBlockSize = 20;
    private const int ConfigWriteback = 32;
    private const int ConfigMaxDiscardSectors = 36;
    private const int ConfigMaxDiscardSegments = 40;
    private const int ConfigDiscardAlignment = 44;
    private const int ConfigMaxWriteZeroesSectors = 48;
    private const int ConfigMaxWriteZeroesSegments = 52;
    private const int ConfigWriteZeroesMayUnmap = 56;

    private readonly GuestMemory _memory;
    private readonly BlockImage _image;
    private readonly Lock _lock = new();
    private readonly byte[] _config = new byte[ConfigLength];
    private readonly byte[] _serial = new byte[SerialLength];
    private readonly IoVectorList _vectors = new(MaxRequestQueueSize);
    private readonly IoVectorList _zeroVectors = new(ZeroChunksPerWrite);
    private readonly byte[] _zeroChunk = GC.AllocateArray<byte>(ZeroChunkLength, pinned: true);
    private readonly DiscardRange[] _ranges = new DiscardRange[MaxDiscardSegments];
    private readonly VirtQueueCounters _queueCounters = new();
    private readonly VirtioBlockCounters _counters = new();

    private SplitVirtQueue? _queue;
    private ulong _negotiated;
    private bool _disposed;
    private bool _quiesced;
    private bool _deferredKick;

    /// <param name="memory">Guest RAM the requests point into.</param>
    /// <param name="image">The disk; the device owns it from here on and closes it on <see cref="Dispose"/>.</param>
    /// <param name="serial">The GET_ID string: printable ASCII, at most 20 bytes (NUL-padded); none gives 20 NULs.</param>
    public VirtioBlock(GuestMemory memory, BlockImage image, string? serial = null)
    {
        ArgumentNullException.ThrowIfNull(memory);
        ArgumentNullException.ThrowIfNull(image);
        if (serial is not null)
        {
            foreach (char c in serial)
            {
                if (c < 0x20 || c > 0x7E)
                {
                    throw new ArgumentException("A disk serial must be printable ASCII.", nameof(serial));
                }
            }

            if (serial.Length > SerialLength)
            {
                throw new ArgumentException($"A disk serial has at most {SerialLength} characters; '{serial}' has {serial.Length}.", nameof(serial));
            }

            Encoding.ASCII.GetBytes(serial, _serial);
        }

        _memory = memory;
        _image = image;
        DeviceFeatures = VirtioFeatures.Version1 | VirtioFeatures.EventIndex | VirtioFeatures.IndirectDescriptors
            | FeatureSegMax | FeatureBlockSize | FeatureFlush
            | (image.IsReadOnly ? FeatureReadOnly : FeatureDiscard | FeatureWriteZeroes);
        BuildConfig();
    }

    public ushort DeviceId => BlockDeviceId;

    public ulong DeviceFeatures { get; }

    public int QueueCount => 1;

    public ushort MaxQueueSize => MaxRequestQueueSize;

    public int ConfigSize => ConfigLength;

    public BlockImage Image => _image;

    /// <summary>Requests answered, by outcome.</summary>
    public VirtioBlockCounters Counters => _counters;

    /// <summary>Chains popped, refused as malformed, ring errors and notifications of the request queue.</summary>
    public VirtQueueCounters QueueCounters => _queueCounters;

    public void ReadConfig(uint offset, Span<byte> data)
    {
        data.Clear();
        if (offset < ConfigLength)
        {
            var available = _config.AsSpan((int)offset);
            available[..Math.Min(available.Length, data.Length)].CopyTo(data);
        }
    }

    /// <summary>Every field is read-only here (writeback is writable only with VIRTIO_BLK_F_CONFIG_WCE, not offered).</summary>
    public void WriteConfig(uint offset, ReadOnlySpan<byte> data)
    {
    }

    public void Activate(ulong negotiatedFeatures, ReadOnlySpan<VirtQueueLayout> queues, IVirtioInterrupt interrupt)
    {
        ArgumentNullException.ThrowIfNull(interrupt);
        if (queues.Length != QueueCount)
        {
            throw new ArgumentException($"A virtio block device has {QueueCount} queue; the transport passed {queues.Length}.", nameof(queues));
        }

        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            _negotiated = negotiatedFeatures & DeviceFeatures;
            _queue = queues[0].Enabled
                ? new SplitVirtQueue(_memory, queues[0], _negotiated, 0, interrupt, _queueCounters)
                : null;
        }
    }

    public void QueueNotify(int queue)
    {
        lock (_lock)
        {
            if (queue != 0 || _queue is not { } requests)
            {
                return;
            }

            if (_quiesced)
            {
                _deferredKick = true;
                return;
            }

            do
            {
                requests.DisableNotifications();
                while (requests.TryPop(out var chain))
                {
                    uint used = Process(chain);
                    requests.AddUsed(chain.HeadIndex, used);
                }
            }
            while (requests.EnableNotifications());

            requests.NotifyIfNeeded();
        }
    }

    public void Reset()
    {
        lock (_lock)
        {
            _queue = null;
            _negotiated = 0;
        }
    }

    /// <summary>
    /// Stops taking requests, for a pause or a snapshot. Requests are served whole inside <see cref="QueueNotify"/>
    /// under the device's lock, so once this returns every request popped so far is completed (used ring written,
    /// interrupt raised). A kick while quiesced is recorded and served by <see cref="Unquiesce"/>.
    /// </summary>
    public void Quiesce()
    {
        lock (_lock)
        {
            _quiesced = true;
        }
    }

    /// <summary>Takes requests again, serving the queue if it was kicked while quiesced.</summary>
    public void Unquiesce()
    {
        bool kick;
        lock (_lock)
        {
            kick = _quiesced && _deferredKick;
            _quiesced = false;
            _deferredKick = false;
        }

        if (kick)
        {
            QueueNotify(0);
        }
    }

    public VirtioBlockState Save()
    {
        lock (_lock)
        {
            return new VirtioBlockState(_queue?.Save());
        }
    }

    /// <summary>Restores queue indices from <see cref="Save"/>; call after <see cref="Activate"/> with the saved features and layout.</summary>
    public void Restore(VirtioBlockState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        lock (_lock)
        {
            if (state.RequestQueue is { } saved)
            {
                if (_queue is null)
                {
                    throw new InvalidOperationException("The saved block device had an active request queue: activate the device with the saved layout before restoring it.");
                }

                _queue.Restore(saved);
            }
        }
    }

    public void Dispose()
    {
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            _queue = null;
            _image.Dispose();
        }
    }

    private void BuildConfig()
    {
        var config = _config.AsSpan();
        BinaryPrimitives.WriteUInt64LittleEndian(config[ConfigCapacity..], _image.SectorCount);
        BinaryPrimitives.WriteUInt32LittleEndian(config[ConfigSegMax..], MaxDataSegments);
        BinaryPrimitives.WriteUInt32LittleEndian(config[ConfigBlockSize..], BlockImage.SectorSize);

        // Meaningful only with CONFIG_WCE; kept consistent with FLUSH, which tells the driver the cache is writeback.
        config[ConfigWriteback] = 1;
        if (!_image.IsReadOnly)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(config[ConfigMaxDiscardSectors..], MaxDiscardSectors);
            BinaryPrimitives.WriteUInt32LittleEndian(config[ConfigMaxDiscardSegments..], MaxDiscardSegments);
            BinaryPrimitives.WriteUInt32LittleEndian(config[ConfigDiscardAlignment..], DiscardSectorAlignment);
            BinaryPrimitives.WriteUInt32LittleEndian(config[ConfigMaxWriteZeroesSectors..], MaxDiscardSectors);
            BinaryPrimitives.WriteUInt32LittleEndian(config[ConfigMaxWriteZeroesSegments..], MaxDiscardSegments);
            config[ConfigWriteZeroesMayUnmap] = 1;
        }
    }

    /// <summary>Serves one request and writes its status; returns the used length.</summary>
    private uint Process(in DescriptorChain chain)
    {
        if (chain.WritableLength == 0)
        {
            _counters.CountMissingStatus();
            return 0;
        }

        // The status is the last writable byte; the writable bytes before it are the data area.
        ulong dataLength = chain.WritableLength - 1;
        bool dataWritten = false;
        byte status;
        Span<byte> header = stackalloc byte[RequestHeaderLength];
        if (chain.ReadableLength < RequestHeaderLength || !ChainBuffers.TryRead(_memory, chain.Readable, 0, header))
        {
            status = BadRequest();
        }
        else
        {
            uint type = BinaryPrimitives.ReadUInt32LittleEndian(header);
            ulong sector = BinaryPrimitives.ReadUInt64LittleEndian(header[8..]);
            status = type switch
            {
                RequestIn => Read(chain, sector, dataLength, out dataWritten),
                RequestOut => Write(chain, sector, dataLength),
                RequestFlush => Flush(),
                RequestGetId => GetId(chain, dataLength, out dataWritten),
                RequestDiscard => DiscardOrWriteZeroes(chain, discard: true),
                RequestWriteZeroes => DiscardOrWriteZeroes(chain, discard: false),
                _ => Unsupported(),
            };
        }

        ChainBuffers.TryWrite(_memory, chain.Writable, dataLength, new ReadOnlySpan<byte>(in status));
        if (dataWritten || dataLength == 0)
        {
            return (uint)Math.Min(chain.WritableLength, uint.MaxValue);
        }

        return 0;
    }

    private byte Read(in DescriptorChain chain, ulong sector, ulong dataLength, out bool dataWritten)
    {
        dataWritten = false;

        // Anything readable after the header would be read data in device-readable buffers, which must not be written.
        if (chain.ReadableLength != RequestHeaderLength || !IsSectorRange(sector, dataLength))
        {
            return BadRequest();
        }

        _vectors.Clear();
        if (!ChainBuffers.TryAddVectors(_memory, chain.Writable, 0, dataLength, _vectors))
        {
            return BadRequest();
        }

        long read = FileIo.ReadVectored(_image.Descriptor, _vectors, (long)(sector * BlockImage.SectorSize));
        _memory.MarkDirtyHost(_vectors, _vectors.TotalLength); // all of them: even a short read may have written some

        if (read != (long)dataLength)
        {
            return HostError();
        }

        dataWritten = true;
        _counters.CountRead();
        return StatusOk;
    }

    private byte Write(in DescriptorChain chain, ulong sector, ulong writableDataLength)
    {
        ulong dataLength = chain.ReadableLength - RequestHeaderLength;

        // Write data must be device-readable: writable bytes besides the status mean the driver put data there.
        if (_image.IsReadOnly || writableDataLength != 0 || !IsSectorRange(sector, dataLength))
        {
            return BadRequest();
        }

        _vectors.Clear();
        if (!ChainBuffers.TryAddVectors(_memory, chain.Readable, RequestHeaderLength, dataLength, _vectors))
        {
            return BadRequest();
        }

        long written = FileIo.WriteVectored(_image.Descriptor, _vectors, (long)(sector * BlockImage.SectorSize));
        if (written != (long)dataLength || !SyncIfWritethrough())
        {
            return HostError();
        }

        _counters.CountWrite();
        return StatusOk;
    }

    private byte Flush()
    {
        if (!_image.IsReadOnly && !DataSync())
        {
            return HostError();
        }

        _counters.CountFlush();
        return StatusOk;
    }

    /// <summary>
    /// 5.2.6.2: when FLUSH was offered but the driver negotiated neither FLUSH nor CONFIG_WCE, a completed write is
    /// stable, so it must reach the disk before its completion is reported: the cache is writethrough.
    /// </summary>
    private bool SyncIfWritethrough() => (_negotiated & FeatureFlush) != 0 || DataSync();

    private bool DataSync()
    {
        _counters.CountDataSync();
        return FileIo.DataSync(_image.Descriptor) == 0;
    }

    private byte GetId(in DescriptorChain chain, ulong dataLength, out bool dataWritten)
    {
        // The ID is NUL-padded to the data area's length (a 20-byte area, from Linux): the whole area is written.
        int idBytes = (int)Math.Min(dataLength, SerialLength);
        dataWritten = ChainBuffers.TryWrite(_memory, chain.Writable, 0, _serial.AsSpan(0, idBytes))
            && ChainBuffers.TryZero(_memory, chain.Writable, (ulong)idBytes, dataLength - (ulong)idBytes);
        if (!dataWritten)
        {
            return BadRequest();
        }

        _counters.CountGetId();
        return StatusOk;
    }

    private byte DiscardOrWriteZeroes(in DescriptorChain chain, bool discard)
    {
        if ((_negotiated & (discard ? FeatureDiscard : FeatureWriteZeroes)) == 0)
        {
            return Unsupported();
        }

        ulong payload = chain.ReadableLength - RequestHeaderLength;
        if (_image.IsReadOnly || payload == 0 || payload % DiscardSegmentLength != 0 || payload / DiscardSegmentLength > MaxDiscardSegments)
        {
            return BadRequest();
        }

        // Copy every segment out first, then judge the copies, then act on them: the guest cannot change a segment
        // between its check and its use.
        int count = (int)(payload / DiscardSegmentLength);
        Span<byte> raw = stackalloc byte[DiscardSegmentLength];
        bool unsupported = false;
        bool invalid = false;
        for (int i = 0; i < count; i++)
        {
            if (!ChainBuffers.TryRead(_memory, chain.Readable, RequestHeaderLength + ((ulong)i * DiscardSegmentLength), raw))
            {
                return BadRequest();
            }

            var range = new DiscardRange(
                BinaryPrimitives.ReadUInt64LittleEndian(raw),
                BinaryPrimitives.ReadUInt32LittleEndian(raw[8..]),
                BinaryPrimitives.ReadUInt32LittleEndian(raw[12..]));
            _ranges[i] = range;

            // 5.2.6.2: unknown flags, and unmap on a discard, are UNSUPP whatever else is wrong.
            if ((range.Flags & ~DiscardFlagUnmap) != 0 || (discard && (range.Flags & DiscardFlagUnmap) != 0))
            {
                unsupported = true;
            }
            else if (range.SectorCount > MaxDiscardSectors || !IsSectorRange(range.Sector, (ulong)range.SectorCount * BlockImage.SectorSize))
            {
                invalid = true;
            }
        }

        if (unsupported)
        {
            return Unsupported();
        }

        if (invalid)
        {
            return BadRequest();
        }

        for (int i = 0; i < count; i++)
        {
            var range = _ranges[i];
            long offset = (long)(range.Sector * BlockImage.SectorSize);
            long length = (long)range.SectorCount * BlockImage.SectorSize;
            if (length == 0)
            {
                continue;
            }

            int errno = discard ? Discard(offset, length) : WriteZeroes(offset, length, (range.Flags & DiscardFlagUnmap) != 0);
            if (errno != 0)
            {
                return HostError();
            }
        }

        if (!SyncIfWritethrough())
        {
            return HostError();
        }

        if (discard)
        {
            _counters.CountDiscard();
        }
        else
        {
            _counters.CountWriteZeroes();
        }

        return StatusOk;
    }

    /// <summary>Deallocates the range (a hole reads as zeroes). Discarding is advisory (5.2.6.2 "MAY"): a file system that cannot punch holes is not an error.</summary>
    private int Discard(long offset, long length)
    {
        int errno = FileIo.Allocate(_image.Descriptor, FallocateMode.PunchHole | FallocateMode.KeepSize, offset, length);
        return IsUnsupportedByFileSystem(errno) ? 0 : errno;
    }

    /// <summary>Zeroes the range: a hole when unmapping is allowed, else a zeroed extent, else written zeroes. Never changes the image's size.</summary>
    private int WriteZeroes(long offset, long length, bool unmap)
    {
        int errno;
        if (unmap)
        {
            errno = FileIo.Allocate(_image.Descriptor, FallocateMode.PunchHole | FallocateMode.KeepSize, offset, length);
            if (!IsUnsupportedByFileSystem(errno))
            {
                return errno;
            }
        }

        errno = FileIo.Allocate(_image.Descriptor, FallocateMode.ZeroRange | FallocateMode.KeepSize, offset, length);
        if (!IsUnsupportedByFileSystem(errno))
        {
            return errno;
        }

        return WriteZeroBuffers(offset, length);
    }

    private unsafe int WriteZeroBuffers(long offset, long length)
    {
        // SAFETY: _zeroChunk is pinned (pinned object heap) and lives as long as the device; pwritev only reads it.
        nint zeroes = (nint)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_zeroChunk));
        while (length > 0)
        {
            _zeroVectors.Clear();
            long batch = 0;
            while (batch < length && _zeroVectors.Count < ZeroChunksPerWrite)
            {
                long chunk = Math.Min(ZeroChunkLength, length - batch);
                _zeroVectors.TryAdd(zeroes, (ulong)chunk);
                batch += chunk;
            }

            long written = FileIo.WriteVectored(_image.Descriptor, _zeroVectors, offset);
            if (written < 0)
            {
                return (int)-written;
            }

            if (written != batch)
            {
                return Errno.EIO;
            }

            offset += batch;
            length -= batch;
        }

        return 0;
    }

    private static bool IsUnsupportedByFileSystem(int errno) => errno == Errno.EOPNOTSUPP || errno == Errno.ENOSYS;

    /// <summary>True when <paramref name="length"/> is whole sectors and [sector, +length) lies inside the image (overflow-safe).</summary>
    private bool IsSectorRange(ulong sector, ulong length)
    {
        ulong capacity = _image.SectorCount;
        return length % BlockImage.SectorSize == 0
            && sector <= capacity
            && length / BlockImage.SectorSize <= capacity - sector;
    }

    private byte BadRequest()
    {
        _counters.CountBadRequest();
        return StatusIoError;
    }

    private byte HostError()
    {
        _counters.CountHostError();
        return StatusIoError;
    }

    private byte Unsupported()
    {
        _counters.CountUnsupported();
        return StatusUnsupported;
    }

    private readonly record struct DiscardRange(ulong Sector, uint SectorCount, uint Flags);
}
