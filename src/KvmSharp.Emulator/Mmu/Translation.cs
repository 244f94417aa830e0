namespace KvmSharp.Emulator.Mmu;

/// <summary>A successful translation, with what a TLB needs to cache it.</summary>
/// <param name="PhysicalAddress">The physical address of the translated linear address (not of the page).</param>
/// <param name="PageSize">4 KiB, 2 MiB, 4 MiB or 1 GiB: the size of the page the leaf entry maps.</param>
/// <param name="Rights">What the combined entries permit, for every privilege and access.</param>
/// <param name="Global">The leaf's G bit with CR4.PGE = 1: the mapping survives CR3 writes.</param>
/// <param name="Dirty">The leaf's D bit is set (after this access), so later writes need no walk to set it.</param>
public readonly record struct Translation(ulong PhysicalAddress, ulong PageSize, PageRights Rights, bool Global, bool Dirty);
