using KvmSharp.Hypervisor;

namespace KvmSharp.Kvm.Tests;

public class SystemAndStateTests
{
    [Fact]
    [Trait(KvmTests.Trait, KvmTests.Kvm)]
    public void System_ReportsApiVersionMmapSizeCpuidAndMsrs()
    {
        TestVm.RequireKvm();
        using var system = KvmSystem.Open();

        Assert.Equal(12, system.ApiVersion);
        Assert.True(system.VcpuMmapSize >= 2352, $"mmap size {system.VcpuMmapSize}");
        Assert.Equal(1, system.CheckExtension(KvmCapability.UserMemory));
        Assert.Equal(1, system.CheckExtension(KvmCapability.ImmediateExit));

        var cpuid = system.GetSupportedCpuid();
        var leaf0 = Assert.Single(cpuid, e => e.Function == 0 && e.Index == 0);
        Assert.True(leaf0.Eax >= 1, "leaf 0 reports the highest basic leaf");
        Assert.Contains(cpuid, e => e.Function == 0x4000_0000); // KVM's paravirt signature leaf
        var kvmLeaf = Assert.Single(cpuid, e => e.Function == 0x4000_0000);
        Assert.Equal("KVMKVMKVM\0\0\0", System.Text.Encoding.ASCII.GetString(
            [.. BitConverter.GetBytes(kvmLeaf.Ebx), .. BitConverter.GetBytes(kvmLeaf.Ecx), .. BitConverter.GetBytes(kvmLeaf.Edx)]));

        var msrs = system.GetMsrIndexList();
        Assert.Contains(0x10u, msrs);          // IA32_TIME_STAMP_COUNTER
        Assert.Contains(0xC000_0081u, msrs);   // STAR
    }

    [Fact]
    public void Open_MissingDevice_SaysWhatToDo()
    {
        var e = Assert.Throws<KvmUnavailableException>(() => KvmSystem.Open("/nonexistent/kvm"));

        Assert.Equal(KvmUnavailableReason.DeviceMissing, e.Reason);
        Assert.Equal(
            "'/nonexistent/kvm' not found. Make sure the kernel has KVM enabled (modprobe kvm_intel or kvm_amd) and the CPU's virtualization extensions are on in the firmware.",
            e.Message);
    }

    [Fact]
    public void Open_NotAKvmDevice_SaysSo()
    {
        var e = Assert.Throws<KvmUnavailableException>(() => KvmSystem.Open("/dev/null"));

        Assert.Equal(KvmUnavailableReason.DeviceError, e.Reason);
        Assert.Equal(
            "'/dev/null' is not a KVM device (KVM_GET_API_VERSION failed: Inappropriate ioctl for device (ENOTTY)). Pass the path of the KVM device node, normally /dev/kvm.",
            e.Message);
    }

    [Fact]
    [Trait(KvmTests.Trait, KvmTests.Kvm)]
    public void Msrs_RoundTrip()
    {
        using var vm = TestVm.Create(GuestMode.Long64, GuestCode.Long64);
        uint[] indices = [0x174, 0x175, 0x176]; // SYSENTER_CS/ESP/EIP
        ulong[] values = [0x10, 0xFFFF_8000_0000_1000, 0xFFFF_8000_0000_2000];
        // Intel 64 holds 64-bit SYSENTER_ESP/EIP (SDM vol. 3, "MSRs used by SYSENTER and SYSEXIT"); AMD64 holds 32 bits
        // (SYSENTER is legacy-mode only there; the VMCB fields are 32-bit), and KVM on SVM keeps the upper halves only
        // for a guest whose CPUID says GenuineIntel, which this one has no CPUID to say.
        bool amd = KvmHostInfo.Detect().Module == KvmModuleKind.AmdSvm;
        ulong[] expected = amd ? [0x10, 0x1000, 0x2000] : values;

        Assert.Equal(3, vm.Vcpu.SetMsrs(indices, values));
        var read = new ulong[3];
        Assert.Equal(3, vm.Vcpu.GetMsrs(indices, read));

        Assert.Equal(expected, read);
    }

    [Fact]
    [Trait(KvmTests.Trait, KvmTests.Kvm)]
    public void Msrs_UnknownIndex_StopsTheBatch()
    {
        using var vm = TestVm.Create(GuestMode.Long64, GuestCode.Long64);
        var read = new ulong[2];

        int n = vm.Vcpu.GetMsrs([0x174, 0xDEAD_BEEF], read);

        Assert.Equal(1, n);
    }

