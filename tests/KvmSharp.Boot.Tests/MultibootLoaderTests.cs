using KvmSharp.Boot.Elf;
using KvmSharp.Boot.Multiboot;

namespace KvmSharp.Boot.Tests;

public class MultibootLoaderTests
{
    private const ulong MiB = Guest.MiB;
    private const string Corrupt = "The file is corrupt or truncated; rebuild or re-download the kernel.";

    internal static ElfBuilder Elf32(uint flags = 0x3)
    {
        var elf = new ElfBuilder { Is64 = false, Entry = 0x10_0010 };
        byte[] data = [.. MultibootImages.Header(flags).AsSpan(0, 12), .. ElfBuilder.Pattern(0x3F4, 5)];
        elf.Segments.Add(new ElfSegmentSpec(ElfImage.PtLoad, 0x10_0000, data, 0x1000));
        return elf;
    }

    [Fact]
    public void Load_Elf32_LoadsSegmentsAndWritesTheInfoStructure()
    {
        var elf = Elf32();
        byte[] initrd = ElfBuilder.Pattern(0x2345, 7);
        using var memory = Guest.Ram(64 * MiB);
        memory.Fill(0x10_0000, 0x2000, 0xCC);

        var info = MultibootLoader.Load(memory, Guest.Request(elf.Build(), 64 * MiB, initrd, "root=/dev/vda", fileName: "kernel.elf"));

        Assert.Equal(0x10_0010u, info.EntryPoint);
        Assert.Equal(0x8000u, info.InfoAddress);
        Assert.Equal(0x10_0000UL, info.KernelStart);
        Assert.Equal(0x10_1000UL, info.KernelEnd);
        Assert.Equal(0x3FF_D000UL, info.InitrdAddress);
        Assert.Equal(new BootEntry(BootMode.Protected32, 0x10_0010, Rax: 0x2BAD_B002, Rbx: 0x8000), info.Entry);

        Assert.Equal(elf.Segments[0].Data, Guest.Bytes(memory, 0x10_0000, 0x400));
        Assert.All(Guest.Bytes(memory, 0x10_0400, 0xC00), b => Assert.Equal(0, b));
        Assert.Equal(0xCC, memory.Read<byte>(0x10_1000));
        Assert.Equal(initrd, Guest.Bytes(memory, 0x3FF_D000, 0x2345));

        byte[] mbi = Guest.Bytes(memory, 0x8000, 116);
        Assert.Equal(0x24Du, U32(mbi, 0)); // mem, cmdline, mods, mmap, boot_loader_name
        Assert.Equal(639u, U32(mbi, 4)); // mem_lower
        Assert.Equal(64512u, U32(mbi, 8)); // mem_upper: 63 MiB in KiB
        Assert.Equal(0u, U32(mbi, 12)); // boot_device
        Assert.Equal(0x2_0000u, U32(mbi, 16)); // cmdline
        Assert.Equal(1u, U32(mbi, 20)); // mods_count
        Assert.Equal(0x8100u, U32(mbi, 24)); // mods_addr
        Assert.All(mbi[28..44], b => Assert.Equal(0, b)); // syms
        Assert.Equal(96u, U32(mbi, 44)); // mmap_length: 4 entries of 24 bytes
        Assert.Equal(0x8200u, U32(mbi, 48)); // mmap_addr
        Assert.All(mbi[52..64], b => Assert.Equal(0, b)); // drives, config_table
        Assert.Equal(0x8F00u, U32(mbi, 64)); // boot_loader_name
        Assert.All(mbi[68..], b => Assert.Equal(0, b)); // apm, vbe, framebuffer

        // GRUB's and QEMU's form: the kernel's path, a space, the arguments.
        Assert.Equal("kernel.elf root=/dev/vda\0"u8.ToArray(), Guest.Bytes(memory, 0x2_0000, 25));
        Assert.Equal("KvmSharp\0"u8.ToArray(), Guest.Bytes(memory, 0x8F00, 9));

        // Module 0: the initrd, [start, end), its string, reserved.
        Assert.Equal(0x3FF_D000u, memory.Read<uint>(0x8100));
        Assert.Equal(0x3FF_F345u, memory.Read<uint>(0x8104));
        Assert.Equal(0x2_1000u, memory.Read<uint>(0x8108));
        Assert.Equal(0u, memory.Read<uint>(0x810C));
        Assert.Equal("initrd.img\0"u8.ToArray(), Guest.Bytes(memory, 0x2_1000, 11));

        byte[] expectedMap =
        [
            20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x00, 0xFC, 0x09, 0, 0, 0, 0, 0, 1, 0, 0, 0,
            20, 0, 0, 0, 0x00, 0xFC, 0x09, 0, 0, 0, 0, 0, 0x00, 0x04, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0,
            20, 0, 0, 0, 0x00, 0x00, 0x0F, 0, 0, 0, 0, 0, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 2, 0, 0, 0,
            20, 0, 0, 0, 0x00, 0x00, 0x10, 0, 0, 0, 0, 0, 0x00, 0x00, 0xF0, 0x03, 0, 0, 0, 0, 1, 0, 0, 0,
        ];
        Assert.Equal(expectedMap, Guest.Bytes(memory, 0x8200, 96));
    }

