using System.Buffers.Binary;
using System.Text;
using KvmSharp.Boot.Elf;
using KvmSharp.Memory;

namespace KvmSharp.Boot.Multiboot;

/// <summary>
/// Where a multiboot kernel was loaded. The vCPU starts in flat 32-bit protected mode, paging off, at
/// <paramref name="EntryPoint"/> with EAX = 0x2BADB002 and EBX = <paramref name="InfoAddress"/>.
/// </summary>
public sealed record MultibootBootInfo(
    uint EntryPoint,
    uint InfoAddress,
    ulong KernelStart,
    ulong KernelEnd,
    ulong InitrdAddress,
    ulong InitrdSize) : KernelBootInfo
{
    public override KernelFormat Format => KernelFormat.Multiboot;

    public override BootEntry Entry => new(BootMode.Protected32, EntryPoint, Rax: MultibootLoader.BootloaderMagic, Rbx: InfoAddress);
}

/// <summary>
/// Loads a multiboot v1 kernel (GNU Multiboot Specification 0.6.96): by the a.out kludge's address fields
/// when header flag 16 is set, else as an ELF executable; then builds struct multiboot_info (section 3.3)
/// with memory sizes, the command line, the initrd as the one module, the memory map and the loader name.
/// </summary>
public static class MultibootLoader
{
    /// <summary>EAX at entry: the kernel was loaded by a multiboot-compliant loader.</summary>
    public const uint BootloaderMagic = 0x2BAD_B002;

    public const uint InfoMemory = 1u << 0;
    public const uint InfoCmdline = 1u << 2;
    public const uint InfoModules = 1u << 3;
    public const uint InfoMemoryMap = 1u << 6;
    public const uint InfoBootLoaderName = 1u << 9;

    /// <summary>struct multiboot_info up to and including the framebuffer fields.</summary>
    public const int InfoSize = 116;

    public const int ModuleEntrySize = 16;

    /// <summary>struct multiboot_mmap_entry: size (20, not counting itself), base_addr, length, type.</summary>
    public const int MemoryMapEntrySize = 24;

    public const string BootLoaderName = "KvmSharp";

    /// <summary>
    /// What this loader writes below 1 MiB for a multiboot boot: a kernel may load anywhere else in conventional memory
    /// (below the EBDA), as QEMU and GRUB allow.
    /// </summary>
    private static readonly BootDataRange[] BootData =
    [
        new(X86InitialState.GdtAddress, X86InitialState.GdtAddress + 0x20, "GDT"),
        new(PcMemoryLayout.MultibootInfoAddress, PcMemoryLayout.MultibootInfoAddress + 0x1000, "multiboot information"),
        new(PcMemoryLayout.CommandLineAddress, PcMemoryLayout.CommandLineAddress + PcMemoryLayout.CommandLineMaxSize, "command line"),
        new(PcMemoryLayout.MultibootModuleStringAddress, PcMemoryLayout.MultibootModuleStringAddress + PcMemoryLayout.MultibootModuleStringMaxSize, "module string"),
    ];

    private static readonly BootDataRange[] BootDataWithoutModule = BootData[..^1];

    /// <summary>
    /// The kernel's command line as GRUB and QEMU give it: the kernel's path, then the arguments after a space (GRUB's
    /// <c>multiboot /boot/kernel args</c>; QEMU's <c>-kernel PATH -append ARGS</c>).
    /// </summary>
    public static string CommandLine(KernelLoadRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        string path = request.KernelPath ?? request.FileName;
        return request.CommandLine.Length == 0 ? path : $"{path} {request.CommandLine}";
    }

