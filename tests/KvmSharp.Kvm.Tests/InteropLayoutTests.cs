using System.Runtime.CompilerServices;
using KvmSharp.Hypervisor;
using KvmSharp.Kvm.Interop;

namespace KvmSharp.Kvm.Tests;

/// <summary>Sizes and offsets from the kernel headers (linux/kvm.h, asm/kvm.h on x86-64), printed by a C program with sizeof/offsetof.</summary>
public unsafe class InteropLayoutTests
{
    [Fact]
    public void StructSizes_MatchKernelHeaders()
    {
        Assert.Equal(32, sizeof(kvm_userspace_memory_region));
        Assert.Equal(144, Unsafe.SizeOf<X86Registers>());          // kvm_regs
        Assert.Equal(24, Unsafe.SizeOf<SegmentRegister>());        // kvm_segment
        Assert.Equal(16, Unsafe.SizeOf<DescriptorTable>());        // kvm_dtable
        Assert.Equal(312, Unsafe.SizeOf<X86SystemRegisters>());    // kvm_sregs
        Assert.Equal(416, Unsafe.SizeOf<FpuState>());              // kvm_fpu
        Assert.Equal(4096, sizeof(kvm_xsave));
        Assert.Equal(16, sizeof(kvm_xcr));
        Assert.Equal(392, sizeof(kvm_xcrs));
        Assert.Equal(8, sizeof(kvm_msrs));
        Assert.Equal(16, sizeof(kvm_msr_entry));
        Assert.Equal(4, sizeof(kvm_msr_list));
        Assert.Equal(1024, sizeof(kvm_lapic_state));
        Assert.Equal(64, Unsafe.SizeOf<VcpuEvents>());             // kvm_vcpu_events
        Assert.Equal(8, sizeof(kvm_cpuid2));
        Assert.Equal(40, sizeof(kvm_cpuid_entry2));
        Assert.Equal(72, sizeof(kvm_guest_debug));
        Assert.Equal(24, sizeof(kvm_translation));
        Assert.Equal(4, sizeof(kvm_mp_state));
        Assert.Equal(8, sizeof(kvm_irq_level));
        Assert.Equal(64, sizeof(kvm_pit_config));
        Assert.Equal(8, sizeof(kvm_irq_routing));
        Assert.Equal(48, sizeof(kvm_irq_routing_entry));
        Assert.Equal(32, sizeof(kvm_msi));
        Assert.Equal(32, sizeof(kvm_irqfd));
        Assert.Equal(64, sizeof(kvm_ioeventfd));
        Assert.Equal(16, sizeof(kvm_dirty_log));
        Assert.Equal(24, sizeof(kvm_clear_dirty_log));
        Assert.Equal(104, sizeof(kvm_enable_cap));
        Assert.Equal(128, sizeof(kvm_debugregs));
        Assert.Equal(2352, sizeof(kvm_run));
        Assert.Equal(520, sizeof(kvm_irqchip));
        Assert.Equal(24, sizeof(kvm_pit_channel_state));
        Assert.Equal(112, sizeof(kvm_pit_state2));
        Assert.Equal(48, sizeof(kvm_clock_data));
    }

    [Fact]
    public void KvmRunOffsets_MatchKernelHeaders()
    {
        kvm_run run = default;
        byte* b = (byte*)&run;
        Assert.Equal(1, (byte*)&run.immediate_exit - b);
        Assert.Equal(8, (byte*)&run.exit_reason - b);
        Assert.Equal(12, (byte*)&run.ready_for_interrupt_injection - b);
        Assert.Equal(13, (byte*)&run.if_flag - b);
        Assert.Equal(16, (byte*)&run.cr8 - b);
        Assert.Equal(24, (byte*)&run.apic_base - b);
        Assert.Equal(32, (byte*)&run.io.direction - b);
        Assert.Equal(33, (byte*)&run.io.size - b);
        Assert.Equal(34, (byte*)&run.io.port - b);
        Assert.Equal(36, (byte*)&run.io.count - b);
        Assert.Equal(40, (byte*)&run.io.data_offset - b);
        Assert.Equal(32, (byte*)&run.mmio.phys_addr - b);
        Assert.Equal(40, (byte*)run.mmio.data - b);
        Assert.Equal(48, (byte*)&run.mmio.len - b);
        Assert.Equal(52, (byte*)&run.mmio.is_write - b);
        Assert.Equal(32, (byte*)&run.debug.exception - b);
        Assert.Equal(40, (byte*)&run.debug.pc - b);
        Assert.Equal(48, (byte*)&run.debug.dr6 - b);
        Assert.Equal(56, (byte*)&run.debug.dr7 - b);
        Assert.Equal(36, (byte*)&run.@internal.ndata - b);
        Assert.Equal(40, (byte*)run.@internal.data - b);
        Assert.Equal(40, (byte*)run.system_event.data - b);
        Assert.Equal(40, (byte*)&run.fail_entry.cpu - b);
        Assert.Equal(288, (byte*)&run.kvm_valid_regs - b);
    }