    [Fact]
    public void Load_NoInitrd_HasModulesFlagWithZeroModules()
    {
        using var memory = Guest.Ram(64 * MiB);

        var info = MultibootLoader.Load(memory, Guest.Request(Elf32().Build()));

        Assert.Equal(0UL, info.InitrdAddress);
        Assert.Equal(0u, memory.Read<uint>(0x8000 + 20));
        Assert.Equal(0xCC, memory.Read<byte>(0x2_1000));
    }

    [Fact]
    public void Load_AoutKludge_LoadsTheImageAndZeroesBss()
    {
        byte[] file = MultibootImages.Aout(0x600, loadEndAddr: 0x10_0400, bssEndAddr: 0x10_1000, entryAddr: 0x10_0080);
        using var memory = Guest.Ram(64 * MiB);
        memory.Fill(0x10_0000, 0x2000, 0xCC);

        var info = MultibootLoader.Load(memory, Guest.Request(file, fileName: "kernel.bin"));

        Assert.Equal(0x10_0080u, info.EntryPoint);
        Assert.Equal(0x10_0000UL, info.KernelStart);
        Assert.Equal(0x10_1000UL, info.KernelEnd);
        Assert.Equal(file[..0x400], Guest.Bytes(memory, 0x10_0000, 0x400));
        Assert.All(Guest.Bytes(memory, 0x10_0400, 0xC00), b => Assert.Equal(0, b));
        Assert.Equal(0xCC, memory.Read<byte>(0x10_1000));
        Assert.Equal(0x24Du, memory.Read<uint>(0x8000));
    }

    [Fact]
    public void Load_AoutKludgeWithoutLoadEndOrBss_LoadsTheWholeFile()
    {
        byte[] file = MultibootImages.Aout(0x600, loadEndAddr: 0, bssEndAddr: 0, entryAddr: 0x10_05FF, flags: 0x8001_0007);
        using var memory = Guest.Ram(64 * MiB);
        memory.Fill(0x10_0000, 0x2000, 0xCC);

        var info = MultibootLoader.Load(memory, Guest.Request(file, initrd: new byte[0x10], fileName: "kernel.bin"));

        Assert.Equal(0x10_0600UL, info.KernelEnd);
        Assert.Equal(file, Guest.Bytes(memory, 0x10_0000, 0x600));
        Assert.Equal(0xCC, memory.Read<byte>(0x10_0600));
        Assert.Equal(0x3FF_F000UL, info.InitrdAddress);
    }

