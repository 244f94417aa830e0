namespace KvmSharp.Memory.Tests;

public class GuestMemoryAccessTests
{
    private const ulong RamSize = 0x10000;

    [Fact]
    public void WriteThenRead_RoundTripsTheExactBytes()
    {
        using var memory = GuestMemory.Create(RamSize);
        byte[] written = [0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF, 0x10];
        byte[] read = new byte[written.Length];

        memory.Write(0x1234, written);
        memory.Read(0x1234, read);

        Assert.Equal(written, read);
        byte[] neighbours = new byte[2];
        memory.Read(0x1233, neighbours.AsSpan(0, 1));
        memory.Read(0x1234 + 9, neighbours.AsSpan(1, 1));
        Assert.Equal(new byte[] { 0, 0 }, neighbours);
    }

    [Fact]
    public void TryReadAndTryWrite_OfTheLastBytesOfRam_Succeed()
    {
        using var memory = GuestMemory.Create(RamSize);

        Assert.True(memory.TryWrite(RamSize - 4, [0xDE, 0xAD, 0xBE, 0xEF]));
        byte[] data = new byte[4];
        Assert.True(memory.TryRead(RamSize - 4, data));
        Assert.Equal(new byte[] { 0xDE, 0xAD, 0xBE, 0xEF }, data);
        Assert.True(memory.TryRead(RamSize - 1, data.AsSpan(0, 1)));
        Assert.Equal(0xEF, data[0]);
    }

    [Fact]
    public void TryReadAndTryWrite_OneBytePastTheEnd_FailWithoutTouchingAnything()
    {
        using var memory = GuestMemory.Create(RamSize);
        memory.Write(RamSize - 4, [1, 2, 3, 4]);

        byte[] destination = [0x55, 0x55, 0x55, 0x55, 0x55];
        Assert.False(memory.TryRead(RamSize - 4, destination));
        Assert.Equal(new byte[] { 0x55, 0x55, 0x55, 0x55, 0x55 }, destination);

        Assert.False(memory.TryWrite(RamSize - 4, [9, 9, 9, 9, 9]));
        byte[] after = new byte[4];
        memory.Read(RamSize - 4, after);
        Assert.Equal(new byte[] { 1, 2, 3, 4 }, after);

        Assert.False(memory.TryRead(RamSize, destination.AsSpan(0, 1)));
        Assert.False(memory.TryWrite(RamSize, [7]));
        Assert.False(memory.IsValidRange(RamSize - 4, 5));
        Assert.True(memory.IsValidRange(RamSize - 4, 4));
    }

    [Fact]
    public void Read_OutsideRam_ThrowsWithTheRange()
    {
        using var memory = GuestMemory.Create(RamSize);

        var ex = Assert.Throws<GuestMemoryException>(() => memory.Read(RamSize - 2, new byte[4]));
        Assert.Equal("Guest-physical range 0xfffe+0x4 is not backed by guest RAM.", ex.Message);
        Assert.Equal(RamSize - 2, ex.Address);
        Assert.Equal(4UL, ex.Length);

        var writeEx = Assert.Throws<GuestMemoryException>(() => memory.Write(0x20000, [1]));
        Assert.Equal(0x20000UL, writeEx.Address);
        Assert.Equal(1UL, writeEx.Length);
    }

    [Theory]
    [InlineData(ulong.MaxValue, 1)]
    [InlineData(ulong.MaxValue, 2)]
    [InlineData(ulong.MaxValue - 1, 16)]
    [InlineData(ulong.MaxValue - 0xFFF, 0x2000)]
    public void AccessesNearTheTopOfTheAddressSpace_ReturnFalse_AndLeaveTheBufferAlone(ulong address, int length)
    {
        using var memory = GuestMemory.Create(RamSize);
        byte[] destination = new byte[length];
        Array.Fill(destination, (byte)0x5A);

        Assert.False(memory.TryRead(address, destination));
        Assert.All(destination, static b => Assert.Equal(0x5A, b));
        Assert.False(memory.TryWrite(address, destination));
        Assert.False(memory.TryGetSpan(address, length, out var span));
        Assert.True(span.IsEmpty);
        Assert.Null(memory.FindRegion(address));
    }

