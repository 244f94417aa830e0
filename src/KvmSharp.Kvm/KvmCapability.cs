namespace KvmSharp.Kvm;

/// <summary>KVM_CAP_* numbers from linux/kvm.h that KvmSharp asks about.</summary>
public enum KvmCapability
{
    Irqchip = 0,
    Hlt = 1,
    UserMemory = 3,
    SetTssAddr = 4,
    ExtCpuid = 7,
    NrVcpus = 9,
    NrMemslots = 10,
    MpState = 14,
    CoalescedMmio = 15,
    SyncMmu = 16,
    UserNmi = 22,
    SetGuestDebug = 23,
    IrqRouting = 25,
    Irqfd = 32,
    Pit2 = 33,
    Ioeventfd = 36,
    SetIdentityMapAddr = 37,
    AdjustClock = 39,
    VcpuEvents = 41,
    Debugregs = 50,
    Xsave = 55,
    Xcrs = 56,
    TscControl = 60,
    GetTscKhz = 61,
    MaxVcpus = 66,
    TscDeadlineTimer = 72,
    KvmclockCtrl = 76,
    SignalMsi = 77,
    ReadonlyMem = 81,
    SplitIrqchip = 121,
    ImmediateExit = 136,
    CoalescedPio = 162,
    ManualDirtyLogProtect2 = 168,
    DirtyLogRing = 192,
    BinaryStatsFd = 203,
    Xsave2 = 208,
}

/// <summary>Whether KvmSharp cannot run without a capability, or uses it when present.</summary>
public enum CapabilityNeed
{
    Required,
    Optional,
}

/// <summary>A capability, why KvmSharp uses it and how much it needs it.</summary>
public sealed record CapabilityUse(KvmCapability Capability, string Name, CapabilityNeed Need, string Purpose);

public static class KvmCapabilities
{
    /// <summary>What the VMM relies on, in the order <c>kvmsharp caps</c> reports it.</summary>
    public static IReadOnlyList<CapabilityUse> UsedByVmm { get; } =
    [
        new(KvmCapability.UserMemory, "KVM_CAP_USER_MEMORY", CapabilityNeed.Required, "guest RAM in user memory slots"),
        new(KvmCapability.ImmediateExit, "KVM_CAP_IMMEDIATE_EXIT", CapabilityNeed.Required, "kicking vCPUs out of KVM_RUN"),
        new(KvmCapability.ExtCpuid, "KVM_CAP_EXT_CPUID", CapabilityNeed.Required, "KVM_GET_SUPPORTED_CPUID / KVM_SET_CPUID2"),
        new(KvmCapability.NrVcpus, "KVM_CAP_NR_VCPUS", CapabilityNeed.Optional, "recommended vCPU count"),
        new(KvmCapability.MaxVcpus, "KVM_CAP_MAX_VCPUS", CapabilityNeed.Optional, "maximum vCPU count"),
        new(KvmCapability.NrMemslots, "KVM_CAP_NR_MEMSLOTS", CapabilityNeed.Optional, "memory slots per VM"),
        new(KvmCapability.Irqchip, "KVM_CAP_IRQCHIP", CapabilityNeed.Optional, "in-kernel PIC, IOAPIC and LAPIC"),
        new(KvmCapability.Pit2, "KVM_CAP_PIT2", CapabilityNeed.Optional, "in-kernel i8254 timer"),
        new(KvmCapability.IrqRouting, "KVM_CAP_IRQ_ROUTING", CapabilityNeed.Optional, "GSI routing for MSI"),
        new(KvmCapability.SignalMsi, "KVM_CAP_SIGNAL_MSI", CapabilityNeed.Optional, "KVM_SIGNAL_MSI"),
        new(KvmCapability.Irqfd, "KVM_CAP_IRQFD", CapabilityNeed.Optional, "interrupts from eventfds"),
        new(KvmCapability.Ioeventfd, "KVM_CAP_IOEVENTFD", CapabilityNeed.Optional, "doorbell writes to eventfds"),
        new(KvmCapability.SetTssAddr, "KVM_CAP_SET_TSS_ADDR", CapabilityNeed.Optional, "real-mode TSS on VT-x"),
        new(KvmCapability.SetIdentityMapAddr, "KVM_CAP_SET_IDENTITY_MAP_ADDR", CapabilityNeed.Optional, "EPT identity map on VT-x"),
        new(KvmCapability.SetGuestDebug, "KVM_CAP_SET_GUEST_DEBUG", CapabilityNeed.Optional, "single-step and breakpoints"),
        new(KvmCapability.VcpuEvents, "KVM_CAP_VCPU_EVENTS", CapabilityNeed.Optional, "pending event state for snapshots"),
        new(KvmCapability.MpState, "KVM_CAP_MP_STATE", CapabilityNeed.Optional, "vCPU run state for SMP and snapshots"),
        new(KvmCapability.Xsave, "KVM_CAP_XSAVE", CapabilityNeed.Optional, "extended FPU state"),
        new(KvmCapability.Xcrs, "KVM_CAP_XCRS", CapabilityNeed.Optional, "XCR0"),
        new(KvmCapability.Debugregs, "KVM_CAP_DEBUGREGS", CapabilityNeed.Optional, "debug register state"),
        new(KvmCapability.TscDeadlineTimer, "KVM_CAP_TSC_DEADLINE_TIMER", CapabilityNeed.Optional, "LAPIC TSC-deadline mode"),
        new(KvmCapability.AdjustClock, "KVM_CAP_ADJUST_CLOCK", CapabilityNeed.Optional, "kvmclock save/restore"),
        new(KvmCapability.KvmclockCtrl, "KVM_CAP_KVMCLOCK_CTRL", CapabilityNeed.Optional, "telling the guest it was paused"),
        new(KvmCapability.ManualDirtyLogProtect2, "KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2", CapabilityNeed.Optional, "KVM_CLEAR_DIRTY_LOG"),
        new(KvmCapability.DirtyLogRing, "KVM_CAP_DIRTY_LOG_RING", CapabilityNeed.Optional, "dirty ring for migration"),
        new(KvmCapability.ReadonlyMem, "KVM_CAP_READONLY_MEM", CapabilityNeed.Optional, "read-only slots (ROM, flash)"),
        new(KvmCapability.CoalescedMmio, "KVM_CAP_COALESCED_MMIO", CapabilityNeed.Optional, "batched MMIO writes"),
        new(KvmCapability.SplitIrqchip, "KVM_CAP_SPLIT_IRQCHIP", CapabilityNeed.Optional, "userspace IOAPIC/PIC"),
        new(KvmCapability.BinaryStatsFd, "KVM_CAP_BINARY_STATS_FD", CapabilityNeed.Optional, "kernel statistics"),
    ];
}
