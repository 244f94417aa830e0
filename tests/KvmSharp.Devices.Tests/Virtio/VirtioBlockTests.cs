using System.Buffers.Binary;
using System.Text;
using KvmSharp.Devices.Virtio;

namespace KvmSharp.Devices.Tests.Virtio;

/// <summary>
/// The virtio block device's answers (virtio 1.x 5.2): bytes on the image, bytes in guest RAM, status bytes and used
/// lengths for good requests; the spec's status for every bad one, counted, with nothing written where it must not be.
/// </summary>
[Collection(VirtioTestCollection.Name)]
public sealed class VirtioBlockTests : IDisposable
{
    private const int Sector = 512;
    private readonly BlockRig _rig = new();

    public void Dispose() => _rig.Dispose();

    // ---- Identity, features and configuration space. ----

    [Fact]
    public void Identity_IsABlockDeviceWithOneQueue()
    {
        Assert.Equal(2, _rig.Device.DeviceId);
        Assert.Equal(1, _rig.Device.QueueCount);
        Assert.Equal(256, _rig.Device.MaxQueueSize);
        Assert.Equal(60, _rig.Device.ConfigSize);
    }

    [Fact]
    public void Features_ReadWriteImage()
    {
        // VERSION_1 (32), RING_EVENT_IDX (29), RING_INDIRECT_DESC (28), WRITE_ZEROES (14), DISCARD (13), FLUSH (9), BLK_SIZE (6), SEG_MAX (2).
        Assert.Equal(0x1_3000_6244UL, _rig.Device.DeviceFeatures);
    }

    [Fact]
    public void Features_ReadOnlyImage_OfferRoAndNoDiscard()
    {
        using var rig = new BlockRig(readOnly: true);

        // VERSION_1, RING_EVENT_IDX, RING_INDIRECT_DESC, FLUSH, BLK_SIZE, RO (5), SEG_MAX.
        Assert.Equal(0x1_3000_0264UL, rig.Device.DeviceFeatures);
    }

    [Fact]
    public void Config_HasTheVirtioBlkConfigLayout()
    {
        var config = new byte[60];
        _rig.Device.ReadConfig(0, config);

        Assert.Equal(128UL, BinaryPrimitives.ReadUInt64LittleEndian(config.AsSpan(0)));   // capacity
        Assert.Equal(0u, BinaryPrimitives.ReadUInt32LittleEndian(config.AsSpan(8)));      // size_max (not offered)
        Assert.Equal(254u, BinaryPrimitives.ReadUInt32LittleEndian(config.AsSpan(12)));   // seg_max
        Assert.Equal(0u, BinaryPrimitives.ReadUInt32LittleEndian(config.AsSpan(16)));     // geometry (not offered)
        Assert.Equal(512u, BinaryPrimitives.ReadUInt32LittleEndian(config.AsSpan(20)));   // blk_size
        Assert.Equal(0UL, BinaryPrimitives.ReadUInt64LittleEndian(config.AsSpan(24)));    // topology (not offered)
        Assert.Equal(1, config[32]);                                                       // writeback
        Assert.Equal(0, config[33]);                                                       // unused0
        Assert.Equal(0, BinaryPrimitives.ReadUInt16LittleEndian(config.AsSpan(34)));      // num_queues (no MQ)
        Assert.Equal(4194303u, BinaryPrimitives.ReadUInt32LittleEndian(config.AsSpan(36))); // max_discard_sectors
        Assert.Equal(32u, BinaryPrimitives.ReadUInt32LittleEndian(config.AsSpan(40)));    // max_discard_seg
        Assert.Equal(8u, BinaryPrimitives.ReadUInt32LittleEndian(config.AsSpan(44)));     // discard_sector_alignment
        Assert.Equal(4194303u, BinaryPrimitives.ReadUInt32LittleEndian(config.AsSpan(48))); // max_write_zeroes_sectors
        Assert.Equal(32u, BinaryPrimitives.ReadUInt32LittleEndian(config.AsSpan(52)));    // max_write_zeroes_seg
        Assert.Equal(1, config[56]);                                                       // write_zeroes_may_unmap
        Assert.Equal([0, 0, 0], config[57..60]);                                           // unused1
    }

    [Fact]
    public void Config_PartialAndOutOfRangeReads()
    {
        var capacityHigh = new byte[4];
        var straddling = new byte[8];
        var beyond = new byte[4] { 1, 2, 3, 4 };

        _rig.Device.ReadConfig(4, capacityHigh);
        _rig.Device.ReadConfig(56, straddling);
        _rig.Device.ReadConfig(60, beyond);

        Assert.Equal([0, 0, 0, 0], capacityHigh);
        Assert.Equal([1, 0, 0, 0, 0, 0, 0, 0], straddling);
        Assert.Equal([0, 0, 0, 0], beyond);
    }

    [Fact]
    public void Config_WritesAreIgnored()
    {
        _rig.Device.WriteConfig(0, [0xFF, 0xFF, 0xFF, 0xFF]);
        _rig.Device.WriteConfig(32, [0]);
        var config = new byte[60];
        _rig.Device.ReadConfig(0, config);

        Assert.Equal(128UL, BinaryPrimitives.ReadUInt64LittleEndian(config));
        Assert.Equal(1, config[32]);
    }

    [Fact]
    public void Config_ReadOnlyImage_HasNoDiscardLimits()
    {
        using var rig = new BlockRig(readOnly: true);
        var config = new byte[60];
        rig.Device.ReadConfig(0, config);

        Assert.All(config[36..60], b => Assert.Equal(0, b));
    }

