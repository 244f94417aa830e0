namespace KvmSharp.Hypervisor;

/// <summary>Why <see cref="IVcpu.Run"/> returned.</summary>
public enum VcpuStopReason
{
    /// <summary>The guest executed HLT and no in-kernel APIC will wake it.</summary>
    Halted,

    /// <summary><see cref="IVcpu.Kick"/> was called (pause, stop, snapshot).</summary>
    Kicked,

    /// <summary>Triple fault or an explicit shutdown: a PC resets or powers off here.</summary>
    Shutdown,

    /// <summary>The guest asked for a reset (PSCI/ACPI system event).</summary>
    Reset,

    /// <summary>The guest asked to power off (system event).</summary>
    PowerOff,

    /// <summary>A debug exit: single-step or breakpoint; see <see cref="VcpuStop.DebugPc"/>.</summary>
    Debug,

    /// <summary>The backend could not run the guest (KVM internal error, emulation failure); see the error fields.</summary>
    InternalError,

    /// <summary>The hardware refused to enter the guest (invalid state).</summary>
    FailEntry,

    /// <summary>A device asked the VM to stop (e.g. the debug-exit port) through the I/O handler.</summary>
    IoRequestedStop,
}

/// <summary>The reason a vCPU stopped running guest code, with the details for that reason.</summary>
public readonly record struct VcpuStop(VcpuStopReason Reason)
{
    /// <summary>For Debug: the guest RIP where it stopped.</summary>
    public ulong DebugPc { get; init; }

    /// <summary>For Debug: the exception vector (1 = #DB, 3 = #BP).</summary>
    public uint DebugException { get; init; }

    /// <summary>For Debug: DR6.</summary>
    public ulong DebugDr6 { get; init; }

    /// <summary>For InternalError: the backend's suberror (KVM_INTERNAL_ERROR_*); for FailEntry: the hardware reason.</summary>
    public ulong ErrorCode { get; init; }

    /// <summary>For InternalError/FailEntry: a human-readable description of the failure.</summary>
    public string? ErrorDetail { get; init; }

    public override string ToString() => Reason switch
    {
        VcpuStopReason.Debug => $"Debug(pc=0x{DebugPc:x}, exception={DebugException}, dr6=0x{DebugDr6:x})",
        VcpuStopReason.InternalError or VcpuStopReason.FailEntry => $"{Reason}(0x{ErrorCode:x}: {ErrorDetail})",
        _ => Reason.ToString(),
    };
}