    [Fact]
    [Trait(KvmTests.Trait, KvmTests.Kvm)]
    public unsafe void Fpu_RoundTrip()
    {
        using var vm = TestVm.Create(GuestMode.Long64, GuestCode.Long64);
        var fpu = vm.Vcpu.GetFpu();
        fpu.Fcw = 0x027F;
        fpu.Fpr[0] = 0x11;
        fpu.Xmm[0] = 0xAB;
        fpu.Xmm[255] = 0xCD;

        vm.Vcpu.SetFpu(fpu);
        var back = vm.Vcpu.GetFpu();

        Assert.Equal(0x027F, back.Fcw);
        Assert.Equal(0x11, back.Fpr[0]);
        Assert.Equal(0xAB, back.Xmm[0]);
        Assert.Equal(0xCD, back.Xmm[255]);
    }

    [Fact]
    [Trait(KvmTests.Trait, KvmTests.Kvm)]
    public void NewVcpu_HasTheArchitecturalFpuResetState()
    {
        // The machine builder relies on this instead of setting it: FNINIT's FCW and the reset MXCSR.
        using var vm = TestVm.Create(GuestMode.Long64, GuestCode.Long64);

        var fpu = vm.Vcpu.GetFpu();
        var xsave = vm.Vcpu.GetXsave();

        Assert.Equal(0x037F, fpu.Fcw);
        Assert.Equal(0, fpu.Fsw);
        Assert.Equal(0x1F80u, BitConverter.ToUInt32(xsave, 24));
    }

    [Fact]
    [Trait(KvmTests.Trait, KvmTests.Kvm)]
    public void Xsave_RoundTripsTheLegacyArea()
    {
        using var vm = TestVm.Create(GuestMode.Long64, GuestCode.Long64);
        var area = vm.Vcpu.GetXsave();
        Assert.Equal(4096, area.Length);
        // FXSAVE layout: FCW at 0, MXCSR at 24, XMM0 at 160.
        BitConverter.TryWriteBytes(area.AsSpan(0, 2), (ushort)0x037F);
        BitConverter.TryWriteBytes(area.AsSpan(24, 4), 0x1F80u);
        area[160] = 0x5A;
        area[512] |= 0x3; // XSTATE_BV: x87 and SSE state are present

        vm.Vcpu.SetXsave(area);
        var back = vm.Vcpu.GetXsave();

        Assert.Equal(0x037F, BitConverter.ToUInt16(back, 0));
        Assert.Equal(0x1F80u, BitConverter.ToUInt32(back, 24));
        Assert.Equal(0x5A, back[160]);
    }

    [Fact]
    [Trait(KvmTests.Trait, KvmTests.Kvm)]
    public void Xcrs_ReportXcr0WhenSupported()
    {
        using var vm = TestVm.Create(GuestMode.Long64, GuestCode.Long64);
        Assert.SkipUnless(vm.System.CheckExtension(KvmCapability.Xcrs) > 0, "KVM_CAP_XCRS is absent.");

        var xcrs = vm.Vcpu.GetXcrs();

        Assert.Equal(0u, xcrs[0].Index);
        Assert.Equal(1UL, xcrs[0].Value & 1); // x87 state is always enabled in XCR0
    }

    [Fact]
    [Trait(KvmTests.Trait, KvmTests.Kvm)]
    public void Lapic_HoldsTheVcpuApicId()
    {
        using var vm = TestVm.Create(GuestMode.Long64, GuestCode.Long64, irqChip: true, vcpuCount: 2);

        var lapic1 = vm.Vcpus[1].GetLapic();
        Assert.Equal(1u, BitConverter.ToUInt32(lapic1, 0x20) >> 24); // APIC ID register
        lapic1[0x80] = 0x20; // TPR
        vm.Vcpus[1].SetLapic(lapic1);

        Assert.Equal(0x20, vm.Vcpus[1].GetLapic()[0x80]);
        Assert.Equal(0u, BitConverter.ToUInt32(vm.Vcpus[0].GetLapic(), 0x20) >> 24);
    }

    [Fact]
    [Trait(KvmTests.Trait, KvmTests.Kvm)]
    public void VcpuEvents_RoundTripNmiPending()
    {
        using var vm = TestVm.Create(GuestMode.Long64, GuestCode.Long64);
        var events = vm.Vcpu.GetEvents();
        Assert.Equal(0, events.ExceptionInjected);
        events.NmiPending = 1;
        events.Flags = 1; // KVM_VCPUEVENT_VALID_NMI_PENDING

        vm.Vcpu.SetEvents(events);

        Assert.Equal(1, vm.Vcpu.GetEvents().NmiPending);
    }

    [Fact]
    [Trait(KvmTests.Trait, KvmTests.Kvm)]
    public void Cpuid_SetThenGetReturnsTheTable()
    {
        using var vm = TestVm.Create(GuestMode.Long64, GuestCode.Long64);
        var supported = vm.System.GetSupportedCpuid();
        CpuidEntry[] table =
        [
            supported.Single(e => e.Function == 0),
            new CpuidEntry(0x4000_0000, 0, 0, 0x4000_0001, 0x4B4D564B, 0x564B4D56, 0x4D),
        ];

        vm.Vcpu.SetCpuid(table);

        Assert.Equal(table, vm.Vcpu.GetCpuid());
    }