    [Fact]
    public void Quiesced_AKickIsHeldUntilUnquiesce_ThenServed()
    {
        ulong header = _rig.Header(VirtioBlock.RequestIn, 3);
        ulong data = _rig.Filled(Sector);
        ulong status = _rig.Status();
        _rig.Device.Quiesce();

        _rig.Driver.AddChain(DriverBuffer.Out(header, 16), DriverBuffer.In(data, Sector), DriverBuffer.In(status, 1));
        _rig.Device.QueueNotify(0);
        Assert.Empty(_rig.Driver.TakeUsed());
        Assert.Equal(0xEE, _rig.ReadByte(status));
        Assert.Equal(0, _rig.Device.Counters.Reads);

        _rig.Device.Unquiesce();

        var used = Assert.Single(_rig.Driver.TakeUsed());
        Assert.Equal(513u, used.Length);
        Assert.Equal(VirtioBlock.StatusOk, _rig.ReadByte(status));
        Assert.Equal(_rig.OriginalImage[(3 * Sector)..(4 * Sector)], _rig.ReadBytes(data, Sector));
    }

    [Fact]
    public void DirtyLog_ARead_MarksItsDataPagesTheStatusAndTheUsedRing_AndNothingElse()
    {
        ulong header = _rig.Header(VirtioBlock.RequestIn, 3);
        ulong data = _rig.Filled(2 * Sector);
        ulong status = _rig.Status();
        _rig.Driver.AddChain(DriverBuffer.Out(header, 16), DriverBuffer.In(data, 2 * Sector), DriverBuffer.In(status, 1));
        _rig.Memory.StartDirtyLog(); // after the driver's own writes

        _rig.Device.QueueNotify(0);

        Assert.Single(_rig.Driver.TakeUsed());
        var bitmaps = _rig.Memory.CreateDirtyBitmaps();
        _rig.Memory.CollectDirty(bitmaps);
        ulong[] expected = [.. new[] { data & ~0xFFFUL, (data + (2 * Sector) - 1) & ~0xFFFUL, status & ~0xFFFUL, _rig.Driver.UsedRing & ~0xFFFUL, (_rig.Driver.End - 1) & ~0xFFFUL }.Distinct().Order()];
        Assert.Equal(expected, Assert.Single(bitmaps).DirtyPageAddresses());
    }

    // ---- Reads. ----

    [Fact]
    public void Read_TwoSectors_CopiesTheImageIntoGuestRam()
    {
        ulong header = _rig.Header(VirtioBlock.RequestIn, 3);
        ulong first = _rig.Filled(Sector);
        ulong second = _rig.Filled(Sector);
        ulong status = _rig.Status();

        var used = _rig.Submit(DriverBuffer.Out(header, 16), DriverBuffer.In(first, Sector), DriverBuffer.In(second, Sector), DriverBuffer.In(status, 1));

        Assert.Equal(VirtioBlock.StatusOk, _rig.ReadByte(status));
        Assert.Equal(1025u, used.Length);
        Assert.Equal(_rig.OriginalImage[(3 * Sector)..(4 * Sector)], _rig.ReadBytes(first, Sector));
        Assert.Equal(_rig.OriginalImage[(4 * Sector)..(5 * Sector)], _rig.ReadBytes(second, Sector));
        Assert.Equal(1, _rig.Device.Counters.Reads);
    }

    [Fact]
    public void Read_WithOddFraming_HeaderSplitAndStatusSharingTheDataBuffer()
    {
        ulong header = _rig.Header(VirtioBlock.RequestIn, 7);
        ulong tail = _rig.Filled(Sector - 100 + 1);
        ulong head = _rig.Filled(100);

        var used = _rig.Submit(
            DriverBuffer.Out(header, 5),
            DriverBuffer.Out(header + 5, 11),
            DriverBuffer.In(head, 100),
            DriverBuffer.In(tail, Sector - 100 + 1));

        Assert.Equal(513u, used.Length);
        Assert.Equal(VirtioBlock.StatusOk, _rig.ReadByte(tail + Sector - 100));
        byte[] read = [.. _rig.ReadBytes(head, 100), .. _rig.ReadBytes(tail, Sector - 100)];
        Assert.Equal(_rig.OriginalImage[(7 * Sector)..(8 * Sector)], read);
    }

    [Fact]
    public void Read_LastSectorOfTheDisk_Succeeds()
    {
        ulong data = _rig.Filled(Sector);
        ulong status = _rig.Status();

        _rig.Submit(DriverBuffer.Out(_rig.Header(VirtioBlock.RequestIn, 127), 16), DriverBuffer.In(data, Sector), DriverBuffer.In(status, 1));

        Assert.Equal(VirtioBlock.StatusOk, _rig.ReadByte(status));
        Assert.Equal(_rig.OriginalImage[(127 * Sector)..], _rig.ReadBytes(data, Sector));
    }

    [Fact]
    public void Read_ThroughAnIndirectTable()
    {
        ulong data = _rig.Filled(2 * Sector);
        ulong status = _rig.Status();

        var used = _rig.SubmitIndirect(DriverBuffer.Out(_rig.Header(VirtioBlock.RequestIn, 0), 16), DriverBuffer.In(data, 2 * Sector), DriverBuffer.In(status, 1));

        Assert.Equal(1025u, used.Length);
        Assert.Equal(VirtioBlock.StatusOk, _rig.ReadByte(status));
        Assert.Equal(_rig.OriginalImage[..(2 * Sector)], _rig.ReadBytes(data, 2 * Sector));
    }

    // ---- Writes. ----

