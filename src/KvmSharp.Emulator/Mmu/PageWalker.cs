using System.Runtime.CompilerServices;
using KvmSharp.Memory;

namespace KvmSharp.Emulator.Mmu;

/// <summary>
/// Translates linear addresses by walking the guest's paging structures in guest RAM (Intel SDM Vol. 3A chapter 4):
/// 32-bit, PAE and 4-level paging, with permission and reserved-bit checks and the accessed/dirty updates. Holds no
/// per-vCPU state (the control registers come in a <see cref="PagingState"/>), so vCPUs may share one walker.
/// </summary>
/// <remarks>
/// <para>
/// A paging-structure entry outside guest RAM reads as 0, so the walk stops with a not-present #PF at that level,
/// and nothing is written back. This is what QEMU's TCG does on a PC (an unassigned physical address reads as 0)
/// and it keeps a hostile CR3 from reaching anything but RAM. Such reads are counted in
/// <see cref="UnbackedEntryReads"/>.
/// </para>
/// <para>
/// Accessed and dirty bits are set with a compare-exchange of the whole entry (4 bytes under 32-bit paging, where
/// an 8-byte exchange would span the neighbouring entry; 8 bytes otherwise), so a guest on another vCPU that edits
/// the entry concurrently is never overwritten: when the exchange loses, the walk starts again from the top.
/// Entries above the leaf get A as the walk passes them, even if the walk then faults (SDM 4.8 permits it; QEMU and
/// Intel processors do it); the leaf gets A, and D on a write, only when the access is allowed.
/// </para>
/// </remarks>
public sealed class PageWalker
{
    public const int DefaultMaxPhysicalAddressBits = 46;

    private const ulong Size4K = 1UL << 12;

    private readonly GuestMemory _memory;

    /// <summary>Bits 51:MAXPHYADDR: reserved in every 8-byte entry.</summary>
    private readonly ulong _reservedAddressBits;

    private long _unbackedEntryReads;

    /// <param name="memory">Guest RAM holding the paging structures.</param>
    /// <param name="maxPhysicalAddressBits">MAXPHYADDR as CPUID.80000008H:EAX[7:0] reports it (36 to 52).</param>
    /// <param name="supports1GbPages">CPUID.80000001H:EDX.Page1GB: PS = 1 in a 4-level PDPTE maps a 1 GiB page
    /// instead of being a reserved bit.</param>
    public PageWalker(GuestMemory memory, int maxPhysicalAddressBits = DefaultMaxPhysicalAddressBits, bool supports1GbPages = false)
    {
        ArgumentNullException.ThrowIfNull(memory);
        if (maxPhysicalAddressBits is < 32 or > 52)
        {
            throw new ArgumentOutOfRangeException(nameof(maxPhysicalAddressBits), maxPhysicalAddressBits, "MAXPHYADDR must be between 32 and 52 bits.");
        }

        _memory = memory;
        MaxPhysicalAddressBits = maxPhysicalAddressBits;
        Supports1GbPages = supports1GbPages;
        _reservedAddressBits = PageTableEntry.AddressMask & ~((1UL << maxPhysicalAddressBits) - 1);
    }

    public int MaxPhysicalAddressBits { get; }

    public bool Supports1GbPages { get; }

    /// <summary>Paging-structure entries (and PDPTs) read outside guest RAM, each read as 0 (not present).</summary>
    public long UnbackedEntryReads => Volatile.Read(ref _unbackedEntryReads);

    /// <summary>True when bits 63:47 of <paramref name="linear"/> are all equal (48-bit linear addresses).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool IsCanonical(ulong linear) => (ulong)((long)(linear << 16) >> 16) == linear;

    /// <summary>
    /// Loads the four PDPTEs of PAE paging from the PDPT that <paramref name="cr3"/> points to (bits 31:5), as a MOV to
    /// CR3 (or a MOV to CR0/CR4 entering PAE paging) does. False when a present PDPTE sets a reserved bit: the
    /// instruction then raises #GP(0) and the PDPTE registers keep their old values (SDM 4.4.1).
    /// </summary>
    public bool TryLoadPdptes(ulong cr3, out PaePdptes pdptes)
    {
        ulong table = cr3 & 0xFFFF_FFE0;
        ulong e0 = ReadPdpte(table);
        ulong e1 = ReadPdpte(table + 8);
        ulong e2 = ReadPdpte(table + 16);
        ulong e3 = ReadPdpte(table + 24);
        if (IsBadPdpte(e0) || IsBadPdpte(e1) || IsBadPdpte(e2) || IsBadPdpte(e3))
        {
            pdptes = default;
            return false;
        }

        pdptes = new PaePdptes(e0, e1, e2, e3);
        return true;
    }

