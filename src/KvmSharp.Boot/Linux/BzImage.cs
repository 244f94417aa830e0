using System.Buffers.Binary;

namespace KvmSharp.Boot.Linux;

/// <summary>
/// The real-mode setup header of a Linux bzImage (Documentation/arch/x86/boot.rst, "The Real-Mode Kernel
/// Header"), parsed and validated. Offsets are from the start of the file, which are also the offsets of
/// struct setup_header inside struct boot_params.
/// </summary>
public sealed class BzImage
{
    public const int SetupSectsOffset = 0x1F1;
    public const int SysSizeOffset = 0x1F4;
    public const int BootFlagOffset = 0x1FE;
    public const int JumpOffset = 0x200;
    public const int HeaderMagicOffset = 0x202;
    public const int VersionOffset = 0x206;
    public const int TypeOfLoaderOffset = 0x210;
    public const int LoadFlagsOffset = 0x211;
    public const int Code32StartOffset = 0x214;
    public const int RamdiskImageOffset = 0x218;
    public const int RamdiskSizeOffset = 0x21C;
    public const int CmdLinePtrOffset = 0x228;
    public const int InitrdAddrMaxOffset = 0x22C;
    public const int KernelAlignmentOffset = 0x230;
    public const int RelocatableKernelOffset = 0x234;
    public const int MinAlignmentOffset = 0x235;
    public const int XLoadFlagsOffset = 0x236;
    public const int CmdlineSizeOffset = 0x238;
    public const int PayloadOffsetOffset = 0x248;
    public const int PayloadLengthOffset = 0x24C;
    public const int SetupDataOffset = 0x250;
    public const int PrefAddressOffset = 0x258;
    public const int InitSizeOffset = 0x260;

    /// <summary>0xAA55 at 0x1FE.</summary>
    public const ushort BootFlag = 0xAA55;

    /// <summary>"HdrS" as a little-endian u32 at 0x202.</summary>
    public const uint HeaderMagic = 0x5372_6448;

    /// <summary>Protocol 2.12: the first with xloadflags (XLF_KERNEL_64) and the ext_* fields (Linux 3.8).</summary>
    public const ushort MinimumVersion = 0x020C;

    /// <summary>loadflags: the protected-mode code is loaded at 0x100000 (a bzImage, not a zImage).</summary>
    public const byte LoadedHigh = 0x01;

    /// <summary>loadflags: heap_end_ptr is valid.</summary>
    public const byte CanUseHeap = 0x80;

    /// <summary>xloadflags: the kernel has the 64-bit entry point at load address + 0x200.</summary>
    public const ushort XlfKernel64 = 0x01;

    /// <summary>xloadflags: the kernel, boot_params, command line and ramdisk may sit above 4 GiB.</summary>
    public const ushort XlfCanBeLoadedAbove4G = 0x02;

    /// <summary>Offset of the 64-bit entry point from the load address of the protected-mode kernel.</summary>
    public const ulong Entry64Offset = 0x200;

    /// <summary>The setup header has fields we read up to here (init_size ends at 0x264; protocol 2.10).</summary>
    private const int MinimumHeaderEnd = 0x264;