    [Fact]
    [Trait(KvmTests.Trait, KvmTests.Kvm)]
    public void Translate_WalksTheGuestPageTables()
    {
        using var vm = TestVm.Create(GuestMode.Long64, GuestCode.Long64);

        var mapped = vm.Vcpu.Translate(0x20_1234);
        var unmapped = vm.Vcpu.Translate(0x8000_0000); // beyond the 1 GiB identity map

        Assert.True(mapped.Valid);
        Assert.True(mapped.Writeable);
        Assert.Equal(0x20_1234UL, mapped.PhysicalAddress);
        Assert.False(unmapped.Valid);
    }

    [Fact]
    [Trait(KvmTests.Trait, KvmTests.Kvm)]
    public void MpState_IsRunnableAfterCreation()
    {
        using var vm = TestVm.Create(GuestMode.Long64, GuestCode.Long64, irqChip: true);

        Assert.Equal(VcpuMpState.Runnable, vm.Vcpu.GetMpState());
        vm.Vcpu.SetMpState(VcpuMpState.Halted);
        Assert.Equal(VcpuMpState.Halted, vm.Vcpu.GetMpState());
    }

    [Fact]
    [Trait(KvmTests.Trait, KvmTests.Kvm)]
    public void MemorySlots_MoveAndRemove()
    {
        using var vm = TestVm.Create(GuestMode.Long64, GuestCode.Long64);
        using var extra = Memory.GuestMemory.Create([new Memory.MemoryRange(0x4000_0000, 0x10000)]);
        var region = extra.Regions[0];

        var slot = vm.Vm.AddMemorySlot(5, 0x4000_0000, 0x10000, region.HostAddress);
        var moved = vm.Vm.MoveMemorySlot(5, 0x5000_0000);

        Assert.Equal(0x4000_0000UL, slot.GuestPhysicalAddress);
        Assert.Equal(0x5000_0000UL, moved.GuestPhysicalAddress);
        Assert.Contains(vm.Vm.Slots, s => s.Slot == 5 && s.GuestPhysicalAddress == 0x5000_0000);
        Assert.Throws<InvalidOperationException>(() => vm.Vm.AddMemorySlot(5, 0x6000_0000, 0x10000, region.HostAddress));
        vm.Vm.RemoveMemorySlot(5);
        Assert.DoesNotContain(vm.Vm.Slots, s => s.Slot == 5);
        Assert.Equal(VcpuStopReason.Halted, vm.Vcpu.Run(new RecordingIo()).Reason);
    }

    [Fact]
    public void HostInfo_DetectsModuleFromSysfs()
    {
        var root = Directory.CreateTempSubdirectory();
        try
        {
            string modules = Path.Combine(root.FullName, "module");
            string cpuinfo = Path.Combine(root.FullName, "cpuinfo");
            string misc = Path.Combine(root.FullName, "misc-kvm");
            KvmHostInfo Detect() => KvmHostInfo.Detect(modules, cpuinfo, misc);
            Directory.CreateDirectory(Path.Combine(modules, "kvm_pvm"));
            File.WriteAllText(cpuinfo, "processor\t: 0\nflags\t\t: fpu vme de pse tsc msr\n");

            // A built-in module's directory without KVM's registered device (this project's Firecracker machines): none.
            Assert.Equal(KvmModuleKind.Unknown, Detect().Module);
            Assert.Equal("none", Detect().ModuleName);

            Directory.CreateDirectory(misc);
            var pvm = Detect();
            Assert.Equal(KvmModuleKind.Pvm, pvm.Module);
            Assert.Equal("kvm_pvm", pvm.ModuleName);
            Assert.False(pvm.CpuHasVmx);
            Assert.False(pvm.RunsKernelGuestsNatively);

            Directory.CreateDirectory(Path.Combine(modules, "kvm_intel"));
            File.WriteAllText(cpuinfo, "flags\t\t: fpu vmx sse2\n");
            var intel = Detect();
            Assert.Equal(KvmModuleKind.IntelVmx, intel.Module);
            Assert.True(intel.CpuHasVmx);
            Assert.True(intel.RunsKernelGuestsNatively);

            // Both vendor modules built in: the CPU's flag says which one registered the device.
            Directory.CreateDirectory(Path.Combine(modules, "kvm_amd"));
            File.WriteAllText(cpuinfo, "flags\t\t: fpu svm sse2\n");
            Assert.Equal(KvmModuleKind.AmdSvm, Detect().Module);
            Assert.Equal("kvm_amd (AMD-V/SVM)", Detect().Describe());
        }
        finally
        {
            root.Delete(recursive: true);
        }
    }
}
