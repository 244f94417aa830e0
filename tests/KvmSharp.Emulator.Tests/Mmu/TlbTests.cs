using KvmSharp.Emulator.Mmu;
using static KvmSharp.Emulator.Tests.Mmu.PagingFixture;

namespace KvmSharp.Emulator.Tests.Mmu;

public sealed class TlbTests : IDisposable
{
    // 4-level paging: PML4 0x1000, PDPT 0x2000, PD 0x3000, PT 0x4000. Linear pages 0x40_0000 + n * 0x1000 use PTE n.
    private const ulong Page0 = 0x40_0000;
    private const ulong Page1 = 0x40_1000;
    private const ulong Pte0 = 0x4000;
    private const ulong Pte1 = 0x4008;
    private const ulong Pde = 0x3010;

    private readonly PagingFixture _f = new();
    private readonly MemoryManagementUnit _mmu;

    public TlbTests()
    {
        _f.Set64(0x1000, 0x2000 | P | W | U);
        _f.Set64(0x2000, 0x3000 | P | W | U);
        _f.Set64(Pde, 0x4000 | P | W | U);
        _f.Set64(Pte0, 0x10_0000 | P | W | U);
        _f.Set64(Pte1, 0x11_0000 | P | W | U);
        _mmu = new MemoryManagementUnit(_f.Memory);
        Assert.True(_mmu.TryLoad(Pe | Pg | Wp, 0x1000, Pae | Pge, Lme | Lma | Nxe));
    }

    public void Dispose() => _f.Dispose();

    private ulong Translate(ulong linear, MemoryAccess access = MemoryAccess.Read, AccessPrivilege privilege = AccessPrivilege.User)
    {
        Assert.Equal(TranslationStatus.Ok, _mmu.Translate(linear, access, privilege, out ulong physical, out var fault));
        Assert.Equal(default, fault);
        return physical;
    }

    private PageFault Fault(ulong linear, MemoryAccess access, AccessPrivilege privilege)
    {
        Assert.Equal(TranslationStatus.PageFault, _mmu.Translate(linear, access, privilege, out _, out var fault));
        return fault;
    }

    [Fact]
    public void AWalk_FillsTheTlb_ForTheAccessesItAllows()
    {
        Assert.False(_mmu.Tlb.TryTranslate(Page0 + 0x10, MemoryAccess.Read, AccessPrivilege.User, out _));
        Assert.Equal(0x10_0010UL, Translate(Page0 + 0x10));
        Assert.True(_mmu.Tlb.TryTranslate(Page0 + 0xFFF, MemoryAccess.Read, AccessPrivilege.User, out ulong physical));
        Assert.Equal(0x10_0FFFUL, physical);
        Assert.True(_mmu.Tlb.TryTranslate(Page0, MemoryAccess.Execute, AccessPrivilege.Supervisor, out _));
        Assert.False(_mmu.Tlb.TryTranslate(Page0, MemoryAccess.Write, AccessPrivilege.User, out _)); // clean page
        Assert.False(_mmu.Tlb.TryTranslate(Page1, MemoryAccess.Read, AccessPrivilege.User, out _));
    }

    [Fact]
    public void AChangedPte_IsNotSeen_UntilInvlpg()
    {
        Assert.Equal(0x10_0123UL, Translate(Page0 + 0x123));
        _f.Set64(Pte0, 0x20_0000 | P | W | U);
        Assert.Equal(0x10_0123UL, Translate(Page0 + 0x123));
        _mmu.InvalidatePage(Page0 + 0xABC);
        Assert.Equal(0x20_0123UL, Translate(Page0 + 0x123));
    }

    [Fact]
    public void Invlpg_DropsOnlyThatPage()
    {
        Translate(Page0);
        Translate(Page1);
        _f.Set64(Pte0, 0x20_0000 | P | W | U);
        _f.Set64(Pte1, 0x21_0000 | P | W | U);
        _mmu.InvalidatePage(Page1);
        Assert.Equal(0x10_0000UL, Translate(Page0));
        Assert.Equal(0x21_0000UL, Translate(Page1));
    }

