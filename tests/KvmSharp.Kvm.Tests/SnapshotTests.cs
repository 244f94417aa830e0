using System.Buffers.Binary;
using KvmSharp.Hypervisor;
using KvmSharp.Hypervisor.Snapshots;
using KvmSharp.Kvm.Interop;

namespace KvmSharp.Kvm.Tests;

/// <summary>
/// Snapshots on KVM: a VM's in-kernel devices and a vCPU saved after some guest work, restored into a second fresh VM
/// on a copy of RAM, go on exactly as the original does.
/// </summary>
/// <remarks>
/// Between a save and the save of the VM restored from it, these legitimately differ: MSR IA32_TSC (the TSC counts on
/// between the two), the kvmclock value of KVM_GET_CLOCK, and the PIT's count_load_time (host time at which each
/// counter was loaded; KVM_SET_PIT2 reloads the counters). Everything else is compared byte for byte.
/// </remarks>
public sealed class SnapshotTests
{
    private const ushort ReportPort = 0x30;
    private const ulong RamSize = 2 * TestVm.OneMiB;
    private const int PitChannelSize = 24;
    private const int PitCountLoadTimeOffset = 16;
    private const uint HvTimeRefCount = 0x4000_0020;
    private const uint HvVpRuntime = 0x4000_0010;

    [Fact]
    [Trait(KvmTests.Trait, KvmTests.Kvm)]
    public void RestoredVmContinuesExactlyLikeTheOriginal()
    {
        using var a = Build();
        Assert.Equal(50, RunRounds(a, 50));

        var vmSection = SnapshotStateJson.ToSection("kvm-vm", 1, a.Vm.SaveState());
        var cpuSection = SnapshotStateJson.ToSection("kvm-vcpu0", 1, a.Vcpu.SaveState());
        var vmSaved = SnapshotStateJson.FromSection<KvmVmState>(vmSection, 1);
        var cpuSaved = SnapshotStateJson.FromSection<KvmVcpuState>(cpuSection, 1);

        using var b = Build();
        CopyRam(a, b);
        b.Vm.RestoreState(vmSaved);
        b.Vcpu.RestoreState(cpuSaved);

        var vmRestored = b.Vm.SaveState();
        var cpuRestored = b.Vcpu.SaveState();
        AssertSameVmState(vmSaved, vmRestored);
        AssertSameVcpuState(cpuSaved, cpuRestored);

        Assert.Equal(100, RunRounds(a, 50));
        Assert.Equal(100, RunRounds(b, 50));
        Assert.Equal(a.Vcpu.GetRegisters(), b.Vcpu.GetRegisters());
        Assert.Equal(100UL, b.Vcpu.GetRegisters().Rcx);
        var fpuA = a.Vcpu.GetFpu();
        var fpuB = b.Vcpu.GetFpu();
        Assert.Equal(SnapshotBytes(fpuA), SnapshotBytes(fpuB)); // x87 stack, XMM0-15, MXCSR
        Assert.NotEqual(0UL, BinaryPrimitives.ReadUInt64LittleEndian(SnapshotBytes(fpuB).AsSpan(152 + (3 * 16)))); // kvm_fpu.xmm[3] (xmm at 152) moved on
        Assert.Equal(Ram(a), Ram(b));
    }

    [Fact]
    [Trait(KvmTests.Trait, KvmTests.Kvm)]
    public void TwoVcpus_TscsGoOnFromTheSavedValueInStep()
    {
        using var a = Build(vcpuCount: 2);
        RunRounds(a, 20);
        var vm = a.Vm.SaveState();
        var cpu0 = a.Vcpus[0].SaveState();
        var cpu1 = a.Vcpus[1].SaveState();
        Assert.Equal((uint)VcpuMpState.Uninitialized, cpu1.MpState); // the AP waits for INIT/SIPI

        using var b = Build(vcpuCount: 2);
        CopyRam(a, b);
        b.Vm.RestoreState(vm);
        b.Vcpus[0].RestoreState(cpu0);
        b.Vcpus[1].RestoreState(cpu1);

        ulong saved = Tsc(cpu0);
        ulong tsc0 = Tsc(b.Vcpus[0].SaveState());
        ulong tsc1 = Tsc(b.Vcpus[1].SaveState());
        ulong oneSecond = cpu0.TscKhz * 1000UL;
        Assert.InRange(tsc0, saved, saved + oneSecond);
        Assert.InRange(tsc1, tsc0, tsc0 + (oneSecond / 10)); // read after vCPU 0's, with the same offset
        Assert.Equal((uint)VcpuMpState.Uninitialized, b.Vcpus[1].SaveState().MpState);
        Assert.Equal(40, RunRounds(b, 20));
    }

