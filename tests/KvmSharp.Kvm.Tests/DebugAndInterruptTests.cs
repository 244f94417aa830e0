using KvmSharp.Hypervisor;
using KvmSharp.Native;

namespace KvmSharp.Kvm.Tests;

[Trait(KvmTests.Trait, KvmTests.Kvm)]
public class DebugAndInterruptTests
{
    [Fact]
    public void SingleStep_ReportsEachRip()
    {
        using var vm = TestVm.Create(GuestMode.Long64, GuestCode.SingleStep);
        vm.Vcpu.SetGuestDebug(singleStep: true, breakpoints: []);
        var io = new RecordingIo();
        var pcs = new List<ulong>();

        for (int i = 0; i < 3; i++)
        {
            var stop = vm.Vcpu.Run(io);
            Assert.Equal(VcpuStopReason.Debug, stop.Reason);
            Assert.Equal(1u, stop.DebugException);
            pcs.Add(stop.DebugPc);
        }

        // nop, inc, add each trap after they retire. HLT exits to us (no in-kernel irqchip here), and that exit is
        // reported rather than the step trap KVM queued with it: KVM skips the HLT (raising the single-step exit),
        // then its halt handling replaces the exit reason with KVM_EXIT_HLT, on VT-x and SVM alike. RIP is past it.
        Assert.Equal([0x1001UL, 0x1003UL, 0x1006UL], pcs);
        Assert.Equal(VcpuStopReason.Halted, vm.Vcpu.Run(io).Reason);
        Assert.Equal(0x1007UL, vm.Vcpu.GetRegisters().Rip);
        Assert.Equal(4UL, vm.Vcpu.GetRegisters().Rax);
        Assert.Equal(3, vm.Vcpu.Statistics[ExitKind.Debug]);
    }

    [Fact]
    public void HardwareBreakpoint_StopsBeforeTheInstruction()
    {
        // On hosts whose DR7 does not trap (QEMU's emulated SVM) KvmVcpu emulates these by single-stepping; the stops,
        // registers and DR6's B bits must be the same either way.
        using var vm = TestVm.Create(GuestMode.Long64, GuestCode.SingleStep);
        vm.Vcpu.SetGuestDebug(singleStep: false, breakpoints: [0x1006UL, 0x1003UL]);
        var io = new RecordingIo();

        var add = vm.Vcpu.Run(io);

        Assert.Equal(VcpuStopReason.Debug, add.Reason);
        Assert.Equal(1u, add.DebugException);
        Assert.Equal(0x1003UL, add.DebugPc);
        Assert.Equal(0b0010UL, add.DebugDr6 & 0xF); // B1: the breakpoint in DR1
        Assert.Equal(1UL, vm.Vcpu.GetRegisters().Rax); // inc ran, add did not

        vm.Vcpu.SetGuestDebug(singleStep: false, breakpoints: [0x1006UL]);
        var hlt = vm.Vcpu.Run(io);

        Assert.Equal(VcpuStopReason.Debug, hlt.Reason);
        Assert.Equal(0x1006UL, hlt.DebugPc);
        Assert.Equal(0b0001UL, hlt.DebugDr6 & 0xF);
        Assert.Equal(4UL, vm.Vcpu.GetRegisters().Rax);

        vm.Vcpu.SetGuestDebug(singleStep: false, breakpoints: []);
        Assert.Equal(VcpuStopReason.Halted, vm.Vcpu.Run(io).Reason);
        Assert.Equal(0x1007UL, vm.Vcpu.GetRegisters().Rip);
    }

    [Fact]
    public void Kick_FromAnotherThread_StopsASpinningGuest()
    {
        using var vm = TestVm.Create(GuestMode.Long64, GuestCode.SpinForever);
        using var started = new ManualResetEventSlim();
        var io = new RecordingIo { OnPortWrite = (_, _) => started.Set() };
        VcpuStop stop = default;
        var thread = new Thread(() => stop = vm.Vcpu.Run(io)) { Name = "vcpu0" };

        thread.Start();
        Assert.True(started.Wait(TestTime.Scaled(TimeSpan.FromSeconds(10))));
        Thread.Sleep(20); // let the guest enter its loop inside KVM_RUN
        vm.Vcpu.Kick();

        Assert.True(thread.Join(TestTime.Scaled(TimeSpan.FromSeconds(10))), "the kicked vCPU did not return");
        Assert.Equal(VcpuStopReason.Kicked, stop.Reason);
        Assert.Equal(0x1002UL, vm.Vcpu.GetRegisters().Rip);
    }