    [Fact]
    public void Write_TwoSectors_ChangesExactlyThoseBytesOfTheImage()
    {
        byte[] payload = BlockRig.Pattern(2 * Sector, seed: 99);
        ulong status = _rig.Status();

        var used = _rig.Submit(DriverBuffer.Out(_rig.Header(VirtioBlock.RequestOut, 10), 16), DriverBuffer.Out(_rig.Buffer(payload), 2 * Sector), DriverBuffer.In(status, 1));

        Assert.Equal(VirtioBlock.StatusOk, _rig.ReadByte(status));
        Assert.Equal(1u, used.Length);
        byte[] expected = [.. _rig.OriginalImage];
        payload.CopyTo(expected, 10 * Sector);
        Assert.Equal(expected, _rig.ImageBytes());
        Assert.Equal(1, _rig.Device.Counters.Writes);
    }

    [Fact]
    public void Write_DataInManySmallBuffers_IsGathered()
    {
        byte[] payload = BlockRig.Pattern(Sector, seed: 5);
        var chain = new List<DriverBuffer> { DriverBuffer.Out(_rig.Header(VirtioBlock.RequestOut, 0), 16) };
        for (int i = 0; i < Sector; i += 64)
        {
            chain.Add(DriverBuffer.Out(_rig.Buffer(payload[i..(i + 64)]), 64));
        }

        ulong status = _rig.Status();
        chain.Add(DriverBuffer.In(status, 1));

        _rig.Submit([.. chain]);

        Assert.Equal(VirtioBlock.StatusOk, _rig.ReadByte(status));
        Assert.Equal(payload, _rig.ImageBytes()[..Sector]);
    }

    [Fact]
    public void Write_HeaderAndDataInOneDescriptor_IsAccepted()
    {
        byte[] request = new byte[16 + Sector];
        BinaryPrimitives.WriteUInt32LittleEndian(request, VirtioBlock.RequestOut);
        BinaryPrimitives.WriteUInt64LittleEndian(request.AsSpan(8), 127);
        BlockRig.Pattern(Sector, seed: 8).CopyTo(request, 16);
        ulong status = _rig.Status();

        _rig.Submit(DriverBuffer.Out(_rig.Buffer(request), (uint)request.Length), DriverBuffer.In(status, 1));

        Assert.Equal(VirtioBlock.StatusOk, _rig.ReadByte(status));
        Assert.Equal(request[16..], _rig.ImageBytes()[(127 * Sector)..]);
    }

    [Fact]
    public void Flush_Succeeds()
    {
        ulong status = _rig.Status();

        var used = _rig.Submit(DriverBuffer.Out(_rig.Header(VirtioBlock.RequestFlush, 0), 16), DriverBuffer.In(status, 1));

        Assert.Equal(VirtioBlock.StatusOk, _rig.ReadByte(status));
        Assert.Equal(1u, used.Length);
        Assert.Equal(1, _rig.Device.Counters.Flushes);
    }

    [Fact]
    public void Write_WithFlushNegotiated_IsCachedUntilAFlush()
    {
        _rig.Submit(DriverBuffer.Out(_rig.Header(VirtioBlock.RequestOut, 0), 16), DriverBuffer.Out(_rig.Filled(Sector), Sector), DriverBuffer.In(_rig.Status(), 1));
        long afterWrite = _rig.Device.Counters.DataSyncs;
        _rig.Submit(DriverBuffer.Out(_rig.Header(VirtioBlock.RequestFlush, 0), 16), DriverBuffer.In(_rig.Status(), 1));

        Assert.Equal(0, afterWrite);
        Assert.Equal(1, _rig.Device.Counters.DataSyncs);
    }

    [Fact]
    public void Write_WithoutFlushNegotiated_IsSyncedBeforeItCompletes()
    {
        using var rig = new BlockRig(features: VirtioFeatures.Version1 | VirtioBlock.FeatureWriteZeroes);
        ulong status = rig.Status();

        rig.Submit(DriverBuffer.Out(rig.Header(VirtioBlock.RequestOut, 0), 16), DriverBuffer.Out(rig.Filled(Sector), Sector), DriverBuffer.In(status, 1));
        rig.Submit(DriverBuffer.Out(rig.Header(VirtioBlock.RequestWriteZeroes, 0), 16), DriverBuffer.Out(rig.Segments((4, 4, 0)), 16), DriverBuffer.In(rig.Status(), 1));

        Assert.Equal(VirtioBlock.StatusOk, rig.ReadByte(status));
        Assert.Equal(2, rig.Device.Counters.DataSyncs);
    }

    // ---- GET_ID. ----

    [Fact]
    public void GetId_IsTheSerialNulPaddedTo20Bytes()
    {
        using var rig = new BlockRig(serial: "kvmsharp-disk-01");
        ulong id = rig.Filled(20);
        ulong status = rig.Status();

        var used = rig.Submit(DriverBuffer.Out(rig.Header(VirtioBlock.RequestGetId, 0), 16), DriverBuffer.In(id, 20), DriverBuffer.In(status, 1));

        Assert.Equal(VirtioBlock.StatusOk, rig.ReadByte(status));
        Assert.Equal(21u, used.Length);
        Assert.Equal("kvmsharp-disk-01\0\0\0\0", Encoding.ASCII.GetString(rig.ReadBytes(id, 20)));
    }

    [Fact]
    public void GetId_A20CharacterSerialHasNoTerminator()
    {
        using var rig = new BlockRig(serial: "ABCDEFGHIJKLMNOPQRST");
        ulong id = rig.Filled(20);
        ulong status = rig.Status();

        rig.Submit(DriverBuffer.Out(rig.Header(VirtioBlock.RequestGetId, 0), 16), DriverBuffer.In(id, 20), DriverBuffer.In(status, 1));

        Assert.Equal("ABCDEFGHIJKLMNOPQRST", Encoding.ASCII.GetString(rig.ReadBytes(id, 20)));
    }

