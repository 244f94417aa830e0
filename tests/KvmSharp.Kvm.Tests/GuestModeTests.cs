using KvmSharp.Hypervisor;

namespace KvmSharp.Kvm.Tests;

[Trait(KvmTests.Trait, KvmTests.Kvm)]
public class GuestModeTests
{
    [Fact]
    public void RealMode_OutThenHlt()
    {
        using var vm = TestVm.Create(GuestMode.Real, GuestCode.RealModeOut);
        var io = new RecordingIo();

        var stop = vm.Vcpu.Run(io);

        Assert.Equal(VcpuStopReason.Halted, stop.Reason);
        Assert.Equal(["out1 0x10 42"], io.Log);
        Assert.Equal(0x1005UL, vm.Vcpu.GetRegisters().Rip);
        Assert.Equal(1, vm.Vcpu.Statistics[ExitKind.PortOut]);
        Assert.Equal(1, vm.Vcpu.Statistics[ExitKind.Halt]);
    }

    [Fact]
    public void ProtectedMode32_StoresAndWritesDword()
    {
        using var vm = TestVm.Create(GuestMode.Protected32, GuestCode.Protected32);
        var io = new RecordingIo();

        var stop = vm.Vcpu.Run(io);

        Assert.Equal(VcpuStopReason.Halted, stop.Reason);
        Assert.Equal(["out4 0x10 EFBEADDE"], io.Log);
        Assert.Equal(0xDEADBEEFu, vm.Memory.Read<uint>(0x3000));
        var regs = vm.Vcpu.GetRegisters();
        Assert.Equal(0xDEADBEEFUL, regs.Rax);
        Assert.Equal(0x100DUL, regs.Rip);
    }

    [Fact]
    public void LongMode64_ThroughSetSregsAndPageTables()
    {
        using var vm = TestVm.Create(GuestMode.Long64, GuestCode.Long64);
        var io = new RecordingIo();

        var stop = vm.Vcpu.Run(io);

        Assert.Equal(VcpuStopReason.Halted, stop.Reason);
        Assert.Equal(["out4 0x10 88776655"], io.Log);
        Assert.Equal(0x1122334455667788UL, vm.Memory.Read<ulong>(0x5000));
        var sregs = vm.Vcpu.GetSystemRegisters();
        Assert.Equal(X86SystemRegisters.EferLme | X86SystemRegisters.EferLma, sregs.Efer & (X86SystemRegisters.EferLme | X86SystemRegisters.EferLma));
        Assert.Equal(1, sregs.Cs.L);
        Assert.Equal(0x1015UL, vm.Vcpu.GetRegisters().Rip);
    }
}