    public static MultibootBootInfo Load(GuestMemory memory, KernelLoadRequest request)
    {
        var target = BootTarget.Create(memory, request);
        byte[] file = request.Kernel;
        var header = MultibootHeader.Parse(file, target.FileName);
        byte[] cmdline = target.EncodeCommandLine(CommandLine(request), PcMemoryLayout.CommandLineMaxSize - 1, "KvmSharp");
        byte[]? initrd = target.InitrdOrNull();
        byte[]? moduleString = initrd is null ? null : EncodeModuleString(target);
        ReadOnlySpan<BootDataRange> bootData = initrd is null ? BootDataWithoutModule : BootData;

        ulong kernelStart;
        ulong kernelEnd;
        uint entry;
        ElfImage? elf = null;
        AoutImage aout = default;
        if (header.HasAoutKludge)
        {
            aout = ValidateAout(target, header, file.Length, bootData);
            kernelStart = header.LoadAddr;
            kernelEnd = aout.BssEnd;
            entry = header.EntryAddr;
        }
        else
        {
            if (!ElfImage.HasElfMagic(file))
            {
                throw target.Corrupt("the multiboot header has no a.out address fields (flag 16 clear) and the file is not an ELF executable");
            }

            elf = ElfImage.Parse(file, target.FileName);
            if (elf.Entry > uint.MaxValue)
            {
                throw target.Corrupt($"the entry point 0x{elf.Entry:x} is above 4 GiB");
            }

            entry = (uint)elf.Entry;
            kernelEnd = ElfSegmentLoader.Validate(target, elf, entry, bootData);
            kernelStart = LowestSegment(elf);
            if (kernelEnd > PcMemoryLayout.HighRamStart)
            {
                throw target.Corrupt($"the image ends at 0x{kernelEnd:x}, above 4 GiB, out of reach of a 32-bit multiboot kernel");
            }
        }

        ulong initrdAddress = 0;
        ulong initrdSize = initrd is null ? 0 : (ulong)initrd.Length;
        if (initrd is not null)
        {
            // Above the kernel and never below 1 MiB, even for a kernel loaded in conventional memory.
            initrdAddress = target.PlaceInitrd(initrdSize, Math.Max(kernelEnd, PcMemoryLayout.HighMemoryStart), target.LowRamEnd);
        }

        if (elf is not null)
        {
            ElfSegmentLoader.Load(target, elf, file);
        }
        else
        {
            target.Write(header.LoadAddr, file.AsSpan(aout.FileOffset, aout.FileSize), "image");
            target.Zero(aout.LoadEnd, aout.BssEnd - aout.LoadEnd, "bss");
        }

        target.Write(PcMemoryLayout.CommandLineAddress, cmdline, "command line");
        if (initrd is not null)
        {
            target.Write(initrdAddress, initrd, "initrd");
            target.Write(PcMemoryLayout.MultibootModuleStringAddress, moduleString!, "module string");
        }

        WriteInfo(target, initrdAddress, initrdSize);
        return new MultibootBootInfo(entry, (uint)PcMemoryLayout.MultibootInfoAddress, kernelStart, kernelEnd, initrdAddress, initrdSize);
    }

    /// <summary>Checks the a.out kludge fields (section 3.1.3) against the file and RAM.</summary>
    private static AoutImage ValidateAout(BootTarget target, MultibootHeader h, int fileLength, ReadOnlySpan<BootDataRange> bootData)
    {
        if (h.LoadAddr > h.HeaderAddr)
        {
            throw target.Corrupt($"multiboot load_addr 0x{h.LoadAddr:x} is above header_addr 0x{h.HeaderAddr:x}");
        }

        // The text starts (header_addr - load_addr) bytes before the header in the file.
        uint before = h.HeaderAddr - h.LoadAddr;
        if (before > (uint)h.Offset)
        {
            throw target.Corrupt($"multiboot load_addr 0x{h.LoadAddr:x} starts 0x{before:x} bytes before the header at file offset 0x{h.Offset:x}, before the start of the file");
        }

        int fileOffset = h.Offset - (int)before;
        ulong available = (ulong)(fileLength - fileOffset);
        ulong fileSize;
        if (h.LoadEndAddr == 0)
        {
            fileSize = available;
        }
        else
        {
            if (h.LoadEndAddr <= h.LoadAddr)
            {
                throw target.Corrupt($"multiboot load_end_addr 0x{h.LoadEndAddr:x} is not above load_addr 0x{h.LoadAddr:x}");
            }

            fileSize = (ulong)h.LoadEndAddr - h.LoadAddr;
            if (fileSize > available)
            {
                throw target.Corrupt($"multiboot load_end_addr 0x{h.LoadEndAddr:x} needs 0x{fileSize:x} bytes from file offset 0x{fileOffset:x}, beyond the end of the file (0x{fileLength:x} bytes)");
            }
        }

        ulong loadEnd = h.LoadAddr + fileSize;
        ulong bssEnd = loadEnd;
        if (h.BssEndAddr != 0)
        {
            if (h.BssEndAddr < loadEnd)
            {
                throw target.Corrupt($"multiboot bss_end_addr 0x{h.BssEndAddr:x} is below the end of the loaded image 0x{loadEnd:x}");
            }

            bssEnd = h.BssEndAddr;
        }

        target.RequireLoadable("image", h.LoadAddr, bssEnd - h.LoadAddr, bootData);
        if (h.EntryAddr < h.LoadAddr || h.EntryAddr >= bssEnd)
        {
            throw target.Corrupt($"multiboot entry_addr 0x{h.EntryAddr:x} is outside the image [0x{h.LoadAddr:x}, 0x{bssEnd:x})");
        }

        return new AoutImage(fileOffset, (int)fileSize, loadEnd, bssEnd);
    }