    [Fact]
    public void GetId_IntoALargerBuffer_PadsTheWholeBufferWithNuls()
    {
        using var rig = new BlockRig(serial: "disk");
        ulong id = rig.Filled(64);
        ulong status = rig.Status();

        var used = rig.Submit(DriverBuffer.Out(rig.Header(VirtioBlock.RequestGetId, 0), 16), DriverBuffer.In(id, 64), DriverBuffer.In(status, 1));

        Assert.Equal(65u, used.Length);
        Assert.Equal([.. "disk"u8, .. new byte[60]], rig.ReadBytes(id, 64));
        Assert.Equal(VirtioBlock.StatusOk, rig.ReadByte(status));
    }

    [Fact]
    public void GetId_WithoutASerial_IsAllNuls()
    {
        ulong id = _rig.Filled(20);
        ulong status = _rig.Status();

        _rig.Submit(DriverBuffer.Out(_rig.Header(VirtioBlock.RequestGetId, 0), 16), DriverBuffer.In(id, 20), DriverBuffer.In(status, 1));

        Assert.Equal(new byte[20], _rig.ReadBytes(id, 20));
    }

    [Theory]
    [InlineData("a-serial-that-is-too-long")]
    [InlineData("tab\there")]
    [InlineData("caf\u00e9")]
    public void Serial_ThatIsNotShortPrintableAscii_IsRefused(string serial)
    {
        string path = _rig.ImagePath + ".serial";
        File.WriteAllBytes(path, new byte[Sector]);
        using var image = BlockImage.Open(path, readOnly: true);

        Assert.Throws<ArgumentException>(() => new VirtioBlock(_rig.Memory, image, serial));
    }

    // ---- Discard and write zeroes. ----

    [Fact]
    public void Discard_PunchesTheRangeAndLeavesTheRestAndTheSize()
    {
        ulong status = _rig.Status();

        var used = _rig.Submit(DriverBuffer.Out(_rig.Header(VirtioBlock.RequestDiscard, 0), 16), DriverBuffer.Out(_rig.Segments((8, 8, 0), (32, 16, 0)), 32), DriverBuffer.In(status, 1));

        Assert.Equal(VirtioBlock.StatusOk, _rig.ReadByte(status));
        Assert.Equal(1u, used.Length);
        byte[] expected = [.. _rig.OriginalImage];
        Array.Clear(expected, 8 * Sector, 8 * Sector);
        Array.Clear(expected, 32 * Sector, 16 * Sector);
        Assert.Equal(expected, _rig.ImageBytes());
        Assert.Equal(1, _rig.Device.Counters.Discards);
    }

    [Theory]
    [InlineData(0u)]
    [InlineData(VirtioBlock.DiscardFlagUnmap)]
    public void WriteZeroes_ZeroesTheRange_WithOrWithoutUnmap(uint flags)
    {
        ulong status = _rig.Status();

        _rig.Submit(DriverBuffer.Out(_rig.Header(VirtioBlock.RequestWriteZeroes, 0), 16), DriverBuffer.Out(_rig.Segments((3, 5, flags)), 16), DriverBuffer.In(status, 1));

        Assert.Equal(VirtioBlock.StatusOk, _rig.ReadByte(status));
        byte[] expected = [.. _rig.OriginalImage];
        Array.Clear(expected, 3 * Sector, 5 * Sector);
        Assert.Equal(expected, _rig.ImageBytes());
        Assert.Equal(1, _rig.Device.Counters.WriteZeroes);
    }

    [Fact]
    public void WriteZeroes_UpToTheLastSector_NeverGrowsTheImage()
    {
        ulong status = _rig.Status();

        _rig.Submit(DriverBuffer.Out(_rig.Header(VirtioBlock.RequestWriteZeroes, 0), 16), DriverBuffer.Out(_rig.Segments((120, 8, 0)), 16), DriverBuffer.In(status, 1));

        Assert.Equal(VirtioBlock.StatusOk, _rig.ReadByte(status));
        Assert.Equal(128 * Sector, _rig.ImageBytes().Length);
        Assert.Equal(new byte[8 * Sector], _rig.ImageBytes()[(120 * Sector)..]);
    }

    [Fact]
    public void Discard_WithTheUnmapFlag_IsUnsupported()
    {
        AssertAnswer(VirtioBlock.StatusUnsupported, VirtioBlock.RequestDiscard, _rig.Segments((0, 8, VirtioBlock.DiscardFlagUnmap)), 16);
        Assert.Equal(1, _rig.Device.Counters.Unsupported);
    }

    [Theory]
    [InlineData(VirtioBlock.RequestDiscard, 2u)]
    [InlineData(VirtioBlock.RequestWriteZeroes, 0x8000_0000u)]
    [InlineData(VirtioBlock.RequestWriteZeroes, 3u)]
    public void DiscardOrWriteZeroes_WithReservedFlags_IsUnsupported(uint type, uint flags)
    {
        AssertAnswer(VirtioBlock.StatusUnsupported, type, _rig.Segments((0, 8, flags)), 16);
    }

    [Fact]
    public void Discard_AReservedFlagInALaterSegment_WinsOverARangeError()
    {
        AssertAnswer(VirtioBlock.StatusUnsupported, VirtioBlock.RequestDiscard, _rig.Segments((200, 8, 0), (0, 8, 4)), 32);
    }

