using KvmSharp.Boot.Elf;
using KvmSharp.Boot.Pvh;

namespace KvmSharp.Boot.Tests;

public class PvhLoaderTests
{
    private const ulong MiB = Guest.MiB;
    private const string Corrupt = "The file is corrupt or truncated; rebuild or re-download the kernel.";

    internal static byte[] PvhNotes(byte[] entryDesc)
        =>
        [
            .. ElfBuilder.Note("GNU", 3, new byte[20]),
            .. ElfBuilder.Note("Xen", 6, "linux\0"u8.ToArray()),
            .. ElfBuilder.Note("Xen", 18, entryDesc),
        ];

    internal static ElfBuilder Elf64(ulong pvhEntry = 0x100_0040)
    {
        var elf = new ElfBuilder { Is64 = true, Entry = 0xFFFF_FFFF_8100_0000 };
        elf.Segments.Add(new ElfSegmentSpec(ElfImage.PtLoad, 0x100_0000, ElfBuilder.Pattern(0x2000, 1), 0x3000));
        elf.Segments.Add(new ElfSegmentSpec(ElfImage.PtLoad, 0x120_0000, ElfBuilder.Pattern(0x800, 2), 0x800));
        elf.Segments.Add(new ElfSegmentSpec(ElfImage.PtNote, 0x120_0800, PvhNotes(BitConverter.GetBytes(pvhEntry)), 0, 4));
        return elf;
    }

    [Fact]
    public void Load_Elf64_LoadsSegmentsAndWritesTheStartInfo()
    {
        var elf = Elf64();
        byte[] file = elf.Build();
        byte[] initrd = ElfBuilder.Pattern(0x1000, 9);
        using var memory = Guest.Ram(64 * MiB);
        memory.Fill(0x100_0000, 0x30_0000, 0xCC);

        var info = PvhLoader.Load(memory, Guest.Request(file, 64 * MiB, initrd, "console=hvc0"));

        Assert.Equal(0x100_0040u, info.EntryPoint);
        Assert.Equal(0x6000u, info.StartInfoAddress);
        Assert.Equal(0x120_0800UL, info.KernelEnd);
        Assert.Equal(0x3FF_F000UL, info.InitrdAddress);
        Assert.Equal(0x1000UL, info.InitrdSize);
        Assert.Equal(new BootEntry(BootMode.Protected32, 0x100_0040, Rbx: 0x6000), info.Entry);

        Assert.Equal(elf.Segments[0].Data, Guest.Bytes(memory, 0x100_0000, 0x2000));
        Assert.All(Guest.Bytes(memory, 0x100_2000, 0x1000), b => Assert.Equal(0, b));
        Assert.Equal(0xCC, memory.Read<byte>(0x100_3000));
        Assert.Equal(elf.Segments[1].Data, Guest.Bytes(memory, 0x120_0000, 0x800));
        Assert.Equal(0xCC, memory.Read<byte>(0x120_0800)); // the PT_NOTE segment is not loaded
        Assert.Equal(initrd, Guest.Bytes(memory, 0x3FF_F000, 0x1000));
        Assert.Equal("console=hvc0\0"u8.ToArray(), Guest.Bytes(memory, 0x20000, 13));

        byte[] expectedStartInfo =
        [
            0x78, 0xC5, 0x6E, 0x33, // magic 0x336ec578
            1, 0, 0, 0, // version
            0, 0, 0, 0, // flags
            1, 0, 0, 0, // nr_modules
            0x40, 0x60, 0, 0, 0, 0, 0, 0, // modlist_paddr
            0x00, 0x00, 0x02, 0, 0, 0, 0, 0, // cmdline_paddr
            0, 0, 0, 0, 0, 0, 0, 0, // rsdp_paddr
            0x00, 0x61, 0, 0, 0, 0, 0, 0, // memmap_paddr
            4, 0, 0, 0, // memmap_entries
            0, 0, 0, 0, // reserved
        ];
        Assert.Equal(expectedStartInfo, Guest.Bytes(memory, 0x6000, 56));

        Assert.Equal(0x3FF_F000UL, memory.Read<ulong>(0x6040)); // paddr
        Assert.Equal(0x1000UL, memory.Read<ulong>(0x6048)); // size
        Assert.Equal(0UL, memory.Read<ulong>(0x6050)); // cmdline_paddr
        Assert.Equal(0UL, memory.Read<ulong>(0x6058)); // reserved

        (ulong Address, ulong Size, uint Type)[] map =
        [
            (0, 0x9_FC00, 1),
            (0x9_FC00, 0x400, 2),
            (0xF_0000, 0x1_0000, 2),
            (0x10_0000, 0x3F0_0000, 1),
        ];
        for (int i = 0; i < map.Length; i++)
        {
            ulong at = 0x6100 + ((ulong)i * 24);
            Assert.Equal(map[i].Address, memory.Read<ulong>(at));
            Assert.Equal(map[i].Size, memory.Read<ulong>(at + 8));
            Assert.Equal(map[i].Type, memory.Read<uint>(at + 16));
            Assert.Equal(0u, memory.Read<uint>(at + 20));
        }
    }

