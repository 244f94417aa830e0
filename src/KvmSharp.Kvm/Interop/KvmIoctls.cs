using System.Runtime.CompilerServices;
using KvmSharp.Hypervisor;
using KvmSharp.Native;

namespace KvmSharp.Kvm.Interop;

/// <summary>Request numbers, built like the kernel's _IO/_IOR/_IOW/_IOWR macros on KVMIO (0xAE).</summary>
internal static unsafe class KvmIoctls
{
    private const uint KVMIO = 0xAE;

    // System ioctls.
    public static readonly uint KVM_GET_API_VERSION = Ioctl.IO(KVMIO, 0x00);
    public static readonly uint KVM_CREATE_VM = Ioctl.IO(KVMIO, 0x01);
    public static readonly uint KVM_GET_MSR_INDEX_LIST = Ioctl.IOWR(KVMIO, 0x02, sizeof(kvm_msr_list));
    public static readonly uint KVM_CHECK_EXTENSION = Ioctl.IO(KVMIO, 0x03);
    public static readonly uint KVM_GET_VCPU_MMAP_SIZE = Ioctl.IO(KVMIO, 0x04);
    public static readonly uint KVM_GET_SUPPORTED_CPUID = Ioctl.IOWR(KVMIO, 0x05, sizeof(kvm_cpuid2));

    // VM ioctls.
    public static readonly uint KVM_CREATE_VCPU = Ioctl.IO(KVMIO, 0x41);
    public static readonly uint KVM_GET_DIRTY_LOG = Ioctl.IOW(KVMIO, 0x42, sizeof(kvm_dirty_log));
    public static readonly uint KVM_SET_USER_MEMORY_REGION = Ioctl.IOW(KVMIO, 0x46, sizeof(kvm_userspace_memory_region));
    public static readonly uint KVM_SET_TSS_ADDR = Ioctl.IO(KVMIO, 0x47);
    public static readonly uint KVM_SET_IDENTITY_MAP_ADDR = Ioctl.IOW(KVMIO, 0x48, sizeof(ulong));
    public static readonly uint KVM_CREATE_IRQCHIP = Ioctl.IO(KVMIO, 0x60);
    public static readonly uint KVM_IRQ_LINE = Ioctl.IOW(KVMIO, 0x61, sizeof(kvm_irq_level));
    public static readonly uint KVM_GET_IRQCHIP = Ioctl.IOWR(KVMIO, 0x62, sizeof(kvm_irqchip));
    public static readonly uint KVM_SET_IRQCHIP = Ioctl.IOR(KVMIO, 0x63, sizeof(kvm_irqchip)); // _IOR in the kernel too
    public static readonly uint KVM_SET_GSI_ROUTING = Ioctl.IOW(KVMIO, 0x6a, sizeof(kvm_irq_routing));
    public static readonly uint KVM_IRQFD = Ioctl.IOW(KVMIO, 0x76, sizeof(kvm_irqfd));
    public static readonly uint KVM_CREATE_PIT2 = Ioctl.IOW(KVMIO, 0x77, sizeof(kvm_pit_config));
    public static readonly uint KVM_SET_CLOCK = Ioctl.IOW(KVMIO, 0x7b, sizeof(kvm_clock_data));
    public static readonly uint KVM_GET_CLOCK = Ioctl.IOR(KVMIO, 0x7c, sizeof(kvm_clock_data));
    public static readonly uint KVM_GET_PIT2 = Ioctl.IOR(KVMIO, 0x9f, sizeof(kvm_pit_state2));
    public static readonly uint KVM_SET_PIT2 = Ioctl.IOW(KVMIO, 0xa0, sizeof(kvm_pit_state2));
    public static readonly uint KVM_IOEVENTFD = Ioctl.IOW(KVMIO, 0x79, sizeof(kvm_ioeventfd));
    public static readonly uint KVM_ENABLE_CAP = Ioctl.IOW(KVMIO, 0xa3, sizeof(kvm_enable_cap));
    public static readonly uint KVM_SIGNAL_MSI = Ioctl.IOW(KVMIO, 0xa5, sizeof(kvm_msi));
    public static readonly uint KVM_CLEAR_DIRTY_LOG = Ioctl.IOWR(KVMIO, 0xc0, sizeof(kvm_clear_dirty_log));

