using KvmSharp.Hypervisor;

namespace KvmSharp.Kvm.Tests;

/// <summary>Exits that end a run: shutdown, internal errors, and interrupt windows for VMs without an irqchip.</summary>
[Trait(KvmTests.Trait, KvmTests.Kvm)]
public class ExitDecodingTests
{
    [Fact]
    public void TripleFault_IsReportedAsShutdown()
    {
        using var vm = TestVm.Create(GuestMode.Long64, GuestCode.TripleFault);
        var sregs = vm.Vcpu.GetSystemRegisters();
        sregs.Idt.Base = 0;
        sregs.Idt.Limit = 0;
        vm.Vcpu.SetSystemRegisters(sregs);

        var stop = vm.Vcpu.Run(new RecordingIo());

        Assert.Equal(VcpuStopReason.Shutdown, stop.Reason);
        Assert.Equal(1, vm.Vcpu.Statistics[ExitKind.Shutdown]);
    }

    [Fact]
    public void EmulationFailure_FetchingCodeFromMmio_IsDecodedWithSuberror()
    {
        // The fetch at 4 MiB faults in the second-level tables (EPT violation / NPF) with no memory slot behind it: KVM
        // treats it as MMIO and emulates, and its emulator cannot fetch an instruction from MMIO, on VT-x and SVM alike.
        using var vm = TestVm.Create(GuestMode.Long64, GuestCode.FetchFromMmio);

        var stop = vm.Vcpu.Run(new RecordingIo());

        Assert.Equal(VcpuStopReason.InternalError, stop.Reason);
        Assert.Equal(1UL, stop.ErrorCode); // KVM_INTERNAL_ERROR_EMULATION
        Assert.StartsWith("KVM's instruction emulator failed", stop.ErrorDetail, StringComparison.Ordinal);
        Assert.Equal(1, vm.Vcpu.Statistics[ExitKind.InternalError]);
        Assert.Equal(0x40_0000UL, vm.Vcpu.GetRegisters().Rip);
    }

    [Fact]
    public void QueuedInterrupt_IsInjectedAtTheInterruptWindow_WithoutAnIrqChip()
    {
        // The PIC guest with no in-kernel irqchip: its PIC programming goes to our (ignoring) handler,
        // its sti; hlt exits to us, and the queued vector 0x25 reaches its IVT handler through KVM_INTERRUPT.
        using var vm = TestVm.Create(GuestMode.Real, GuestCode.PicInterrupt);
        var io = new RecordingIo { StopPort = 0x10 };

        var halted = vm.Vcpu.Run(io);
        vm.Vcpu.QueueInterrupt(0x25);
        var stopped = vm.Vcpu.Run(io);

        Assert.Equal(VcpuStopReason.Halted, halted.Reason);
        Assert.Equal(VcpuStopReason.IoRequestedStop, stopped.Reason);
        Assert.Equal([0xAA], io.PortWrites[^1].Data);
    }

    [Fact]
    public void QueuedInterrupt_WhileInterruptsAreOff_WaitsForTheInterruptWindow()
    {
        // Stop at the guest's "ready" write, while IF is still 0: the vector cannot go in yet, so KvmSharp
        // asks for an interrupt window and injects when the guest's sti opens it (the guest then spins).
        using var vm = TestVm.Create(GuestMode.Real, GuestCode.InterruptWindow);
        var io = new RecordingIo { StopPort = 0x11 };
        using var watchdog = new Timer(_ => vm.Vcpu.Kick(), null, TestTime.Scaled(TimeSpan.FromSeconds(10)), Timeout.InfiniteTimeSpan);

        var ready = vm.Vcpu.Run(io);
        Assert.Equal(0UL, vm.Vcpu.GetRegisters().Rflags & X86Registers.FlagInterrupt);
        vm.Vcpu.QueueInterrupt(0x25);
        io.ClearStop();
        io.StopPort = 0x10;
        var handled = vm.Vcpu.Run(io);

        Assert.Equal(VcpuStopReason.IoRequestedStop, ready.Reason);
        Assert.Equal(VcpuStopReason.IoRequestedStop, handled.Reason);
        Assert.Equal([0xAA], io.PortWrites[^1].Data);
        Assert.Equal(1, vm.Vcpu.Statistics[ExitKind.IrqWindowOpen]);
    }

    [Fact]
    public void SignalMsi_IsRefusedBySoftwareDisabledLapic_AndLatchedInIrrOnceEnabled()
    {
        using var vm = TestVm.Create(GuestMode.Long64, GuestCode.Long64, irqChip: true);
        const ulong MsiToApic0 = 0xFEE0_0000;
        const uint Vector = 0x41;

        bool beforeEnable = vm.Vm.SignalMsi(MsiToApic0, Vector);
        var lapic = vm.Vcpu.GetLapic();
        lapic[0xF1] |= 0x01; // SVR bit 8: APIC software enable
        vm.Vcpu.SetLapic(lapic);
        bool afterEnable = vm.Vm.SignalMsi(MsiToApic0, Vector);
        var irr = vm.Vcpu.GetLapic();

        Assert.False(beforeEnable);
        Assert.True(afterEnable);
        // IRR: 8 registers of 32 bits, 16 bytes apart, from offset 0x200; vector 0x41 is bit 1 of IRR[2].
        Assert.Equal(1u << 1, BitConverter.ToUInt32(irr, 0x200 + (2 * 0x10)));
    }

    [Fact]
    public void VmSetup_TssIdentityMapIrqChipAndPit2_BeforeVcpus()
    {
        TestVm.RequireKvm();
        using var system = KvmSystem.Open();
        Assert.SkipUnless(system.CheckExtension(KvmCapability.Pit2) > 0, "KVM_CAP_PIT2 is absent.");
        using var vm = system.CreateVm();

        vm.SetTssAddress(0xFFFB_D000);
        vm.SetIdentityMapAddress(0xFFFB_C000);
        vm.CreateIrqChip();
        vm.CreatePit2();
        using var vcpu = vm.CreateVcpu(0);

        Assert.True(vm.HasIrqChip);
        Assert.Equal(VcpuMpState.Runnable, vcpu.GetMpState());
        // VT-x's identity map page cannot move once vCPUs exist.
        var e = Assert.Throws<Native.NativeErrorException>(() => vm.SetIdentityMapAddress(0xFFFB_B000));
        Assert.Equal(Native.Errno.EINVAL, e.Errno);
    }
}
