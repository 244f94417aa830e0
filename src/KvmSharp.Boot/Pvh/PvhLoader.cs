using System.Buffers.Binary;
using KvmSharp.Boot.Elf;
using KvmSharp.Memory;

namespace KvmSharp.Boot.Pvh;

/// <summary>
/// Where a PVH kernel was loaded. The vCPU starts in flat 32-bit protected mode, paging off, at
/// <paramref name="EntryPoint"/> with EBX = <paramref name="StartInfoAddress"/>.
/// </summary>
public sealed record PvhBootInfo(
    uint EntryPoint,
    uint StartInfoAddress,
    ulong KernelEnd,
    ulong InitrdAddress,
    ulong InitrdSize,
    ulong CommandLineAddress) : KernelBootInfo
{
    public override KernelFormat Format => KernelFormat.PvhElf;

    public override BootEntry Entry => new(BootMode.Protected32, EntryPoint, Rbx: StartInfoAddress);
}

/// <summary>
/// Loads an uncompressed ELF kernel through its PVH entry (Xen's HVM direct boot ABI, docs/misc/pvh.pandoc;
/// Linux's arch/x86/platform/pvh): the PT_LOAD segments at their physical addresses, and struct
/// hvm_start_info with the command line, the memory map and the initrd as module 0
/// (xen/include/public/arch-x86/hvm/start_info.h).
/// </summary>
public static class PvhLoader
{
    /// <summary>XEN_ELFNOTE_PHYS32_ENTRY: the 32-bit physical entry point, in a note named "Xen".</summary>
    public const uint XenElfNotePhys32Entry = 18;

    public const string XenNoteName = "Xen";

    /// <summary>hvm_start_info.magic: "xEn3" with bit 7 of the 'E' set.</summary>
    public const uint StartInfoMagic = 0x336E_C578;

    /// <summary>Version 1 adds memmap_paddr and memmap_entries.</summary>
    public const uint StartInfoVersion = 1;

    public const int StartInfoSize = 56;
    public const int ModuleEntrySize = 32;
    public const int MemoryMapEntrySize = 24;

    /// <summary>The PVH entry point of an ELF kernel, or null when it has no XEN_ELFNOTE_PHYS32_ENTRY note.</summary>
    public static uint? FindEntryPoint(ReadOnlySpan<byte> file, ElfImage elf, string fileName)
    {
        ArgumentNullException.ThrowIfNull(elf);
        byte[]? desc = elf.FindNote(file, XenNoteName, XenElfNotePhys32Entry);
        if (desc is null)
        {
            return null;
        }

        // Linux emits the note with _ASM_PTR: 8 bytes on x86-64, 4 on i386.
        ulong entry = desc.Length switch
        {
            4 => BinaryPrimitives.ReadUInt32LittleEndian(desc),
            8 => BinaryPrimitives.ReadUInt64LittleEndian(desc),
            _ => throw new BootImageException(fileName, $"the PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY) has a {desc.Length}-byte descriptor, not 4 or 8", BootTarget.CorruptAdvice),
        };
        if (entry > uint.MaxValue)
        {
            throw new BootImageException(fileName, $"the PVH entry point 0x{entry:x} is above 4 GiB", BootTarget.CorruptAdvice);
        }

        return (uint)entry;
    }

    public static PvhBootInfo Load(GuestMemory memory, KernelLoadRequest request)
    {
        var target = BootTarget.Create(memory, request);
        byte[] file = request.Kernel;
        var elf = ElfImage.Parse(file, target.FileName);
        uint entry = FindEntryPoint(file, elf, target.FileName)
            ?? throw target.Error(
                "the ELF file has no PVH entry point (no XEN_ELFNOTE_PHYS32_ENTRY note)",
                "Build the kernel with CONFIG_PVH=y, or pass its bzImage.");
        byte[] cmdline = target.EncodeCommandLine(PcMemoryLayout.CommandLineMaxSize - 1, "KvmSharp");
        byte[]? initrd = target.InitrdOrNull();

        ulong kernelEnd = ElfSegmentLoader.Validate(target, elf, entry);
        ulong initrdAddress = 0;
        ulong initrdSize = initrd is null ? 0 : (ulong)initrd.Length;
        if (initrd is not null)
        {
            initrdAddress = target.PlaceInitrd(initrdSize, kernelEnd, target.LowRamEnd);
        }

        ElfSegmentLoader.Load(target, elf, file);
        target.Write(PcMemoryLayout.CommandLineAddress, cmdline, "command line");
        if (initrd is not null)
        {
            target.Write(initrdAddress, initrd, "initrd");
        }

        WriteStartInfo(target, initrdAddress, initrdSize);
        return new PvhBootInfo(entry, (uint)PcMemoryLayout.PvhStartInfoAddress, kernelEnd, initrdAddress, initrdSize, PcMemoryLayout.CommandLineAddress);
    }

    private static void WriteStartInfo(BootTarget target, ulong initrdAddress, ulong initrdSize)
    {
        var e820 = target.E820;
        byte[] map = new byte[e820.Count * MemoryMapEntrySize];
        for (int i = 0; i < e820.Count; i++)
        {
            var entry = map.AsSpan(i * MemoryMapEntrySize);
            BinaryPrimitives.WriteUInt64LittleEndian(entry, e820[i].Address);
            BinaryPrimitives.WriteUInt64LittleEndian(entry[8..], e820[i].Size);
            BinaryPrimitives.WriteUInt32LittleEndian(entry[16..], (uint)e820[i].Type);
        }

        target.Write(PcMemoryLayout.PvhMemoryMapAddress, map, "PVH memory map");

        uint modules = 0;
        if (initrdSize != 0)
        {
            byte[] module = new byte[ModuleEntrySize];
            BinaryPrimitives.WriteUInt64LittleEndian(module, initrdAddress);
            BinaryPrimitives.WriteUInt64LittleEndian(module.AsSpan(8), initrdSize);
            target.Write(PcMemoryLayout.PvhModuleListAddress, module, "PVH module list");
            modules = 1;
        }

        byte[] info = new byte[StartInfoSize];
        var s = info.AsSpan();
        BinaryPrimitives.WriteUInt32LittleEndian(s, StartInfoMagic);
        BinaryPrimitives.WriteUInt32LittleEndian(s[4..], StartInfoVersion);
        BinaryPrimitives.WriteUInt32LittleEndian(s[8..], 0); // flags
        BinaryPrimitives.WriteUInt32LittleEndian(s[12..], modules);
        BinaryPrimitives.WriteUInt64LittleEndian(s[16..], modules == 0 ? 0 : PcMemoryLayout.PvhModuleListAddress);
        BinaryPrimitives.WriteUInt64LittleEndian(s[24..], PcMemoryLayout.CommandLineAddress);
        BinaryPrimitives.WriteUInt64LittleEndian(s[32..], target.Request.AcpiRsdpAddress); // rsdp_paddr (0: the kernel scans the BIOS area)
        BinaryPrimitives.WriteUInt64LittleEndian(s[40..], PcMemoryLayout.PvhMemoryMapAddress);
        BinaryPrimitives.WriteUInt32LittleEndian(s[48..], (uint)e820.Count);
        target.Write(PcMemoryLayout.PvhStartInfoAddress, info, "PVH start info");
    }
}
