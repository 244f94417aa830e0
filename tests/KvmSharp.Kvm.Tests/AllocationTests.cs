using KvmSharp.Hypervisor;

namespace KvmSharp.Kvm.Tests;

[Trait(KvmTests.Trait, KvmTests.Kvm)]
public class AllocationTests
{
    private const int ExitsPerKind = 1000;

    [Fact]
    public void Run_HandlingPioAndMmioExits_AllocatesNothing()
    {
        TestVm.RequireKvm();
        using var machine = ExitLoopMachine.Create();
        var vcpu = machine.Vcpu;
        var io = new NothingAttachedIo();

        // Warm-up: JIT, tiering and first-call allocations belong to this run, not the measured one.
        machine.Reset(ExitLoopMachine.BothLoops, ExitsPerKind, ExitsPerKind);
        Assert.Equal(VcpuStopReason.Halted, vcpu.Run(io).Reason);
        machine.Reset(ExitLoopMachine.BothLoops, ExitsPerKind, ExitsPerKind);
        long portOutBefore = vcpu.Statistics[ExitKind.PortOut];
        long mmioWriteBefore = vcpu.Statistics[ExitKind.MmioWrite];
        long haltBefore = vcpu.Statistics[ExitKind.Halt];

        long allocatedBefore = GC.GetAllocatedBytesForCurrentThread();
        var stop = vcpu.Run(io);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - allocatedBefore;

        Assert.Equal(VcpuStopReason.Halted, stop.Reason);
        Assert.Equal(0, allocated);
        Assert.Equal(ExitsPerKind, vcpu.Statistics[ExitKind.PortOut] - portOutBefore);
        Assert.Equal(ExitsPerKind, vcpu.Statistics[ExitKind.MmioWrite] - mmioWriteBefore);
        Assert.Equal(1, vcpu.Statistics[ExitKind.Halt] - haltBefore);
    }

    [Fact]
    public void ExitLoopMachine_RunsTheLoopAtCpl3()
    {
        TestVm.RequireKvm();
        using var machine = ExitLoopMachine.Create(allowCpl0: false);
        machine.Reset(ExitLoopMachine.PioLoop, 3);
        long portOutBefore = machine.Vcpu.Statistics[ExitKind.PortOut];

        var stop = machine.Vcpu.Run(new NothingAttachedIo());

        Assert.Equal(3, machine.Cpl);
        Assert.Equal(VcpuStopReason.Halted, stop.Reason);
        Assert.Equal(3, machine.Vcpu.Statistics[ExitKind.PortOut] - portOutBefore);
        Assert.Equal(ExitLoopMachine.HaltHandler + 1, machine.Vcpu.GetRegisters().Rip);
    }
}