    [Theory]
    [InlineData(124UL, 8u)]                        // runs past the end
    [InlineData(128UL, 1u)]                        // starts at the end
    [InlineData(ulong.MaxValue, 2u)]               // sector * 512 overflows
    [InlineData(0UL, VirtioBlock.MaxDiscardSectors + 1)]
    public void Discard_OutOfRange_IsAnIoError(ulong sector, uint count)
    {
        AssertAnswer(VirtioBlock.StatusIoError, VirtioBlock.RequestDiscard, _rig.Segments((0, 8, 0), (sector, count, 0)), 32);
        Assert.Equal(1, _rig.Device.Counters.BadRequests);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(15)]
    [InlineData(17)]
    public void Discard_WithAMisshapenPayload_IsAnIoError(int payload)
    {
        AssertAnswer(VirtioBlock.StatusIoError, VirtioBlock.RequestDiscard, _rig.Filled(Math.Max(payload, 1), 0), (uint)payload);
    }

    [Fact]
    public void Discard_WithMoreThanMaxDiscardSegments_IsAnIoError()
    {
        var segments = Enumerable.Range(0, 33).Select(i => ((ulong)i, 1u, 0u)).ToArray();
        AssertAnswer(VirtioBlock.StatusIoError, VirtioBlock.RequestDiscard, _rig.Segments(segments), 33 * 16);
    }

    [Fact]
    public void DiscardAndWriteZeroes_NotNegotiated_AreUnsupported()
    {
        using var rig = new BlockRig(features: VirtioFeatures.Version1);
        ulong discardStatus = rig.Status();
        ulong zeroesStatus = rig.Status();

        rig.Submit(DriverBuffer.Out(rig.Header(VirtioBlock.RequestDiscard, 0), 16), DriverBuffer.Out(rig.Segments((0, 8, 0)), 16), DriverBuffer.In(discardStatus, 1));
        rig.Submit(DriverBuffer.Out(rig.Header(VirtioBlock.RequestWriteZeroes, 0), 16), DriverBuffer.Out(rig.Segments((0, 8, 0)), 16), DriverBuffer.In(zeroesStatus, 1));

        Assert.Equal(VirtioBlock.StatusUnsupported, rig.ReadByte(discardStatus));
        Assert.Equal(VirtioBlock.StatusUnsupported, rig.ReadByte(zeroesStatus));
        Assert.Equal(rig.OriginalImage, rig.ImageBytes());
    }

    // ---- Bad requests. ----

    [Theory]
    [InlineData(2u)]           // VIRTIO_BLK_T_SCSI_CMD (legacy)
    [InlineData(10u)]          // VIRTIO_BLK_T_GET_LIFETIME
    [InlineData(14u)]          // VIRTIO_BLK_T_SECURE_ERASE
    [InlineData(16u)]          // VIRTIO_BLK_T_ZONE_REPORT
    [InlineData(0x8000_0001u)] // legacy barrier bit
    public void UnknownRequestType_IsUnsupported(uint type)
    {
        ulong status = _rig.Status();

        var used = _rig.Submit(DriverBuffer.Out(_rig.Header(type, 0), 16), DriverBuffer.In(status, 1));

        Assert.Equal(VirtioBlock.StatusUnsupported, _rig.ReadByte(status));
        Assert.Equal(1u, used.Length);
        Assert.Equal(1, _rig.Device.Counters.Unsupported);
    }

    [Theory]
    [InlineData(127UL, 2)]                  // second sector is past the end
    [InlineData(128UL, 1)]                  // first sector is past the end
    [InlineData(ulong.MaxValue, 1)]         // sector * 512 overflows
    [InlineData(0x0080_0000_0000_0000UL, 1)] // sector * 512 wraps to 0
    public void Read_BeyondTheEndOfTheDisk_IsAnIoErrorAndWritesNoData(ulong sector, int sectors)
    {
        ulong data = _rig.Filled(sectors * Sector);
        ulong status = _rig.Status();

        var used = _rig.Submit(DriverBuffer.Out(_rig.Header(VirtioBlock.RequestIn, sector), 16), DriverBuffer.In(data, (uint)(sectors * Sector)), DriverBuffer.In(status, 1));

        Assert.Equal(VirtioBlock.StatusIoError, _rig.ReadByte(status));
        Assert.Equal(0u, used.Length);
        Assert.All(_rig.ReadBytes(data, sectors * Sector), b => Assert.Equal(0xEE, b));
        Assert.Equal(1, _rig.Device.Counters.BadRequests);
    }

    [Theory]
    [InlineData(127UL, 2)]
    [InlineData(128UL, 1)]
    [InlineData(ulong.MaxValue, 1)]
    [InlineData(0x0080_0000_0000_0000UL, 1)]
    public void Write_BeyondTheEndOfTheDisk_IsAnIoErrorAndChangesNothing(ulong sector, int sectors)
    {
        ulong status = _rig.Status();

        _rig.Submit(DriverBuffer.Out(_rig.Header(VirtioBlock.RequestOut, sector), 16), DriverBuffer.Out(_rig.Filled(sectors * Sector), (uint)(sectors * Sector)), DriverBuffer.In(status, 1));

        Assert.Equal(VirtioBlock.StatusIoError, _rig.ReadByte(status));
        Assert.Equal(_rig.OriginalImage, _rig.ImageBytes());
    }

    [Theory]
    [InlineData(0)]
    [InlineData(8)]
    [InlineData(15)]
    public void HeaderShorterThan16Bytes_IsAnIoError(int headerLength)
    {
        ulong header = _rig.Header(VirtioBlock.RequestIn, 0);
        ulong data = _rig.Filled(Sector);
        ulong status = _rig.Status();
        var chain = new List<DriverBuffer>();
        if (headerLength > 0)
        {
            chain.Add(DriverBuffer.Out(header, (uint)headerLength));
        }

        chain.Add(DriverBuffer.In(data, Sector));
        chain.Add(DriverBuffer.In(status, 1));

        var used = _rig.Submit([.. chain]);

        Assert.Equal(VirtioBlock.StatusIoError, _rig.ReadByte(status));
        Assert.Equal(0u, used.Length);
        Assert.All(_rig.ReadBytes(data, Sector), b => Assert.Equal(0xEE, b));
    }

