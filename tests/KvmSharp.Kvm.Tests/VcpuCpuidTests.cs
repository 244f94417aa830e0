namespace KvmSharp.Kvm.Tests;

public class VcpuCpuidTests
{
    private static readonly CpuidEntry[] Supported =
    [
        new(0x0, 0, 0, 0xD, 0x756E6547, 0x6C65746E, 0x49656E69),
        new(0x1, 0, 0, 0x000906EA, 0x00010800, 0x7FFAFBFF, 0x0F8BFBFF),
        new(0x4, 0, 1, 0x00000121, 0x01C0003F, 0x3F, 0),
        new(0x4, 3, 1, 0x00000163, 0x03C0003F, 0x2FFF, 0x6),
        new(0xB, 0, 1, 1, 2, 0x100, 7),
        new(0xB, 1, 1, 4, 16, 0x201, 7),
        new(0x4000_0001, 0, 0, 0x01007AFB, 0, 0, 0),
    ];

    [Fact]
    public void Leaf1_CarriesApicIdCountAndHypervisorBit()
    {
        var table = VcpuCpuid.Build(Supported, apicId: 1, vcpuCount: 2);

        var leaf1 = table.Single(e => e.Function == 1);
        Assert.Equal(0x0102_0800u, leaf1.Ebx);
        Assert.Equal(0x7FFAFBFFu | VcpuCpuid.HypervisorBit, leaf1.Ecx);
        Assert.Equal(0x0F8BFBFFu | VcpuCpuid.HyperThreadingBit, leaf1.Edx);
    }

    [Fact]
    public void SingleVcpu_HasNoHyperThreadingBit()
    {
        var leaf1 = VcpuCpuid.Build(Supported, apicId: 0, vcpuCount: 1).Single(e => e.Function == 1);

        Assert.Equal(0x0001_0800u, leaf1.Ebx);
        Assert.Equal(0x0F8BFBFFu & ~VcpuCpuid.HyperThreadingBit, leaf1.Edx);
    }

    [Fact]
    public void Leaf4_ReportsCoresPerPackageAndLastLevelSharing()
    {
        var table = VcpuCpuid.Build(Supported, apicId: 0, vcpuCount: 4);

        Assert.Equal(0x0C00_0121u, table.Single(e => e.Function == 4 && e.Index == 0).Eax);
        Assert.Equal(0x0C00_C163u, table.Single(e => e.Function == 4 && e.Index == 3).Eax);
    }

    [Fact]
    public void LeafB_DescribesOneThreadPerCoreAndAllCoresInThePackage()
    {
        var table = VcpuCpuid.Build(Supported, apicId: 2, vcpuCount: 3);

        Assert.Equal(new CpuidEntry(0xB, 0, 1, 0, 1, 0x100, 2), table.Single(e => e.Function == 0xB && e.Index == 0));
        Assert.Equal(new CpuidEntry(0xB, 1, 1, 2, 3, 0x201, 2), table.Single(e => e.Function == 0xB && e.Index == 1));
        Assert.Equal(new CpuidEntry(0xB, 2, 1, 0, 0, 2, 2), table.Single(e => e.Function == 0xB && e.Index == 2));
        Assert.Equal(0x01007AFBu, table.Single(e => e.Function == 0x4000_0001).Eax);
    }

    [Fact]
    public void ApicIdOutsideTheMachine_IsRejected()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => VcpuCpuid.Build(Supported, apicId: 2, vcpuCount: 2));
    }
}
