using KvmSharp.Emulator.Mmu;
using static KvmSharp.Emulator.Tests.Mmu.PagingFixture;

namespace KvmSharp.Emulator.Tests.Mmu;

public sealed class FourLevelPagingTests : IDisposable
{
    // PML4 at 0x1000, PDPT at 0x2000, PD at 0x3000, PT at 0x4000; indices 1, 2, 3, 4; offset 0x567.
    private const ulong Linear = (1UL << 39) | (2UL << 30) | (3UL << 21) | (4UL << 12) | 0x567;
    private const ulong Pml4e = 0x1008;
    private const ulong Pdpte = 0x2010;
    private const ulong Pde = 0x3018;
    private const ulong Pte = 0x4020;
    private const ulong Frame = 0x10_0000;

    private readonly PagingFixture _f = new();
    private readonly PageWalker _walker;

    public FourLevelPagingTests()
    {
        _walker = new PageWalker(_f.Memory);
        _f.Set64(Pml4e, 0x2000 | P | W | U);
        _f.Set64(Pdpte, 0x3000 | P | W | U);
        _f.Set64(Pde, 0x4000 | P | W | U);
        _f.Set64(Pte, Frame | P | W | U);
    }

    public void Dispose() => _f.Dispose();

    private TranslationStatus Walk(MemoryAccess access, AccessPrivilege privilege, PagingState state, out Translation t, out PageFault fault, ulong linear = Linear)
        => _walker.Walk(linear, access, privilege, in state, out t, out fault);

    [Fact]
    public void A4KRead_Translates_AndSetsAccessedOnEveryEntry_ButNotDirty()
    {
        Assert.Equal(TranslationStatus.Ok, Walk(MemoryAccess.Read, AccessPrivilege.User, FourLevel(0x1000), out var t, out _));
        Assert.Equal(new Translation(0x10_0567, 0x1000, PageRights.All, Global: false, Dirty: false), t);
        Assert.Equal(0x2000 | P | W | U | A, _f.Get64(Pml4e));
        Assert.Equal(0x3000 | P | W | U | A, _f.Get64(Pdpte));
        Assert.Equal(0x4000 | P | W | U | A, _f.Get64(Pde));
        Assert.Equal(Frame | P | W | U | A, _f.Get64(Pte));
    }

    [Fact]
    public void A4KWrite_SetsDirtyOnTheLeafOnly()
    {
        Assert.Equal(TranslationStatus.Ok, Walk(MemoryAccess.Write, AccessPrivilege.Supervisor, FourLevel(0x1000), out var t, out _));
        Assert.Equal(0x10_0567UL, t.PhysicalAddress);
        Assert.True(t.Dirty);
        Assert.Equal(0x4000 | P | W | U | A, _f.Get64(Pde));
        Assert.Equal(0x10_0067UL, _f.Get64(Pte));
    }

    [Fact]
    public void Cr3LowBits_AreIgnored()
    {
        Assert.Equal(TranslationStatus.Ok, Walk(MemoryAccess.Read, AccessPrivilege.Supervisor, FourLevel(0x1018), out var t, out _));
        Assert.Equal(0x10_0567UL, t.PhysicalAddress);
    }

    [Fact]
    public void A2MPage_Translates_WithTheLowLinearBits_AndSetsAccessedAndDirtyOnThePde()
    {
        _f.Set64(Pde, 0x20_0000 | P | W | Ps);
        Assert.Equal(TranslationStatus.Ok, Walk(MemoryAccess.Write, AccessPrivilege.Supervisor, FourLevel(0x1000), out var t, out _));
        Assert.Equal(new Translation(0x20_4567, 0x20_0000, PageRights.SupervisorRead | PageRights.SupervisorWrite | PageRights.SupervisorExecute, false, true), t);
        Assert.Equal(0x20_00E3UL, _f.Get64(Pde));
        Assert.Equal(Frame | P | W | U, _f.Get64(Pte)); // not reached
    }

    [Fact]
    public void A2MPage_PatBit12_IsNotPartOfTheAddress()
    {
        _f.Set64(Pde, 0x20_0000 | 0x1000 | P | W | Ps);
        Assert.Equal(TranslationStatus.Ok, Walk(MemoryAccess.Read, AccessPrivilege.Supervisor, FourLevel(0x1000), out var t, out _));
        Assert.Equal(0x20_4567UL, t.PhysicalAddress);
    }

