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

    public const ulong KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE = 1UL << 0;

    // MP states.
    public const uint KVM_MP_STATE_RUNNABLE = 0;
    public const uint KVM_MP_STATE_UNINITIALIZED = 1;
    public const uint KVM_MP_STATE_INIT_RECEIVED = 2;
    public const uint KVM_MP_STATE_HALTED = 3;
    public const uint KVM_MP_STATE_SIPI_RECEIVED = 4;
}