    [Fact]
    public void LengthsThatWouldOverflowTheAddress_AreRejected_NotWrappedToLowRam()
    {
        using var memory = GuestMemory.Create(RamSize);

        // address + length wraps to 0x10 here: a naive end check would call this valid low RAM.
        Assert.False(memory.TryGetHostAddress(0x20, ulong.MaxValue - 0xF, out nint host));
        Assert.Equal(0, host);
        Assert.False(memory.IsValidRange(0x20, ulong.MaxValue));
        Assert.False(memory.IsValidRange(ulong.MaxValue, 2));
        Assert.False(memory.IsValidRange(0, RamSize + 1));
        Assert.True(memory.IsValidRange(0, RamSize));
    }

    [Fact]
    public void RegionAtAHighAddress_IsBoundsCheckedAtItsTopToo()
    {
        const ulong Base = 0xFFFF_FFFF_FFFF_0000;
        using var memory = GuestMemory.Create([new MemoryRange(Base, 0x1000)]);

        Assert.True(memory.TryWrite(Base + 0xFFE, [0xAB, 0xCD]));
        byte[] data = new byte[2];
        Assert.True(memory.TryRead(Base + 0xFFE, data));
        Assert.Equal(new byte[] { 0xAB, 0xCD }, data);
        Assert.False(memory.TryRead(Base + 0xFFF, data));
        Assert.False(memory.TryRead(Base - 1, data));
        Assert.False(memory.IsValidRange(Base + 0x10, ulong.MaxValue - 0x10));
    }

    [Fact]
    public void ZeroLengthAccesses_AreValidInsideRam_AndInvalidOutside()
    {
        using var memory = GuestMemory.Create(RamSize);

        Assert.True(memory.TryRead(0x10, []));
        Assert.True(memory.TryWrite(RamSize - 1, []));
        Assert.False(memory.TryRead(RamSize, []));
        Assert.False(memory.TryWrite(ulong.MaxValue, []));
    }

    [Fact]
    public void CopyAcrossAdjacentRegions_IsSplitBetweenTheirMappings()
    {
        using var memory = GuestMemory.Create([new MemoryRange(0, 0x1000), new MemoryRange(0x1000, 0x1000)]);
        byte[] written = [1, 2, 3, 4, 5, 6, 7, 8];

        Assert.True(memory.TryWrite(0xFFC, written));

        Assert.True(memory.TryGetSpan(0xFFC, 4, out var low));
        Assert.True(memory.TryGetSpan(0x1000, 4, out var high));
        Assert.Equal(new byte[] { 1, 2, 3, 4 }, low.ToArray());
        Assert.Equal(new byte[] { 5, 6, 7, 8 }, high.ToArray());
        byte[] read = new byte[8];
        Assert.True(memory.TryRead(0xFFC, read));
        Assert.Equal(written, read);
    }

    [Fact]
    public void CopySpanningThreeAdjacentRegions_RoundTrips()
    {
        using var memory = GuestMemory.Create([new MemoryRange(0, 0x1000), new MemoryRange(0x1000, 0x1000), new MemoryRange(0x2000, 0x1000)]);
        byte[] written = new byte[0x1010];
        for (int i = 0; i < written.Length; i++)
        {
            written[i] = (byte)(i * 7);
        }

        memory.Write(0xFF8, written);
        byte[] read = new byte[written.Length];
        memory.Read(0xFF8, read);

        Assert.Equal(written, read);
        Assert.Equal(0x31, memory.Read<byte>(0x1FFF));
        Assert.Equal(0x38, memory.Read<byte>(0x2000));
    }

