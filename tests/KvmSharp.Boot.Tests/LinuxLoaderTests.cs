using KvmSharp.Boot.Linux;
using KvmSharp.Memory;

namespace KvmSharp.Boot.Tests;

public class LinuxLoaderTests
{
    private const ulong MiB = Guest.MiB;
    private const ulong ZeroPage = 0x7000;

    [Fact]
    public void Load_RelocatableKernel_LoadsAtPrefAddressAndFillsEveryBootParamsField()
    {
        var builder = new BzImageBuilder();
        byte[] file = builder.Build();
        byte[] initrd = ElfBuilder.Pattern(0x1800, 0x40);
        using var memory = Guest.Ram(64 * MiB);

        var info = LinuxLoader.Load(memory, Guest.Request(file, 64 * MiB, initrd, "console=ttyS0 root=/dev/vda"));

        Assert.Equal(0x100_0200UL, info.EntryPoint);
        Assert.Equal(0x100_0000UL, info.KernelLoadAddress);
        Assert.Equal(0x3000UL, info.KernelSize);
        Assert.Equal(0x180_0000UL, info.KernelEnd);
        Assert.Equal(ZeroPage, info.BootParamsAddress);
        Assert.Equal(0x20000UL, info.CommandLineAddress);
        Assert.Equal((ushort)0x020F, info.ProtocolVersion);
        // Highest page-aligned address below 64 MiB that holds 0x1800 bytes.
        Assert.Equal(0x3FF_E000UL, info.InitrdAddress);
        Assert.Equal(0x1800UL, info.InitrdSize);
        Assert.Equal(new BootEntry(BootMode.Long64, 0x100_0200, Rsi: 0x7000), info.Entry);

        // The protected-mode kernel, byte for byte, and the initrd.
        Assert.Equal(file.AsSpan(builder.SetupSize).ToArray(), Guest.Bytes(memory, 0x100_0000, 0x3000));
        Assert.Equal(initrd, Guest.Bytes(memory, 0x3FF_E000, 0x1800));

        // boot_params: everything outside the setup header is zero except what the loader fills in.
        byte[] bp = Guest.Bytes(memory, ZeroPage, 4096);
        Assert.All(bp[..0xC0], b => Assert.Equal(0, b));
        Assert.Equal(0u, U32(bp, 0x0C0)); // ext_ramdisk_image
        Assert.Equal(0u, U32(bp, 0x0C4)); // ext_ramdisk_size
        Assert.Equal(0u, U32(bp, 0x0C8)); // ext_cmd_line_ptr
        Assert.Equal(0, bp[0x1EF]); // sentinel
        Assert.Equal(4, bp[0x1E8]); // e820_entries

        // The setup header, copied from the file up to 0x202 + 0x6A.
        Assert.Equal(4, bp[0x1F1]);
        Assert.Equal(0x300u, U32(bp, 0x1F4)); // syssize
        Assert.Equal(0xAA55, U16(bp, 0x1FE));
        Assert.Equal(0x6A, bp[0x201]);
        Assert.Equal("HdrS"u8.ToArray(), bp[0x202..0x206]);
        Assert.Equal(0x020F, U16(bp, 0x206));
        Assert.Equal(0xFF, bp[0x210]); // type_of_loader
        Assert.Equal(0x01, bp[0x211]); // loadflags as the kernel gave them
        Assert.Equal(0x100_0000u, U32(bp, 0x214)); // code32_start = load address
        Assert.Equal(0x3FF_E000u, U32(bp, 0x218)); // ramdisk_image
        Assert.Equal(0x1800u, U32(bp, 0x21C)); // ramdisk_size
        Assert.Equal(0x2_0000u, U32(bp, 0x228)); // cmd_line_ptr
        Assert.Equal(0x7FFF_FFFFu, U32(bp, 0x22C)); // initrd_addr_max
        Assert.Equal(0x20_0000u, U32(bp, 0x230)); // kernel_alignment
        Assert.Equal(1, bp[0x234]); // relocatable_kernel
        Assert.Equal(0x03, U16(bp, 0x236)); // xloadflags
        Assert.Equal(0x7FFu, U32(bp, 0x238)); // cmdline_size
        Assert.Equal(0UL, U64(bp, 0x250)); // setup_data cleared, not the file's pointer
        Assert.Equal(0x100_0000UL, U64(bp, 0x258)); // pref_address
        Assert.Equal(0x80_0000u, U32(bp, 0x260)); // init_size
        Assert.Equal(0x190u, U32(bp, 0x264)); // handover_offset
        Assert.Equal(0, bp[0x26C]); // past the header: not copied

        // e820_table.
        Assert.Equal(0UL, U64(bp, 0x2D0));
        Assert.Equal(0x9FC00UL, U64(bp, 0x2D0 + 8));
        Assert.Equal(1u, U32(bp, 0x2D0 + 16));
        Assert.Equal(0x9FC00UL, U64(bp, 0x2E4));
        Assert.Equal(0x400UL, U64(bp, 0x2E4 + 8));
        Assert.Equal(2u, U32(bp, 0x2E4 + 16));
        Assert.Equal(0xF0000UL, U64(bp, 0x2F8));
        Assert.Equal(0x10000UL, U64(bp, 0x2F8 + 8));
        Assert.Equal(2u, U32(bp, 0x2F8 + 16));
        Assert.Equal(0x100000UL, U64(bp, 0x30C));
        Assert.Equal(0x3F0_0000UL, U64(bp, 0x30C + 8));
        Assert.Equal(1u, U32(bp, 0x30C + 16));
        Assert.All(bp[0x320..], b => Assert.Equal(0, b));

        // The command line and its NUL.
        Assert.Equal("console=ttyS0 root=/dev/vda\0"u8.ToArray(), Guest.Bytes(memory, 0x20000, 28));
    }

