using KvmSharp.Hypervisor;
using KvmSharp.Memory;

namespace KvmSharp.Kvm.Tests;

[Trait(KvmTests.Trait, KvmTests.Kvm)]
public class IoExitTests
{
    [Fact]
    public void PortIo_AllWidthsAndRepOutsb()
    {
        using var vm = TestVm.Create(GuestMode.Long64, GuestCode.PortIo);
        vm.Memory.Write(0x2000, "hello"u8);
        var io = new RecordingIo();
        io.PortResponses[0x20] = [0x5A];
        io.PortResponses[0x22] = [0x34, 0x12];
        io.PortResponses[0x24] = [0x78, 0x56, 0x34, 0x12];
        io.PortResponses[0x26] = [0xC3];

        var stop = vm.Vcpu.Run(io);

        Assert.Equal(VcpuStopReason.Halted, stop.Reason);
        Assert.Equal(
            [
                "in1 0x20 = 5A", "out1 0x21 5A",
                "in2 0x22 = 3412", "out2 0x23 3412",
                "in4 0x24 = 78563412", "out4 0x25 78563412",
                "in1 0x26 = C3", "out1 0x26 C3",
                "out1 0xe9 68", "out1 0xe9 65", "out1 0xe9 6C", "out1 0xe9 6C", "out1 0xe9 6F",
            ],
            io.Log);
        var regs = vm.Vcpu.GetRegisters();
        Assert.Equal(0x123456C3UL, regs.Rax); // in %eax zero-extends; in %al then replaced the low byte
        Assert.Equal(0UL, regs.Rcx);
        Assert.Equal(0x2005UL, regs.Rsi);
        Assert.Equal(4, vm.Vcpu.Statistics[ExitKind.PortIn]);
    }

    [Fact]
    public void UnansweredPortRead_SeesAllOnes()
    {
        using var vm = TestVm.Create(GuestMode.Long64, GuestCode.PortIo);
        vm.Memory.Write(0x2000, "hello"u8);
        var io = new RecordingIo();

        vm.Vcpu.Run(io);

        Assert.Equal("out4 0x25 FFFFFFFF", io.Log[5]);
    }

    [Fact]
    public void Mmio_ReadsAndWritesOf1_2_4_8Bytes()
    {
        using var vm = TestVm.Create(GuestMode.Long64, GuestCode.Mmio);
        var io = new RecordingIo();
        io.MmioResponses[0x1000_0000] = [0xA1];
        io.MmioResponses[0x1000_0002] = [0xB1, 0xB2];
        io.MmioResponses[0x1000_0004] = [0xC1, 0xC2, 0xC3, 0xC4];
        io.MmioResponses[0x1000_0008] = [0xD1, 0xD2, 0xD3, 0xD4, 0xD5, 0xD6, 0xD7, 0xD8];

        var stop = vm.Vcpu.Run(io);

        Assert.Equal(VcpuStopReason.Halted, stop.Reason);
        Assert.Equal(
            [
                "read1 0x10000000 = A1", "write1 0x10000100 A1",
                "read2 0x10000002 = B1B2", "write2 0x10000102 B1B2",
                "read4 0x10000004 = C1C2C3C4", "write4 0x10000104 C1C2C3C4",
                "read8 0x10000008 = D1D2D3D4D5D6D7D8", "write8 0x10000108 D1D2D3D4D5D6D7D8",
            ],
            io.Log);
        Assert.Equal(0xD8D7D6D5D4D3D2D1UL, vm.Vcpu.GetRegisters().Rax);
        Assert.Equal(4, vm.Vcpu.Statistics[ExitKind.MmioRead]);
        Assert.Equal(4, vm.Vcpu.Statistics[ExitKind.MmioWrite]);
    }

    [Fact]
    public void IoHandler_CanStopTheVcpu_AndRunResumesAfterTheAccess()
    {
        using var vm = TestVm.Create(GuestMode.Long64, GuestCode.Long64);
        var io = new RecordingIo { StopPort = 0x10 };

        var first = vm.Vcpu.Run(io);
        io.ClearStop();
        var second = vm.Vcpu.Run(io);

        Assert.Equal(VcpuStopReason.IoRequestedStop, first.Reason);
        Assert.Equal(VcpuStopReason.Halted, second.Reason);
        Assert.Single(io.Log);
    }

    [Fact]
    public void DirtyLog_ReportsExactlyThePagesTheGuestWrote()
    {
        const ulong TwoMiB = 2 * TestVm.OneMiB;
        using var vm = TestVm.Create(
            GuestMode.Long64,
            GuestCode.DirtyWrites,
            ram: [new MemoryRange(0, TwoMiB), new MemoryRange(TwoMiB, TwoMiB)],
            trackDirtyPages: true);
        var io = new RecordingIo { StopPort = 0x10 };

        Assert.Equal(VcpuStopReason.IoRequestedStop, vm.Vcpu.Run(io).Reason);
        var first = vm.Vm.GetDirtyLog(1);
        io.ClearStop();
        Assert.Equal(VcpuStopReason.Halted, vm.Vcpu.Run(io).Reason);
        var second = vm.Vm.GetDirtyLog(1);

        Assert.Equal([0x200000UL, 0x202000UL, 0x205000UL], first.DirtyPageAddresses());
        Assert.Equal([0x207000UL], second.DirtyPageAddresses());
        Assert.Equal(0x22222222u, vm.Memory.Read<uint>(0x202ff0));
    }

    [Fact]
    public void DirtyLog_WithManualProtect_KeepsBitsUntilCleared()
    {
        const ulong TwoMiB = 2 * TestVm.OneMiB;
        using var vm = TestVm.Create(
            GuestMode.Long64,
            GuestCode.DirtyWrites,
            ram: [new MemoryRange(0, TwoMiB), new MemoryRange(TwoMiB, TwoMiB)]);
        Assert.SkipUnless(vm.System.CheckExtension(KvmCapability.ManualDirtyLogProtect2) > 0, "KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 is absent.");
        vm.Vm.EnableManualDirtyLogProtect();
        vm.Vm.SetDirtyLogging(1, enabled: true);
        var io = new RecordingIo { StopPort = 0x10 };

        vm.Vcpu.Run(io);
        var seen = vm.Vm.GetDirtyLog(1);
        var again = vm.Vm.GetDirtyLog(1);
        vm.Vm.ClearDirtyLog(1, 0, 512, seen);
        var cleared = vm.Vm.GetDirtyLog(1);

        Assert.Equal([0x200000UL, 0x202000UL, 0x205000UL], seen.DirtyPageAddresses());
        Assert.Equal([0x200000UL, 0x202000UL, 0x205000UL], again.DirtyPageAddresses());
        Assert.Empty(cleared.DirtyPageAddresses());
    }
}