    public static TheoryData<string, string> MalformedCases => new()
    {
        { "bad checksum", $"'kernel.bin': the multiboot header at offset 0x40 has a bad checksum (magic + flags + checksum = 0x1baeb005, not 0). {Corrupt}" },
        { "unknown required flag", "'kernel.bin': the multiboot header requires features KvmSharp does not support (flags 0x00010008, unknown required bits 0x8). Rebuild the kernel without them, or boot it with GRUB." },
        { "no header", "'kernel.bin': no multiboot header (magic 0x1BADB002) in the first 8192 bytes. Pass a bzImage, an ELF vmlinux with a PVH note, or a multiboot kernel." },
        { "header past 8 KiB", "'kernel.bin': no multiboot header (magic 0x1BADB002) in the first 8192 bytes. Pass a bzImage, an ELF vmlinux with a PVH note, or a multiboot kernel." },
        { "load_addr above header_addr", $"'kernel.bin': multiboot load_addr 0x100080 is above header_addr 0x100040. {Corrupt}" },
        { "load_addr before the file", $"'kernel.bin': multiboot load_addr 0x100000 starts 0x100 bytes before the header at file offset 0x40, before the start of the file. {Corrupt}" },
        { "load_end beyond the file", $"'kernel.bin': multiboot load_end_addr 0x100601 needs 0x601 bytes from file offset 0x0, beyond the end of the file (0x600 bytes). {Corrupt}" },
        { "load_end not above load_addr", $"'kernel.bin': multiboot load_end_addr 0x100000 is not above load_addr 0x100000. {Corrupt}" },
        { "bss_end below load_end", $"'kernel.bin': multiboot bss_end_addr 0x100200 is below the end of the loaded image 0x100400. {Corrupt}" },
        { "entry outside the image", $"'kernel.bin': multiboot entry_addr 0x101000 is outside the image [0x100000, 0x101000). {Corrupt}" },
        { "bss to 4 GiB", "'kernel.bin': image at 0x100000 +0xffefffff is outside guest RAM (64 MiB). Give the guest more memory." },
        { "image over the multiboot info", "'kernel.bin': image at 0x8000 +0x400 overlaps the multiboot information KvmSharp writes at 0x8000-0x8fff. Link the kernel clear of KvmSharp's boot data below 1 MiB (0x500-0x51f, 0x8000-0x8fff, 0x20000-0x20fff), or at 1 MiB (0x100000) or above." },
        { "image over the command line", "'kernel.bin': image at 0x1f000 +0x1400 overlaps the command line KvmSharp writes at 0x20000-0x20fff. Link the kernel clear of KvmSharp's boot data below 1 MiB (0x500-0x51f, 0x8000-0x8fff, 0x20000-0x20fff), or at 1 MiB (0x100000) or above." },
        { "image into the EBDA", "'kernel.bin': image at 0x9f000 +0x1000 runs into 0x9fc00-0xfffff (EBDA, VGA and BIOS area), which is not RAM. Link the kernel below 0x9fc00 or at 1 MiB (0x100000) or above." },
        { "truncated header", $"'kernel.bin': the multiboot header at offset 0x40 is cut off by the end of the file before its address fields. {Corrupt}" },
        { "no kludge and not ELF", $"'kernel.bin': the multiboot header has no a.out address fields (flag 16 clear) and the file is not an ELF executable. {Corrupt}" },
    };