    [Fact]
    public void Load_SysSizeRoundedUpToAParagraph_IsAccepted()
    {
        // arch/x86/boot/tools/build.c rounds syssize up to 16 bytes: the file may end up to 15 bytes early.
        using var memory = Guest.Ram(64 * MiB);
        var builder = new BzImageBuilder { KernelSize = 0x2FF8, SysSize = 0x300 };

        var info = LinuxLoader.Load(memory, Guest.Request(builder.Build()));

        Assert.Equal(0x100_0200UL, info.Entry.EntryPoint);
    }

    [Fact]
    public void Load_WithAcpi_PassesTheRsdpInBootParams()
    {
        using var memory = Guest.Ram(64 * MiB);

        LinuxLoader.Load(memory, Guest.Request(new BzImageBuilder().Build()) with { AcpiRsdpAddress = 0xF0000 });

        Assert.Equal(0xF0000UL, memory.Read<ulong>(ZeroPage + 0x070)); // boot_params.acpi_rsdp_addr
    }

    [Fact]
    public void Load_NoInitrd_LeavesRamdiskFieldsZero()
    {
        using var memory = Guest.Ram(64 * MiB);

        var info = LinuxLoader.Load(memory, Guest.Request(new BzImageBuilder().Build(), cmdline: string.Empty));

        Assert.Equal(0UL, info.InitrdAddress);
        Assert.Equal(0UL, info.InitrdSize);
        Assert.Equal(0u, memory.Read<uint>(ZeroPage + 0x218));
        Assert.Equal(0u, memory.Read<uint>(ZeroPage + 0x21C));
        Assert.Equal(0, memory.Read<byte>(0x20000));
    }

    [Fact]
    public void Load_InitrdAddrMaxBelowRam_PlacesTheInitrdUnderIt()
    {
        var builder = new BzImageBuilder { InitrdAddrMax = 0x37FF_FFFF };
        using var memory = Guest.Ram(1024 * MiB);

        var info = LinuxLoader.Load(memory, Guest.Request(builder.Build(), 1024 * MiB, new byte[0x10_0001]));

        // 0x38000000 - 0x100001, rounded down to a page.
        Assert.Equal(0x37EF_F000UL, info.InitrdAddress);
        Assert.Equal(0x37EF_F000u, memory.Read<uint>(ZeroPage + 0x218));
        Assert.Equal(0x10_0001u, memory.Read<uint>(ZeroPage + 0x21C));
    }

    [Fact]
    public void Load_InitrdJustFitsAboveInitSize()
    {
        // Kernel occupies [16 MiB, 24 MiB); 32 MiB of RAM leaves exactly 8 MiB.
        using var memory = Guest.Ram(32 * MiB);

        var info = LinuxLoader.Load(memory, Guest.Request(new BzImageBuilder().Build(), 32 * MiB, new byte[8 * MiB]));

        Assert.Equal(0x180_0000UL, info.InitrdAddress);
    }

    [Fact]
    public void Load_NonRelocatableKernel_LoadsAtOneMiB()
    {
        var builder = new BzImageBuilder { Relocatable = false };
        using var memory = Guest.Ram(64 * MiB);

        var info = LinuxLoader.Load(memory, Guest.Request(builder.Build()));

        Assert.Equal(0x10_0000UL, info.KernelLoadAddress);
        Assert.Equal(0x10_0200UL, info.EntryPoint);
        Assert.Equal(0x180_0000UL, info.KernelEnd); // it runs at pref_address: [16 MiB, 16 MiB + init_size)
        Assert.Equal(0x10_0000u, memory.Read<uint>(ZeroPage + 0x214));
        Assert.Equal(BzImageBuilder.KernelByte(0), memory.Read<byte>(0x10_0000));
    }