    [Fact]
    public void VcpuEventsOffsets_MatchKernelHeaders()
    {
        VcpuEvents e = default;
        byte* b = (byte*)&e;
        Assert.Equal(4, (byte*)&e.ExceptionErrorCode - b);
        Assert.Equal(8, (byte*)&e.InterruptInjected - b);
        Assert.Equal(12, (byte*)&e.NmiInjected - b);
        Assert.Equal(16, (byte*)&e.SipiVector - b);
        Assert.Equal(20, (byte*)&e.Flags - b);
        Assert.Equal(24, (byte*)&e.Smm - b);
        Assert.Equal(28, (byte*)&e.TripleFaultPending - b);
        Assert.Equal(55, (byte*)&e.ExceptionHasPayload - b);
        Assert.Equal(56, (byte*)&e.ExceptionPayload - b);
    }

    [Fact]
    public void IoctlNumbers_MatchKernelHeaders()
    {
        Assert.Equal(0xAE00u, KvmIoctls.KVM_GET_API_VERSION);
        Assert.Equal(0xAE01u, KvmIoctls.KVM_CREATE_VM);
        Assert.Equal(0xC004AE02u, KvmIoctls.KVM_GET_MSR_INDEX_LIST);
        Assert.Equal(0xAE03u, KvmIoctls.KVM_CHECK_EXTENSION);
        Assert.Equal(0xAE04u, KvmIoctls.KVM_GET_VCPU_MMAP_SIZE);
        Assert.Equal(0xC008AE05u, KvmIoctls.KVM_GET_SUPPORTED_CPUID);
        Assert.Equal(0xAE41u, KvmIoctls.KVM_CREATE_VCPU);
        Assert.Equal(0x4010AE42u, KvmIoctls.KVM_GET_DIRTY_LOG);
        Assert.Equal(0x4020AE46u, KvmIoctls.KVM_SET_USER_MEMORY_REGION);
        Assert.Equal(0xAE47u, KvmIoctls.KVM_SET_TSS_ADDR);
        Assert.Equal(0x4008AE48u, KvmIoctls.KVM_SET_IDENTITY_MAP_ADDR);
        Assert.Equal(0xAE60u, KvmIoctls.KVM_CREATE_IRQCHIP);
        Assert.Equal(0x4008AE61u, KvmIoctls.KVM_IRQ_LINE);
        Assert.Equal(0x4008AE6Au, KvmIoctls.KVM_SET_GSI_ROUTING);
        Assert.Equal(0x4020AE76u, KvmIoctls.KVM_IRQFD);
        Assert.Equal(0x4040AE77u, KvmIoctls.KVM_CREATE_PIT2);
        Assert.Equal(0x4040AE79u, KvmIoctls.KVM_IOEVENTFD);
        Assert.Equal(0x4068AEA3u, KvmIoctls.KVM_ENABLE_CAP);
        Assert.Equal(0x4020AEA5u, KvmIoctls.KVM_SIGNAL_MSI);
        Assert.Equal(0xC018AEC0u, KvmIoctls.KVM_CLEAR_DIRTY_LOG);
        Assert.Equal(0xAE80u, KvmIoctls.KVM_RUN);
        Assert.Equal(0x8090AE81u, KvmIoctls.KVM_GET_REGS);
        Assert.Equal(0x4090AE82u, KvmIoctls.KVM_SET_REGS);
        Assert.Equal(0x8138AE83u, KvmIoctls.KVM_GET_SREGS);
        Assert.Equal(0x4138AE84u, KvmIoctls.KVM_SET_SREGS);
        Assert.Equal(0xC018AE85u, KvmIoctls.KVM_TRANSLATE);
        Assert.Equal(0x4004AE86u, KvmIoctls.KVM_INTERRUPT);
        Assert.Equal(0xC008AE88u, KvmIoctls.KVM_GET_MSRS);
        Assert.Equal(0x4008AE89u, KvmIoctls.KVM_SET_MSRS);
        Assert.Equal(0x81A0AE8Cu, KvmIoctls.KVM_GET_FPU);
        Assert.Equal(0x41A0AE8Du, KvmIoctls.KVM_SET_FPU);
        Assert.Equal(0x8400AE8Eu, KvmIoctls.KVM_GET_LAPIC);
        Assert.Equal(0x4400AE8Fu, KvmIoctls.KVM_SET_LAPIC);
        Assert.Equal(0x4008AE90u, KvmIoctls.KVM_SET_CPUID2);
        Assert.Equal(0xC008AE91u, KvmIoctls.KVM_GET_CPUID2);
        Assert.Equal(0x8004AE98u, KvmIoctls.KVM_GET_MP_STATE);
        Assert.Equal(0x4004AE99u, KvmIoctls.KVM_SET_MP_STATE);
        Assert.Equal(0xAE9Au, KvmIoctls.KVM_NMI);
        Assert.Equal(0x4048AE9Bu, KvmIoctls.KVM_SET_GUEST_DEBUG);
        Assert.Equal(0x8040AE9Fu, KvmIoctls.KVM_GET_VCPU_EVENTS);
        Assert.Equal(0x4040AEA0u, KvmIoctls.KVM_SET_VCPU_EVENTS);
        Assert.Equal(0x8080AEA1u, KvmIoctls.KVM_GET_DEBUGREGS);
        Assert.Equal(0x4080AEA2u, KvmIoctls.KVM_SET_DEBUGREGS);
        Assert.Equal(0x9000AEA4u, KvmIoctls.KVM_GET_XSAVE);
        Assert.Equal(0x5000AEA5u, KvmIoctls.KVM_SET_XSAVE);
        Assert.Equal(0x8188AEA6u, KvmIoctls.KVM_GET_XCRS);
        Assert.Equal(0x4188AEA7u, KvmIoctls.KVM_SET_XCRS);
        Assert.Equal(0xAEADu, KvmIoctls.KVM_KVMCLOCK_CTRL);
        Assert.Equal(0xC208AE62u, KvmIoctls.KVM_GET_IRQCHIP);
        Assert.Equal(0x8208AE63u, KvmIoctls.KVM_SET_IRQCHIP);
        Assert.Equal(0x4030AE7Bu, KvmIoctls.KVM_SET_CLOCK);
        Assert.Equal(0x8030AE7Cu, KvmIoctls.KVM_GET_CLOCK);
        Assert.Equal(0x8070AE9Fu, KvmIoctls.KVM_GET_PIT2);
        Assert.Equal(0x4070AEA0u, KvmIoctls.KVM_SET_PIT2);
        Assert.Equal(0xAEA2u, KvmIoctls.KVM_SET_TSC_KHZ);
        Assert.Equal(0xAEA3u, KvmIoctls.KVM_GET_TSC_KHZ);
        Assert.Equal(0x9000AECFu, KvmIoctls.KVM_GET_XSAVE2);
    }

    [Fact]
    public void PitChannelStateOffsets_MatchKernelHeaders()
    {
        kvm_pit_channel_state c = default;
        byte* b = (byte*)&c;
        Assert.Equal(4, (byte*)&c.latched_count - b);
        Assert.Equal(12, (byte*)&c.rw_mode - b);
        Assert.Equal(13, (byte*)&c.mode - b);
        Assert.Equal(16, (byte*)&c.count_load_time - b);
    }
}
