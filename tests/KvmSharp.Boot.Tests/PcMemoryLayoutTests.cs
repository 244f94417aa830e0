using KvmSharp.Memory;

namespace KvmSharp.Boot.Tests;

public class PcMemoryLayoutTests
{
    private const ulong MiB = Guest.MiB;
    private const ulong GiB = 1024 * MiB;

    [Fact]
    public void RamRanges_BelowTheHole_IsOneRange()
    {
        Assert.Equal([new MemoryRange(0, 512 * MiB)], PcMemoryLayout.RamRanges(512 * MiB));
        Assert.Equal([new MemoryRange(0, 3 * GiB)], PcMemoryLayout.RamRanges(3 * GiB));
    }

    [Fact]
    public void RamRanges_AboveThreeGiB_ContinuesAtFourGiB()
    {
        Assert.Equal(
            [new MemoryRange(0, 3 * GiB), new MemoryRange(4 * GiB, (1 * GiB) + (4 * 1024))],
            PcMemoryLayout.RamRanges((4 * GiB) + (4 * 1024)));
    }

    [Theory]
    [InlineData(0UL, "0 bytes")]
    [InlineData((16 * MiB) - 4096, "16380 KiB")]
    [InlineData((64 * MiB) + 1, "67108865 bytes")]
    [InlineData((1024 * GiB) + 4096, "1073741828 KiB")]
    [InlineData(ulong.MaxValue, "18446744073709551615 bytes")]
    public void RamRanges_UnsupportedSize_Throws(ulong size, string shown)
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => PcMemoryLayout.RamRanges(size));

        Assert.StartsWith($"Guest RAM of {shown} is not supported. Give the guest between 16 MiB and 1 TiB, a multiple of 4 KiB.", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void E820Map_512MiB_HasConventionalMemoryReservedAreasAndHighMemory()
    {
        Assert.Equal(
            [
                new E820Entry(0, 0x9_FC00, E820Type.Ram),
                new E820Entry(0x9_FC00, 0x400, E820Type.Reserved),
                new E820Entry(0xF_0000, 0x1_0000, E820Type.Reserved),
                new E820Entry(0x10_0000, 0x1FF0_0000, E820Type.Ram),
            ],
            PcMemoryLayout.E820Map(512 * MiB));
    }

    [Fact]
    public void E820Map_8GiB_SplitsAroundTheMmioHole()
    {
        var map = PcMemoryLayout.E820Map(8 * GiB);

        Assert.Equal(5, map.Count);
        Assert.Equal(new E820Entry(0x10_0000, 0xBFF0_0000, E820Type.Ram), map[3]);
        Assert.Equal(new E820Entry(0x1_0000_0000, 5 * GiB, E820Type.Ram), map[4]);
        Assert.Equal(0x2_4000_0000UL, map[4].End);
    }

    [Fact]
    public void BootDataAreas_DoNotOverlapEachOtherOrTheX86Tables()
    {
        (string Name, ulong Start, ulong End)[] areas =
        [
            ("GDT", X86InitialState.GdtAddress, X86InitialState.GdtAddress + 32),
            ("PVH start info", PcMemoryLayout.PvhStartInfoAddress, PcMemoryLayout.PvhStartInfoAddress + 56),
            ("PVH modules", PcMemoryLayout.PvhModuleListAddress, PcMemoryLayout.PvhModuleListAddress + 32),
            ("PVH memmap", PcMemoryLayout.PvhMemoryMapAddress, PcMemoryLayout.PvhMemoryMapAddress + (PcMemoryLayout.MaxE820Entries * 24)),
            ("zero page", PcMemoryLayout.ZeroPageAddress, PcMemoryLayout.ZeroPageAddress + PcMemoryLayout.ZeroPageSize),
            ("multiboot info", PcMemoryLayout.MultibootInfoAddress, PcMemoryLayout.MultibootInfoAddress + 116),
            ("multiboot modules", PcMemoryLayout.MultibootModuleListAddress, PcMemoryLayout.MultibootModuleListAddress + 16),
            ("multiboot mmap", PcMemoryLayout.MultibootMemoryMapAddress, PcMemoryLayout.MultibootMemoryMapAddress + (PcMemoryLayout.MaxE820Entries * 24)),
            ("boot loader name", PcMemoryLayout.MultibootBootLoaderNameAddress, PcMemoryLayout.MultibootBootLoaderNameAddress + 9),
            ("page tables", X86InitialState.Pml4Address, X86InitialState.TablesEnd),
            ("command line", PcMemoryLayout.CommandLineAddress, PcMemoryLayout.CommandLineAddress + PcMemoryLayout.CommandLineMaxSize),
            ("module string", PcMemoryLayout.MultibootModuleStringAddress, PcMemoryLayout.MultibootModuleStringAddress + PcMemoryLayout.MultibootModuleStringMaxSize),
        ];

        for (int i = 0; i < areas.Length; i++)
        {
            Assert.True(areas[i].End <= PcMemoryLayout.EbdaStart, $"{areas[i].Name} runs into the EBDA");
            for (int j = i + 1; j < areas.Length; j++)
            {
                bool overlap = areas[i].Start < areas[j].End && areas[j].Start < areas[i].End;
                Assert.False(overlap, $"{areas[i].Name} overlaps {areas[j].Name}");
            }
        }

        Assert.True(PcMemoryLayout.E820Map(4 * GiB).Count <= PcMemoryLayout.MaxE820Entries);
    }

    [Theory]
    [InlineData(512UL * 1024 * 1024, "512 MiB")]
    [InlineData(4UL * 1024 * 1024 * 1024, "4 GiB")]
    [InlineData(640UL * 1024, "640 KiB")]
    [InlineData(4097UL, "4097 bytes")]
    public void FormatSize_UsesTheLargestExactUnit(ulong bytes, string expected)
        => Assert.Equal(expected, PcMemoryLayout.FormatSize(bytes));
}
