using KvmSharp.Memory;

namespace KvmSharp.Boot;

/// <summary>The type of an E820 memory-map entry (ACPI specification, "System Address Map Interfaces").</summary>
public enum E820Type : uint
{
    Ram = 1,
    Reserved = 2,
    Acpi = 3,
    Nvs = 4,
}

/// <summary>One entry of the BIOS E820 memory map, as Linux's struct boot_e820_entry (20 bytes) carries it.</summary>
public readonly record struct E820Entry(ulong Address, ulong Size, E820Type Type)
{
    public ulong End => Address + Size;
}

/// <summary>
/// The guest-physical layout of KvmSharp's PC machine.
/// <para>
/// RAM starts at 0 and runs up to <see cref="MmioHoleStart"/> (3 GiB); a 1 GiB hole for MMIO (PCI BARs,
/// IOAPIC at 0xFEC00000, LAPIC at 0xFEE00000) follows, and RAM beyond 3 GiB continues at 4 GiB.
/// </para>
/// <para>
/// Below 1 MiB, where the loaders put what a kernel reads at entry (all inside RAM, all clear of each other):
/// <code>
/// 0x0000_0500 - 0x0000_051F  GDT (X86InitialState.GdtAddress)
/// 0x0000_6000 - 0x0000_6FFF  PVH hvm_start_info, module list, memory map
/// 0x0000_7000 - 0x0000_7FFF  Linux boot_params ("zero page")
/// 0x0000_8000 - 0x0000_8FFF  multiboot info, module list, memory map, boot loader name
/// 0x0000_9000 - 0x0000_EFFF  identity page tables (X86InitialState.Pml4Address .. TablesEnd)
/// 0x0002_0000 - 0x0002_0FFF  kernel command line (NUL-terminated, at most 4096 bytes with the NUL)
/// 0x0002_1000 - 0x0002_1FFF  multiboot module string (the initrd's name)
/// 0x0009_FC00 - 0x0009_FFFF  EBDA (reserved in the E820 map)
/// 0x000F_0000 - 0x000F_FFFF  BIOS area: MP and ACPI tables (reserved in the E820 map)
/// 0x0010_0000 -              kernel images (nothing a loader writes may sit below 1 MiB)
/// </code>
/// </para>
/// </summary>
public static class PcMemoryLayout
{
    public const ulong KiB = 1024;
    public const ulong MiB = 1024 * KiB;
    public const ulong GiB = 1024 * MiB;

    /// <summary>Smallest guest RAM: room for boot data, a kernel at 2 MiB and a small initrd.</summary>
    public const ulong MinRamSize = 16 * MiB;

    /// <summary>Largest guest RAM: 1 TiB, well inside the 46-bit guest-physical space of every x86-64 host.</summary>
    public const ulong MaxRamSize = 1024 * GiB;

    /// <summary>Start of the 1 GiB MMIO hole below 4 GiB; RAM below 4 GiB ends here at most.</summary>
    public const ulong MmioHoleStart = 3 * GiB;

    public const ulong MmioHoleSize = 1 * GiB;

    /// <summary>Where RAM above the hole starts (4 GiB).</summary>
    public const ulong HighRamStart = MmioHoleStart + MmioHoleSize;

    /// <summary>Start of the extended BIOS data area: conventional memory ends here (639 KiB).</summary>
    public const ulong EbdaStart = 0x9_FC00;

    /// <summary>End of the legacy VGA/option-ROM window, which the E820 map leaves out.</summary>
    public const ulong VgaStart = 0xA_0000;

    /// <summary>The BIOS area, reserved in the E820 map: MP and ACPI tables go here.</summary>
    public const ulong BiosAreaStart = 0xF_0000;

    /// <summary>1 MiB: high memory, where kernels load.</summary>
    public const ulong HighMemoryStart = 0x10_0000;

    /// <summary>PVH struct hvm_start_info (56 bytes).</summary>
    public const ulong PvhStartInfoAddress = 0x6000;

    /// <summary>PVH module list: hvm_modlist_entry, 32 bytes each.</summary>
    public const ulong PvhModuleListAddress = 0x6040;

    /// <summary>PVH memory map: hvm_memmap_table_entry, 24 bytes each, up to <see cref="MaxE820Entries"/>.</summary>
    public const ulong PvhMemoryMapAddress = 0x6100;