    [Fact]
    public void CopyAcrossAGap_FailsAndWritesNothing()
    {
        using var memory = GuestMemory.Create([new MemoryRange(0, 0x1000), new MemoryRange(0x2000, 0x1000)]);
        memory.Fill(0xF00, 0x100, 0x11);

        Assert.False(memory.TryWrite(0xFFC, [1, 2, 3, 4, 5, 6, 7, 8]));

        Assert.True(memory.TryGetSpan(0xFFC, 4, out var tail));
        Assert.Equal(new byte[] { 0x11, 0x11, 0x11, 0x11 }, tail.ToArray());
        Assert.Equal(0, memory.Read<byte>(0x2000));

        byte[] destination = [0x77, 0x77, 0x77, 0x77, 0x77, 0x77, 0x77, 0x77];
        Assert.False(memory.TryRead(0xFFC, destination));
        Assert.Equal(new byte[] { 0x77, 0x77, 0x77, 0x77, 0x77, 0x77, 0x77, 0x77 }, destination);
    }

    [Fact]
    public void CopyThatRunsPastTheLastOfAdjacentRegions_FailsAndWritesNothing()
    {
        using var memory = GuestMemory.Create([new MemoryRange(0, 0x1000), new MemoryRange(0x1000, 0x1000)]);

        Assert.False(memory.TryWrite(0xFF0, new byte[0x1011]));
        Assert.False(memory.TryWrite(0x1FF0, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17]));

