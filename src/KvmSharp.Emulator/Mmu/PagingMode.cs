namespace KvmSharp.Emulator.Mmu;

/// <summary>The paging mode selected by CR0.PG, CR4.PAE and EFER.LMA (Intel SDM Vol. 3A 4.1.1, Table 4-1).</summary>
public enum PagingMode : byte
{
    /// <summary>CR0.PG = 0: linear addresses are physical addresses (32 bits wide).</summary>
    None,

    /// <summary>CR0.PG = 1, CR4.PAE = 0: two levels of 4-byte entries; 4 KiB pages, 4 MiB pages with CR4.PSE.</summary>
    Bits32,

    /// <summary>CR0.PG = 1, CR4.PAE = 1, EFER.LMA = 0: four PDPTE registers, then two levels of 8-byte entries.</summary>
    Pae,

    /// <summary>CR0.PG = 1, CR4.PAE = 1, EFER.LMA = 1: four levels of 8-byte entries over 48-bit linear addresses.</summary>
    FourLevel,
}