    private BzImage(ReadOnlySpan<byte> file, int headerEnd)
    {
        HeaderEnd = headerEnd;
        // Fields past the header's end (older protocols) read as zero.
        byte[] header = new byte[Math.Max(0x270, headerEnd)];
        file[..headerEnd].CopyTo(header);
        ReadOnlySpan<byte> h = header;

        byte sects = h[SetupSectsOffset];
        SetupSects = sects == 0 ? (byte)4 : sects;
        SysSize = BinaryPrimitives.ReadUInt32LittleEndian(h[SysSizeOffset..]);
        Version = BinaryPrimitives.ReadUInt16LittleEndian(h[VersionOffset..]);
        LoadFlags = h[LoadFlagsOffset];
        InitrdAddrMax = BinaryPrimitives.ReadUInt32LittleEndian(h[InitrdAddrMaxOffset..]);
        KernelAlignment = BinaryPrimitives.ReadUInt32LittleEndian(h[KernelAlignmentOffset..]);
        RelocatableKernel = h[RelocatableKernelOffset] != 0;
        MinAlignment = h[MinAlignmentOffset];
        XLoadFlags = BinaryPrimitives.ReadUInt16LittleEndian(h[XLoadFlagsOffset..]);
        CmdlineSize = BinaryPrimitives.ReadUInt32LittleEndian(h[CmdlineSizeOffset..]);
        PayloadOffset = BinaryPrimitives.ReadUInt32LittleEndian(h[PayloadOffsetOffset..]);
        PayloadLength = BinaryPrimitives.ReadUInt32LittleEndian(h[PayloadLengthOffset..]);
        PrefAddress = BinaryPrimitives.ReadUInt64LittleEndian(h[PrefAddressOffset..]);
        InitSize = BinaryPrimitives.ReadUInt32LittleEndian(h[InitSizeOffset..]);
        SetupSize = (SetupSects + 1) * 512;
        KernelSize = file.Length - SetupSize;
        RawHeader = header.AsSpan(SetupSectsOffset, headerEnd - SetupSectsOffset).ToArray();
    }

    /// <summary>Sectors of real-mode setup code after the boot sector (0 in the file means 4).</summary>
    public byte SetupSects { get; }

    /// <summary>The protected-mode code's size in 16-byte paragraphs.</summary>
    public uint SysSize { get; }

    /// <summary>Boot protocol version, e.g. 0x020F for 2.15.</summary>
    public ushort Version { get; }

    public byte LoadFlags { get; }

    /// <summary>The highest address the initrd may occupy (its last byte).</summary>
    public uint InitrdAddrMax { get; }

    public uint KernelAlignment { get; }

    public bool RelocatableKernel { get; }

    /// <summary>log2 of the smallest alignment a relocatable kernel accepts.</summary>
    public byte MinAlignment { get; }

    public ushort XLoadFlags { get; }

    /// <summary>The longest command line the kernel takes, without the NUL.</summary>
    public uint CmdlineSize { get; }

    /// <summary>Offset of the compressed payload from the start of the protected-mode code.</summary>
    public uint PayloadOffset { get; }

    public uint PayloadLength { get; }

    /// <summary>Where a relocatable kernel prefers to run (LOAD_PHYSICAL_ADDR).</summary>
    public ulong PrefAddress { get; }

    /// <summary>The linear memory the kernel needs, from its run address, before it sets up its own memory map.</summary>
    public uint InitSize { get; }

    /// <summary>Bytes of real-mode code before the protected-mode kernel: (setup_sects + 1) * 512.</summary>
    public int SetupSize { get; }

    /// <summary>Bytes of protected-mode kernel: the rest of the file.</summary>
    public int KernelSize { get; }

    /// <summary>First byte past the setup header: 0x202 + the byte at 0x201 (the jump's target).</summary>
    public int HeaderEnd { get; }

    /// <summary>The setup header as in the file, bytes [0x1F1, <see cref="HeaderEnd"/>).</summary>
    public IReadOnlyList<byte> RawHeader { get; }

    /// <summary>"2.15" for 0x020F.</summary>
    public static string FormatVersion(ushort version) => $"{version >> 8}.{version & 0xFF:D2}";

    /// <summary>True when the file has the "HdrS" signature of a Linux kernel's setup header.</summary>
    public static bool HasSignature(ReadOnlySpan<byte> file)
        => file.Length >= HeaderMagicOffset + 4 && BinaryPrimitives.ReadUInt32LittleEndian(file[HeaderMagicOffset..]) == HeaderMagic;

