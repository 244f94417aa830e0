using KvmSharp.Hypervisor;

namespace KvmSharp.Vmm;

/// <summary>Why a whole machine stopped.</summary>
public enum MachineExitReason
{
    /// <summary>Every vCPU halted with nothing left to wake it.</summary>
    AllVcpusHalted,

    /// <summary>A device (debug-exit, for example) asked the machine to stop.</summary>
    DeviceRequestedStop,

    /// <summary><see cref="Machine.Stop"/> was called (Ctrl-C, the control API).</summary>
    StopRequested,

    /// <summary>The guest powered off.</summary>
    PowerOff,

    /// <summary>The guest asked for a reset.</summary>
    Reset,

    /// <summary>Triple fault or shutdown.</summary>
    Shutdown,

    /// <summary>A debug exit with no debugger attached.</summary>
    Debug,

    /// <summary>The backend could not run the guest.</summary>
    BackendError,

    /// <summary>The VMM itself failed on a vCPU thread (a bug or a host failure).</summary>
    VmmError,
}

/// <summary>The outcome of <see cref="Machine.Run"/>: the reason, each vCPU's last stop and any failure.</summary>
public sealed record MachineExit(MachineExitReason Reason, IReadOnlyList<VcpuStop?> VcpuStops, Exception? Error)
{
    /// <summary>The status a device reported for the guest (the debug-exit port's (value &lt;&lt; 1) | 1).</summary>
    public int? GuestExitCode { get; init; }

    /// <summary>A conventional process exit code for this outcome (documented in README.md).</summary>
    public int ProcessExitCode => GuestExitCode ?? Reason switch
    {
        MachineExitReason.AllVcpusHalted or MachineExitReason.PowerOff or MachineExitReason.StopRequested
            or MachineExitReason.DeviceRequestedStop or MachineExitReason.Reset => 0,
        MachineExitReason.Shutdown => 3,
        MachineExitReason.Debug => 4,
        MachineExitReason.BackendError => 5,
        _ => 6,
    };
}
