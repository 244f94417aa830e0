namespace KvmSharp.Emulator.Mmu;

/// <summary>Paging-structure entry bits (Intel SDM Vol. 3A 4.3-4.5, Tables 4-4 to 4-20).</summary>
public static class PageTableEntry
{
    public const ulong Present = 1UL << 0;
    public const ulong Writable = 1UL << 1;
    public const ulong User = 1UL << 2;
    public const ulong WriteThrough = 1UL << 3;
    public const ulong CacheDisable = 1UL << 4;
    public const ulong Accessed = 1UL << 5;

    /// <summary>Only in entries that map a page.</summary>
    public const ulong Dirty = 1UL << 6;

    /// <summary>PS in a PDE (or a 4-level PDPTE): the entry maps a large page.</summary>
    public const ulong PageSize = 1UL << 7;

    /// <summary>Only in entries that map a page, and only with CR4.PGE = 1.</summary>
    public const ulong Global = 1UL << 8;

    /// <summary>XD: only with PAE or 4-level paging and EFER.NXE = 1; reserved otherwise.</summary>
    public const ulong ExecuteDisable = 1UL << 63;

    /// <summary>Bits 51:12 of an 8-byte entry: the next table or the page frame (bits above MAXPHYADDR are reserved).</summary>
    public const ulong AddressMask = 0x000F_FFFF_FFFF_F000;

    /// <summary>Bits 31:12 of a 4-byte entry (32-bit paging).</summary>
    public const ulong AddressMask32 = 0xFFFF_F000;

    /// <summary>Reserved bits 2:1 and 8:5 of a PAE PDPTE (Table 4-8); bits 63:MAXPHYADDR are reserved too.</summary>
    public const ulong PaePdpteReservedLow = 0b1_1110_0110;

    /// <summary>Bits 62:52 of a PAE PDE or PTE: reserved under PAE paging (bits 62:MAXPHYADDR), ignored under 4-level paging.</summary>
    public const ulong PaeReservedHigh = 0x7FF0_0000_0000_0000;

    /// <summary>Bits 20:13 of a 2 MiB PDE: reserved (bit 12 is PAT).</summary>
    public const ulong LargePage2MReserved = 0x001F_E000;

    /// <summary>Bits 29:13 of a 1 GiB PDPTE: reserved (bit 12 is PAT).</summary>
    public const ulong LargePage1GReserved = 0x3FFF_E000;

    /// <summary>
    /// Bits 21:13 of a 4 MiB PDE under 32-bit paging: reserved, because PSE-36 is not advertised (with it, bits 20:13
    /// would hold physical address bits 39:32; SDM 4.3, Table 4-4).
    /// </summary>
    public const ulong LargePage4MReserved = 0x003F_E000;
}