    [Fact]
    public void Load_PrefAddressNotAligned_LoadsAtOneMiBAlignedUp()
    {
        var builder = new BzImageBuilder { PrefAddress = 0x100_1000 };
        using var memory = Guest.Ram(64 * MiB);

        var info = LinuxLoader.Load(memory, Guest.Request(builder.Build()));

        Assert.Equal(0x20_0000UL, info.KernelLoadAddress);
        Assert.Equal(0x20_0200UL, info.EntryPoint);
    }

    [Fact]
    public void Load_SetupSectsZero_MeansFour()
    {
        var builder = new BzImageBuilder { SetupSects = 0 };
        using var memory = Guest.Ram(64 * MiB);

        LinuxLoader.Load(memory, Guest.Request(builder.Build()));

        Assert.Equal(BzImageBuilder.KernelByte(0), memory.Read<byte>(0x100_0000));
        Assert.Equal(0, memory.Read<byte>(ZeroPage + 0x1F1));
    }

    [Fact]
    public void Parse_ReadsTheHeaderFields()
    {
        var image = BzImage.Parse(new BzImageBuilder { SetupSects = 0x1F }.Build(), "vmlinuz");

        Assert.Equal(0x1F, image.SetupSects);
        Assert.Equal(0x4000, image.SetupSize);
        Assert.Equal(0x3000, image.KernelSize);
        Assert.Equal(0x26C, image.HeaderEnd);
        Assert.Equal(0x7B, image.RawHeader.Count);
        Assert.Equal(0x7FFu, image.CmdlineSize);
        Assert.Equal(0x100u, image.PayloadOffset);
        Assert.Equal(0x200u, image.PayloadLength);
        Assert.Equal(21, image.MinAlignment);
        Assert.Equal("2.15", BzImage.FormatVersion(image.Version));
    }

    private static readonly Dictionary<string, Action<BzImageBuilder>> Mutations = new()
    {
        ["wrong magic"] = b => { b.Magic = "HdrZ"; },
        ["truncated before the magic"] = b => { b.FileLength = 0x204; },
        ["truncated inside the version"] = b => { b.FileLength = 0x207; },
        ["wrong boot flag"] = b => { b.BootFlag = 0x55AA; },
        ["protocol 2.11"] = b => { b.Version = 0x020B; },
        ["no 64-bit entry"] = b => { b.XLoadFlags = 0x02; },
        ["zImage"] = b => { b.LoadFlags = 0x80; },
        ["setup_sects beyond the file"] = b => { b.SetupSects = 0x40; b.FileLength = 0x2000; },
        ["no protected-mode kernel at all"] = b => { b.FileLength = 0xA00; },
        ["header shorter than 2.10"] = b => { b.JumpDisplacement = 0x50; },
        ["syssize beyond the file"] = b => { b.SysSize = 0x301; },
        ["syssize near uint max"] = b => { b.SysSize = uint.MaxValue; },
        ["payload overflowing"] = b => { b.PayloadOffset = 0xFFFF_FFF0; b.PayloadLength = 0x20; },
        ["kernel_alignment not a power of two"] = b => { b.KernelAlignment = 0x30_0000; },
        ["kernel_alignment zero"] = b => { b.KernelAlignment = 0; },
        ["init_size larger than RAM"] = b => { b.InitSize = 0xFFFF_FFFF; },
        ["pref_address near ulong max"] = b => { b.PrefAddress = 0xFFFF_FFFF_FFE0_0000; },
        ["non-relocatable with pref_address below 1 MiB"] = b => { b.Relocatable = false; b.PrefAddress = 0x8000; },
    };

