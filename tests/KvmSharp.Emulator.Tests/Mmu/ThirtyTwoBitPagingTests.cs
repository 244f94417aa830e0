using KvmSharp.Emulator.Mmu;
using static KvmSharp.Emulator.Tests.Mmu.PagingFixture;

namespace KvmSharp.Emulator.Tests.Mmu;

public sealed class ThirtyTwoBitPagingTests : IDisposable
{
    // PD at 0x1000, PT at 0x2000; indices 3 and 4; offset 0x567.
    private const ulong Linear = 0x00C0_4567;
    private const ulong Pde = 0x100C;
    private const ulong Pte = 0x2010;
    private const uint Neighbour = 0xABCD_E007;

    private readonly PagingFixture _f = new();
    private readonly PageWalker _walker;

    public ThirtyTwoBitPagingTests()
    {
        _walker = new PageWalker(_f.Memory);
        _f.Set32(Pde, 0x2000 | (uint)(P | W | U));
        _f.Set32(Pte, 0x10_0000 | (uint)(P | W | U));
        foreach (ulong neighbour in (ulong[])[Pde - 4, Pde + 4, Pte - 4, Pte + 4])
        {
            _f.Set32(neighbour, Neighbour);
        }
    }

    public void Dispose() => _f.Dispose();

    private TranslationStatus Walk(MemoryAccess access, AccessPrivilege privilege, PagingState state, out Translation t, out PageFault fault, ulong linear = Linear)
        => _walker.Walk(linear, access, privilege, in state, out t, out fault);

    [Fact]
    public void A4KWalk_UsesFourByteEntries_AndLeavesTheNeighboursAlone()
    {
        Assert.Equal(TranslationStatus.Ok, Walk(MemoryAccess.Read, AccessPrivilege.User, ThirtyTwoBit(0x1000), out var t, out _));
        Assert.Equal(new Translation(0x10_0567, 0x1000, PageRights.All, false, false), t);
        Assert.Equal(0x2027U, _f.Get32(Pde));
        Assert.Equal(0x10_0027U, _f.Get32(Pte));

        Assert.Equal(TranslationStatus.Ok, Walk(MemoryAccess.Write, AccessPrivilege.User, ThirtyTwoBit(0x1000), out _, out _));
        Assert.Equal(0x2027U, _f.Get32(Pde));
        Assert.Equal(0x10_0067U, _f.Get32(Pte));
        Assert.Equal(Neighbour, _f.Get32(Pde - 4));
        Assert.Equal(Neighbour, _f.Get32(Pde + 4));
        Assert.Equal(Neighbour, _f.Get32(Pte - 4));
        Assert.Equal(Neighbour, _f.Get32(Pte + 4));
    }

    [Fact]
    public void A4MPage_WithPse_Translates()
    {
        _f.Set32(Pde, 0x40_0000 | (uint)(P | W | U | Ps));
        Assert.Equal(TranslationStatus.Ok, Walk(MemoryAccess.Write, AccessPrivilege.User, ThirtyTwoBit(0x1000, cr4Extra: Pse), out var t, out _));
        Assert.Equal(new Translation(0x40_4567, 0x40_0000, PageRights.All, false, true), t);
        Assert.Equal(0x40_00E7U, _f.Get32(Pde));
        Assert.Equal(Neighbour, _f.Get32(Pde + 4));
    }

    [Fact]
    public void PsWithoutPse_IsIgnored_AndThePdePointsToATable()
    {
        _f.Set32(Pde, 0x2000 | (uint)(P | W | U | Ps));
        Assert.Equal(TranslationStatus.Ok, Walk(MemoryAccess.Read, AccessPrivilege.User, ThirtyTwoBit(0x1000), out var t, out _));
        Assert.Equal(0x10_0567UL, t.PhysicalAddress);
        Assert.Equal(0x20A7U, _f.Get32(Pde));
    }

    [Theory]
    [InlineData(1U << 13)]
    [InlineData(1U << 20)]
    [InlineData(1U << 21)]
    public void A4MPage_WithBits21To13_IsReserved_WithoutPse36(uint bit)
    {
        _f.Set32(Pde, 0x40_0000 | bit | (uint)(P | W | U | Ps));
        Assert.Equal(TranslationStatus.PageFault, Walk(MemoryAccess.Write, AccessPrivilege.User, ThirtyTwoBit(0x1000, cr4Extra: Pse), out _, out var fault));
        Assert.Equal(new PageFault(Linear, (PageFaultErrorCode)0xF), fault);
    }

    [Fact]
    public void WriteProtection_FollowsWpForSupervisor_AndAlwaysForUser()
    {
        _f.Set32(Pte, 0x10_0000 | (uint)(P | U));
        Assert.Equal(TranslationStatus.Ok, Walk(MemoryAccess.Write, AccessPrivilege.Supervisor, ThirtyTwoBit(0x1000), out _, out _));
        Assert.Equal(0x10_0065U, _f.Get32(Pte));
        Assert.Equal(TranslationStatus.PageFault, Walk(MemoryAccess.Write, AccessPrivilege.Supervisor, ThirtyTwoBit(0x1000, cr0Extra: Wp), out _, out var sup));
        Assert.Equal((PageFaultErrorCode)0x3, sup.ErrorCode);
        Assert.Equal(TranslationStatus.PageFault, Walk(MemoryAccess.Write, AccessPrivilege.User, ThirtyTwoBit(0x1000), out _, out var user));
        Assert.Equal((PageFaultErrorCode)0x7, user.ErrorCode);
    }

    [Fact]
    public void UserRead_OfASupervisorPage_Faults()
    {
        _f.Set32(Pte, 0x10_0000 | (uint)(P | W));
        Assert.Equal(TranslationStatus.PageFault, Walk(MemoryAccess.Read, AccessPrivilege.User, ThirtyTwoBit(0x1000), out _, out var fault));
        Assert.Equal(new PageFault(Linear, (PageFaultErrorCode)0x5), fault);
    }

    [Fact]
    public void Fetches_NeverReportId_AndNxeDoesNotApply()
    {
        _f.Set32(Pte, 0x10_0000 | (uint)(W | U));
        var state = ThirtyTwoBit(0x1000, eferExtra: Nxe);
        Assert.False(state.NoExecute);
        Assert.Equal(TranslationStatus.PageFault, Walk(MemoryAccess.Execute, AccessPrivilege.User, state, out _, out var fault));
        Assert.Equal((PageFaultErrorCode)0x4, fault.ErrorCode);
    }

    [Fact]
    public void LinearAddresses_AreTruncatedToThirtyTwoBits()
    {
        Assert.Equal(TranslationStatus.Ok, Walk(MemoryAccess.Read, AccessPrivilege.User, ThirtyTwoBit(0x1000), out var t, out _, 0x1_00C0_4567));
        Assert.Equal(0x10_0567UL, t.PhysicalAddress);
        Assert.Equal(TranslationStatus.PageFault, Walk(MemoryAccess.Read, AccessPrivilege.User, ThirtyTwoBit(0x1000), out _, out var fault, 0xFFFF_FFFF_0000_1000));
        Assert.Equal(new PageFault(0x1000, PageFaultErrorCode.User), fault);
    }

    [Fact]
    public void AGlobalPte_IsGlobalWithPge()
    {
        _f.Set32(Pte, 0x10_0000 | (uint)(P | W | U | G));
        Assert.Equal(TranslationStatus.Ok, Walk(MemoryAccess.Read, AccessPrivilege.User, ThirtyTwoBit(0x1000, cr4Extra: Pge), out var t, out _));
        Assert.True(t.Global);
    }
}
