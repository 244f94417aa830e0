using KvmSharp.Emulator.Mmu;
using static KvmSharp.Emulator.Tests.Mmu.PagingFixture;

namespace KvmSharp.Emulator.Tests.Mmu;

public sealed class PaePagingTests : IDisposable
{
    // PDPT at 0x1020 (CR3 bits 31:5), PD at 0x2000, PT at 0x3000; indices 2, 3, 4; offset 0x567.
    private const ulong Cr3 = 0x1020;
    private const ulong Linear = 0x8060_4567;
    private const ulong Pdpte = 0x1030;
    private const ulong Pde = 0x2018;
    private const ulong Pte = 0x3020;
    private const ulong Frame = 0x10_0000;

    private readonly PagingFixture _f = new();
    private readonly MemoryManagementUnit _mmu;

    public PaePagingTests()
    {
        _f.Set64(Pdpte, 0x2000 | P);
        _f.Set64(Pde, 0x3000 | P | W | U);
        _f.Set64(Pte, Frame | P | W | U);
        _mmu = new MemoryManagementUnit(_f.Memory);
        Assert.True(_mmu.TryLoad(Pe | Pg, Cr3, Pae, 0));
    }

    public void Dispose() => _f.Dispose();

    private TranslationStatus Walk(MemoryAccess access, AccessPrivilege privilege, out Translation t, out PageFault fault, ulong efer = 0)
    {
        var state = _mmu.State.WithEfer(efer);
        return _mmu.Walker.Walk(Linear, access, privilege, in state, out t, out fault);
    }

    [Fact]
    public void Load_ReadsThePdptesFromCr3Bits31To5()
    {
        Assert.Equal(PagingMode.Pae, _mmu.State.Mode);
        Assert.Equal(new PaePdptes(0, 0, 0x2001, 0), _mmu.State.Pdptes);
    }

    [Fact]
    public void A4KRead_Translates_AndSetsAOnThePdeAndPte_ButNotOnThePdpte()
    {
        Assert.Equal(TranslationStatus.Ok, Walk(MemoryAccess.Read, AccessPrivilege.User, out var t, out _));
        Assert.Equal(new Translation(0x10_0567, 0x1000, PageRights.All, false, false), t);
        Assert.Equal(0x2001UL, _f.Get64(Pdpte));
        Assert.Equal(0x3000 | P | W | U | A, _f.Get64(Pde));
        Assert.Equal(Frame | P | W | U | A, _f.Get64(Pte));
    }

    [Fact]
    public void A2MPage_Translates()
    {
        _f.Set64(Pde, 0x20_0000 | P | W | U | Ps);
        Assert.Equal(TranslationStatus.Ok, Walk(MemoryAccess.Write, AccessPrivilege.User, out var t, out _));
        Assert.Equal(0x20_4567UL, t.PhysicalAddress);
        Assert.Equal(0x20_0000UL, t.PageSize);
        Assert.Equal(0x20_00E7UL, _f.Get64(Pde));
    }

    [Theory]
    [InlineData(1UL << 1)]
    [InlineData(1UL << 2)]
    [InlineData(1UL << 5)]
    [InlineData(1UL << 8)]
    [InlineData(1UL << 46)]
    [InlineData(1UL << 52)]
    [InlineData(1UL << 63)]
    public void APresentPdpteWithAReservedBit_FailsTheCr3Write_AndChangesNothing(ulong bit)
    {
        _f.Set64(0x5000, 0x2000 | P);
        _f.Set64(0x5018, 0x2000 | P | bit);
        var before = _mmu.State;
        Assert.False(_mmu.TryWriteCr3(0x5000));
        Assert.Equal(before.Cr3, _mmu.State.Cr3);
        Assert.Equal(before.Pdptes, _mmu.State.Pdptes);
    }

    [Fact]
    public void ANotPresentPdpte_MayHoldAnyBits_AndFaultsWithPZero()
    {
        _f.Set64(0x5008, 0xFFFF_FFFF_FFFF_FFFE);
        Assert.True(_mmu.TryWriteCr3(0x5000));
        Assert.Equal(new PaePdptes(0, 0xFFFF_FFFF_FFFF_FFFE, 0, 0), _mmu.State.Pdptes);
        Assert.Equal(TranslationStatus.PageFault, _mmu.Translate(0x4000_1000, MemoryAccess.Write, AccessPrivilege.User, out _, out var fault));
        Assert.Equal(new PageFault(0x4000_1000, (PageFaultErrorCode)0x6), fault);
    }