        Assert.Equal(0UL, memory.Read<ulong>(0x1FF0));
        Assert.Equal(0UL, memory.Read<ulong>(0x1FF8));
    }

    [Fact]
    public void TryGetSpan_AliasesGuestRam()
    {
        using var memory = GuestMemory.Create(RamSize);

        Assert.True(memory.TryGetSpan(0x400, 16, out var span));
        Assert.Equal(16, span.Length);
        span[0] = 0x42;
        span[15] = 0x24;

        Assert.Equal(0x42, memory.Read<byte>(0x400));
        Assert.Equal(0x24, memory.Read<byte>(0x40F));
        memory.Write<byte>(0x401, 0x99);
        Assert.Equal(0x99, span[1]);
    }

    [Fact]
    public void TryGetSpan_RejectsNegativeLengths_RangesPastTheEnd_AndRangesAcrossRegions()
    {
        using var memory = GuestMemory.Create([new MemoryRange(0, 0x1000), new MemoryRange(0x1000, 0x1000)]);

        Assert.False(memory.TryGetSpan(0x10, -1, out _));
        Assert.False(memory.TryGetSpan(0x1FFF, 2, out _));
        Assert.False(memory.TryGetSpan(0xFFF, 2, out _)); // one span cannot cover two mappings
        Assert.True(memory.TryGetSpan(0x1FFF, 1, out var last));
        Assert.Equal(1, last.Length);
        Assert.True(memory.TryGetSpan(0, 0x1000, out var whole));
        Assert.Equal(0x1000, whole.Length);
    }

    [Fact]
    public void TryGetHostAddress_PointsAtTheRightByteOfTheRightRegion()
    {
        using var memory = GuestMemory.Create([new MemoryRange(0, 0x1000), new MemoryRange(0x8000, 0x2000)]);

        Assert.True(memory.TryGetHostAddress(0x8010, 0x10, out nint host));
        Assert.Equal(memory.Regions[1].HostAddress + 0x10, host);
        Assert.Same(memory.Regions[1], memory.FindRegion(0x9FFF));
        Assert.Null(memory.FindRegion(0xA000));
        Assert.Null(memory.FindRegion(0x1000));
    }

    [Fact]
    public void Fill_SetsExactlyTheRange()
    {
        using var memory = GuestMemory.Create(RamSize);

        memory.Fill(0x101, 0x7E, 0xCC);

        Assert.Equal(0, memory.Read<byte>(0x100));
        Assert.Equal(0xCC, memory.Read<byte>(0x101));
        Assert.Equal(0xCC, memory.Read<byte>(0x17E));
        Assert.Equal(0, memory.Read<byte>(0x17F));
        Assert.True(memory.TryGetSpan(0x101, 0x7E, out var filled));
        Assert.Equal(-1, filled.IndexOfAnyExcept((byte)0xCC));
    }

    [Fact]
    public void Fill_OfTheWholeRam_AndPastIt()
    {
        using var memory = GuestMemory.Create(RamSize);

        memory.Fill(0, RamSize, 0xAB);
        Assert.Equal(0xABAB_ABAB_ABAB_ABABUL, memory.Read<ulong>(RamSize - 8));

        var ex = Assert.Throws<GuestMemoryException>(() => memory.Fill(RamSize - 0x10, 0x11, 0));
        Assert.Equal(RamSize - 0x10, ex.Address);
        Assert.Equal(0x11UL, ex.Length);
        Assert.Equal(0xABAB_ABAB_ABAB_ABABUL, memory.Read<ulong>(RamSize - 8));
        Assert.Throws<GuestMemoryException>(() => memory.Fill(0x10, ulong.MaxValue, 0));
    }

    [Fact]
    public void Fill_AcrossAdjacentRegions_FillsBoth_AndAcrossAGap_WritesNothing()
    {
        using var memory = GuestMemory.Create([new MemoryRange(0, 0x1000), new MemoryRange(0x1000, 0x1000), new MemoryRange(0x4000, 0x1000)]);

        memory.Fill(0xFF0, 0x20, 0x77);
        Assert.Throws<GuestMemoryException>(() => memory.Fill(0x1FF0, 0x2020, 0x99));

        Assert.Equal(0, memory.Read<byte>(0xFEF));
        Assert.Equal(0x7777_7777_7777_7777UL, memory.Read<ulong>(0xFF8));
        Assert.Equal(0x7777_7777_7777_7777UL, memory.Read<ulong>(0x1000));
        Assert.Equal(0, memory.Read<byte>(0x1010));
        Assert.Equal(0, memory.Read<byte>(0x1FF0));
        Assert.Equal(0, memory.Read<byte>(0x4000));
    }

    [Fact]
    public void GenericWrite_IsLittleEndian_AndGenericRead_ReadsItBack()
    {
        using var memory = GuestMemory.Create(RamSize);

        memory.Write<uint>(0x200, 0xDEADBEEF);
        memory.Write<ushort>(0x204, 0x1234);
        memory.Write<ulong>(0x208, 0x0102_0304_0506_0708);

        byte[] raw = new byte[16];
        memory.Read(0x200, raw);
        Assert.Equal(new byte[] { 0xEF, 0xBE, 0xAD, 0xDE, 0x34, 0x12, 0, 0, 0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01 }, raw);
        Assert.Equal(0xDEADBEEFu, memory.Read<uint>(0x200));
        Assert.Equal((ushort)0x1234, memory.Read<ushort>(0x204));
        Assert.Equal(0x0102_0304_0506_0708UL, memory.Read<ulong>(0x208));
        Assert.Equal(0x1234_DEAD_BEEFUL, memory.Read<ulong>(0x200) & 0xFFFF_FFFF_FFFF);
    }

    [Fact]
    public void GenericAccess_OfAStruct_AndAcrossAdjacentRegions()
    {
        using var memory = GuestMemory.Create([new MemoryRange(0, 0x1000), new MemoryRange(0x1000, 0x1000)]);
        var value = new TwoFields(0x1122_3344, 0x5566_7788_99AA_BBCC);

        memory.Write(0xFFC, value);

        Assert.Equal(value, memory.Read<TwoFields>(0xFFC));
        Assert.Equal(0x1122_3344u, memory.Read<uint>(0xFFC));
        Assert.Equal(0x5566_7788_99AA_BBCCUL, memory.Read<ulong>(0x1004)); // sequential layout: 4 bytes of padding after Low
    }

    [Fact]
    public void GenericAccess_OutsideRam_Throws()
    {
        using var memory = GuestMemory.Create(RamSize);

        var ex = Assert.Throws<GuestMemoryException>(() => memory.Read<ulong>(RamSize - 4));
        Assert.Equal(RamSize - 4, ex.Address);
        Assert.Equal(8UL, ex.Length);
        Assert.Throws<GuestMemoryException>(() => memory.Write<uint>(ulong.MaxValue - 1, 1));
    }

    private readonly record struct TwoFields(uint Low, ulong High);
}