    [Theory]
    [InlineData(VirtioBlock.RequestIn, 100)]
    [InlineData(VirtioBlock.RequestIn, 513)]
    [InlineData(VirtioBlock.RequestOut, 100)]
    [InlineData(VirtioBlock.RequestOut, 1023)]
    public void DataLengthNotAMultipleOf512_IsAnIoError(uint type, int length)
    {
        ulong data = _rig.Filled(length);
        ulong status = _rig.Status();
        var dataBuffer = type == VirtioBlock.RequestIn ? DriverBuffer.In(data, (uint)length) : DriverBuffer.Out(data, (uint)length);

        _rig.Submit(DriverBuffer.Out(_rig.Header(type, 0), 16), dataBuffer, DriverBuffer.In(status, 1));

        Assert.Equal(VirtioBlock.StatusIoError, _rig.ReadByte(status));
        Assert.All(_rig.ReadBytes(data, length), b => Assert.Equal(0xEE, b));
        Assert.Equal(_rig.OriginalImage, _rig.ImageBytes());
    }

    [Fact]
    public void MissingStatusByte_IsUsedWithLengthZeroAndWritesNothing()
    {
        ulong header = _rig.Header(VirtioBlock.RequestOut, 0);
        ulong data = _rig.Filled(Sector);
        var before = _rig.ReadBytes(0x10000, 0x1000);

        var used = _rig.Submit(DriverBuffer.Out(header, 16), DriverBuffer.Out(data, Sector));

        Assert.Equal(0u, used.Length);
        Assert.Equal(before, _rig.ReadBytes(0x10000, 0x1000));
        Assert.Equal(_rig.OriginalImage, _rig.ImageBytes());
        Assert.Equal(1, _rig.Device.Counters.MissingStatus);
    }

    [Fact]
    public void ReadIntoADeviceReadableBuffer_IsAnIoErrorAndTheBufferIsUntouched()
    {
        ulong data = _rig.Filled(Sector);
        ulong status = _rig.Status();

        _rig.Submit(DriverBuffer.Out(_rig.Header(VirtioBlock.RequestIn, 0), 16), DriverBuffer.Out(data, Sector), DriverBuffer.In(status, 1));

        Assert.Equal(VirtioBlock.StatusIoError, _rig.ReadByte(status));
        Assert.All(_rig.ReadBytes(data, Sector), b => Assert.Equal(0xEE, b));
    }

    [Fact]
    public void WriteWithDataInADeviceWritableBuffer_IsAnIoErrorAndTheImageIsUntouched()
    {
        ulong data = _rig.Filled(Sector);
        ulong status = _rig.Status();

        var used = _rig.Submit(DriverBuffer.Out(_rig.Header(VirtioBlock.RequestOut, 0), 16), DriverBuffer.In(data, Sector), DriverBuffer.In(status, 1));

        Assert.Equal(VirtioBlock.StatusIoError, _rig.ReadByte(status));
        Assert.Equal(0u, used.Length);
        Assert.Equal(_rig.OriginalImage, _rig.ImageBytes());
        Assert.All(_rig.ReadBytes(data, Sector), b => Assert.Equal(0xEE, b));
    }

    [Fact]
    public void ReadOnlyImage_WritesAreIoErrors_ReadsAndFlushesWork()
    {
        using var rig = new BlockRig(readOnly: true);
        ulong writeStatus = rig.Status();
        ulong readStatus = rig.Status();
        ulong flushStatus = rig.Status();
        ulong discardStatus = rig.Status();
        ulong data = rig.Filled(Sector);

        rig.Submit(DriverBuffer.Out(rig.Header(VirtioBlock.RequestOut, 0), 16), DriverBuffer.Out(rig.Buffer(new byte[Sector]), Sector), DriverBuffer.In(writeStatus, 1));
        rig.Submit(DriverBuffer.Out(rig.Header(VirtioBlock.RequestIn, 1), 16), DriverBuffer.In(data, Sector), DriverBuffer.In(readStatus, 1));
        rig.Submit(DriverBuffer.Out(rig.Header(VirtioBlock.RequestFlush, 0), 16), DriverBuffer.In(flushStatus, 1));
        rig.Submit(DriverBuffer.Out(rig.Header(VirtioBlock.RequestDiscard, 0), 16), DriverBuffer.Out(rig.Segments((0, 8, 0)), 16), DriverBuffer.In(discardStatus, 1));

        Assert.Equal(VirtioBlock.StatusIoError, rig.ReadByte(writeStatus));
        Assert.Equal(VirtioBlock.StatusOk, rig.ReadByte(readStatus));
        Assert.Equal(VirtioBlock.StatusOk, rig.ReadByte(flushStatus));
        Assert.Equal(VirtioBlock.StatusUnsupported, rig.ReadByte(discardStatus));
        Assert.Equal(rig.OriginalImage[Sector..(2 * Sector)], rig.ReadBytes(data, Sector));
        Assert.Equal(rig.OriginalImage, rig.ImageBytes());
        Assert.Equal(1, rig.Device.Counters.BadRequests);
        Assert.Equal(0, rig.Device.Counters.HostErrors);
    }