    [Fact]
    public void Load_NoInitrdAndHighRam_HasNoModulesAndFiveMapEntries()
    {
        using var memory = Guest.Ram(4 * 1024 * MiB);

        var info = PvhLoader.Load(memory, Guest.Request(Elf64().Build(), 4 * 1024 * MiB));

        Assert.Equal(0UL, info.InitrdAddress);
        Assert.Equal(0u, memory.Read<uint>(0x6000 + 12));
        Assert.Equal(0UL, memory.Read<ulong>(0x6000 + 16));
        Assert.Equal(5u, memory.Read<uint>(0x6000 + 48));
        Assert.Equal(0x10_0000UL, memory.Read<ulong>(0x6100 + (3 * 24)));
        Assert.Equal(0xBFF0_0000UL, memory.Read<ulong>(0x6100 + (3 * 24) + 8));
        Assert.Equal(0x1_0000_0000UL, memory.Read<ulong>(0x6100 + (4 * 24)));
        Assert.Equal(0x4000_0000UL, memory.Read<ulong>(0x6100 + (4 * 24) + 8));
        Assert.Equal(1u, memory.Read<uint>(0x6100 + (4 * 24) + 16));
    }

    [Fact]
    public void Load_WithAcpi_PassesTheRsdpInTheStartInfo()
    {
        using var memory = Guest.Ram(64 * MiB);

        PvhLoader.Load(memory, Guest.Request(Elf64().Build()) with { AcpiRsdpAddress = 0xF0000 });

        Assert.Equal(0xF0000UL, memory.Read<ulong>(0x6000 + 32)); // hvm_start_info.rsdp_paddr
    }

    [Fact]
    public void Load_Elf32WithFourByteNote_Works()
    {
        var elf = new ElfBuilder { Is64 = false, Entry = 0x20_0000 };
        elf.Segments.Add(new ElfSegmentSpec(ElfImage.PtNote, 0, PvhNotes(BitConverter.GetBytes(0x20_0010u)), 0, 4));
        elf.Segments.Add(new ElfSegmentSpec(ElfImage.PtLoad, 0x20_0000, ElfBuilder.Pattern(0x100, 3), 0x100));
        using var memory = Guest.Ram(16 * MiB);

        var info = PvhLoader.Load(memory, Guest.Request(elf.Build(), 16 * MiB));

        Assert.Equal(0x20_0010u, info.EntryPoint);
        Assert.Equal(elf.Segments[1].Data, Guest.Bytes(memory, 0x20_0000, 0x100));
    }

    public static TheoryData<string, string> MalformedCases => new()
    {
        { "no note", "'vmlinux': the ELF file has no PVH entry point (no XEN_ELFNOTE_PHYS32_ENTRY note). Build the kernel with CONFIG_PVH=y, or pass its bzImage." },
        { "segment outside RAM", "'vmlinux': segment at 0x3fff000 +0x2000 is outside guest RAM (64 MiB). Give the guest more memory." },
        { "segment address overflows", "'vmlinux': segment at 0xfffffffffffff000 +0x2000 is outside guest RAM (64 MiB). Give the guest more memory." },
        { "segment in the MMIO hole", "'vmlinux': segment at 0xfec00000 +0x1000 is outside guest RAM (64 MiB). Give the guest more memory." },
        { "segment below 1 MiB", "'vmlinux': segment at 0x7000 +0x1000 overlaps the boot data below 1 MiB. Link the kernel at 1 MiB (0x100000) or above." },
        { "segment beyond the file", $"'vmlinux': program header 0: file data at offset 0xe8 +0x3000 is beyond the end of the file (0x293c bytes). {Corrupt}" },
        { "segment offset overflows", $"'vmlinux': program header 0: file data at offset 0xffffffffffffff00 +0x2000 is beyond the end of the file (0x293c bytes). {Corrupt}" },
        { "filesz larger than memsz", $"'vmlinux': program header 1: p_filesz 0x800 is larger than p_memsz 0x7ff. {Corrupt}" },
        { "entry outside the segments", $"'vmlinux': the entry point 0x1300000 is not inside any loadable segment. {Corrupt}" },
        { "phoff beyond the file", $"'vmlinux': the program header table at offset 0xffffffffffffffc0 +0xa8 is beyond the end of the file (0x293c bytes). {Corrupt}" },
        { "phnum zero", $"'vmlinux': e_phnum is 0 (expected 1 to 64 program headers). {Corrupt}" },
        { "phentsize wrong", $"'vmlinux': e_phentsize is 32, not 56. {Corrupt}" },
        { "wrong machine", $"'vmlinux': ELF machine 183 is not x86-64 (62). {Corrupt}" },
        { "not executable", $"'vmlinux': ELF type 3 is not an executable (ET_EXEC, 2). {Corrupt}" },
        { "truncated header", $"'vmlinux': the file is 40 bytes, too short for an ELF64 header (64 bytes). {Corrupt}" },
        { "big-endian", $"'vmlinux': ELF data encoding 2 is not little-endian (1). {Corrupt}" },
        { "bad class", $"'vmlinux': unknown ELF class 3 (expected 1 for ELF32 or 2 for ELF64). {Corrupt}" },
        { "note descriptor of 2 bytes", $"'vmlinux': the PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY) has a 2-byte descriptor, not 4 or 8. {Corrupt}" },
        { "entry above 4 GiB", $"'vmlinux': the PVH entry point 0x100001000 is above 4 GiB. {Corrupt}" },
        { "no loadable segment", $"'vmlinux': the ELF file has no loadable (PT_LOAD) segment. {Corrupt}" },
    };