    [Fact]
    [Trait(KvmTests.Trait, KvmTests.Kvm)]
    public void IrqChipPitAndLapicBytesRoundTrip()
    {
        using var a = Build();
        var vmState = a.Vm.SaveState();

        // Program the devices through their saved bytes: master PIC IMR 0xFB and base 0x20 (kvm_pic_state: last_irr,
        // irr, imr, isr, priority_add, irq_base, ...), IOAPIC pin 4 to vector 0x34 (kvm_ioapic_state: base_address u64,
        // ioregsel, id, irr, pad, then 24 redirection entries), PIT counter 2 (which
        // drives no interrupt) to 0x1234 in mode 2 (kvm_pit_channel_state, 24 bytes each).
        var master = (byte[])vmState.PicMaster!.Clone();
        master[2] = 0xFB;
        master[5] = 0x20;
        var ioApic = (byte[])vmState.IoApic!.Clone();
        BinaryPrimitives.WriteUInt64LittleEndian(ioApic.AsSpan(24 + (4 * 8)), 0x34);
        var pit = (byte[])vmState.Pit!.Clone();
        const int counter2 = 2 * PitChannelSize;
        BinaryPrimitives.WriteUInt32LittleEndian(pit.AsSpan(counter2), 0x1234);
        pit[counter2 + 12] = 3; // rw_mode: low then high byte
        pit[counter2 + 13] = 2; // mode
        var programmed = vmState with { PicMaster = master, IoApic = ioApic, Pit = pit };
        a.Vm.RestoreState(programmed);

        var cpuState = a.Vcpu.SaveState();
        var lapic = (byte[])cpuState.Lapic!.Clone();
        BinaryPrimitives.WriteUInt32LittleEndian(lapic.AsSpan(0x80), 0x50); // TPR
        a.Vcpu.SetLapic(lapic);

        using var b = Build();
        b.Vm.RestoreState(a.Vm.SaveState());
        b.Vcpu.RestoreState(a.Vcpu.SaveState());
        var restored = b.Vm.SaveState();
        Assert.Equal(master, restored.PicMaster);
        Assert.Equal(vmState.PicSlave, restored.PicSlave);
        Assert.Equal(ioApic, restored.IoApic);
        Assert.Equal(0x1234u, BinaryPrimitives.ReadUInt32LittleEndian(restored.Pit.AsSpan(counter2)));
        Assert.Equal(2, restored.Pit![counter2 + 13]);
        Assert.Equal(WithoutLoadTimes(pit), WithoutLoadTimes(restored.Pit));
        Assert.Equal(0x50u, BinaryPrimitives.ReadUInt32LittleEndian(b.Vcpu.GetLapic().AsSpan(0x80)));
    }

    [Fact]
    [Trait(KvmTests.Trait, KvmTests.Kvm)]
    public void HostileStatesAreRefusedBeforeAnythingIsSet()
    {
        using var a = Build();
        RunRounds(a, 3);
        var cpu = a.Vcpu.SaveState();
        var vm = a.Vm.SaveState();

        using var b = Build();
        var regsBefore = b.Vcpu.GetRegisters();
        KvmVcpuState[] badCpus =
        [
            cpu with { Regs = new byte[143] },
            cpu with { Index = 1 },
            cpu with { Xsave = new byte[100] },
            cpu with { Lapic = null },
            cpu with { DebugAddresses = [0, 0, 0] },
            cpu with { Xcrs = new KvmXcrState[17] },
        ];
        foreach (var bad in badCpus)
        {
            var e = Assert.Throws<SnapshotStateException>(() => b.Vcpu.RestoreState(bad));
            Assert.DoesNotContain('\n', e.Message);
            Assert.Equal(regsBefore, b.Vcpu.GetRegisters());
        }

        var pitBefore = b.Vm.SaveState().Pit;
        KvmVmState[] badVms = [vm with { IoApic = new byte[511] }, vm with { Pit = null }, vm with { Pit = new byte[8] }];
        foreach (var bad in badVms)
        {
            var e = Assert.Throws<SnapshotStateException>(() => b.Vm.RestoreState(bad));
            Assert.DoesNotContain('\n', e.Message);
            Assert.Equal(WithoutLoadTimes(pitBefore!), WithoutLoadTimes(b.Vm.SaveState().Pit!));
        }

        // A value KVM itself refuses: CR0.PG without PE, in kvm_sregs (cr0 at offset 224).
        var sregs = (byte[])cpu.Sregs.Clone();
        BinaryPrimitives.WriteUInt64LittleEndian(sregs.AsSpan(224), 0x8000_0000);
        var refused = Assert.Throws<SnapshotStateException>(() => b.Vcpu.RestoreState(cpu with { Sregs = sregs }));
        Assert.StartsWith("KVM refused the snapshot's state of vCPU 0: KVM_SET_SREGS failed", refused.Message);
    }

