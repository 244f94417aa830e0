using KvmSharp.Memory;

namespace KvmSharp.Boot.Linux;

/// <summary>
/// Where a bzImage was loaded. The vCPU starts in long mode at <paramref name="EntryPoint"/> (the 64-bit
/// entry, load address + 0x200) with RSI = <paramref name="BootParamsAddress"/>.
/// </summary>
public sealed record LinuxBootInfo(
    ulong EntryPoint,
    ulong BootParamsAddress,
    ulong KernelLoadAddress,
    ulong KernelSize,
    ulong KernelEnd,
    ulong InitrdAddress,
    ulong InitrdSize,
    ulong CommandLineAddress,
    ushort ProtocolVersion) : KernelBootInfo
{
    public override KernelFormat Format => KernelFormat.BzImage;

    public override BootEntry Entry => new(BootMode.Long64, EntryPoint, Rsi: BootParamsAddress);
}

/// <summary>
/// Loads a bzImage for the 64-bit boot protocol (Documentation/arch/x86/boot.rst, "64-bit Boot Protocol"):
/// the protected-mode kernel in RAM, struct boot_params at <see cref="PcMemoryLayout.ZeroPageAddress"/>,
/// the command line and the initrd. Everything is validated before the first byte is written.
/// </summary>
public static class LinuxLoader
{
    /// <summary>struct boot_params offsets (arch/x86/include/uapi/asm/bootparam.h).</summary>
    public const int ExtRamdiskImageOffset = 0x0C0;
    public const int ExtRamdiskSizeOffset = 0x0C4;
    public const int ExtCmdLinePtrOffset = 0x0C8;
    public const int AcpiRsdpAddrOffset = 0x070;
    public const int E820EntriesOffset = 0x1E8;
    public const int SentinelOffset = 0x1EF;
    public const int E820TableOffset = 0x2D0;
    public const int E820EntrySize = 20;
    public const int E820MaxEntries = 128;

    /// <summary>type_of_loader 0xFF: a boot loader with no assigned ID.</summary>
    public const byte UndefinedLoader = 0xFF;

    public static LinuxBootInfo Load(GuestMemory memory, KernelLoadRequest request)
    {
        var target = BootTarget.Create(memory, request);
        byte[] file = request.Kernel;
        var image = BzImage.Parse(file, target.FileName);
        byte[] cmdline = target.EncodeCommandLine(image.CmdlineSize, "cmdline_size");
        byte[]? initrd = target.InitrdOrNull();

        // Where the protected-mode kernel goes. A relocatable kernel prefers pref_address; its 64-bit
        // entry (arch/x86/boot/compressed/head_64.S) then decompresses at max(load aligned up to
        // kernel_alignment, LOAD_PHYSICAL_ADDR = pref_address) and needs init_size bytes from there.
        // A non-relocatable one is loaded at 1 MiB and runs at pref_address.
        ulong kernelSize = (ulong)image.KernelSize;
        ulong load;
        ulong run;
        if (image.RelocatableKernel)
        {
            ulong alignment = image.KernelAlignment;
            load = image.PrefAddress >= PcMemoryLayout.HighMemoryStart && image.PrefAddress % alignment == 0
                ? image.PrefAddress
                : BootTarget.AlignUp(PcMemoryLayout.HighMemoryStart, alignment);
            run = Math.Max(BootTarget.AlignUp(load, alignment), image.PrefAddress);
        }
        else
        {
            load = PcMemoryLayout.HighMemoryStart;
            run = image.PrefAddress == 0 ? load : image.PrefAddress;
            if (run < PcMemoryLayout.HighMemoryStart)
            {
                throw target.Corrupt($"pref_address 0x{run:x} of a non-relocatable kernel is below 1 MiB");
            }
        }

        ulong kernelEnd = Math.Max(
            BootTarget.SaturatingAdd(load, kernelSize),
            BootTarget.SaturatingAdd(run, image.InitSize));
        if (kernelEnd > target.LowRamEnd)
        {
            throw target.Error(
                $"the kernel needs RAM from 0x{load:x} to 0x{kernelEnd:x} (0x{kernelSize:x} bytes of image, init_size 0x{image.InitSize:x} from 0x{run:x}), beyond the 0x{target.LowRamEnd:x} bytes of RAM below the MMIO hole ({PcMemoryLayout.FormatSize(target.RamSize)} of RAM)",
                BootTarget.MoreMemoryAdvice);
        }

        ulong initrdAddress = 0;
        ulong initrdSize = initrd is null ? 0 : (ulong)initrd.Length;
        if (initrd is not null)
        {
            ulong ceiling = Math.Min((ulong)image.InitrdAddrMax + 1, target.LowRamEnd);
            initrdAddress = target.PlaceInitrd(initrdSize, kernelEnd, ceiling);
        }

        byte[] zeroPage = BuildBootParams(file, image, load, initrdAddress, initrdSize, target.E820, target.Request.AcpiRsdpAddress);

        target.Write(PcMemoryLayout.ZeroPageAddress, zeroPage, "boot_params");
        target.Write(PcMemoryLayout.CommandLineAddress, cmdline, "command line");
        target.Write(load, image.ProtectedModeKernel(file), "kernel");
        if (initrd is not null)
        {
            target.Write(initrdAddress, initrd, "initrd");
        }

        return new LinuxBootInfo(
            EntryPoint: load + BzImage.Entry64Offset,
            BootParamsAddress: PcMemoryLayout.ZeroPageAddress,
            KernelLoadAddress: load,
            KernelSize: kernelSize,
            KernelEnd: kernelEnd,
            InitrdAddress: initrdAddress,
            InitrdSize: initrdSize,
            CommandLineAddress: PcMemoryLayout.CommandLineAddress,
            ProtocolVersion: image.Version);
    }