    [Fact]
    public void MalformedChain_IsUsedWithLengthZero_AndTheDeviceNeverSeesIt()
    {
        ulong header = _rig.Header(VirtioBlock.RequestOut, 0);
        _rig.Driver.WriteDescriptor(0, header, 16, SplitVirtQueue.DescriptorFlagNext, 1);
        _rig.Driver.WriteDescriptor(1, _rig.Filled(Sector), Sector, SplitVirtQueue.DescriptorFlagNext, 0);
        _rig.Driver.Publish(0);

        _rig.Device.QueueNotify(0);

        Assert.Equal([(0u, 0u)], _rig.Driver.TakeUsed());
        Assert.Equal(1, _rig.Device.QueueCounters.MalformedChains);
        Assert.Equal(ChainError.DescriptorLoop, _rig.Device.QueueCounters.LastError);
        Assert.Equal(0, _rig.Device.Counters.Writes + _rig.Device.Counters.BadRequests);
        Assert.Equal(_rig.OriginalImage, _rig.ImageBytes());
    }

    [Fact]
    public void DataBufferOutsideRam_IsRefusedAndNothingIsRead()
    {
        ulong status = _rig.Status();

        var used = _rig.Submit(DriverBuffer.Out(_rig.Header(VirtioBlock.RequestIn, 0), 16), DriverBuffer.In(BlockRig.RamSize - 256, Sector), DriverBuffer.In(status, 1));

        Assert.Equal(0u, used.Length);
        Assert.Equal(0xEE, _rig.ReadByte(status));
        Assert.Equal(ChainError.BufferOutsideMemory, _rig.Device.QueueCounters.LastError);
    }

    [Fact]
    public void HeadIndexOutOfRange_RequestsAResetAndStopsServing()
    {
        _rig.Driver.Publish(BlockRig.QueueSize + 3);

        _rig.Device.QueueNotify(0);
        ulong status = _rig.Status();
        _rig.Driver.SetAvailableIndex(0);
        _rig.Driver.AddChain(DriverBuffer.Out(_rig.Header(VirtioBlock.RequestFlush, 0), 16), DriverBuffer.In(status, 1));
        _rig.Device.QueueNotify(0);

        Assert.Equal(1, _rig.Interrupt.NeedsResetCalls);
        Assert.Equal(0xEE, _rig.ReadByte(status));
        Assert.Equal(0, _rig.Driver.UsedIndex);
    }

    // ---- Notifications. ----

    [Fact]
    public void EveryKick_WithoutEventIndex_SignalsOnceForItsBatch()
    {
        using var rig = new BlockRig(features: VirtioFeatures.Version1 | VirtioBlock.FeatureFlush);
        for (int i = 0; i < 3; i++)
        {
            rig.Driver.AddChain(DriverBuffer.Out(rig.Header(VirtioBlock.RequestFlush, 0), 16), DriverBuffer.In(rig.Status(), 1));
        }

        rig.Device.QueueNotify(0);

        Assert.Equal([0], rig.Interrupt.QueueSignals);
        Assert.Equal(3, rig.Driver.UsedIndex);
    }

    [Fact]
    public void EventIndex_UsedEventAhead_SuppressesTheInterrupt_AndAvailEventFollows()
    {
        _rig.Driver.SetUsedEvent(5);
        for (int i = 0; i < 2; i++)
        {
            _rig.Driver.AddChain(DriverBuffer.Out(_rig.Header(VirtioBlock.RequestFlush, 0), 16), DriverBuffer.In(_rig.Status(), 1));
        }

        _rig.Device.QueueNotify(0);

        Assert.Empty(_rig.Interrupt.QueueSignals);
        Assert.Equal(2, _rig.Driver.AvailEvent);
        Assert.Equal(1, _rig.Device.QueueCounters.SuppressedNotifications);
    }

    [Fact]
    public void NoInterruptFlag_SuppressesTheInterrupt()
    {
        using var rig = new BlockRig(features: VirtioFeatures.Version1);
        rig.Driver.SetAvailableFlags(SplitVirtQueue.AvailableFlagNoInterrupt);
        rig.Driver.AddChain(DriverBuffer.Out(rig.Header(VirtioBlock.RequestFlush, 0), 16), DriverBuffer.In(rig.Status(), 1));

        rig.Device.QueueNotify(0);

        Assert.Empty(rig.Interrupt.QueueSignals);
        Assert.Equal(1, rig.Driver.UsedIndex);
    }

    // ---- Life cycle and snapshots. ----

    [Fact]
    public void Reset_StopsServing_AndActivateStartsAgain()
    {
        ulong first = _rig.Status();
        _rig.Driver.AddChain(DriverBuffer.Out(_rig.Header(VirtioBlock.RequestFlush, 0), 16), DriverBuffer.In(first, 1));

        _rig.Device.Reset();
        _rig.Device.QueueNotify(0);
        Assert.Equal(0xEE, _rig.ReadByte(first));

        var driver = new DriverQueue(_rig.Memory, 0x8000, 4);
        _rig.Device.Activate(_rig.Device.DeviceFeatures, [driver.Layout], _rig.Interrupt);
        ulong second = _rig.Status();
        driver.AddChain(DriverBuffer.Out(_rig.Header(VirtioBlock.RequestFlush, 0), 16), DriverBuffer.In(second, 1));
        _rig.Device.QueueNotify(0);

        Assert.Equal(VirtioBlock.StatusOk, _rig.ReadByte(second));
        Assert.Equal(0xEE, _rig.ReadByte(first));
    }

    [Fact]
    public void DisabledQueue_AndOtherQueueNumbers_AreIgnored()
    {
        ulong status = _rig.Status();
        _rig.Driver.AddChain(DriverBuffer.Out(_rig.Header(VirtioBlock.RequestFlush, 0), 16), DriverBuffer.In(status, 1));

        _rig.Device.QueueNotify(1);
        _rig.Device.QueueNotify(-1);
        _rig.Device.Activate(_rig.Device.DeviceFeatures, [_rig.Driver.Layout with { Enabled = false }], _rig.Interrupt);
        _rig.Device.QueueNotify(0);

        Assert.Equal(0xEE, _rig.ReadByte(status));
    }