    [Theory]
    [MemberData(nameof(MalformedCases))]
    public void Load_MalformedImage_ThrowsWithTheExactProblemAndWritesNothing(string kind, string message)
    {
        byte[] file = kind switch
        {
            "bad checksum" => WithHeader(MultibootImages.Header(0x1_0003, checksum: 0)),
            "unknown required flag" => WithHeader(MultibootImages.Header(0x1_0008)),
            "no header" => ElfBuilder.Pattern(0x600, 0x11),
            "header past 8 KiB" => [.. new byte[8192], .. MultibootImages.Header(0x1_0003)],
            "load_addr above header_addr" => MultibootImages.Aout(0x600, 0x10_0400, 0, 0x10_0080, loadAddr: 0x10_0080),
            "load_addr before the file" => MultibootImages.Aout(0x600, 0x10_0400, 0, 0x10_0080, headerAddr: 0x10_0100),
            "load_end beyond the file" => MultibootImages.Aout(0x600, 0x10_0601, 0, 0x10_0080),
            "load_end not above load_addr" => MultibootImages.Aout(0x600, 0x10_0000, 0, 0x10_0080),
            "bss_end below load_end" => MultibootImages.Aout(0x600, 0x10_0400, 0x10_0200, 0x10_0080),
            "entry outside the image" => MultibootImages.Aout(0x600, 0x10_0400, 0x10_1000, 0x10_1000),
            "bss to 4 GiB" => MultibootImages.Aout(0x600, 0x10_0400, 0xFFFF_FFFF, 0x10_0080),
            "image over the multiboot info" => MultibootImages.Aout(0x600, 0x8400, 0, 0x8080, loadAddr: 0x8000, headerAddr: 0x8040),
            "image over the command line" => MultibootImages.Aout(0x600, 0x1_F400, 0x2_0400, 0x1_F080, loadAddr: 0x1_F000, headerAddr: 0x1_F040),
            "image into the EBDA" => MultibootImages.Aout(0x600, 0x9_F400, 0xA_0000, 0x9_F080, loadAddr: 0x9_F000, headerAddr: 0x9_F040),
            "truncated header" => MultibootImages.Aout(0x600, 0x10_0400, 0, 0x10_0080)[..0x50],
            "no kludge and not ELF" => WithHeader(MultibootImages.Header(0x3)),
            _ => throw new InvalidOperationException(kind),
        };
        using var memory = Guest.Ram(64 * MiB);

        var e = Assert.Throws<BootImageException>(() => MultibootLoader.Load(memory, Guest.Request(file, fileName: "kernel.bin")));

        Assert.Equal(message, e.Message);
        Assert.Equal(0xCC, memory.Read<byte>(0x8000));
        Assert.Equal(0xCC, memory.Read<byte>(0x2_0000));
    }

    [Fact]
    public void Load_AoutBelow1MiB_LoadsWhereItAsks_InfoAndInitrdStayClear()
    {
        // As QEMU and GRUB load it: conventional memory is RAM, and this image stays clear of the boot data.
        byte[] file = MultibootImages.Aout(0x600, 0x1_0600, 0x1_1000, 0x1_0080, loadAddr: 0x1_0000, headerAddr: 0x1_0040);
        byte[] initrd = ElfBuilder.Pattern(0x100, 3);
        using var memory = Guest.Ram(64 * MiB);

        var info = MultibootLoader.Load(memory, Guest.Request(file, initrd: initrd, cmdline: "", fileName: "low.bin"));

        Assert.Equal(new BootEntry(BootMode.Protected32, 0x1_0080, Rax: 0x2BAD_B002, Rbx: 0x8000), info.Entry);
        Assert.Equal(0x1_0000UL, info.KernelStart);
        Assert.Equal(0x1_1000UL, info.KernelEnd);
        Assert.Equal(file, Guest.Bytes(memory, 0x1_0000, 0x600));
        Assert.All(Guest.Bytes(memory, 0x1_0600, 0xA00), b => Assert.Equal(0, b));
        Assert.Equal(0x3FF_F000UL, info.InitrdAddress); // at the top of RAM, never in conventional memory
        Assert.Equal(initrd, Guest.Bytes(memory, 0x3FF_F000, 0x100));
        Assert.Equal("low.bin\0"u8.ToArray(), Guest.Bytes(memory, 0x2_0000, 8)); // no arguments: the path alone
    }