    /// <summary>Linux struct boot_params, 4096 bytes.</summary>
    public const ulong ZeroPageAddress = 0x7000;

    public const ulong ZeroPageSize = 0x1000;

    /// <summary>Multiboot struct multiboot_info (116 bytes).</summary>
    public const ulong MultibootInfoAddress = 0x8000;

    /// <summary>Multiboot module list: struct multiboot_mod_list, 16 bytes each.</summary>
    public const ulong MultibootModuleListAddress = 0x8100;

    /// <summary>Multiboot memory map: struct multiboot_mmap_entry, 24 bytes each, up to <see cref="MaxE820Entries"/>.</summary>
    public const ulong MultibootMemoryMapAddress = 0x8200;

    /// <summary>Multiboot boot loader name, NUL-terminated.</summary>
    public const ulong MultibootBootLoaderNameAddress = 0x8F00;

    /// <summary>The kernel command line, NUL-terminated, for every boot protocol.</summary>
    public const ulong CommandLineAddress = 0x2_0000;

    /// <summary>Room for the command line, its NUL included.</summary>
    public const ulong CommandLineMaxSize = 0x1000;

    /// <summary>The multiboot module string (the initrd's name), NUL-terminated.</summary>
    public const ulong MultibootModuleStringAddress = 0x2_1000;

    public const ulong MultibootModuleStringMaxSize = 0x1000;

    /// <summary>The E820 map this layout produces never has more entries than this (Linux takes up to 128).</summary>
    public const int MaxE820Entries = 8;

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> unless <paramref name="ramSize"/> is a multiple of 4 KiB in [16 MiB, 1 TiB].</summary>
    public static void ValidateRamSize(ulong ramSize)
    {
        if (ramSize < MinRamSize || ramSize > MaxRamSize || ramSize % GuestMemory.PageSize != 0)
        {
            throw new ArgumentOutOfRangeException(
                nameof(ramSize),
                ramSize,
                $"Guest RAM of {FormatSize(ramSize)} is not supported. Give the guest between 16 MiB and 1 TiB, a multiple of 4 KiB.");
        }
    }

    /// <summary>RAM below the MMIO hole: [0, min(ramSize, 3 GiB)).</summary>
    public static ulong LowRamEnd(ulong ramSize)
    {
        ValidateRamSize(ramSize);
        return Math.Min(ramSize, MmioHoleStart);
    }

    /// <summary>The ranges of guest RAM for <see cref="GuestMemory.Create(IReadOnlyList{MemoryRange})"/>: one below the hole, one above 4 GiB when RAM exceeds 3 GiB.</summary>
    public static IReadOnlyList<MemoryRange> RamRanges(ulong ramSize)
    {
        ulong low = LowRamEnd(ramSize);
        ulong high = ramSize - low;
        return high == 0
            ? [new MemoryRange(0, low)]
            : [new MemoryRange(0, low), new MemoryRange(HighRamStart, high)];
    }

    /// <summary>
    /// The E820 map a guest sees: conventional memory, the EBDA and BIOS area reserved, the VGA/ROM window
    /// [0xA0000, 0xF0000) absent, RAM from 1 MiB to the hole, and RAM above 4 GiB.
    /// </summary>
    public static IReadOnlyList<E820Entry> E820Map(ulong ramSize)
    {
        ulong low = LowRamEnd(ramSize);
        ulong high = ramSize - low;
        var map = new List<E820Entry>(MaxE820Entries)
        {
            new(0, EbdaStart, E820Type.Ram),
            new(EbdaStart, VgaStart - EbdaStart, E820Type.Reserved),
            new(BiosAreaStart, HighMemoryStart - BiosAreaStart, E820Type.Reserved),
            new(HighMemoryStart, low - HighMemoryStart, E820Type.Ram),
        };
        if (high != 0)
        {
            map.Add(new E820Entry(HighRamStart, high, E820Type.Ram));
        }

        return map;
    }

    /// <summary>"512 MiB", "4 GiB", "640 KiB" or "4097 bytes": the largest unit that divides the size exactly.</summary>
    public static string FormatSize(ulong bytes) => bytes switch
    {
        0 => "0 bytes",
        _ when bytes % GiB == 0 => $"{bytes / GiB} GiB",
        _ when bytes % MiB == 0 => $"{bytes / MiB} MiB",
        _ when bytes % KiB == 0 => $"{bytes / KiB} KiB",
        _ => $"{bytes} bytes",
    };
}