    [Fact]
    public void A1GPage_Translates_WhenAdvertised()
    {
        var walker = new PageWalker(_f.Memory, supports1GbPages: true);
        _f.Set64(Pdpte, 0x4000_0000 | P | W | U | Ps);
        var state = FourLevel(0x1000);
        Assert.Equal(TranslationStatus.Ok, walker.Walk(Linear, MemoryAccess.Read, AccessPrivilege.User, in state, out var t, out _));
        Assert.Equal(new Translation(0x4060_4567, 0x4000_0000, PageRights.All, false, false), t);
        Assert.Equal(0x4000_0000 | P | W | U | Ps | A, _f.Get64(Pdpte));
    }

    [Fact]
    public void A1GPage_IsAReservedBitFault_WhenNotAdvertised()
    {
        _f.Set64(Pdpte, 0x4000_0000 | P | W | U | Ps);
        Assert.Equal(TranslationStatus.PageFault, Walk(MemoryAccess.Read, AccessPrivilege.Supervisor, FourLevel(0x1000), out _, out var fault));
        Assert.Equal(new PageFault(Linear, PageFaultErrorCode.Present | PageFaultErrorCode.ReservedBit), fault);
        Assert.Equal(0x4000_0000 | P | W | U | Ps, _f.Get64(Pdpte));
    }

    [Theory]
    [InlineData(Pml4e)]
    [InlineData(Pdpte)]
    [InlineData(Pde)]
    [InlineData(Pte)]
    public void NotPresent_AtEachLevel_FaultsWithPZero_AndTheLinearAddress(ulong entry)
    {
        ulong value = _f.Get64(entry) & ~P;
        _f.Set64(entry, value);

        Assert.Equal(TranslationStatus.PageFault, Walk(MemoryAccess.Read, AccessPrivilege.Supervisor, FourLevel(0x1000), out _, out var read));
        Assert.Equal(new PageFault(Linear, PageFaultErrorCode.None), read);
        Assert.Equal(TranslationStatus.PageFault, Walk(MemoryAccess.Write, AccessPrivilege.User, FourLevel(0x1000), out _, out var write));
        Assert.Equal((PageFaultErrorCode)0x6, write.ErrorCode);
        Assert.Equal(TranslationStatus.PageFault, Walk(MemoryAccess.Execute, AccessPrivilege.User, FourLevel(0x1000, eferExtra: Nxe), out _, out var fetch));
        Assert.Equal((PageFaultErrorCode)0x14, fetch.ErrorCode);
        Assert.Equal(value, _f.Get64(entry));
    }

    [Fact]
    public void ALeafFault_LeavesTheLeafAlone_ButTheUpperEntriesHaveA()
    {
        _f.Set64(Pte, Frame | P | U);
        Assert.Equal(TranslationStatus.PageFault, Walk(MemoryAccess.Write, AccessPrivilege.User, FourLevel(0x1000), out _, out var fault));
        Assert.Equal((PageFaultErrorCode)0x7, fault.ErrorCode);
        Assert.Equal(0x2000 | P | W | U | A, _f.Get64(Pml4e));
        Assert.Equal(0x3000 | P | W | U | A, _f.Get64(Pdpte));
        Assert.Equal(0x4000 | P | W | U | A, _f.Get64(Pde));
        Assert.Equal(Frame | P | U, _f.Get64(Pte));
    }

    [Fact]
    public void SupervisorWrite_ToAReadOnlyPage_FaultsWithWp_AndSucceedsWithoutIt()
    {
        _f.Set64(Pte, Frame | P | U);
        Assert.Equal(TranslationStatus.PageFault, Walk(MemoryAccess.Write, AccessPrivilege.Supervisor, FourLevel(0x1000, cr0Extra: Wp), out _, out var fault));
        Assert.Equal(new PageFault(Linear, PageFaultErrorCode.Present | PageFaultErrorCode.Write), fault);
        Assert.Equal(Frame | P | U, _f.Get64(Pte));

        Assert.Equal(TranslationStatus.Ok, Walk(MemoryAccess.Write, AccessPrivilege.Supervisor, FourLevel(0x1000), out var t, out _));
        Assert.Equal(0x10_0567UL, t.PhysicalAddress);
        Assert.Equal(Frame | P | U | A | D, _f.Get64(Pte));
        Assert.Equal(PageRights.All & ~PageRights.UserWrite, t.Rights);
    }

