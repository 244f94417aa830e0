namespace KvmSharp.Memory.Tests;

public class GuestMemoryCreateTests
{
    [Fact]
    public void Create_OneRegionAtZero()
    {
        using var memory = GuestMemory.Create(0x10000);

        var region = Assert.Single(memory.Regions);
        Assert.Equal(0UL, region.GuestPhysicalAddress);
        Assert.Equal(0x10000UL, region.Size);
        Assert.Equal(0x10000UL, region.End);
        Assert.NotEqual(0, region.HostAddress);
        Assert.Equal(0x10000UL, memory.TotalSize);
    }

    [Fact]
    public void Create_SortsRegionsByAddress_AndSumsTheirSizes()
    {
        using var memory = GuestMemory.Create([new MemoryRange(0x1_0000_0000, 0x2000), new MemoryRange(0, 0x1000), new MemoryRange(0x8000, 0x3000)]);

        Assert.Equal(3, memory.Regions.Count);
        Assert.Equal(0UL, memory.Regions[0].GuestPhysicalAddress);
        Assert.Equal(0x8000UL, memory.Regions[1].GuestPhysicalAddress);
        Assert.Equal(0x1_0000_0000UL, memory.Regions[2].GuestPhysicalAddress);
        Assert.Equal(0x6000UL, memory.TotalSize);
        Assert.Equal("[0x8000, 0xb000)", memory.Regions[1].ToString());
    }

    [Fact]
    public void Create_NewRamReadsAsZeros()
    {
        using var memory = GuestMemory.Create(0x2000);
        byte[] data = [0xAA, 0xAA, 0xAA, 0xAA];

        memory.Read(0x1FFC, data);

        Assert.Equal(new byte[] { 0, 0, 0, 0 }, data);
    }

    [Fact]
    public void Create_RejectsZeroSize()
    {
        var ex = Assert.Throws<GuestMemoryException>(() => GuestMemory.Create(0));
        Assert.Equal("Guest memory region 0x0+0x0 must be non-empty and 4 KiB aligned.", ex.Message);
    }

    [Fact]
    public void Create_RejectsNoRegions()
    {
        var ex = Assert.Throws<GuestMemoryException>(() => GuestMemory.Create([]));
        Assert.Equal("Guest memory needs at least one region.", ex.Message);
        Assert.Throws<ArgumentNullException>(() => GuestMemory.Create(null!));
    }

    [Fact]
    public void Create_RejectsAnUnalignedStart()
    {
        var ex = Assert.Throws<GuestMemoryException>(() => GuestMemory.Create([new MemoryRange(0x1800, 0x1000)]));
        Assert.Equal("Guest memory region 0x1800+0x1000 must be non-empty and 4 KiB aligned.", ex.Message);
    }

    [Fact]
    public void Create_RejectsAnUnalignedSize()
    {
        var ex = Assert.Throws<GuestMemoryException>(() => GuestMemory.Create(0x1001));
        Assert.Equal("Guest memory region 0x0+0x1001 must be non-empty and 4 KiB aligned.", ex.Message);
    }

    [Fact]
    public void Create_RejectsOverlappingRegions_ByOnePage()
    {
        var ex = Assert.Throws<GuestMemoryException>(() => GuestMemory.Create([new MemoryRange(0x3000, 0x1000), new MemoryRange(0, 0x4000)]));
        Assert.Equal("Guest memory regions at 0x0 and 0x3000 overlap.", ex.Message);
    }

    [Fact]
    public void Create_RejectsTwoRegionsAtTheSameStart()
    {
        Assert.Throws<GuestMemoryException>(() => GuestMemory.Create([new MemoryRange(0x1000, 0x1000), new MemoryRange(0x1000, 0x1000)]));
    }

    [Fact]
    public void Create_AcceptsAdjacentRegions()
    {
        using var memory = GuestMemory.Create([new MemoryRange(0, 0x1000), new MemoryRange(0x1000, 0x1000)]);

        Assert.Equal(2, memory.Regions.Count);
        Assert.Equal(0x1000UL, memory.Regions[0].End);
        Assert.Equal(0x1000UL, memory.Regions[1].GuestPhysicalAddress);
        Assert.Equal(0x2000UL, memory.TotalSize);
    }

    [Fact]
    public void Create_RejectsARegionThatWrapsAroundTheAddressSpace()
    {
        var ex = Assert.Throws<GuestMemoryException>(() => GuestMemory.Create([new MemoryRange(0xFFFF_FFFF_FFFF_F000, 0x2000)]));
        Assert.Equal("Guest memory region 0xfffffffffffff000+0x2000 wraps around the address space.", ex.Message);
    }

    [Fact]
    public void Create_RejectsARegionEndingExactlyAtTwoToThe64_BecauseItsEndIsNotRepresentable()
    {
        Assert.Throws<GuestMemoryException>(() => GuestMemory.Create([new MemoryRange(0xFFFF_FFFF_FFFF_F000, 0x1000)]));
    }

    [Fact]
    public void Dispose_IsIdempotent_AndLaterAccessesThrowObjectDisposed()
    {
        var memory = GuestMemory.Create(0x1000);
        memory.Dispose();
        memory.Dispose();

        Assert.Throws<ObjectDisposedException>(() => memory.TryRead(0, new byte[1]));
        Assert.Throws<ObjectDisposedException>(() => memory.TryGetHostAddress(0, 1, out _));
    }
}
