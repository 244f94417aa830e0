namespace KvmSharp.Kvm.Interop;

/// <summary>Values from linux/kvm.h.</summary>
internal static class KvmConstants
{
    public const int KVM_API_VERSION = 12;

    // Exit reasons.
    public const uint KVM_EXIT_UNKNOWN = 0;
    public const uint KVM_EXIT_EXCEPTION = 1;
    public const uint KVM_EXIT_IO = 2;
    public const uint KVM_EXIT_HYPERCALL = 3;
    public const uint KVM_EXIT_DEBUG = 4;
    public const uint KVM_EXIT_HLT = 5;
    public const uint KVM_EXIT_MMIO = 6;
    public const uint KVM_EXIT_IRQ_WINDOW_OPEN = 7;
    public const uint KVM_EXIT_SHUTDOWN = 8;
    public const uint KVM_EXIT_FAIL_ENTRY = 9;
    public const uint KVM_EXIT_INTR = 10;
    public const uint KVM_EXIT_INTERNAL_ERROR = 17;
    public const uint KVM_EXIT_SYSTEM_EVENT = 24;

    public const byte KVM_EXIT_IO_IN = 0;
    public const byte KVM_EXIT_IO_OUT = 1;

    public const uint KVM_SYSTEM_EVENT_SHUTDOWN = 1;
    public const uint KVM_SYSTEM_EVENT_RESET = 2;
    public const uint KVM_SYSTEM_EVENT_CRASH = 3;

    public const uint KVM_INTERNAL_ERROR_EMULATION = 1;
    public const uint KVM_INTERNAL_ERROR_SIMUL_EX = 2;
    public const uint KVM_INTERNAL_ERROR_DELIVERY_EV = 3;
    public const uint KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON = 4;

    // Memory slot flags.
    public const uint KVM_MEM_LOG_DIRTY_PAGES = 1u << 0;
    public const uint KVM_MEM_READONLY = 1u << 1;

    // Guest debug.
    public const uint KVM_GUESTDBG_ENABLE = 0x1;
    public const uint KVM_GUESTDBG_SINGLESTEP = 0x2;
    public const uint KVM_GUESTDBG_USE_SW_BP = 0x10000;
    public const uint KVM_GUESTDBG_USE_HW_BP = 0x20000;

    // irqfd / ioeventfd.
    public const uint KVM_IRQFD_FLAG_DEASSIGN = 1u << 0;
    public const uint KVM_IOEVENTFD_FLAG_DATAMATCH = 1u << 0;
    public const uint KVM_IOEVENTFD_FLAG_PIO = 1u << 1;
    public const uint KVM_IOEVENTFD_FLAG_DEASSIGN = 1u << 2;

    // GSI routing.
    public const uint KVM_IRQ_ROUTING_IRQCHIP = 1;
    public const uint KVM_IRQ_ROUTING_MSI = 2;
    public const uint KVM_IRQCHIP_PIC_MASTER = 0;
    public const uint KVM_IRQCHIP_PIC_SLAVE = 1;
    public const uint KVM_IRQCHIP_IOAPIC = 2;

    public const uint KVM_PIT_SPEAKER_DUMMY = 1;

    // kvm_vcpu_events.flags.
    public const uint KVM_VCPUEVENT_VALID_NMI_PENDING = 0x1;
    public const uint KVM_VCPUEVENT_VALID_SIPI_VECTOR = 0x2;
    public const uint KVM_VCPUEVENT_VALID_SHADOW = 0x4;
    public const uint KVM_VCPUEVENT_VALID_SMM = 0x8;
    public const uint KVM_VCPUEVENT_VALID_PAYLOAD = 0x10;
    public const uint KVM_VCPUEVENT_VALID_TRIPLE_FAULT = 0x20;

    // MSRs saved beyond KVM_GET_MSR_INDEX_LIST (arch/x86/include/asm/msr-index.h, arch/x86/include/uapi/asm/kvm_para.h).
    public const uint MSR_IA32_TSC = 0x10;
    public const uint MSR_IA32_TSCDEADLINE = 0x6e0;
    public const uint MSR_KVM_WALL_CLOCK = 0x11;
    public const uint MSR_KVM_SYSTEM_TIME = 0x12;
    public const uint MSR_KVM_WALL_CLOCK_NEW = 0x4b56_4d00;
    public const uint MSR_KVM_SYSTEM_TIME_NEW = 0x4b56_4d01;
    public const uint MSR_KVM_ASYNC_PF_EN = 0x4b56_4d02;
    public const uint MSR_KVM_STEAL_TIME = 0x4b56_4d03;
    public const uint MSR_KVM_PV_EOI_EN = 0x4b56_4d04;
    public const uint MSR_KVM_POLL_CONTROL = 0x4b56_4d05;
    public const uint MSR_KVM_ASYNC_PF_INT = 0x4b56_4d06;

    public const ulong KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE = 1UL << 0;

    // MP states.
    public const uint KVM_MP_STATE_RUNNABLE = 0;
    public const uint KVM_MP_STATE_UNINITIALIZED = 1;
    public const uint KVM_MP_STATE_INIT_RECEIVED = 2;
    public const uint KVM_MP_STATE_HALTED = 3;
    public const uint KVM_MP_STATE_SIPI_RECEIVED = 4;
}
