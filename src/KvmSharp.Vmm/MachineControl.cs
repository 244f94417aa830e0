using KvmSharp.Devices.Bus;

namespace KvmSharp.Vmm;

/// <summary>
/// How devices end the machine: the debug-exit port with a status, the i8042 reset line, the power button.
/// A request is taken on the vCPU thread that made the access; the I/O dispatcher's stop flag then makes
/// every vCPU return, and <see cref="Machine"/> reports the first request's reason and status.
/// </summary>
public sealed class MachineControl
{
    private readonly IoDispatcher _io;
    private readonly Lock _lock = new();

    public MachineControl(IoDispatcher io)
    {
        ArgumentNullException.ThrowIfNull(io);
        _io = io;
    }

    public MachineExitReason? RequestedReason { get; private set; }

    /// <summary>The status the guest asked the VMM to exit with (debug-exit), if any.</summary>
    public int? RequestedExitCode { get; private set; }

    public void RequestExit(MachineExitReason reason, int? exitCode = null)
    {
        lock (_lock)
        {
            if (RequestedReason is null)
            {
                RequestedReason = reason;
                RequestedExitCode = exitCode;
            }
        }

        _io.RequestStop();
    }
}