    [Fact]
    public void UserWrite_ToAReadOnlyPage_FaultsEvenWithoutWp()
    {
        _f.Set64(Pte, Frame | P | U);
        Assert.Equal(TranslationStatus.PageFault, Walk(MemoryAccess.Write, AccessPrivilege.User, FourLevel(0x1000), out _, out var fault));
        Assert.Equal(new PageFault(Linear, (PageFaultErrorCode)0x7), fault);
    }

    [Fact]
    public void ReadOnlyAtAnUpperLevel_MakesThePageReadOnly()
    {
        _f.Set64(Pdpte, 0x3000 | P | U);
        Assert.Equal(TranslationStatus.PageFault, Walk(MemoryAccess.Write, AccessPrivilege.Supervisor, FourLevel(0x1000, cr0Extra: Wp), out _, out var fault));
        Assert.Equal((PageFaultErrorCode)0x3, fault.ErrorCode);
    }

    [Fact]
    public void UserAccess_ToASupervisorPage_Faults_ButSupervisorAndImplicitAccessesSucceed()
    {
        _f.Set64(Pde, 0x4000 | P | W);
        Assert.Equal(TranslationStatus.PageFault, Walk(MemoryAccess.Read, AccessPrivilege.User, FourLevel(0x1000), out _, out var fault));
        Assert.Equal(new PageFault(Linear, PageFaultErrorCode.Present | PageFaultErrorCode.User), fault);
        Assert.Equal(TranslationStatus.Ok, Walk(MemoryAccess.Read, AccessPrivilege.Supervisor, FourLevel(0x1000), out _, out _));
        Assert.Equal(TranslationStatus.Ok, Walk(MemoryAccess.Write, AccessPrivilege.ImplicitSupervisor, FourLevel(0x1000, cr0Extra: Wp), out var t, out _));
        Assert.Equal(PageRights.SupervisorRead | PageRights.SupervisorWrite | PageRights.SupervisorExecute, t.Rights);
    }

    [Fact]
    public void ImplicitSupervisorFaults_HaveUsZero()
    {
        _f.Set64(Pte, 0);
        Assert.Equal(TranslationStatus.PageFault, Walk(MemoryAccess.Write, AccessPrivilege.ImplicitSupervisor, FourLevel(0x1000), out _, out var fault));
        Assert.Equal((PageFaultErrorCode)0x2, fault.ErrorCode);
    }

    [Theory]
    [InlineData(Pml4e)]
    [InlineData(Pte)]
    public void InstructionFetch_FromAnXdPage_FaultsWithIdWhenNxeIsSet(ulong entry)
    {
        _f.Set64(entry, _f.Get64(entry) | Xd);
        var state = FourLevel(0x1000, eferExtra: Nxe);
        Assert.Equal(TranslationStatus.PageFault, Walk(MemoryAccess.Execute, AccessPrivilege.Supervisor, state, out _, out var sup));
        Assert.Equal(new PageFault(Linear, (PageFaultErrorCode)0x11), sup);
        Assert.Equal(TranslationStatus.PageFault, Walk(MemoryAccess.Execute, AccessPrivilege.User, state, out _, out var user));
        Assert.Equal((PageFaultErrorCode)0x15, user.ErrorCode);
        Assert.Equal(TranslationStatus.Ok, Walk(MemoryAccess.Read, AccessPrivilege.User, state, out var t, out _));
        Assert.Equal(PageRights.SupervisorRead | PageRights.SupervisorWrite | PageRights.UserRead | PageRights.UserWrite, t.Rights);
    }

