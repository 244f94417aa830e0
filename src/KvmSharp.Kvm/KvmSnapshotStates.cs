namespace KvmSharp.Kvm;

/// <summary>One MSR's index and value (a kvm_msr_entry).</summary>
public sealed record KvmMsrState(uint Index, ulong Value);

/// <summary>One extended control register (a kvm_xcr): XCR0 is index 0.</summary>
public sealed record KvmXcrState(uint Index, ulong Value);

/// <summary>
/// The saved state of one KVM vCPU (<see cref="KvmVcpu.SaveState"/>). The kernel structures are kept as their bytes,
/// in the kernel's layout: <see cref="Regs"/> is kvm_regs (144 bytes), <see cref="Sregs"/> kvm_sregs (312),
/// <see cref="Xsave"/> the XSAVE area of KVM_GET_XSAVE2 (or KVM_GET_XSAVE: 4096 bytes or more), <see cref="Events"/>
/// kvm_vcpu_events (64), <see cref="Lapic"/> kvm_lapic_state (1024; null without the in-kernel irqchip).
/// <see cref="Msrs"/> holds every MSR KVM_GET_MSRS answered among KVM_GET_MSR_INDEX_LIST's, IA32_TSC and the kvmclock
/// MSRs; <see cref="DebugAddresses"/> is DR0-DR3; <see cref="MpState"/> a KVM_MP_STATE_* value;
/// <see cref="TscKhz"/> the vCPU's TSC frequency (0 when KVM cannot report it).
/// </summary>
public sealed record KvmVcpuState(
    int Index,
    byte[] Regs,
    byte[] Sregs,
    byte[] Xsave,
    KvmXcrState[] Xcrs,
    KvmMsrState[] Msrs,
    uint MpState,
    byte[]? Lapic,
    byte[] Events,
    ulong[] DebugAddresses,
    ulong Dr6,
    ulong Dr7,
    uint TscKhz);

/// <summary>
/// The saved state of a KVM VM's in-kernel devices (<see cref="KvmVm.SaveState"/>): the 512-byte chip unions of
/// KVM_GET_IRQCHIP for the master PIC, the slave PIC and the IOAPIC (null without the irqchip), the 112-byte
/// kvm_pit_state2 of KVM_GET_PIT2 (null without the PIT), and the kvmclock value in nanoseconds (KVM_GET_CLOCK),
/// from which the guest's clock goes on after a restore.
/// </summary>
public sealed record KvmVmState(
    byte[]? PicMaster,
    byte[]? PicSlave,
    byte[]? IoApic,
    byte[]? Pit,
    ulong Clock);