    /// <summary>Parses and validates the setup header; throws <see cref="BootImageException"/> naming the first problem.</summary>
    public static BzImage Parse(ReadOnlySpan<byte> file, string fileName)
    {
        ArgumentNullException.ThrowIfNull(fileName);
        if (!HasSignature(file))
        {
            throw new BootImageException(fileName, "not a Linux bzImage (no 'HdrS' signature at offset 0x202)", BootTarget.FormatAdvice);
        }

        if (file.Length < VersionOffset + 2)
        {
            throw Corrupt(fileName, $"the file is {file.Length} bytes, too short for a setup header");
        }

        ushort bootFlag = BinaryPrimitives.ReadUInt16LittleEndian(file[BootFlagOffset..]);
        if (bootFlag != BootFlag)
        {
            throw Corrupt(fileName, $"no boot flag 0xAA55 at offset 0x1FE (found 0x{bootFlag:X4})");
        }

        ushort version = BinaryPrimitives.ReadUInt16LittleEndian(file[VersionOffset..]);
        if (version < MinimumVersion)
        {
            throw new BootImageException(
                fileName,
                $"boot protocol {FormatVersion(version)} is too old (KvmSharp needs 2.12 or later, the first with xloadflags and a 64-bit entry point)",
                "Use a Linux 3.8 or later kernel.");
        }

        int headerEnd = HeaderMagicOffset + file[JumpOffset + 1];
        if (headerEnd < MinimumHeaderEnd)
        {
            throw Corrupt(fileName, $"the setup header ends at 0x{headerEnd:X} (the jump at 0x200), before init_size at 0x260");
        }

        byte sects = file[SetupSectsOffset] == 0 ? (byte)4 : file[SetupSectsOffset];
        int setupSize = (sects + 1) * 512;
        if (file.Length <= setupSize)
        {
            throw Corrupt(fileName, $"setup_sects says {sects} sectors of setup code (0x{setupSize:x} bytes with the boot sector), but the file is only 0x{file.Length:x} bytes");
        }

        // headerEnd is at most 0x301 and setupSize at least 0x400: the header always lies in the setup code.
        var image = new BzImage(file, headerEnd);
        if ((image.LoadFlags & LoadedHigh) == 0)
        {
            throw new BootImageException(fileName, "the kernel is not loaded high (LOADED_HIGH clear in loadflags): a zImage cannot be booted", "Build a bzImage (make bzImage).");
        }

        if ((image.XLoadFlags & XlfKernel64) == 0)
        {
            throw new BootImageException(fileName, "the kernel has no 64-bit entry point (XLF_KERNEL_64 clear in xloadflags)", "Build a 64-bit kernel (CONFIG_X86_64=y), or pass a multiboot kernel for a 32-bit guest.");
        }

        if (image.RelocatableKernel && (image.KernelAlignment < 0x1000 || (image.KernelAlignment & (image.KernelAlignment - 1)) != 0))
        {
            throw Corrupt(fileName, $"kernel_alignment 0x{image.KernelAlignment:x} is not a power of two of at least 4 KiB");
        }

        // syssize counts 16-byte paragraphs, rounded up (arch/x86/boot/tools/build.c), so the file may end
        // up to 15 bytes before syssize * 16.
        if ((ulong)image.SysSize * 16 > (ulong)image.KernelSize + 15)
        {
            throw Corrupt(fileName, $"the protected-mode kernel is 0x{image.KernelSize:x} bytes, less than the 0x{(ulong)image.SysSize * 16:x} that syssize says");
        }

        if ((ulong)image.PayloadOffset + image.PayloadLength > (ulong)image.KernelSize)
        {
            throw Corrupt(fileName, $"the payload at 0x{image.PayloadOffset:x} +0x{image.PayloadLength:x} is beyond the protected-mode kernel (0x{image.KernelSize:x} bytes)");
        }

        return image;
    }

    /// <summary>The protected-mode kernel: the file after the setup code.</summary>
    public ReadOnlySpan<byte> ProtectedModeKernel(ReadOnlySpan<byte> file) => file.Slice(SetupSize, KernelSize);

    /// <summary>The compressed payload (e.g. LZ4, gzip, zstd), inside the protected-mode kernel.</summary>
    public ReadOnlySpan<byte> Payload(ReadOnlySpan<byte> file) => ProtectedModeKernel(file).Slice((int)PayloadOffset, (int)PayloadLength);

    private static BootImageException Corrupt(string fileName, string problem) => new(fileName, problem, BootTarget.CorruptAdvice);
}