    [Fact]
    public void Kick_BeforeRun_IsNotLost()
    {
        using var vm = TestVm.Create(GuestMode.Long64, GuestCode.Long64);
        vm.Vcpu.Kick();

        var first = vm.Vcpu.Run(new RecordingIo());
        var second = vm.Vcpu.Run(new RecordingIo());

        Assert.Equal(VcpuStopReason.Kicked, first.Reason);
        Assert.Equal(VcpuStopReason.Halted, second.Reason);
    }

    [Fact]
    public void Irqfd_RaisesPicInterruptInRealModeGuest()
    {
        using var vm = TestVm.Create(GuestMode.Real, GuestCode.PicInterrupt, irqChip: true);
        using var irq = new EventFd();
        vm.Vm.AddIrqfd(irq, gsi: 5);
        var io = new RecordingIo { StopPort = 0x10 };
        io.OnPortWrite = (port, _) =>
        {
            if (port == 0x11)
            {
                irq.Signal();
            }
        };

        var stop = vm.Vcpu.Run(io);

        Assert.Equal(VcpuStopReason.IoRequestedStop, stop.Reason);
        Assert.Equal((ushort)0x10, io.PortWrites[^1].Port);
        Assert.Equal([0xAA], io.PortWrites[^1].Data);
        vm.Vm.RemoveIrqfd(irq, gsi: 5);
    }

    [Fact]
    public void IrqLine_RaisesPicInterruptInRealModeGuest()
    {
        using var vm = TestVm.Create(GuestMode.Real, GuestCode.PicInterrupt, irqChip: true);
        var io = new RecordingIo { StopPort = 0x10 };
        io.OnPortWrite = (port, _) =>
        {
            if (port == 0x11)
            {
                vm.Vm.Interrupts.SetLevel(5, true);
                vm.Vm.Interrupts.SetLevel(5, false);
            }
        };

        var stop = vm.Vcpu.Run(io);

        Assert.Equal(VcpuStopReason.IoRequestedStop, stop.Reason);
        Assert.Equal([0xAA], io.PortWrites[^1].Data);
    }

    [Fact]
    public void GsiRouting_PcDefaultsAreAccepted()
    {
        using var vm = TestVm.Create(GuestMode.Real, GuestCode.RealModeOut, irqChip: true);
        var routes = GsiRoute.PcDefaults();
        routes.Add(GsiRoute.ToMsi(24, 0xFEE0_0000, 0x41));

        vm.Vm.SetGsiRouting(routes);

        Assert.Equal(16 + 24 + 1, routes.Count);
        Assert.Equal(GsiRoute.ToIrqChip(8, GsiRoute.PicSlave, 0), routes[8]);
    }

    [Fact]
    public void Ioeventfd_CountsWritesWithoutExits()
    {
        using var vm = TestVm.Create(GuestMode.Long64, GuestCode.IoEventFd);
        using var doorbell = new EventFd();
        vm.Vm.AddIoeventfd(doorbell, 0x600, 1, isPort: true);
        var io = new RecordingIo();

        var stop = vm.Vcpu.Run(io);

        Assert.Equal(VcpuStopReason.Halted, stop.Reason);
        Assert.Equal(["out1 0x10 07"], io.Log);
        Assert.Equal(2UL, doorbell.Consume());
        vm.Vm.RemoveIoeventfd(doorbell, 0x600, 1, isPort: true);
    }

    [Fact]
    public void Ioeventfd_WithDataMatch_IgnoresOtherValues()
    {
        using var vm = TestVm.Create(GuestMode.Long64, GuestCode.IoEventFd);
        using var doorbell = new EventFd();
        vm.Vm.AddIoeventfd(doorbell, 0x600, 1, isPort: true, dataMatch: 8);
        var io = new RecordingIo();

        vm.Vcpu.Run(io);

        Assert.Equal(0UL, doorbell.Consume());
        Assert.Equal(["out1 0x600 07", "out1 0x600 07", "out1 0x10 07"], io.Log);
    }
}