    [Fact]
    public void Invlpg_AnywhereInALargePage_DropsEveryPieceOfIt()
    {
        _f.Set64(Pde, 0x80_0000 | P | W | U | Ps);
        Assert.Equal(0x80_0000UL, Translate(Page0));
        Assert.Equal(0x9F_F123UL, Translate(0x5F_F123));
        _f.Set64(Pde, 0xA0_0000 | P | W | U | Ps);
        _mmu.InvalidatePage(0x54_3210);
        Assert.Equal(0xA0_0000UL, Translate(Page0));
        Assert.Equal(0xBF_F123UL, Translate(0x5F_F123));
    }

    [Fact]
    public void GlobalPages_SurviveCr3Writes_ButNotAPgeToggle()
    {
        _f.Set64(Pte0, 0x10_0000 | P | W | U | G);
        Translate(Page0);
        Translate(Page1);
        _f.Set64(Pte0, 0x20_0000 | P | W | U | G);
        _f.Set64(Pte1, 0x21_0000 | P | W | U);

        Assert.True(_mmu.TryWriteCr3(0x1000));
        Assert.Equal(0x10_0000UL, Translate(Page0));
        Assert.Equal(0x21_0000UL, Translate(Page1));

        Assert.True(_mmu.TryWriteCr4(Pae));
        Assert.Equal(0x20_0000UL, Translate(Page0));
    }

    [Fact]
    public void Invlpg_DropsAGlobalPage()
    {
        _f.Set64(Pte0, 0x10_0000 | P | W | U | G);
        Translate(Page0);
        _f.Set64(Pte0, 0x20_0000 | P | W | U | G);
        _mmu.InvalidatePage(Page0);
        Assert.Equal(0x20_0000UL, Translate(Page0));
    }

    [Fact]
    public void TheFirstWrite_ToACleanCachedPage_WalksAndSetsD_ThenLaterWritesHit()
    {
        Translate(Page0);
        Assert.Equal(0x10_0000 | P | W | U | A, _f.Get64(Pte0));
        Assert.Equal(0x10_0008UL, Translate(Page0 + 8, MemoryAccess.Write));
        Assert.Equal(0x10_0000 | P | W | U | A | D, _f.Get64(Pte0));

        // The TLB now caches the page as dirty: clearing D behind its back goes unnoticed, as on hardware.
        _f.Set64(Pte0, 0x10_0000 | P | W | U | A);
        Translate(Page0 + 8, MemoryAccess.Write);
        Assert.Equal(0x10_0000 | P | W | U | A, _f.Get64(Pte0));
    }

    [Fact]
    public void ACachedReadOnlyPage_StillFaultsOnWrite()
    {
        _f.Set64(Pte0, 0x10_0000 | P | U | D);
        Translate(Page0);
        Assert.Equal(new PageFault(Page0 + 4, (PageFaultErrorCode)0x7), Fault(Page0 + 4, MemoryAccess.Write, AccessPrivilege.User));
        Assert.Equal(new PageFault(Page0, (PageFaultErrorCode)0x3), Fault(Page0, MemoryAccess.Write, AccessPrivilege.Supervisor));
    }

    [Fact]
    public void ACachedSupervisorPage_StillFaultsForUser()
    {
        _f.Set64(Pte0, 0x10_0000 | P | W);
        Translate(Page0, MemoryAccess.Read, AccessPrivilege.Supervisor);
        Assert.Equal(new PageFault(Page0, (PageFaultErrorCode)0x5), Fault(Page0, MemoryAccess.Read, AccessPrivilege.User));
        Assert.Equal(0x10_0000UL, Translate(Page0, MemoryAccess.Read, AccessPrivilege.ImplicitSupervisor));
    }

    [Fact]
    public void ACachedXdPage_StillFaultsOnFetch()
    {
        _f.Set64(Pte0, 0x10_0000 | P | W | U | Xd);
        Translate(Page0);
        Assert.Equal(new PageFault(Page0, (PageFaultErrorCode)0x15), Fault(Page0, MemoryAccess.Execute, AccessPrivilege.User));
    }