    public static TheoryData<string, string> MalformedImages => new()
    {
        { "wrong magic", "'vmlinuz': not a Linux bzImage (no 'HdrS' signature at offset 0x202). Pass a bzImage, an ELF vmlinux with a PVH note, or a multiboot kernel." },
        { "truncated before the magic", "'vmlinuz': not a Linux bzImage (no 'HdrS' signature at offset 0x202). Pass a bzImage, an ELF vmlinux with a PVH note, or a multiboot kernel." },
        { "truncated inside the version", "'vmlinuz': the file is 519 bytes, too short for a setup header. The file is corrupt or truncated; rebuild or re-download the kernel." },
        { "wrong boot flag", "'vmlinuz': no boot flag 0xAA55 at offset 0x1FE (found 0x55AA). The file is corrupt or truncated; rebuild or re-download the kernel." },
        { "protocol 2.11", "'vmlinuz': boot protocol 2.11 is too old (KvmSharp needs 2.12 or later, the first with xloadflags and a 64-bit entry point). Use a Linux 3.8 or later kernel." },
        { "no 64-bit entry", "'vmlinuz': the kernel has no 64-bit entry point (XLF_KERNEL_64 clear in xloadflags). Build a 64-bit kernel (CONFIG_X86_64=y), or pass a multiboot kernel for a 32-bit guest." },
        { "zImage", "'vmlinuz': the kernel is not loaded high (LOADED_HIGH clear in loadflags): a zImage cannot be booted. Build a bzImage (make bzImage)." },
        { "setup_sects beyond the file", "'vmlinuz': setup_sects says 64 sectors of setup code (0x8200 bytes with the boot sector), but the file is only 0x2000 bytes. The file is corrupt or truncated; rebuild or re-download the kernel." },
        { "no protected-mode kernel at all", "'vmlinuz': setup_sects says 4 sectors of setup code (0xa00 bytes with the boot sector), but the file is only 0xa00 bytes. The file is corrupt or truncated; rebuild or re-download the kernel." },
        { "header shorter than 2.10", "'vmlinuz': the setup header ends at 0x252 (the jump at 0x200), before init_size at 0x260. The file is corrupt or truncated; rebuild or re-download the kernel." },
        { "syssize beyond the file", "'vmlinuz': the protected-mode kernel is 0x3000 bytes, less than the 0x3010 that syssize says. The file is corrupt or truncated; rebuild or re-download the kernel." },
        { "syssize near uint max", "'vmlinuz': the protected-mode kernel is 0x3000 bytes, less than the 0xffffffff0 that syssize says. The file is corrupt or truncated; rebuild or re-download the kernel." },
        { "payload overflowing", "'vmlinuz': the payload at 0xfffffff0 +0x20 is beyond the protected-mode kernel (0x3000 bytes). The file is corrupt or truncated; rebuild or re-download the kernel." },
        { "kernel_alignment not a power of two", "'vmlinuz': kernel_alignment 0x300000 is not a power of two of at least 4 KiB. The file is corrupt or truncated; rebuild or re-download the kernel." },
        { "kernel_alignment zero", "'vmlinuz': kernel_alignment 0x0 is not a power of two of at least 4 KiB. The file is corrupt or truncated; rebuild or re-download the kernel." },
        { "init_size larger than RAM", "'vmlinuz': the kernel needs RAM from 0x1000000 to 0x100ffffff (0x3000 bytes of image, init_size 0xffffffff from 0x1000000), beyond the 0x4000000 bytes of RAM below the MMIO hole (64 MiB of RAM). Give the guest more memory." },
        { "pref_address near ulong max", "'vmlinuz': the kernel needs RAM from 0xffffffffffe00000 to 0xffffffffffffffff (0x3000 bytes of image, init_size 0x800000 from 0xffffffffffe00000), beyond the 0x4000000 bytes of RAM below the MMIO hole (64 MiB of RAM). Give the guest more memory." },
        { "non-relocatable with pref_address below 1 MiB", "'vmlinuz': pref_address 0x8000 of a non-relocatable kernel is below 1 MiB. The file is corrupt or truncated; rebuild or re-download the kernel." },
    };

    [Theory]
    [MemberData(nameof(MalformedImages))]
    public void Load_MalformedImage_ThrowsWithTheExactProblemAndWritesNothing(string kind, string message)
    {
        var builder = new BzImageBuilder();
        Mutations[kind](builder);
        using var memory = Guest.Ram(64 * MiB);

        var e = Assert.Throws<BootImageException>(() => LinuxLoader.Load(memory, Guest.Request(builder.Build())));

        Assert.Equal(message, e.Message);
        Assert.Equal("vmlinuz", e.FileName);
        Assert.Equal(0xCC, memory.Read<byte>(ZeroPage + 0x1F1));
        Assert.Equal(0, memory.Read<byte>(0x100_0000));
    }

    [Fact]
    public void Load_KernelDoesNotFitInSmallRam_SaysHowMuchItNeeds()
    {
        using var memory = Guest.Ram(16 * MiB);

        var e = Assert.Throws<BootImageException>(() => LinuxLoader.Load(memory, Guest.Request(new BzImageBuilder().Build(), 16 * MiB)));

        Assert.Equal(
            "'vmlinuz': the kernel needs RAM from 0x1000000 to 0x1800000 (0x3000 bytes of image, init_size 0x800000 from 0x1000000), beyond the 0x1000000 bytes of RAM below the MMIO hole (16 MiB of RAM). Give the guest more memory.",
            e.Message);
    }