    [Fact]
    public void SaveRestore_AFreshDeviceCarriesOnFromTheSavedIndices()
    {
        _rig.Submit(DriverBuffer.Out(_rig.Header(VirtioBlock.RequestFlush, 0), 16), DriverBuffer.In(_rig.Status(), 1));
        _rig.Submit(DriverBuffer.Out(_rig.Header(VirtioBlock.RequestFlush, 0), 16), DriverBuffer.In(_rig.Status(), 1));
        var state = _rig.Device.Save();
        _rig.Device.Reset();

        _rig.Device.Activate(_rig.Device.DeviceFeatures, [_rig.Driver.Layout], _rig.Interrupt);
        _rig.Device.Restore(state);
        ulong status = _rig.Status();
        var used = _rig.Submit(DriverBuffer.Out(_rig.Header(VirtioBlock.RequestFlush, 0), 16), DriverBuffer.In(status, 1));

        Assert.Equal(2, state.RequestQueue!.NextAvailIndex);
        Assert.Equal(VirtioBlock.StatusOk, _rig.ReadByte(status));
        Assert.Equal(3, _rig.Driver.UsedIndex);
        Assert.Equal(1u, used.Length);
    }

    [Fact]
    public void Restore_OfAnActiveState_OnAnInactiveDevice_Throws()
    {
        var state = _rig.Device.Save();
        _rig.Device.Reset();

        Assert.Throws<InvalidOperationException>(() => _rig.Device.Restore(state));
    }

    // ---- No allocation per request. ----

    [Fact]
    public void RequestPath_AllocatesNothing()
    {
        // Four requests in fixed descriptors: read 2 sectors, write 2 sectors (indirect), flush, write zeroes.
        ulong readData = _rig.Filled(2 * Sector);
        ulong writeData = _rig.Buffer(BlockRig.Pattern(2 * Sector, 3));
        ulong segment = _rig.Segments((40, 4, 0));
        var d = _rig.Driver;
        d.WriteDescriptor(0, _rig.Header(VirtioBlock.RequestIn, 4), 16, SplitVirtQueue.DescriptorFlagNext, 1);
        d.WriteDescriptor(1, readData, 2 * Sector, SplitVirtQueue.DescriptorFlagWrite | SplitVirtQueue.DescriptorFlagNext, 2);
        d.WriteDescriptor(2, _rig.Status(), 1, SplitVirtQueue.DescriptorFlagWrite, 0);
        d.WriteDescriptorAt(BlockRig.IndirectTable, 0, _rig.Header(VirtioBlock.RequestOut, 20), 16, SplitVirtQueue.DescriptorFlagNext, 1);
        d.WriteDescriptorAt(BlockRig.IndirectTable, 1, writeData, 2 * Sector, SplitVirtQueue.DescriptorFlagNext, 2);
        d.WriteDescriptorAt(BlockRig.IndirectTable, 2, _rig.Status(), 1, SplitVirtQueue.DescriptorFlagWrite, 0);
        d.WriteDescriptor(3, BlockRig.IndirectTable, 48, SplitVirtQueue.DescriptorFlagIndirect, 0);
        d.WriteDescriptor(4, _rig.Header(VirtioBlock.RequestFlush, 0), 16, SplitVirtQueue.DescriptorFlagNext, 5);
        d.WriteDescriptor(5, _rig.Status(), 1, SplitVirtQueue.DescriptorFlagWrite, 0);
        d.WriteDescriptor(6, _rig.Header(VirtioBlock.RequestWriteZeroes, 0), 16, SplitVirtQueue.DescriptorFlagNext, 7);
        d.WriteDescriptor(7, segment, 16, SplitVirtQueue.DescriptorFlagNext, 8);
        d.WriteDescriptor(8, _rig.Status(), 1, SplitVirtQueue.DescriptorFlagWrite, 0);

        void Round()
        {
            d.Publish(0);
            d.Publish(3);
            d.Publish(4);
            d.Publish(6);
            _rig.Device.QueueNotify(0);
        }

        Round();

        // A collection that retires this thread's allocation context can count its unused tail as allocated; do it
        // now, with nothing allocated after it, so only the rounds' own allocations are measured.
        GC.Collect();
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 200; i++)
        {
            Round();
        }

        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal(0, allocated);
        Assert.Equal(201, _rig.Device.Counters.Reads);
        Assert.Equal(201, _rig.Device.Counters.Writes);
        Assert.Equal(201, _rig.Device.Counters.WriteZeroes);
        Assert.Equal(0, _rig.Device.Counters.BadRequests + _rig.Device.Counters.HostErrors);
    }

    /// <summary>Submits a request of <paramref name="type"/> with a readable payload and checks the status byte; used length 1.</summary>
    private void AssertAnswer(byte expected, uint type, ulong payload, uint payloadLength)
    {
        ulong status = _rig.Status();
        var chain = new List<DriverBuffer> { DriverBuffer.Out(_rig.Header(type, 0), 16) };
        if (payloadLength > 0)
        {
            chain.Add(DriverBuffer.Out(payload, payloadLength));
        }

        chain.Add(DriverBuffer.In(status, 1));

        var used = _rig.Submit([.. chain]);

        Assert.Equal(expected, _rig.ReadByte(status));
        Assert.Equal(1u, used.Length);
        Assert.Equal(_rig.OriginalImage, _rig.ImageBytes());
    }
}
