using System.Runtime.CompilerServices;
using KvmSharp.Hypervisor;
using KvmSharp.Memory;

namespace KvmSharp.Emulator.Mmu;

/// <summary>
/// One vCPU's MMU: the paging state, a <see cref="Tlb"/> in front of a <see cref="PageWalker"/>, and the TLB and
/// PDPTE side effects of control-register writes (Intel SDM Vol. 3A 4.4.1, 4.10.4). The CPU validates the
/// architectural rules of a MOV to CRn (PG without PE, LME with PG, ...) before calling the Try/Write methods here.
/// </summary>
public sealed class MemoryManagementUnit
{
    private readonly PageWalker _walker;
    private PagingState _state;

    public MemoryManagementUnit(PageWalker walker)
    {
        ArgumentNullException.ThrowIfNull(walker);
        _walker = walker;
    }

    public MemoryManagementUnit(GuestMemory memory, int maxPhysicalAddressBits = PageWalker.DefaultMaxPhysicalAddressBits, bool supports1GbPages = false)
        : this(new PageWalker(memory, maxPhysicalAddressBits, supports1GbPages))
    {
    }

    public PagingState State => _state;

    public PageWalker Walker => _walker;

    public Tlb Tlb { get; } = new();

    /// <summary>
    /// Sets every register at once (reset, snapshot restore, a state taken from KVM), flushing the whole TLB and
    /// loading the PDPTEs under PAE paging. False, with nothing changed, when a PDPTE sets a reserved bit.
    /// </summary>
    public bool TryLoad(ulong cr0, ulong cr3, ulong cr4, ulong efer)
    {
        var next = new PagingState(cr0, cr3, cr4, efer);
        if (next.Mode == PagingMode.Pae)
        {
            if (!_walker.TryLoadPdptes(cr3, out var pdptes))
            {
                return false;
            }

            next = next.WithPdptes(pdptes);
        }

        _state = next;
        Tlb.FlushAll();
        return true;
    }

    /// <summary>
    /// MOV to CR0. Changing PG or WP flushes the whole TLB; under PAE paging, changing PG, CD or NW reloads the
    /// PDPTEs. False means #GP(0) (a present PDPTE with a reserved bit) and nothing changed.
    /// </summary>
    public bool TryWriteCr0(ulong value)
    {
        ulong changed = _state.Cr0 ^ value;
        var next = _state.WithCr0(value);
        if (next.Mode == PagingMode.Pae && (changed & (X86SystemRegisters.Cr0Pg | PagingState.Cr0Cd | PagingState.Cr0Nw)) != 0)
        {
            if (!_walker.TryLoadPdptes(next.Cr3, out var pdptes))
            {
                return false;
            }

            next = next.WithPdptes(pdptes);
        }

        _state = next;
        if ((changed & (X86SystemRegisters.Cr0Pg | X86SystemRegisters.Cr0Wp)) != 0)
        {
            Tlb.FlushAll();
        }

        return true;
    }

    /// <summary>
    /// MOV to CR3: flushes the non-global entries and, under PAE paging, loads the PDPTEs from the new PDPT. False
    /// means #GP(0) (a reserved PDPTE bit, or under 4-level paging a CR3 bit at or above MAXPHYADDR) and nothing changed.
    /// </summary>
    public bool TryWriteCr3(ulong value)
    {
        var next = _state.WithCr3(value);
        if (next.Mode == PagingMode.Pae)
        {
            if (!_walker.TryLoadPdptes(value, out var pdptes))
            {
                return false;
            }

            next = next.WithPdptes(pdptes);
        }
        else if (next.Mode == PagingMode.FourLevel && (value >> _walker.MaxPhysicalAddressBits) != 0)
        {
            return false;
        }

        _state = next;
        Tlb.FlushNonGlobal();
        return true;
    }

    /// <summary>
    /// MOV to CR4: changing PGE, PAE or PSE flushes the whole TLB, and under PAE paging reloads the PDPTEs. False
    /// means #GP(0) and nothing changed.
    /// </summary>
    public bool TryWriteCr4(ulong value)
    {
        const ulong pagingBits = X86SystemRegisters.Cr4Pge | X86SystemRegisters.Cr4Pae | PagingState.Cr4Pse;
        ulong changed = _state.Cr4 ^ value;
        var next = _state.WithCr4(value);
        if (next.Mode == PagingMode.Pae && (changed & pagingBits) != 0)
        {
            if (!_walker.TryLoadPdptes(next.Cr3, out var pdptes))
            {
                return false;
            }

            next = next.WithPdptes(pdptes);
        }

        _state = next;
        if ((changed & pagingBits) != 0)
        {
            Tlb.FlushAll();
        }

        return true;
    }

    /// <summary>WRMSR to IA32_EFER: a change of NXE, LME or LMA flushes the whole TLB (cached rights depend on NXE).</summary>
    public void WriteEfer(ulong value)
    {
        ulong changed = _state.Efer ^ value;
        _state = _state.WithEfer(value);
        if ((changed & (X86SystemRegisters.EferNxe | X86SystemRegisters.EferLme | X86SystemRegisters.EferLma)) != 0)
        {
            Tlb.FlushAll();
        }
    }

    /// <summary>INVLPG: drops the TLB entries for the page holding <paramref name="linear"/> (a no-op for a non-canonical address).</summary>
    public void InvalidatePage(ulong linear)
    {
        switch (_state.Mode)
        {
            case PagingMode.FourLevel:
                Tlb.FlushPage(linear);
                break;
            case PagingMode.None:
                break;
            default:
                Tlb.FlushPage((uint)linear);
                break;
        }
    }

    /// <summary>
    /// Translates <paramref name="linear"/> through the TLB, walking the paging structures on a miss. The caller
    /// splits accesses that cross a page boundary and translates each page.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public TranslationStatus Translate(ulong linear, MemoryAccess access, AccessPrivilege privilege, out ulong physicalAddress, out PageFault fault)
    {
        var mode = _state.Mode;
        if (mode == PagingMode.None)
        {
            physicalAddress = (uint)linear;
            fault = default;
            return TranslationStatus.Ok;
        }

        if (mode != PagingMode.FourLevel)
        {
            linear = (uint)linear;
        }

        // A non-canonical address never hits: entries are only filled for canonical ones and tags are whole addresses.
        if (Tlb.TryTranslate(linear, access, privilege, out physicalAddress))
        {
            fault = default;
            return TranslationStatus.Ok;
        }

        return TranslateMiss(linear, access, privilege, out physicalAddress, out fault);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private TranslationStatus TranslateMiss(ulong linear, MemoryAccess access, AccessPrivilege privilege, out ulong physicalAddress, out PageFault fault)
    {
        var status = _walker.Walk(linear, access, privilege, in _state, out var translation, out fault);
        if (status == TranslationStatus.Ok)
        {
            Tlb.Insert(linear, in translation);
        }

        physicalAddress = translation.PhysicalAddress;
        return status;
    }
}