    [Fact]
    public void Load_InitrdTooLargeForRam_NamesTheInitrd()
    {
        using var memory = Guest.Ram(32 * MiB);

        var e = Assert.Throws<BootImageException>(() => LinuxLoader.Load(memory, Guest.Request(new BzImageBuilder().Build(), 32 * MiB, new byte[(8 * MiB) + 1])));

        Assert.Equal(
            "'initrd.img': the initrd (0x800001 bytes) does not fit in guest RAM between the kernel's end at 0x1800000 and 0x2000000 (32 MiB of RAM). Give the guest more memory or use a smaller initrd.",
            e.Message);
        Assert.Equal("initrd.img", e.FileName);
    }

    [Fact]
    public void Load_InitrdAddrMaxBelowTheKernel_Throws()
    {
        var builder = new BzImageBuilder { InitrdAddrMax = 0xFF_FFFF };
        using var memory = Guest.Ram(64 * MiB);

        var e = Assert.Throws<BootImageException>(() => LinuxLoader.Load(memory, Guest.Request(builder.Build(), initrd: new byte[1])));

        Assert.Equal(
            "'initrd.img': the initrd (0x1 bytes) does not fit in guest RAM between the kernel's end at 0x1800000 and 0x1000000 (64 MiB of RAM). Give the guest more memory or use a smaller initrd.",
            e.Message);
    }

    [Fact]
    public void Load_EmptyInitrd_Throws()
    {
        using var memory = Guest.Ram(64 * MiB);

        var e = Assert.Throws<BootImageException>(() => LinuxLoader.Load(memory, Guest.Request(new BzImageBuilder().Build(), initrd: [])));

        Assert.Equal("'initrd.img': the initrd is empty. Pass a cpio archive (optionally compressed) or leave the initrd out.", e.Message);
    }

    [Fact]
    public void Load_CommandLineLongerThanCmdlineSize_Throws()
    {
        var builder = new BzImageBuilder { CmdlineSize = 16 };
        using var memory = Guest.Ram(64 * MiB);

        LinuxLoader.Load(memory, Guest.Request(builder.Build(), cmdline: new string('a', 16)));
        var e = Assert.Throws<BootImageException>(() => LinuxLoader.Load(memory, Guest.Request(builder.Build(), cmdline: new string('a', 17))));

        Assert.Equal("'vmlinuz': the command line is 17 bytes, longer than the kernel's limit of 16 bytes (cmdline_size). Shorten the command line.", e.Message);
    }

    [Fact]
    public void Load_CommandLineLongerThanOurArea_Throws()
    {
        var builder = new BzImageBuilder { CmdlineSize = 0xFFFF_FFFF };
        using var memory = Guest.Ram(64 * MiB);

        LinuxLoader.Load(memory, Guest.Request(builder.Build(), cmdline: new string('a', 4095)));
        var e = Assert.Throws<BootImageException>(() => LinuxLoader.Load(memory, Guest.Request(builder.Build(), cmdline: new string('a', 4096))));

        Assert.Equal("'vmlinuz': the command line is 4096 bytes, longer than KvmSharp's limit of 4095 bytes. Shorten the command line.", e.Message);
        Assert.Equal(0, memory.Read<byte>(0x20000 + 4095));
    }

    [Fact]
    public void Load_CommandLineWithNul_Throws()
    {
        using var memory = Guest.Ram(64 * MiB);

        var e = Assert.Throws<BootImageException>(() => LinuxLoader.Load(memory, Guest.Request(new BzImageBuilder().Build(), cmdline: "a\0b")));

        Assert.Equal("'vmlinuz': the command line contains a NUL character. Remove it from the command line.", e.Message);
    }

    [Fact]
    public void Load_MemorySmallerThanRamSize_IsAHostError()
    {
        using var memory = GuestMemory.Create(16 * MiB);

        var e = Assert.Throws<ArgumentException>(() => LinuxLoader.Load(memory, Guest.Request(new BzImageBuilder().Build(), 64 * MiB)));

        Assert.StartsWith("Guest memory does not back RAM range 0x0+0x4000000 of a 64 MiB guest.", e.Message, StringComparison.Ordinal);
    }

    private static ushort U16(byte[] b, int at) => BitConverter.ToUInt16(b, at);

    private static uint U32(byte[] b, int at) => BitConverter.ToUInt32(b, at);

    private static ulong U64(byte[] b, int at) => BitConverter.ToUInt64(b, at);
}