    // vCPU ioctls.
    public static readonly uint KVM_RUN = Ioctl.IO(KVMIO, 0x80);
    public static readonly uint KVM_GET_REGS = Ioctl.IOR(KVMIO, 0x81, Unsafe.SizeOf<X86Registers>());
    public static readonly uint KVM_SET_REGS = Ioctl.IOW(KVMIO, 0x82, Unsafe.SizeOf<X86Registers>());
    public static readonly uint KVM_GET_SREGS = Ioctl.IOR(KVMIO, 0x83, Unsafe.SizeOf<X86SystemRegisters>());
    public static readonly uint KVM_SET_SREGS = Ioctl.IOW(KVMIO, 0x84, Unsafe.SizeOf<X86SystemRegisters>());
    public static readonly uint KVM_TRANSLATE = Ioctl.IOWR(KVMIO, 0x85, sizeof(kvm_translation));
    public static readonly uint KVM_INTERRUPT = Ioctl.IOW(KVMIO, 0x86, sizeof(uint));
    public static readonly uint KVM_GET_MSRS = Ioctl.IOWR(KVMIO, 0x88, sizeof(kvm_msrs));
    public static readonly uint KVM_SET_MSRS = Ioctl.IOW(KVMIO, 0x89, sizeof(kvm_msrs));
    public static readonly uint KVM_GET_FPU = Ioctl.IOR(KVMIO, 0x8c, Unsafe.SizeOf<FpuState>());
    public static readonly uint KVM_SET_FPU = Ioctl.IOW(KVMIO, 0x8d, Unsafe.SizeOf<FpuState>());
    public static readonly uint KVM_GET_LAPIC = Ioctl.IOR(KVMIO, 0x8e, sizeof(kvm_lapic_state));
    public static readonly uint KVM_SET_LAPIC = Ioctl.IOW(KVMIO, 0x8f, sizeof(kvm_lapic_state));
    public static readonly uint KVM_SET_CPUID2 = Ioctl.IOW(KVMIO, 0x90, sizeof(kvm_cpuid2));
    public static readonly uint KVM_GET_CPUID2 = Ioctl.IOWR(KVMIO, 0x91, sizeof(kvm_cpuid2));
    public static readonly uint KVM_GET_MP_STATE = Ioctl.IOR(KVMIO, 0x98, sizeof(kvm_mp_state));
    public static readonly uint KVM_SET_MP_STATE = Ioctl.IOW(KVMIO, 0x99, sizeof(kvm_mp_state));
    public static readonly uint KVM_NMI = Ioctl.IO(KVMIO, 0x9a);
    public static readonly uint KVM_SET_GUEST_DEBUG = Ioctl.IOW(KVMIO, 0x9b, sizeof(kvm_guest_debug));
    public static readonly uint KVM_GET_VCPU_EVENTS = Ioctl.IOR(KVMIO, 0x9f, Unsafe.SizeOf<VcpuEvents>());
    public static readonly uint KVM_SET_VCPU_EVENTS = Ioctl.IOW(KVMIO, 0xa0, Unsafe.SizeOf<VcpuEvents>());
    public static readonly uint KVM_GET_DEBUGREGS = Ioctl.IOR(KVMIO, 0xa1, sizeof(kvm_debugregs));
    public static readonly uint KVM_SET_DEBUGREGS = Ioctl.IOW(KVMIO, 0xa2, sizeof(kvm_debugregs));
    public static readonly uint KVM_GET_XSAVE = Ioctl.IOR(KVMIO, 0xa4, sizeof(kvm_xsave));
    public static readonly uint KVM_SET_XSAVE = Ioctl.IOW(KVMIO, 0xa5, sizeof(kvm_xsave));
    public static readonly uint KVM_GET_XCRS = Ioctl.IOR(KVMIO, 0xa6, sizeof(kvm_xcrs));
    public static readonly uint KVM_SET_XCRS = Ioctl.IOW(KVMIO, 0xa7, sizeof(kvm_xcrs));
    public static readonly uint KVM_SET_TSC_KHZ = Ioctl.IO(KVMIO, 0xa2);
    public static readonly uint KVM_GET_TSC_KHZ = Ioctl.IO(KVMIO, 0xa3);
    public static readonly uint KVM_KVMCLOCK_CTRL = Ioctl.IO(KVMIO, 0xad);
    public static readonly uint KVM_GET_XSAVE2 = Ioctl.IOR(KVMIO, 0xcf, sizeof(kvm_xsave));
}