    /// <summary>
    /// struct boot_params: zero except the setup header copied from the file ([0x1F1, 0x202 + byte at 0x201))
    /// and the fields a boot loader fills in.
    /// </summary>
    private static byte[] BuildBootParams(byte[] file, BzImage image, ulong load, ulong initrdAddress, ulong initrdSize, IReadOnlyList<E820Entry> e820, ulong acpiRsdp)
    {
        byte[] page = new byte[PcMemoryLayout.ZeroPageSize];
        var p = page.AsSpan();
        file.AsSpan(BzImage.SetupSectsOffset, image.HeaderEnd - BzImage.SetupSectsOffset).CopyTo(p[BzImage.SetupSectsOffset..]);

        p[BzImage.TypeOfLoaderOffset] = UndefinedLoader;
        PutU32(p, BzImage.Code32StartOffset, (uint)load);
        PutU32(p, BzImage.CmdLinePtrOffset, (uint)PcMemoryLayout.CommandLineAddress);
        PutU32(p, ExtCmdLinePtrOffset, (uint)(PcMemoryLayout.CommandLineAddress >> 32));
        PutU32(p, BzImage.RamdiskImageOffset, (uint)initrdAddress);
        PutU32(p, BzImage.RamdiskSizeOffset, (uint)initrdSize);
        PutU32(p, ExtRamdiskImageOffset, (uint)(initrdAddress >> 32));
        PutU32(p, ExtRamdiskSizeOffset, (uint)(initrdSize >> 32));
        PutU64(p, AcpiRsdpAddrOffset, acpiRsdp);

        // setup_data is a list the boot loader owns: never follow a pointer the image brought along.
        PutU64(p, BzImage.SetupDataOffset, 0);

        int count = Math.Min(e820.Count, E820MaxEntries);
        p[E820EntriesOffset] = (byte)count;
        for (int i = 0; i < count; i++)
        {
            int at = E820TableOffset + (i * E820EntrySize);
            PutU64(p, at, e820[i].Address);
            PutU64(p, at + 8, e820[i].Size);
            PutU32(p, at + 16, (uint)e820[i].Type);
        }

        return page;
    }

    private static void PutU32(Span<byte> page, int offset, uint value)
        => System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(page[offset..], value);

    private static void PutU64(Span<byte> page, int offset, ulong value)
        => System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(page[offset..], value);
}