    private static ulong LowestSegment(ElfImage elf)
    {
        ulong lowest = ulong.MaxValue;
        foreach (var s in elf.Segments)
        {
            if (s.Type == ElfImage.PtLoad && s.MemorySize != 0)
            {
                lowest = Math.Min(lowest, s.PhysicalAddress);
            }
        }

        return lowest;
    }

    private static byte[] EncodeModuleString(BootTarget target)
    {
        string name = target.InitrdName;
        byte[] bytes = new byte[Encoding.UTF8.GetByteCount(name) + 1];
        Encoding.UTF8.GetBytes(name, bytes);
        if ((ulong)bytes.Length > PcMemoryLayout.MultibootModuleStringMaxSize || Array.IndexOf(bytes, (byte)0) != bytes.Length - 1)
        {
            throw new BootImageException(
                name,
                $"the initrd's name is not a valid multiboot module string (at most {PcMemoryLayout.MultibootModuleStringMaxSize - 1} bytes, no NUL)",
                "Rename the initrd file.");
        }

        return bytes;
    }

    private static void WriteInfo(BootTarget target, ulong initrdAddress, ulong initrdSize)
    {
        var e820 = target.E820;
        byte[] map = new byte[e820.Count * MemoryMapEntrySize];
        for (int i = 0; i < e820.Count; i++)
        {
            var entry = map.AsSpan(i * MemoryMapEntrySize);
            BinaryPrimitives.WriteUInt32LittleEndian(entry, MemoryMapEntrySize - 4);
            BinaryPrimitives.WriteUInt64LittleEndian(entry[4..], e820[i].Address);
            BinaryPrimitives.WriteUInt64LittleEndian(entry[12..], e820[i].Size);
            BinaryPrimitives.WriteUInt32LittleEndian(entry[20..], (uint)e820[i].Type);
        }

        target.Write(PcMemoryLayout.MultibootMemoryMapAddress, map, "multiboot memory map");

        uint modules = 0;
        if (initrdSize != 0)
        {
            byte[] module = new byte[ModuleEntrySize];
            BinaryPrimitives.WriteUInt32LittleEndian(module, (uint)initrdAddress);
            BinaryPrimitives.WriteUInt32LittleEndian(module.AsSpan(4), (uint)(initrdAddress + initrdSize));
            BinaryPrimitives.WriteUInt32LittleEndian(module.AsSpan(8), (uint)PcMemoryLayout.MultibootModuleStringAddress);
            target.Write(PcMemoryLayout.MultibootModuleListAddress, module, "multiboot module list");
            modules = 1;
        }

        byte[] name = Encoding.ASCII.GetBytes(BootLoaderName + "\0");
        target.Write(PcMemoryLayout.MultibootBootLoaderNameAddress, name, "boot loader name");

        byte[] info = new byte[InfoSize];
        var s = info.AsSpan();
        BinaryPrimitives.WriteUInt32LittleEndian(s, InfoMemory | InfoCmdline | InfoModules | InfoMemoryMap | InfoBootLoaderName);
        BinaryPrimitives.WriteUInt32LittleEndian(s[4..], (uint)(PcMemoryLayout.EbdaStart / PcMemoryLayout.KiB));
        BinaryPrimitives.WriteUInt32LittleEndian(s[8..], (uint)((target.LowRamEnd - PcMemoryLayout.HighMemoryStart) / PcMemoryLayout.KiB));
        BinaryPrimitives.WriteUInt32LittleEndian(s[16..], (uint)PcMemoryLayout.CommandLineAddress);
        BinaryPrimitives.WriteUInt32LittleEndian(s[20..], modules);
        BinaryPrimitives.WriteUInt32LittleEndian(s[24..], (uint)PcMemoryLayout.MultibootModuleListAddress);
        BinaryPrimitives.WriteUInt32LittleEndian(s[44..], (uint)map.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(s[48..], (uint)PcMemoryLayout.MultibootMemoryMapAddress);
        BinaryPrimitives.WriteUInt32LittleEndian(s[64..], (uint)PcMemoryLayout.MultibootBootLoaderNameAddress);
        target.Write(PcMemoryLayout.MultibootInfoAddress, info, "multiboot info");
    }

    private readonly record struct AoutImage(int FileOffset, int FileSize, ulong LoadEnd, ulong BssEnd);
}