    /// <summary>
    /// Translates <paramref name="linear"/> for <paramref name="access"/> at <paramref name="privilege"/> under
    /// <paramref name="state"/>, setting accessed and dirty bits in guest memory on success. Under 32-bit and PAE
    /// paging (and with paging off) only the low 32 bits of <paramref name="linear"/> are used.
    /// </summary>
    public TranslationStatus Walk(ulong linear, MemoryAccess access, AccessPrivilege privilege, in PagingState state, out Translation translation, out PageFault fault)
    {
        switch (state.Mode)
        {
            case PagingMode.None:
                translation = new Translation((uint)linear, Size4K, PageRights.All, Global: false, Dirty: true);
                fault = default;
                return TranslationStatus.Ok;
            case PagingMode.FourLevel:
                if (!IsCanonical(linear))
                {
                    translation = default;
                    fault = new PageFault(linear, PageFaultErrorCode.None);
                    return TranslationStatus.NonCanonical;
                }

                break;
            default:
                linear = (uint)linear;
                break;
        }

        return WalkTables(linear, access, privilege, in state, out translation, out fault);
    }

    private TranslationStatus WalkTables(ulong linear, MemoryAccess access, AccessPrivilege privilege, in PagingState state, out Translation translation, out PageFault fault)
    {
        var mode = state.Mode;
        bool wide = mode != PagingMode.Bits32;
        bool noExecute = state.NoExecute;
        int bitsPerLevel = wide ? 9 : 10;
        ulong indexMask = wide ? 0x1FFUL : 0x3FFUL;
        ulong entrySize = wide ? 8UL : 4UL;
        ulong addressMask = wide ? PageTableEntry.AddressMask : PageTableEntry.AddressMask32;

        // Reserved in every 8-byte entry: bits above MAXPHYADDR; bit 63 without NXE; under PAE, bits 62:52 as well.
        ulong reservedEverywhere = 0;
        if (wide)
        {
            reservedEverywhere = _reservedAddressBits | (noExecute ? 0 : PageTableEntry.ExecuteDisable);
            if (mode == PagingMode.Pae)
            {
                reservedEverywhere |= PageTableEntry.PaeReservedHigh;
            }
        }

    restart:
        bool user = true;
        bool writable = true;
        bool executable = true;
        int level;
        ulong table;
        switch (mode)
        {
            case PagingMode.Pae:
                // The PDPTE registers were checked for reserved bits when loaded; they carry no R/W, U/S, XD or A.
                ulong pdpte = state.Pdptes[(int)(linear >> 30)];
                if ((pdpte & PageTableEntry.Present) == 0)
                {
                    return Fault(linear, access, privilege, noExecute, PageFaultErrorCode.None, out translation, out fault);
                }

                level = 2;
                table = pdpte & addressMask & ~_reservedAddressBits;
                break;
            case PagingMode.FourLevel:
                level = 4;
                table = state.Cr3 & addressMask & ~_reservedAddressBits;
                break;
            default:
                level = 2;
                table = state.Cr3 & addressMask;
                break;
        }

        while (true)
        {
            int shift = 12 + bitsPerLevel * (level - 1);
            ulong entryAddress = table + ((linear >> shift) & indexMask) * entrySize;
            ulong entry = ReadEntry(entryAddress, wide, out nint host);
            if ((entry & PageTableEntry.Present) == 0)
            {
                return Fault(linear, access, privilege, noExecute, PageFaultErrorCode.None, out translation, out fault);
            }

            ulong reserved = reservedEverywhere;
            bool leaf = level == 1;
            if (!leaf && (entry & PageTableEntry.PageSize) != 0)
            {
                if (!wide)
                {
                    // Without CR4.PSE the PS bit of a 32-bit PDE is ignored.
                    if (state.PageSizeExtensions)
                    {
                        leaf = true;
                        reserved |= PageTableEntry.LargePage4MReserved;
                    }
                }
                else if (level == 2)
                {
                    leaf = true;
                    reserved |= PageTableEntry.LargePage2MReserved;
                }
                else if (level == 3 && Supports1GbPages)
                {
                    leaf = true;
                    reserved |= PageTableEntry.LargePage1GReserved;
                }
                else
                {
                    // PS is reserved in a PML4E, and in a PDPTE when 1 GiB pages are not advertised.
                    reserved |= PageTableEntry.PageSize;
                }
            }

            if ((entry & reserved) != 0)
            {
                return Fault(linear, access, privilege, noExecute, PageFaultErrorCode.Present | PageFaultErrorCode.ReservedBit, out translation, out fault);
            }

            user &= (entry & PageTableEntry.User) != 0;
            writable &= (entry & PageTableEntry.Writable) != 0;
            executable &= !noExecute || (entry & PageTableEntry.ExecuteDisable) == 0;

            if (leaf)
            {
                var rights = RightsOf(user, writable, executable, in state);
                if (!rights.Allows(access, privilege))
                {
                    return Fault(linear, access, privilege, noExecute, PageFaultErrorCode.Present, out translation, out fault);
                }

                ulong set = access == MemoryAccess.Write ? PageTableEntry.Accessed | PageTableEntry.Dirty : PageTableEntry.Accessed;
                if ((entry & set) != set && !TrySetBits(host, wide, entry, set))
                {
                    goto restart;
                }

                ulong pageSize = 1UL << shift;
                ulong frame = entry & addressMask & ~(pageSize - 1);
                translation = new Translation(
                    frame | (linear & (pageSize - 1)),
                    pageSize,
                    rights,
                    Global: state.GlobalPages && (entry & PageTableEntry.Global) != 0,
                    Dirty: ((entry | set) & PageTableEntry.Dirty) != 0);
                fault = default;
                return TranslationStatus.Ok;
            }

            if ((entry & PageTableEntry.Accessed) == 0 && !TrySetBits(host, wide, entry, PageTableEntry.Accessed))
            {
                goto restart;
            }

            table = entry & addressMask;
            level--;
        }
    }

