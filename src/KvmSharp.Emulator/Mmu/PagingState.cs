using KvmSharp.Hypervisor;

namespace KvmSharp.Emulator.Mmu;

/// <summary>
/// The control-register state that paging depends on: CR0, CR3, CR4, EFER and, under PAE paging, the PDPTE
/// registers. Immutable; the paging mode is computed once.
/// </summary>
public readonly struct PagingState
{
    /// <summary>CR0.NW (SDM 2.5): a change reloads the PDPTEs under PAE paging.</summary>
    public const ulong Cr0Nw = 1UL << 29;

    /// <summary>CR0.CD (SDM 2.5): a change reloads the PDPTEs under PAE paging.</summary>
    public const ulong Cr0Cd = 1UL << 30;

    /// <summary>CR4.PSE (SDM 2.5): 4 MiB pages under 32-bit paging.</summary>
    public const ulong Cr4Pse = 1UL << 4;

    public PagingState(ulong cr0, ulong cr3, ulong cr4, ulong efer, PaePdptes pdptes = default)
    {
        Cr0 = cr0;
        Cr3 = cr3;
        Cr4 = cr4;
        Efer = efer;
        Pdptes = pdptes;
        Mode = ModeOf(cr0, cr4, efer);
    }

    public ulong Cr0 { get; }

    public ulong Cr3 { get; }

    public ulong Cr4 { get; }

    public ulong Efer { get; }

    /// <summary>The PDPTE registers: meaningful only under <see cref="PagingMode.Pae"/>.</summary>
    public PaePdptes Pdptes { get; }

    public PagingMode Mode { get; }

    /// <summary>CR0.WP: supervisor writes honour R/W.</summary>
    public bool WriteProtect => (Cr0 & X86SystemRegisters.Cr0Wp) != 0;

    /// <summary>CR4.PSE: 4 MiB pages under 32-bit paging (PAE and 4-level paging always honour PS).</summary>
    public bool PageSizeExtensions => (Cr4 & Cr4Pse) != 0;

    /// <summary>CR4.PGE: G marks a translation global.</summary>
    public bool GlobalPages => (Cr4 & X86SystemRegisters.Cr4Pge) != 0;

    /// <summary>XD bits are honoured (and bit 63 is not reserved): PAE or 4-level paging with EFER.NXE = 1.</summary>
    public bool NoExecute => (Efer & X86SystemRegisters.EferNxe) != 0 && Mode >= PagingMode.Pae;

    /// <summary>
    /// The paging mode for these registers. EFER.LMA is taken as set when EFER.LME and CR0.PG are, as the CPU sets it
    /// (SDM 9.8.5), so a state copied before LMA was updated still selects 4-level paging.
    /// </summary>
    public static PagingMode ModeOf(ulong cr0, ulong cr4, ulong efer)
    {
        if ((cr0 & X86SystemRegisters.Cr0Pg) == 0)
        {
            return PagingMode.None;
        }

        if ((cr4 & X86SystemRegisters.Cr4Pae) == 0)
        {
            return PagingMode.Bits32;
        }

        return (efer & (X86SystemRegisters.EferLma | X86SystemRegisters.EferLme)) != 0 ? PagingMode.FourLevel : PagingMode.Pae;
    }

    public PagingState WithCr0(ulong value) => new(value, Cr3, Cr4, Efer, Pdptes);

    public PagingState WithCr3(ulong value) => new(Cr0, value, Cr4, Efer, Pdptes);

    public PagingState WithCr4(ulong value) => new(Cr0, Cr3, value, Efer, Pdptes);

    public PagingState WithEfer(ulong value) => new(Cr0, Cr3, Cr4, value, Pdptes);

    public PagingState WithPdptes(PaePdptes value) => new(Cr0, Cr3, Cr4, Efer, value);
}
