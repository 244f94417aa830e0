using KvmSharp.Hypervisor;
using KvmSharp.Memory;

namespace KvmSharp.Boot;

/// <summary>
/// The CPU state that kernel entry points expect, set directly instead of by firmware code:
/// a flat GDT, identity-mapped page tables with 2 MiB pages, and the control registers of
/// 64-bit long mode (Linux's 64-bit boot protocol) or of flat 32-bit protected mode with paging
/// off (PVH, multiboot).
/// </summary>
public static class X86InitialState
{
    /// <summary>
    /// GDT: null, 0x08 32-bit code, 0x10 64-bit code, 0x18 data. The Linux boot protocol asks for
    /// __BOOT_CS = 0x10 and __BOOT_DS = 0x18 (Documentation/arch/x86/boot.rst, "64-bit boot protocol").
    /// </summary>
    public const ulong GdtAddress = 0x500;
    public const ushort Code32Selector = 0x08;
    public const ushort Code64Selector = 0x10;
    public const ushort DataSelector = 0x18;
    public const ulong Pml4Address = 0x9000;
    public const ulong PdptAddress = 0xA000;

    /// <summary>Page directories, one per GiB mapped, from here on (0xB000-0xEFFF for 4 GiB).</summary>
    public const ulong PdBaseAddress = 0xB000;

    public const int MaxMappedGiB = 4;

    /// <summary>First byte past the tables this class writes.</summary>
    public const ulong TablesEnd = PdBaseAddress + (MaxMappedGiB * 0x1000);

    private const ulong PresentWritable = 0x3;
    private const ulong LargePage = 0x80;
    private const ulong TwoMiB = 2 * 1024 * 1024;

    private static readonly ulong[] Gdt =
    [
        0x0000_0000_0000_0000, // null
        0x00CF_9B00_0000_FFFF, // 0x08: code, DPL0, 32-bit (D=1), G=1, accessed
        0x00AF_9B00_0000_FFFF, // 0x10: code, DPL0, 64-bit (L=1), G=1, accessed
        0x00CF_9300_0000_FFFF, // 0x18: data, DPL0, D/B=1, G=1, accessed
    ];

    /// <summary>Writes the GDT and page tables mapping [0, <paramref name="mappedGiB"/> GiB) 1:1 into guest RAM.</summary>
    public static void WriteTables(GuestMemory memory, int mappedGiB = MaxMappedGiB)
    {
        ArgumentNullException.ThrowIfNull(memory);
        ArgumentOutOfRangeException.ThrowIfLessThan(mappedGiB, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(mappedGiB, MaxMappedGiB);

        WriteGdt(memory);
        memory.Write(Pml4Address, PdptAddress | PresentWritable);
        for (ulong gib = 0; gib < (ulong)mappedGiB; gib++)
        {
            ulong pd = PdBaseAddress + (gib * 0x1000);
            memory.Write(PdptAddress + (gib * 8), pd | PresentWritable);
            for (ulong i = 0; i < 512; i++)
            {
                ulong physical = ((gib * 512) + i) * TwoMiB;
                memory.Write(pd + (i * 8), physical | PresentWritable | LargePage);
            }
        }
    }

    /// <summary>Writes only the GDT (enough for 32-bit entries).</summary>
    public static void WriteGdt(GuestMemory memory)
    {
        ArgumentNullException.ThrowIfNull(memory);
        for (int i = 0; i < Gdt.Length; i++)
        {
            memory.Write(GdtAddress + ((ulong)i * 8), Gdt[i]);
        }
    }

    /// <summary>Returns <paramref name="current"/> switched to 64-bit long mode over the tables <see cref="WriteTables"/> wrote.</summary>
    public static X86SystemRegisters LongMode(X86SystemRegisters current)
    {
        var s = WithGdt(current);
        s.Cr0 = X86SystemRegisters.Cr0Pe | X86SystemRegisters.Cr0Mp | X86SystemRegisters.Cr0Et | X86SystemRegisters.Cr0Ne | X86SystemRegisters.Cr0Wp | X86SystemRegisters.Cr0Pg;
        s.Cr3 = Pml4Address;
        s.Cr4 = X86SystemRegisters.Cr4Pae | X86SystemRegisters.Cr4Osfxsr | X86SystemRegisters.Cr4Osxmmexcpt;
        s.Efer = X86SystemRegisters.EferLme | X86SystemRegisters.EferLma | X86SystemRegisters.EferSce;
        s.Cs = SegmentRegister.FlatCode(Code64Selector, longMode: true);
        s.Ds = s.Es = s.Fs = s.Gs = s.Ss = SegmentRegister.FlatData(DataSelector);
        return s;
    }

    /// <summary>Returns <paramref name="current"/> switched to flat 32-bit protected mode, paging off (PVH and multiboot entry state).</summary>
    public static X86SystemRegisters ProtectedMode32(X86SystemRegisters current)
    {
        var s = WithGdt(current);
        s.Cr0 = X86SystemRegisters.Cr0Pe | X86SystemRegisters.Cr0Et;
        s.Cr3 = 0;
        s.Cr4 = 0;
        s.Efer = 0;
        s.Cs = SegmentRegister.FlatCode(Code32Selector, longMode: false);
        s.Ds = s.Es = s.Fs = s.Gs = s.Ss = SegmentRegister.FlatData(DataSelector);
        return s;
    }

    private static X86SystemRegisters WithGdt(X86SystemRegisters current)
    {
        var s = current;
        s.Gdt.Base = GdtAddress;
        s.Gdt.Limit = (ushort)((Gdt.Length * 8) - 1);
        return s;
    }
}