    [Fact]
    public void ThePdptes_AreCachedUntilTheNextCr3Write()
    {
        _f.Set64(Pdpte, 0);
        Assert.Equal(TranslationStatus.Ok, _mmu.Translate(Linear, MemoryAccess.Read, AccessPrivilege.User, out ulong physical, out _));
        Assert.Equal(0x10_0567UL, physical);

        Assert.True(_mmu.TryWriteCr3(Cr3));
        Assert.Equal(TranslationStatus.PageFault, _mmu.Translate(Linear, MemoryAccess.Read, AccessPrivilege.User, out _, out var fault));
        Assert.Equal(new PageFault(Linear, PageFaultErrorCode.User), fault);
    }

    [Fact]
    public void EnteringPaePaging_ThroughCr0_LoadsThePdptes_OrFailsOnAReservedBit()
    {
        var mmu = new MemoryManagementUnit(_f.Memory);
        Assert.True(mmu.TryLoad(Pe, Cr3, Pae, 0));
        Assert.Equal(default, mmu.State.Pdptes);
        Assert.True(mmu.TryWriteCr0(Pe | Pg));
        Assert.Equal(new PaePdptes(0, 0, 0x2001, 0), mmu.State.Pdptes);

        var bad = new MemoryManagementUnit(_f.Memory);
        Assert.True(bad.TryLoad(Pe, 0x5000, Pae, 0));
        _f.Set64(0x5000, 0x2000 | P | W);
        Assert.False(bad.TryWriteCr0(Pe | Pg));
        Assert.Equal(PagingMode.None, bad.State.Mode);
    }

    [Fact]
    public void EnteringPaePaging_ThroughCr4_LoadsThePdptes()
    {
        var mmu = new MemoryManagementUnit(_f.Memory);
        Assert.True(mmu.TryLoad(Pe | Pg, Cr3, 0, 0));
        Assert.Equal(PagingMode.Bits32, mmu.State.Mode);
        Assert.True(mmu.TryWriteCr4(Pae));
        Assert.Equal(PagingMode.Pae, mmu.State.Mode);
        Assert.Equal(new PaePdptes(0, 0, 0x2001, 0), mmu.State.Pdptes);
    }

    [Fact]
    public void APdptTableOutsideRam_LoadsNotPresentPdptes()
    {
        Assert.True(_mmu.TryWriteCr3(0xFFFF_FFE0));
        Assert.Equal(default, _mmu.State.Pdptes);
        Assert.Equal(4, _mmu.Walker.UnbackedEntryReads);
    }

    [Theory]
    [InlineData(1UL << 52)]
    [InlineData(1UL << 62)]
    [InlineData(1UL << 46)]
    public void Bits62ToMaxPhyAddr_AreReservedInPaeEntries(ulong bit)
    {
        _f.Set64(Pte, Frame | bit | P | W | U);
        Assert.Equal(TranslationStatus.PageFault, Walk(MemoryAccess.Read, AccessPrivilege.User, out _, out var fault, efer: Nxe));
        Assert.Equal(new PageFault(Linear, (PageFaultErrorCode)0xD), fault);
    }

    [Fact]
    public void Xd_FaultsFetchesWithNxe_AndIsReservedWithout()
    {
        _f.Set64(Pde, 0x3000 | P | W | U | Xd);
        Assert.Equal(TranslationStatus.PageFault, Walk(MemoryAccess.Execute, AccessPrivilege.Supervisor, out _, out var fetch, efer: Nxe));
        Assert.Equal((PageFaultErrorCode)0x11, fetch.ErrorCode);
        Assert.Equal(TranslationStatus.Ok, Walk(MemoryAccess.Read, AccessPrivilege.Supervisor, out _, out _, efer: Nxe));
        Assert.Equal(TranslationStatus.PageFault, Walk(MemoryAccess.Read, AccessPrivilege.Supervisor, out _, out var read));
        Assert.Equal((PageFaultErrorCode)0x9, read.ErrorCode);
    }

    [Fact]
    public void A2MPage_WithBit13_IsReserved()
    {
        _f.Set64(Pde, 0x20_0000 | 0x2000 | P | W | U | Ps);
        Assert.Equal(TranslationStatus.PageFault, Walk(MemoryAccess.Read, AccessPrivilege.Supervisor, out _, out var fault));
        Assert.Equal((PageFaultErrorCode)0x9, fault.ErrorCode);
    }
}