    [Fact]
    public void XdWithoutNxe_IsAReservedBit_ForAnyAccess()
    {
        _f.Set64(Pde, _f.Get64(Pde) | Xd);
        Assert.Equal(TranslationStatus.PageFault, Walk(MemoryAccess.Read, AccessPrivilege.Supervisor, FourLevel(0x1000), out _, out var read));
        Assert.Equal(new PageFault(Linear, (PageFaultErrorCode)0x9), read);
        Assert.Equal(TranslationStatus.PageFault, Walk(MemoryAccess.Execute, AccessPrivilege.User, FourLevel(0x1000), out _, out var fetch));
        Assert.Equal((PageFaultErrorCode)0xD, fetch.ErrorCode); // no I/D without NXE
        Assert.Equal(0x4000 | P | W | U | Xd, _f.Get64(Pde));
    }

    [Fact]
    public void FetchesWithoutNxe_AreAllowed_OnAnyPresentPage()
    {
        Assert.Equal(TranslationStatus.Ok, Walk(MemoryAccess.Execute, AccessPrivilege.User, FourLevel(0x1000), out var t, out _));
        Assert.Equal(0x10_0567UL, t.PhysicalAddress);
    }

    [Fact]
    public void PhysicalAddressBits_AtOrAboveMaxPhyAddr_AreReserved()
    {
        _f.Set64(Pte, Frame | (1UL << 46) | P | W | U);
        Assert.Equal(TranslationStatus.PageFault, Walk(MemoryAccess.Write, AccessPrivilege.User, FourLevel(0x1000), out _, out var fault));
        Assert.Equal(new PageFault(Linear, (PageFaultErrorCode)0xF), fault);

        var wide = new PageWalker(_f.Memory, maxPhysicalAddressBits: 52);
        var state = FourLevel(0x1000);
        Assert.Equal(TranslationStatus.Ok, wide.Walk(Linear, MemoryAccess.Read, AccessPrivilege.User, in state, out var t, out _));
        Assert.Equal((1UL << 46) | 0x10_0567, t.PhysicalAddress);
    }

    [Fact]
    public void AReservedAddressBit_InAnUpperEntry_FaultsThere()
    {
        _f.Set64(Pdpte, 0x3000 | (1UL << 51) | P | W | U);
        Assert.Equal(TranslationStatus.PageFault, Walk(MemoryAccess.Read, AccessPrivilege.Supervisor, FourLevel(0x1000), out _, out var fault));
        Assert.Equal((PageFaultErrorCode)0x9, fault.ErrorCode);
        Assert.Equal(0x2000 | P | W | U | A, _f.Get64(Pml4e));
        Assert.Equal(0x3000 | (1UL << 51) | P | W | U, _f.Get64(Pdpte));
    }

    [Fact]
    public void Bits62To52_AreIgnoredUnderFourLevelPaging()
    {
        _f.Set64(Pte, Frame | (0x7FFUL << 52) | P | W | U);
        Assert.Equal(TranslationStatus.Ok, Walk(MemoryAccess.Read, AccessPrivilege.User, FourLevel(0x1000), out var t, out _));
        Assert.Equal(0x10_0567UL, t.PhysicalAddress);
    }

    [Theory]
    [InlineData(1UL << 13)]
    [InlineData(1UL << 20)]
    public void A2MPage_WithReservedLowBits_Faults(ulong bit)
    {
        _f.Set64(Pde, 0x20_0000 | bit | P | W | Ps);
        Assert.Equal(TranslationStatus.PageFault, Walk(MemoryAccess.Read, AccessPrivilege.Supervisor, FourLevel(0x1000), out _, out var fault));
        Assert.Equal(new PageFault(Linear, (PageFaultErrorCode)0x9), fault);
    }

    [Fact]
    public void A1GPage_WithReservedLowBits_Faults()
    {
        var walker = new PageWalker(_f.Memory, supports1GbPages: true);
        _f.Set64(Pdpte, 0x4000_0000 | (1UL << 29) | P | W | Ps);
        var state = FourLevel(0x1000);
        Assert.Equal(TranslationStatus.PageFault, walker.Walk(Linear, MemoryAccess.Write, AccessPrivilege.Supervisor, in state, out _, out var fault));
        Assert.Equal((PageFaultErrorCode)0xB, fault.ErrorCode);
    }

    [Fact]
    public void PsInAPml4e_IsReserved()
    {
        _f.Set64(Pml4e, 0x2000 | P | W | U | Ps);
        Assert.Equal(TranslationStatus.PageFault, Walk(MemoryAccess.Read, AccessPrivilege.User, FourLevel(0x1000), out _, out var fault));
        Assert.Equal((PageFaultErrorCode)0xD, fault.ErrorCode);
    }

