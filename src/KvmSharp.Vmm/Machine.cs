using KvmSharp.Devices.Bus;
using KvmSharp.Hypervisor;
using KvmSharp.Memory;

namespace KvmSharp.Vmm;

/// <summary>
/// A running virtual machine: guest memory, one host thread per vCPU (named vcpu0, vcpu1, ...), and the
/// device buses its vCPUs hand I/O to. <see cref="Run"/> starts the threads and returns when the machine
/// stops; <see cref="Stop"/> may be called from any thread.
/// </summary>
public sealed class Machine : IDisposable
{
    private readonly IVirtualMachine _vm;
    private readonly GuestMemory _memory;
    private readonly IReadOnlyList<IVcpu> _vcpus;
    private readonly IoDispatcher _io;
    private readonly MachineControl? _control;
    private readonly VcpuStop?[] _lastStops;
    private readonly Lock _stateLock = new();
    private readonly ManualResetEventSlim _finished = new();
    private MachineExitReason? _exitReason;
    private Exception? _error;
    private int _runningVcpus;
    private bool _started;
    private bool _disposed;

    public Machine(IVirtualMachine vm, GuestMemory memory, IReadOnlyList<IVcpu> vcpus, IoDispatcher io, MachineControl? control = null)
    {
        ArgumentNullException.ThrowIfNull(vm);
        ArgumentNullException.ThrowIfNull(memory);
        ArgumentNullException.ThrowIfNull(vcpus);
        ArgumentNullException.ThrowIfNull(io);
        if (vcpus.Count == 0)
        {
            throw new ArgumentException("A machine needs at least one vCPU.", nameof(vcpus));
        }

        _vm = vm;
        _memory = memory;
        _vcpus = vcpus;
        _io = io;
        _control = control;
        _lastStops = new VcpuStop?[vcpus.Count];
    }

    public IVirtualMachine VirtualMachine => _vm;

    public GuestMemory Memory => _memory;

    public IReadOnlyList<IVcpu> Vcpus => _vcpus;

    public IoDispatcher Io => _io;

    /// <summary>Runs every vCPU on its own thread until the machine stops.</summary>
    public MachineExit Run()
    {
        lock (_stateLock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_started)
            {
                throw new InvalidOperationException("A machine runs once.");
            }

            _started = true;
            _runningVcpus = _vcpus.Count;
        }

        var threads = new Thread[_vcpus.Count];
        for (int i = 0; i < threads.Length; i++)
        {
            var vcpu = _vcpus[i];
            threads[i] = new Thread(() => VcpuLoop(vcpu))
            {
                Name = $"vcpu{vcpu.Index}",
                IsBackground = true,
            };
        }

        foreach (var t in threads)
        {
            t.Start();
        }

        _finished.Wait();
        foreach (var t in threads)
        {
            t.Join();
        }

        lock (_stateLock)
        {
            return new MachineExit(_exitReason ?? MachineExitReason.AllVcpusHalted, [.. _lastStops], _error)
            {
                GuestExitCode = _exitReason == _control?.RequestedReason ? _control?.RequestedExitCode : null,
            };
        }
    }

    /// <summary>Asks every vCPU to stop; <see cref="Run"/> then returns <see cref="MachineExitReason.StopRequested"/>.</summary>
    public void Stop() => Finish(MachineExitReason.StopRequested, null);

    public void Dispose()
    {
        lock (_stateLock)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
        }

        // vCPU threads have ended (Run joins them), so nothing touches guest memory past this point:
        // vCPUs first, then the VM, then the memory it mapped.
        foreach (var vcpu in _vcpus)
        {
            vcpu.Dispose();
        }

        _vm.Dispose();
        _memory.Dispose();
        _finished.Dispose();
    }

    private void VcpuLoop(IVcpu vcpu)
    {
        try
        {
            while (true)
            {
                var stop = vcpu.Run(_io);
                _lastStops[vcpu.Index] = stop;
                var reason = Classify(stop);
                if (reason is null)
                {
                    continue;
                }

                if (reason == MachineExitReason.AllVcpusHalted)
                {
                    // This vCPU is done; the machine ends when the last one is.
                    break;
                }

                Finish(reason.Value, null);
                break;
            }
        }
        catch (Exception e)
        {
            Finish(MachineExitReason.VmmError, e);
        }
        finally
        {
            if (Interlocked.Decrement(ref _runningVcpus) == 0)
            {
                Finish(MachineExitReason.AllVcpusHalted, null);
            }
        }
    }

    /// <summary>What a vCPU stop means for the machine: null to keep running this vCPU.</summary>
    private MachineExitReason? Classify(VcpuStop stop)
    {
        switch (stop.Reason)
        {
            case VcpuStopReason.Kicked:
                // A kick without a machine-level stop (e.g. a pause later) resumes the vCPU.
                lock (_stateLock)
                {
                    return _exitReason is null ? null : _exitReason;
                }

            case VcpuStopReason.Halted:
                return MachineExitReason.AllVcpusHalted;
            case VcpuStopReason.IoRequestedStop:
                return _control?.RequestedReason ?? MachineExitReason.DeviceRequestedStop;
            case VcpuStopReason.PowerOff:
                return MachineExitReason.PowerOff;
            case VcpuStopReason.Reset:
                return MachineExitReason.Reset;
            case VcpuStopReason.Shutdown:
                return MachineExitReason.Shutdown;
            case VcpuStopReason.Debug:
                return MachineExitReason.Debug;
            default:
                return MachineExitReason.BackendError;
        }
    }

    /// <summary>Records the first reason the machine stops for and kicks every vCPU out of the guest.</summary>
    private void Finish(MachineExitReason reason, Exception? error)
    {
        lock (_stateLock)
        {
            if (_exitReason is not null)
            {
                return;
            }

            _exitReason = reason;
            _error = error;
        }

        foreach (var vcpu in _vcpus)
        {
            vcpu.Kick();
        }

        _finished.Set();
    }
}