    [Fact]
    [Trait(KvmTests.Trait, KvmTests.Kvm)]
    public void NotifyPaused_WithoutGuestKvmclock_ReturnsFalse()
    {
        using var vm = Build();
        RunRounds(vm, 1);
        Assert.False(vm.Vcpu.NotifyPaused());
    }

    private static void AssertSameVmState(KvmVmState expected, KvmVmState actual)
    {
        Assert.Equal(expected.PicMaster, actual.PicMaster);
        Assert.Equal(expected.PicSlave, actual.PicSlave);
        Assert.Equal(expected.IoApic, actual.IoApic);
        Assert.Equal(WithoutLoadTimes(expected.Pit!), WithoutLoadTimes(actual.Pit!));
        Assert.InRange(actual.Clock, expected.Clock, expected.Clock + 60_000_000_000UL); // kvmclock goes on from the saved value
    }

    private static void AssertSameVcpuState(KvmVcpuState expected, KvmVcpuState actual)
    {
        Assert.Equal(expected.Regs, actual.Regs);
        Assert.Equal(expected.Sregs, actual.Sregs);
        Assert.Equal(expected.Xsave, actual.Xsave);
        Assert.Equal(expected.Xcrs, actual.Xcrs);
        Assert.Equal(expected.MpState, actual.MpState);
        Assert.Equal(expected.Lapic, actual.Lapic);
        Assert.Equal(expected.Events, actual.Events);
        Assert.Equal(expected.DebugAddresses, actual.DebugAddresses);
        Assert.Equal(expected.Dr6, actual.Dr6);
        Assert.Equal(expected.Dr7, actual.Dr7);
        Assert.Equal(expected.TscKhz, actual.TscKhz);
        Assert.Equal(MsrText(expected), MsrText(actual));
        ulong tscBefore = Array.Find(expected.Msrs, m => m.Index == KvmConstants.MSR_IA32_TSC)!.Value;
        ulong tscAfter = Array.Find(actual.Msrs, m => m.Index == KvmConstants.MSR_IA32_TSC)!.Value;
        ulong oneMinute = 60UL * expected.TscKhz * 1000;
        Assert.InRange(tscAfter, tscBefore, tscBefore + oneMinute); // the TSC goes on from the saved value
    }

    // The MSRs that count time: IA32_TSC, Hyper-V's reference time counter (read-only, from kvmclock) and its vCPU
    // run time (KVM keeps an offset from the vCPU thread's run time, which goes on between the save and the compare).
    private static bool CountsTime(uint index) => index is KvmConstants.MSR_IA32_TSC or HvTimeRefCount or HvVpRuntime;

    private static string MsrText(KvmVcpuState state) =>
        string.Join(" ", Array.ConvertAll(Array.FindAll(state.Msrs, m => !CountsTime(m.Index)), m => $"{m.Index:x}={m.Value:x}"));

    private static byte[] WithoutLoadTimes(byte[] pit)
    {
        var copy = (byte[])pit.Clone();
        for (int i = 0; i < 3; i++)
        {
            copy.AsSpan((i * PitChannelSize) + PitCountLoadTimeOffset, 8).Clear();
        }

        return copy;
    }

    private static unsafe byte[] SnapshotBytes(FpuState fpu) => new ReadOnlySpan<byte>(&fpu, sizeof(FpuState)).ToArray();

    private static ulong Tsc(KvmVcpuState state) => Array.Find(state.Msrs, m => m.Index == KvmConstants.MSR_IA32_TSC)!.Value;

    private static TestVm Build(int vcpuCount = 1)
    {
        var vm = TestVm.Create(GuestMode.Long64, GuestCode.SnapshotLoop, irqChip: true, vcpuCount: vcpuCount);
        try
        {
            vm.Vm.CreatePit2();
            var cpuid = vm.System.GetSupportedCpuid();
            foreach (var vcpu in vm.Vcpus)
            {
                vcpu.SetCpuid(cpuid);
                TestVm.SetMode(vcpu, GuestMode.Long64);
            }

            return vm;
        }
        catch
        {
            vm.Dispose();
            throw;
        }
    }

    /// <summary>Runs <paramref name="rounds"/> rounds of the loop (one port write each); returns the last counter reported.</summary>
    private static int RunRounds(TestVm vm, int rounds)
    {
        int last = -1;
        for (int i = 0; i < rounds; i++)
        {
            var io = new RecordingIo { StopPort = ReportPort };
            var stop = vm.Vcpu.Run(io);
            Assert.Equal(VcpuStopReason.IoRequestedStop, stop.Reason);
            last = io.PortWrites[^1].Data[0];
        }

        return last;
    }

    private static void CopyRam(TestVm from, TestVm to)
    {
        to.Memory.Write(0, (ReadOnlySpan<byte>)Ram(from));
    }

    private static byte[] Ram(TestVm vm)
    {
        var bytes = new byte[RamSize];
        vm.Memory.Read(0, bytes);
        return bytes;
    }
}