    [Theory]
    [InlineData(0x0000_8000_0000_0000UL)]
    [InlineData(0xFFFF_7FFF_FFFF_F000UL)]
    [InlineData(0x8000_0000_0000_0000UL)]
    public void NonCanonicalAddresses_AreNotPageFaults(ulong linear)
    {
        Assert.Equal(TranslationStatus.NonCanonical, Walk(MemoryAccess.Read, AccessPrivilege.Supervisor, FourLevel(0x1000), out _, out var fault, linear));
        Assert.Equal(new PageFault(linear, PageFaultErrorCode.None), fault);
        Assert.Equal(0x2000 | P | W | U, _f.Get64(Pml4e));
    }

    [Fact]
    public void TheUpperCanonicalHalf_IsWalked()
    {
        // 0xFFFF_8000_0000_0000 uses PML4 index 256: not present here.
        Assert.Equal(TranslationStatus.PageFault, Walk(MemoryAccess.Read, AccessPrivilege.Supervisor, FourLevel(0x1000), out _, out var fault, 0xFFFF_8000_0000_0123));
        Assert.Equal(new PageFault(0xFFFF_8000_0000_0123, PageFaultErrorCode.None), fault);
    }

    [Fact]
    public void AGlobalLeaf_IsGlobalOnlyWithPge()
    {
        _f.Set64(Pte, Frame | P | W | U | G);
        Assert.Equal(TranslationStatus.Ok, Walk(MemoryAccess.Read, AccessPrivilege.User, FourLevel(0x1000, cr4Extra: Pge), out var global, out _));
        Assert.True(global.Global);
        Assert.Equal(TranslationStatus.Ok, Walk(MemoryAccess.Read, AccessPrivilege.User, FourLevel(0x1000), out var plain, out _));
        Assert.False(plain.Global);
    }

    [Fact]
    public void TablesOutsideRam_ReadAsNotPresent_AndAreCounted()
    {
        Assert.Equal(TranslationStatus.PageFault, Walk(MemoryAccess.Read, AccessPrivilege.Supervisor, FourLevel(0x1_0000_0000), out _, out var root));
        Assert.Equal(new PageFault(Linear, PageFaultErrorCode.None), root);
        Assert.Equal(1, _walker.UnbackedEntryReads);

        _f.Set64(Pde, 0x7FFF_F000 | P | W | U);
        Assert.Equal(TranslationStatus.PageFault, Walk(MemoryAccess.Write, AccessPrivilege.User, FourLevel(0x1000), out _, out var leaf));
        Assert.Equal(new PageFault(Linear, (PageFaultErrorCode)0x6), leaf);
        Assert.Equal(2, _walker.UnbackedEntryReads);
        Assert.Equal(0x7FFF_F000 | P | W | U | A, _f.Get64(Pde));
    }

    [Fact]
    public void NoPaging_IsIdentity_OverThirtyTwoBits()
    {
        var state = new PagingState(Pe, 0x1000, 0, 0);
        Assert.Equal(PagingMode.None, state.Mode);
        Assert.Equal(TranslationStatus.Ok, _walker.Walk(0x1_2345_6789, MemoryAccess.Write, AccessPrivilege.User, in state, out var t, out _));
        Assert.Equal(0x2345_6789UL, t.PhysicalAddress);
        Assert.Equal(PageRights.All, t.Rights);
    }

    [Fact]
    public void ModeOf_FollowsPgPaeAndLma()
    {
        Assert.Equal(PagingMode.None, PagingState.ModeOf(Pe, Pae, Lme));
        Assert.Equal(PagingMode.Bits32, PagingState.ModeOf(Pe | Pg, Pse, 0));
        Assert.Equal(PagingMode.Pae, PagingState.ModeOf(Pe | Pg, Pae, Nxe));
        Assert.Equal(PagingMode.FourLevel, PagingState.ModeOf(Pe | Pg, Pae, Lme | Lma));
        Assert.Equal(PagingMode.FourLevel, PagingState.ModeOf(Pe | Pg, Pae, Lme));
    }
}
