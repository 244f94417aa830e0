using KvmSharp.Hypervisor;
using KvmSharp.Memory;

namespace KvmSharp.Boot;

/// <summary>
/// The state a 64-bit entry point expects (the Linux boot protocol's 64-bit entry, PVH after its own
/// switch, our test guests): a flat GDT, identity-mapped page tables with 2 MiB pages, and the control
/// registers of long mode, set directly instead of by firmware code.
/// </summary>
public static class LongModeSetup
{
    /// <summary>GDT: null, 64-bit code (0x08), data (0x10), 32-bit code (0x18) — the layout Linux's boot code uses.</summary>
    public const ulong GdtAddress = 0x500;
    public const ushort CodeSelector = 0x08;
    public const ushort DataSelector = 0x10;
    public const ulong Pml4Address = 0x9000;
    public const ulong PdptAddress = 0xA000;

    /// <summary>Page directories, one per GiB mapped, from here on.</summary>
    public const ulong PdBaseAddress = 0xB000;

    public const int MaxMappedGiB = 4;

    private const ulong PresentWritable = 0x3;
    private const ulong LargePage = 0x80;
    private const ulong TwoMiB = 2 * 1024 * 1024;

    private static readonly ulong[] Gdt =
    [
        0x0000_0000_0000_0000, // null
        0x00AF_9B00_0000_FFFF, // 0x08: code, DPL0, L=1, G=1, accessed
        0x00CF_9300_0000_FFFF, // 0x10: data, DPL0, D/B=1, G=1, accessed
        0x00CF_9B00_0000_FFFF, // 0x18: code, DPL0, 32-bit, G=1, accessed
    ];

    /// <summary>Writes the GDT and page tables mapping [0, <paramref name="mappedGiB"/> GiB) 1:1 into guest RAM.</summary>
    public static void WriteTables(GuestMemory memory, int mappedGiB = MaxMappedGiB)
    {
        ArgumentNullException.ThrowIfNull(memory);
        ArgumentOutOfRangeException.ThrowIfLessThan(mappedGiB, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(mappedGiB, MaxMappedGiB);

        for (int i = 0; i < Gdt.Length; i++)
        {
            memory.Write(GdtAddress + ((ulong)i * 8), Gdt[i]);
        }

        memory.Write(Pml4Address, PdptAddress | PresentWritable);
        for (ulong gib = 0; gib < (ulong)mappedGiB; gib++)
        {
            ulong pd = PdBaseAddress + (gib * 0x1000);
            memory.Write(PdptAddress + (gib * 8), pd | PresentWritable);
            for (ulong i = 0; i < 512; i++)
            {
                ulong physical = (gib * 512 + i) * TwoMiB;
                memory.Write(pd + (i * 8), physical | PresentWritable | LargePage);
            }
        }
    }

    /// <summary>Returns <paramref name="current"/> switched to 64-bit long mode over the tables <see cref="WriteTables"/> wrote.</summary>
    public static X86SystemRegisters Apply(X86SystemRegisters current)
    {
        var s = current;
        s.Cr0 = X86SystemRegisters.Cr0Pe | X86SystemRegisters.Cr0Mp | X86SystemRegisters.Cr0Et | X86SystemRegisters.Cr0Ne | X86SystemRegisters.Cr0Wp | X86SystemRegisters.Cr0Pg;
        s.Cr3 = Pml4Address;
        s.Cr4 = X86SystemRegisters.Cr4Pae | X86SystemRegisters.Cr4Osfxsr | X86SystemRegisters.Cr4Osxmmexcpt;
        s.Efer = X86SystemRegisters.EferLme | X86SystemRegisters.EferLma | X86SystemRegisters.EferSce;
        s.Gdt.Base = GdtAddress;
        s.Gdt.Limit = (ushort)((Gdt.Length * 8) - 1);
        s.Cs = SegmentRegister.FlatCode(CodeSelector, longMode: true);
        s.Ds = s.Es = s.Fs = s.Gs = s.Ss = SegmentRegister.FlatData(DataSelector);
        return s;
    }
}
