namespace KvmSharp.Emulator.Mmu;

/// <summary>
/// The four PDPTE registers of PAE paging (Intel SDM Vol. 3A 4.4.1). The CPU loads them from memory when CR3 is
/// written under PAE paging, or when a MOV to CR0/CR4 enters PAE paging; later writes to the PDPT in memory have
/// no effect until the next load.
/// </summary>
public readonly record struct PaePdptes(ulong Entry0, ulong Entry1, ulong Entry2, ulong Entry3)
{
    /// <summary>The PDPTE selected by bits 31:30 of a linear address.</summary>
    public ulong this[int index] => (index & 3) switch
    {
        0 => Entry0,
        1 => Entry1,
        2 => Entry2,
        _ => Entry3,
    };
}