    [Fact]
    public void Load_ElfWithASegmentBelow1MiB_LoadsBothSegments()
    {
        var elf = Elf32();
        byte[] low = ElfBuilder.Pattern(0x200, 9);
        elf.Segments.Add(new ElfSegmentSpec(ElfImage.PtLoad, 0x3_0000, low, 0x800));
        using var memory = Guest.Ram(64 * MiB);

        var info = MultibootLoader.Load(memory, Guest.Request(elf.Build(), fileName: "kernel.elf"));

        Assert.Equal(0x3_0000UL, info.KernelStart);
        Assert.Equal(0x10_1000UL, info.KernelEnd);
        Assert.Equal(low, Guest.Bytes(memory, 0x3_0000, 0x200));
        Assert.All(Guest.Bytes(memory, 0x3_0200, 0x600), b => Assert.Equal(0, b));
        Assert.Equal(elf.Segments[0].Data, Guest.Bytes(memory, 0x10_0000, 0x400));
    }

    [Fact]
    public void Load_WithAModule_AlsoKeepsItsStringClear()
    {
        byte[] file = MultibootImages.Aout(0x600, 0x2_1400, 0, 0x2_1080, loadAddr: 0x2_1000, headerAddr: 0x2_1040);
        using var memory = Guest.Ram(64 * MiB);

        var e = Assert.Throws<BootImageException>(() => MultibootLoader.Load(memory, Guest.Request(file, initrd: new byte[0x10], fileName: "kernel.bin")));

        Assert.Equal(
            "'kernel.bin': image at 0x21000 +0x400 overlaps the module string KvmSharp writes at 0x21000-0x21fff. Link the kernel clear of KvmSharp's boot data below 1 MiB (0x500-0x51f, 0x8000-0x8fff, 0x20000-0x20fff, 0x21000-0x21fff), or at 1 MiB (0x100000) or above.",
            e.Message);
    }

    [Theory]
    [InlineData("/boot/kernel.elf", "root=/dev/vda quiet", "/boot/kernel.elf root=/dev/vda quiet")]
    [InlineData("kernel.elf", "", "kernel.elf")]
    [InlineData(null, "a b", "kernel.elf a b")]
    public void CommandLine_IsTheKernelPathThenTheArguments(string? path, string arguments, string expected)
    {
        var request = Guest.Request([], cmdline: arguments, fileName: "kernel.elf") with { KernelPath = path };

        Assert.Equal(expected, MultibootLoader.CommandLine(request));
    }

    [Fact]
    public void Load_ElfSegmentOutsideRam_Throws()
    {
        var elf = Elf32();
        elf.Segments[0] = elf.Segments[0] with { PhysicalAddress = 0xFFFF_F000 };
        elf.Entry = 0xFFFF_F010;
        using var memory = Guest.Ram(64 * MiB);

        var e = Assert.Throws<BootImageException>(() => MultibootLoader.Load(memory, Guest.Request(elf.Build(), fileName: "kernel.elf")));

        Assert.Equal("'kernel.elf': segment at 0xfffff000 +0x1000 is outside guest RAM (64 MiB). Give the guest more memory.", e.Message);
    }

    [Fact]
    public void Load_ChecksumWrongInFirstCandidate_UsesTheNextValidHeader()
    {
        byte[] file = MultibootImages.Aout(0x600, 0x10_0400, 0, 0x10_0080);
        MultibootImages.Header(0x1_0003, checksum: 1).AsSpan(0, 12).CopyTo(file.AsSpan(0x10));
        using var memory = Guest.Ram(64 * MiB);

        var info = MultibootLoader.Load(memory, Guest.Request(file, fileName: "kernel.bin"));

        Assert.Equal(0x10_0080u, info.EntryPoint);
    }

    /// <summary>0x600 bytes of pattern with <paramref name="header"/> at offset 0x40.</summary>
    private static byte[] WithHeader(byte[] header)
    {
        byte[] file = ElfBuilder.Pattern(0x600, 0x11);
        header.AsSpan(0, 32).CopyTo(file.AsSpan(0x40));
        return file;
    }

    private static uint U32(byte[] b, int at) => BitConverter.ToUInt32(b, at);
}