    /// <summary>
    /// The rights of a page from its combined R/W, U/S and XD bits (SDM 4.6.1). SMEP would clear SupervisorExecute on
    /// user pages here; SMAP depends on RFLAGS.AC and on whether the access is implicit, so it would be checked per
    /// access (and the TLB would cache supervisor rights to user pages separately).
    /// </summary>
    private static PageRights RightsOf(bool user, bool writable, bool executable, in PagingState state)
    {
        var rights = PageRights.SupervisorRead;
        if (writable || !state.WriteProtect)
        {
            rights |= PageRights.SupervisorWrite;
        }

        if (executable)
        {
            rights |= PageRights.SupervisorExecute;
        }

        if (user)
        {
            rights |= PageRights.UserRead;
            if (writable)
            {
                rights |= PageRights.UserWrite;
            }

            if (executable)
            {
                rights |= PageRights.UserExecute;
            }
        }

        return rights;
    }

    /// <summary>Builds the #PF error code (SDM 4.7): <paramref name="cause"/> holds P and RSVD; the access adds W/R, U/S and I/D.</summary>
    private static TranslationStatus Fault(ulong linear, MemoryAccess access, AccessPrivilege privilege, bool noExecute, PageFaultErrorCode cause, out Translation translation, out PageFault fault)
    {
        var code = cause;
        if (access == MemoryAccess.Write)
        {
            code |= PageFaultErrorCode.Write;
        }

        if (privilege == AccessPrivilege.User)
        {
            code |= PageFaultErrorCode.User;
        }

        if (access == MemoryAccess.Execute && noExecute)
        {
            code |= PageFaultErrorCode.InstructionFetch;
        }

        translation = default;
        fault = new PageFault(linear, code);
        return TranslationStatus.PageFault;
    }

    private bool IsBadPdpte(ulong pdpte)
        => (pdpte & PageTableEntry.Present) != 0
           && (pdpte & (PageTableEntry.PaePdpteReservedLow | ~((1UL << MaxPhysicalAddressBits) - 1))) != 0;

    private ulong ReadPdpte(ulong address) => ReadEntry(address, wide: true, out _);

    /// <summary>One paging-structure entry, read once (callers validate and use this copy), or 0 outside RAM.</summary>
    private unsafe ulong ReadEntry(ulong address, bool wide, out nint host)
    {
        if (!_memory.TryGetHostAddress(address, wide ? 8UL : 4UL, out host))
        {
            Interlocked.Increment(ref _unbackedEntryReads);
            return 0;
        }

        // SAFETY: TryGetHostAddress proved [host, host + 4 or 8) lies inside a live region mapping. Regions are page
        // aligned on both sides and entries are naturally aligned (tables are 4 KiB aligned, the PDPT 32 bytes), so the
        // load is a single atomic access that another vCPU cannot tear.
        return wide ? Volatile.Read(ref *(ulong*)host) : Volatile.Read(ref *(uint*)host);
    }

    /// <summary>Sets <paramref name="bits"/> in the entry at <paramref name="host"/> if it still holds <paramref name="expected"/>.</summary>
    private unsafe bool TrySetBits(nint host, bool wide, ulong expected, ulong bits)
    {
        if (!TrySetBitsAtomically(host, wide, expected, bits))
        {
            return false;
        }

        _memory.MarkDirtyHost(host, wide ? 8UL : 4UL); // the accessed/dirty bits are a write to the page table
        return true;
    }

    private static unsafe bool TrySetBitsAtomically(nint host, bool wide, ulong expected, ulong bits)
    {
        // SAFETY: host came from ReadEntry for this entry's full width in this walk, which only reaches here for a
        // present entry, i.e. one that was read from RAM (an unbacked entry reads as 0, not present); the mapping lives
        // as long as the GuestMemory, and the address is naturally aligned, as interlocked operations require.
        if (wide)
        {
            return Interlocked.CompareExchange(ref *(ulong*)host, expected | bits, expected) == expected;
        }

        uint narrow = (uint)expected;
        return Interlocked.CompareExchange(ref *(uint*)host, narrow | (uint)bits, narrow) == narrow;
    }
}