    [Fact]
    public void ClearingWp_FlushesTheTlb_AndSettingItAgainToo()
    {
        _f.Set64(Pte0, 0x10_0000 | P | U);
        Assert.Equal(new PageFault(Page0, (PageFaultErrorCode)0x3), Fault(Page0, MemoryAccess.Write, AccessPrivilege.Supervisor));
        Assert.True(_mmu.TryWriteCr0(Pe | Pg));
        Assert.Equal(0x10_0000UL, Translate(Page0, MemoryAccess.Write, AccessPrivilege.Supervisor));
        Assert.True(_mmu.TryWriteCr0(Pe | Pg | Wp));
        Assert.Equal(new PageFault(Page0, (PageFaultErrorCode)0x3), Fault(Page0, MemoryAccess.Write, AccessPrivilege.Supervisor));
    }

    [Fact]
    public void ClearingNxe_FlushesTheTlb()
    {
        Translate(Page0, MemoryAccess.Execute);
        _f.Set64(Pte0, 0x10_0000 | P | W | U | A | Xd);
        _mmu.WriteEfer(Lme | Lma);
        Assert.Equal(new PageFault(Page0, (PageFaultErrorCode)0xD), Fault(Page0, MemoryAccess.Execute, AccessPrivilege.User));
    }

    [Fact]
    public void PagingOff_IsIdentity_AndSkipsTheTlb()
    {
        Assert.True(_mmu.TryWriteCr0(Pe));
        Assert.Equal(PagingMode.None, _mmu.State.Mode);
        Assert.Equal(0x40_0123UL, Translate(0x1_0040_0123, MemoryAccess.Write));
    }

    [Fact]
    public void NonCanonicalAddresses_AreReported_AndNeverHit()
    {
        Translate(Page0);
        Assert.Equal(TranslationStatus.NonCanonical, _mmu.Translate(0x8000_0000_0040_0000, MemoryAccess.Read, AccessPrivilege.User, out _, out var fault));
        Assert.Equal(new PageFault(0x8000_0000_0040_0000, PageFaultErrorCode.None), fault);
    }

    [Fact]
    public void Cr3_WithBitsAboveMaxPhyAddr_IsRejectedUnderFourLevelPaging()
    {
        Assert.False(_mmu.TryWriteCr3((1UL << 46) | 0x1000));
        Assert.Equal(0x1000UL, _mmu.State.Cr3);
    }

    [Fact]
    public void FlushAll_DropsGlobalPages()
    {
        var tlb = new Tlb();
        tlb.Insert(Page0, new Translation(0x10_0000, 0x1000, PageRights.All, Global: true, Dirty: true));
        tlb.FlushNonGlobal();
        Assert.True(tlb.TryTranslate(Page0, MemoryAccess.Write, AccessPrivilege.User, out _));
        tlb.FlushAll();
        Assert.False(tlb.TryTranslate(Page0, MemoryAccess.Read, AccessPrivilege.Supervisor, out _));
    }

    [Fact]
    public void AnEntry_IsReplacedByAPageThatSharesItsIndex()
    {
        var tlb = new Tlb();
        ulong other = Page0 + ((ulong)Tlb.EntryCount << 12);
        tlb.Insert(Page0, new Translation(0x10_0000, 0x1000, PageRights.All, false, true));
        tlb.Insert(other, new Translation(0x30_0000, 0x1000, PageRights.SupervisorRead, false, true));
        Assert.False(tlb.TryTranslate(Page0, MemoryAccess.Read, AccessPrivilege.User, out _));
        Assert.False(tlb.TryTranslate(other, MemoryAccess.Read, AccessPrivilege.User, out _));
        Assert.True(tlb.TryTranslate(other + 7, MemoryAccess.Read, AccessPrivilege.Supervisor, out ulong physical));
        Assert.Equal(0x30_0007UL, physical);
    }
}
