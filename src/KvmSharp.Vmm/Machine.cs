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

    // Pause: guarded by _pauseLock. A vCPU thread that sees _pauseRequested after a kick parks until it is cleared,
    // running whatever work RunOnVcpu queued for it meanwhile (vCPU state is read and written on the vCPU's own thread).
    private readonly object _pauseLock = new();
    private readonly Queue<VcpuWork>[] _work;
    private bool _pauseRequested;
    private int _parkedVcpus;
    private int _endedVcpus;

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
        _work = new Queue<VcpuWork>[vcpus.Count];
        for (int i = 0; i < _work.Length; i++)
        {
            _work[i] = new Queue<VcpuWork>();
        }
    }

    /// <summary>Called on each vCPU's thread once it has parked for a pause (KVM: KVMCLOCK_CTRL).</summary>
    public Action<IVcpu>? OnVcpuParked { get; set; }

    /// <summary>True from <see cref="Pause"/> (or <see cref="StartPaused"/>) until <see cref="Resume"/>.</summary>
    public bool IsPaused
    {
        get
        {
            lock (_pauseLock)
            {
                return _pauseRequested;
            }
        }
    }

    /// <summary>Before <see cref="Run"/>: every vCPU parks before it first enters the guest, until <see cref="Resume"/>.</summary>
    public void StartPaused()
    {
        lock (_pauseLock)
        {
            _pauseRequested = true;
        }
    }

    /// <summary>
    /// Parks every vCPU outside the guest and returns once all have parked (or ended). Idempotent. Throws
    /// <see cref="InvalidOperationException"/> if the machine has ended. Devices are not touched here: the owner quiesces
    /// them after this returns.
    /// </summary>
    public void Pause()
    {
        lock (_pauseLock)
        {
            ThrowIfEnded();
            _pauseRequested = true;
        }

        foreach (var vcpu in _vcpus)
        {
            vcpu.Kick();
        }

        lock (_pauseLock)
        {
            while (_started && _parkedVcpus + _endedVcpus < _vcpus.Count && !HasEnded)
            {
                Monitor.Wait(_pauseLock, TimeSpan.FromMilliseconds(100));
            }

            ThrowIfEnded();
        }
    }

    /// <summary>Lets every parked vCPU back into the guest.</summary>
    public void Resume()
    {
        lock (_pauseLock)
        {
            _pauseRequested = false;
            Monitor.PulseAll(_pauseLock);
        }
    }

    /// <summary>
    /// Runs <paramref name="work"/> on vCPU <paramref name="index"/>'s own thread while the machine is paused (KVM wants a
    /// vCPU's ioctls from the thread that runs it) and returns its result; its exception is rethrown here.
    /// </summary>
    public T RunOnVcpu<T>(int index, Func<IVcpu, T> work)
    {
        ArgumentNullException.ThrowIfNull(work);
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, _vcpus.Count);
        T result = default!;
        var item = new VcpuWork(vcpu => result = work(vcpu));
        lock (_pauseLock)
        {
            if (!_pauseRequested)
            {
                throw new InvalidOperationException("The machine must be paused to reach a vCPU's state.");
            }

            if (!_started || HasEnded)
            {
                // No thread runs this vCPU: nothing else touches it, so the caller's thread may.
                return work(_vcpus[index]);
            }

            _work[index].Enqueue(item);
            Monitor.PulseAll(_pauseLock);
            while (!item.Done)
            {
                if (HasEnded)
                {
                    throw new InvalidOperationException("The machine ended before its vCPU state could be reached.");
                }

                Monitor.Wait(_pauseLock, TimeSpan.FromMilliseconds(100));
            }
        }

        if (item.Error is { } error)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(error);
        }

        return result;
    }

    private bool HasEnded
    {
        get
        {
            lock (_stateLock)
            {
                return _exitReason is not null;
            }
        }
    }

    private void ThrowIfEnded()
    {
        if (HasEnded)
        {
            throw new InvalidOperationException("The machine has ended.");
        }
    }

    /// <summary>Parks this vCPU's thread while a pause lasts, running the work queued for it.</summary>
    private void ParkWhilePaused(IVcpu vcpu)
    {
        lock (_pauseLock)
        {
            if (!_pauseRequested)
            {
                return;
            }
        }

        // Before counting as parked, so Pause returns only once every vCPU has done it.
        OnVcpuParked?.Invoke(vcpu);
        lock (_pauseLock)
        {
            _parkedVcpus++;
            Monitor.PulseAll(_pauseLock);
        }

        try
        {
            while (true)
            {
                VcpuWork item;
                lock (_pauseLock)
                {
                    while (_work[vcpu.Index].Count == 0)
                    {
                        if (!_pauseRequested || HasEnded)
                        {
                            return;
                        }

                        Monitor.Wait(_pauseLock);
                    }

                    item = _work[vcpu.Index].Dequeue();
                }

                try
                {
                    item.Run(vcpu);
                }
                catch (Exception e)
                {
                    item.Error = e;
                }

                lock (_pauseLock)
                {
                    item.Done = true;
                    Monitor.PulseAll(_pauseLock);
                }
            }
        }
        finally
        {
            lock (_pauseLock)
            {
                _parkedVcpus--;
            }
        }
    }

    private sealed class VcpuWork(Action<IVcpu> run)
    {
        public Action<IVcpu> Run { get; } = run;

        public bool Done { get; set; }

        public Exception? Error { get; set; }
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
            ParkWhilePaused(vcpu);
            while (true)
            {
                var stop = vcpu.Run(_io);
                _lastStops[vcpu.Index] = stop;
                var reason = Classify(vcpu, stop);
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
            lock (_pauseLock)
            {
                _endedVcpus++;
                Monitor.PulseAll(_pauseLock);
            }

            if (Interlocked.Decrement(ref _runningVcpus) == 0)
            {
                Finish(MachineExitReason.AllVcpusHalted, null);
            }
        }
    }

    /// <summary>What a vCPU stop means for the machine: null to keep running this vCPU.</summary>
    private MachineExitReason? Classify(IVcpu vcpu, VcpuStop stop)
    {
        switch (stop.Reason)
        {
            case VcpuStopReason.Kicked:
                // A kick without a machine-level stop is a pause (parked until resumed) or a stray one: either way the
                // vCPU runs on.
                lock (_stateLock)
                {
                    if (_exitReason is not null)
                    {
                        return _exitReason;
                    }
                }

                ParkWhilePaused(vcpu);
                lock (_stateLock)
                {
                    return _exitReason;
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

        lock (_pauseLock)
        {
            Monitor.PulseAll(_pauseLock);
        }

        _finished.Set();
    }
}