    [Theory]
    [MemberData(nameof(MalformedCases))]
    public void Load_MalformedElf_ThrowsWithTheExactProblemAndWritesNothing(string kind, string message)
    {
        var elf = Elf64();
        var s = elf.Segments;
        byte[]? raw = null;
        switch (kind)
        {
            case "no note": s[2] = s[2] with { Data = ElfBuilder.Note("Xen", 6, "linux\0"u8.ToArray()) }; break;
            case "segment outside RAM": s[0] = s[0] with { PhysicalAddress = 0x3FF_F000, MemorySize = 0x2000 }; elf = Retarget(elf, 0x3FF_F000); break;
            case "segment address overflows": s[0] = s[0] with { PhysicalAddress = 0xFFFF_FFFF_FFFF_F000 }; s[0] = s[0] with { MemorySize = 0x2000 }; break;
            case "segment in the MMIO hole": s[1] = s[1] with { PhysicalAddress = 0xFEC0_0000, Data = new byte[0x1000], MemorySize = 0x1000 }; break;
            case "segment below 1 MiB": s[1] = s[1] with { PhysicalAddress = 0x7000, Data = new byte[0x800], MemorySize = 0x1000 }; break;
            case "segment beyond the file": s[0] = s[0] with { FileSizeOverride = 0x3000 }; break;
            case "segment offset overflows": s[0] = s[0] with { OffsetOverride = 0xFFFF_FFFF_FFFF_FF00 }; break;
            case "filesz larger than memsz": s[1] = s[1] with { MemorySize = 0x7FF }; break;
            case "entry outside the segments": elf = Retarget(elf, 0x130_0000); break;
            case "phoff beyond the file": elf.PhoffOverride = 0xFFFF_FFFF_FFFF_FFC0; break;
            case "phnum zero": elf.PhnumOverride = 0; break;
            case "phentsize wrong": elf.PhentsizeOverride = 32; break;
            case "wrong machine": elf.Machine = 183; break;
            case "not executable": elf.Type = 3; break;
            case "truncated header": raw = elf.Build()[..40]; break;
            case "big-endian": raw = elf.Build(); raw[5] = 2; break;
            case "bad class": raw = elf.Build(); raw[4] = 3; break;
            case "note descriptor of 2 bytes": s[2] = s[2] with { Data = ElfBuilder.Note("Xen", 18, [0x40, 0x00]) }; break;
            case "entry above 4 GiB": elf = Retarget(elf, 0x1_0000_1000); break;
            case "no loadable segment": s[0] = s[0] with { Type = 6 }; s[1] = s[1] with { Type = 6 }; break;
            default: throw new InvalidOperationException(kind);
        }

        using var memory = Guest.Ram(64 * MiB);

        var e = Assert.Throws<BootImageException>(() => PvhLoader.Load(memory, Guest.Request(raw ?? elf.Build(), fileName: "vmlinux")));

        Assert.Equal(message, e.Message);
        Assert.Equal(0xCC, memory.Read<byte>(0x6000));
        Assert.Equal(0xCC, memory.Read<byte>(0x20000));
        Assert.Equal(0, memory.Read<byte>(0x100_0000));
    }

    [Fact]
    public void Load_InitrdTooLarge_Throws()
    {
        using var memory = Guest.Ram(32 * MiB);

        var e = Assert.Throws<BootImageException>(() => PvhLoader.Load(memory, Guest.Request(Elf64().Build(), 32 * MiB, new byte[16 * MiB], fileName: "vmlinux", initrdName: "big.cpio")));

        Assert.Equal("'big.cpio': the initrd (0x1000000 bytes) does not fit in guest RAM between the kernel's end at 0x1201000 and 0x2000000 (32 MiB of RAM). Give the guest more memory or use a smaller initrd.", e.Message);
    }

    [Fact]
    public void Load_SegmentEndingExactlyAtTheEndOfRam_Fits()
    {
        var elf = Elf64();
        elf.Segments[1] = elf.Segments[1] with { PhysicalAddress = 0x3FF_F800 };
        using var memory = Guest.Ram(64 * MiB);

        var info = PvhLoader.Load(memory, Guest.Request(elf.Build()));

        Assert.Equal(0x400_0000UL, info.KernelEnd);
        Assert.Equal(elf.Segments[1].Data, Guest.Bytes(memory, 0x3FF_F800, 0x800));
    }

    /// <summary>The same image with the PVH note pointing at <paramref name="entry"/>.</summary>
    private static ElfBuilder Retarget(ElfBuilder elf, ulong entry)
    {
        elf.Segments[2] = elf.Segments[2] with { Data = PvhNotes(BitConverter.GetBytes(entry)) };
        return elf;
    }
}
