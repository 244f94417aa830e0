using KvmSharp.Hypervisor;
using KvmSharp.Kvm;
using KvmSharp.Native;
using KvmSharp.Vmm.Config;
using KvmSharp.Vmm.Console;
using KvmSharp.Vmm.Pc;

namespace KvmSharp.Vmm.Control;

/// <summary>How <see cref="PcVmHost"/> runs its machine: the backend, and where the guest's console goes.</summary>
public sealed record PcVmHostOptions
{
    /// <summary>Replaces the configuration's accelerator when set (<c>kvmsharp serve --accel</c>).</summary>
    public Accelerator? Accelerator { get; init; }

    public string KvmDevicePath { get; init; } = "/dev/kvm";

    /// <summary>The guest's serial output (Firecracker: the VMM's stdout).</summary>
    public required Stream ConsoleOutput { get; init; }

    /// <summary>A host descriptor whose bytes go to the guest's console (stdin, 0), or null for no input.</summary>
    public int? ConsoleInputFd { get; init; }

    /// <summary>Where the host's one-line reports go ("using the software CPU: ...").</summary>
    public Action<string> Report { get; init; } = _ => { };

    public TimeProvider Time { get; init; } = TimeProvider.System;

    /// <summary>
    /// Given a snapshot's memory size in bytes, what hears its progress when the caller of CreateSnapshot passed nothing
    /// (<c>kvmsharp serve</c> draws a progress bar on a terminal for a large memory), or null.
    /// </summary>
    public Func<long, IProgress<long>?>? SnapshotProgress { get; init; }
}

/// <summary>
/// The <see cref="IVmHost"/> of <c>kvmsharp serve</c> and <c>kvmsharp run --api-sock</c>: one PC machine per process,
/// built as <c>kvmsharp run</c> builds it (<see cref="PcMachineBuilder"/>), its vCPUs on their own threads, driven
/// from API threads.
/// </summary>
public sealed class PcVmHost : IVmHost
{
    private readonly PcVmHostOptions _options;
    private readonly Lock _lock = new();
    private PcRunningVm? _current;
    private bool _used;
    private bool _disposed;

    public PcVmHost(PcVmHostOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options;
    }

    public IRunningVm? Current
    {
        get
        {
            lock (_lock)
            {
                return _current;
            }
        }
    }

    /// <summary>
    /// Wraps a machine built elsewhere (<c>kvmsharp run --api-sock</c>): the API then drives it; the caller runs it
    /// (<see cref="PcRunningVm.RunHere"/>) and keeps ownership of <paramref name="system"/>.
    /// </summary>
    public PcRunningVm Attach(PcMachine pc)
    {
        ArgumentNullException.ThrowIfNull(pc);
        lock (_lock)
        {
            TakeTheOneMachine();
            _current = new PcRunningVm(pc, system: null, console: null, _options.SnapshotProgress);
            return _current;
        }
    }

    public IRunningVm Start(VmConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        lock (_lock)
        {
            TakeTheOneMachine();
            config = Effective(config);
            VmConfigValidator.Validate(config, VmConfigValidator.HostMemoryBytes());
            var files = PcMachineBuilder.ReadBootFiles(config, _options.Time);
            var vm = Launch(config, system => system is null
                ? PcMachineBuilder.BuildOnEmulator(config, files, _options.ConsoleOutput, _options.Time)
                : PcMachineBuilder.Build(system, config, files, _options.ConsoleOutput, _options.Time), paused: false);
            _current = vm;
            return vm;
        }
    }

    public IRunningVm LoadSnapshot(string statePath, string memoryPath, bool resume)
    {
        ArgumentNullException.ThrowIfNull(statePath);
        ArgumentNullException.ThrowIfNull(memoryPath);
        lock (_lock)
        {
            TakeTheOneMachine();
            var snapshot = PcSnapshot.ReadState(statePath);
            var config = Effective(snapshot.Config);
            var vm = Launch(config, system => PcSnapshot.Restore(snapshot, system, memoryPath, _options.ConsoleOutput, _options.Time, quiesced: !resume), paused: !resume);
            _current = vm;
            return vm;
        }
    }

    public void Dispose()
    {
        PcRunningVm? vm;
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            vm = _current;
        }

        vm?.Dispose();
    }

    private VmConfig Effective(VmConfig config) =>
        config with
        {
            Accelerator = _options.Accelerator ?? config.Accelerator,
            KvmDevicePath = _options.KvmDevicePath,
        };

    private void TakeTheOneMachine()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_used)
        {
            throw new InvalidOperationException(_current is null
                ? "This KvmSharp process already tried to start a machine; start a new process."
                : "This KvmSharp process already runs a machine; one process runs one machine.");
        }

        _used = true;
    }

    private PcRunningVm Launch(VmConfig config, Func<KvmSystem?, PcMachine> build, bool paused)
    {
        var system = AcceleratorSelector.Open(config.Accelerator, config.KvmDevicePath, _options.Report);
        try
        {
            if (system is not null)
            {
                int maxVcpus = Math.Max(system.CheckExtension(KvmCapability.MaxVcpus), system.CheckExtension(KvmCapability.NrVcpus));
                if (maxVcpus > 0 && config.Cpus > maxVcpus)
                {
                    throw new VmConfigException($"{config.Cpus} vCPUs is more than this host's KVM allows ({maxVcpus} vCPUs per VM).");
                }
            }

            var pc = build(system);
            ConsoleInputPump? pump = null;
            if (_options.ConsoleInputFd is int fd)
            {
                var virtioConsole = pc.Virtio.Console;
                pump = new ConsoleInputPump(
                    fd,
                    interactive: false,
                    bytes => virtioConsole is null ? pc.Serial.Enqueue(bytes.Span) : virtioConsole.Enqueue(bytes.Span),
                    pc.Machine.Stop,
                    _options.Report);
            }

            var vm = new PcRunningVm(pc, system, pump, _options.SnapshotProgress);
            vm.StartThread(paused);
            return vm;
        }
        catch
        {
            system?.Dispose();
            throw;
        }
    }
}

/// <summary>One PC machine under the control API: its run thread, pause state, snapshots and counters.</summary>
public sealed class PcRunningVm : IRunningVm, IDisposable
{
    private readonly PcMachine _pc;
    private readonly KvmSystem? _system;
    private readonly ConsoleInputPump? _console;
    private readonly Func<long, IProgress<long>?>? _snapshotProgress;
    private readonly TaskCompletionSource<MachineExit> _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Lock _controlLock = new();
    private Thread? _thread;
    private bool _devicesQuiesced;
    private bool _disposed;

    internal PcRunningVm(PcMachine pc, KvmSystem? system, ConsoleInputPump? console, Func<long, IProgress<long>?>? snapshotProgress)
    {
        _snapshotProgress = snapshotProgress;
        _pc = pc;
        _system = system;
        _console = console;
        if (pc.Machine.VirtualMachine is KvmVm)
        {
            // Tell a kvmclock guest it was stopped (its soft-lockup watchdog then ignores the gap), on the vCPU's thread.
            pc.Machine.OnVcpuParked = static vcpu => ((KvmVcpu)vcpu).NotifyPaused();
        }
    }

    public PcMachine Machine => _pc;

    public VmConfig Config => _pc.Config;

    public string Accelerator => _pc.AcceleratorDescription;

    public VmRunState State => _completion.Task.IsCompleted ? VmRunState.Exited : _pc.Machine.IsPaused ? VmRunState.Paused : VmRunState.Running;

    public MachineExit? Exit => _completion.Task.IsCompletedSuccessfully ? _completion.Task.Result : null;

    public Task<MachineExit> Completion => _completion.Task;

    public IReadOnlyList<ExitStatistics> VcpuStatistics => [.. _pc.Machine.Vcpus.Select(v => v.Statistics)];

    /// <summary>Runs the machine on the calling thread until it ends (<c>kvmsharp run --api-sock</c>).</summary>
    public MachineExit RunHere()
    {
        try
        {
            var exit = _pc.Machine.Run();
            _completion.TrySetResult(exit);
            return exit;
        }
        catch (Exception e)
        {
            _completion.TrySetException(e);
            throw;
        }
    }

    public void Pause()
    {
        lock (_controlLock)
        {
            ThrowIfExited();
            if (_devicesQuiesced)
            {
                return;
            }

            _pc.Machine.Pause();
            _pc.Virtio.Quiesce();
            _devicesQuiesced = true;
        }
    }

    public void Resume()
    {
        lock (_controlLock)
        {
            ThrowIfExited();
            if (_devicesQuiesced)
            {
                _pc.Virtio.Unquiesce();
                _devicesQuiesced = false;
            }

            _pc.Machine.Resume();
        }
    }

    public void SendCtrlAltDel()
    {
        lock (_controlLock)
        {
            ThrowIfExited();
            _pc.Legacy.I8042.SendCtrlAltDel();
        }
    }

    public void Stop() => _pc.Machine.Stop();

    public SnapshotResult CreateSnapshot(string statePath, string memoryPath, IProgress<long>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(statePath);
        ArgumentNullException.ThrowIfNull(memoryPath);
        lock (_controlLock)
        {
            ThrowIfExited();
            if (!_devicesQuiesced)
            {
                throw new InvalidOperationException("Cannot create a snapshot of a running microVM: pause it first (PATCH /vm {\"state\": \"Paused\"}).");
            }

            progress ??= _snapshotProgress?.Invoke((long)_pc.Machine.Memory.TotalSize);
            try
            {
                return PcSnapshot.Create(_pc, statePath, memoryPath, progress);
            }
            finally
            {
                (progress as IDisposable)?.Dispose();
            }
        }
    }

    public IReadOnlyDictionary<string, IReadOnlyDictionary<string, long>> DeviceCounters() => _pc.Virtio.DeviceCounters();

    public void Dispose()
    {
        lock (_controlLock)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
        }

        _pc.Machine.Stop();
        if (_devicesQuiesced)
        {
            _pc.Virtio.Unquiesce();
        }

        _thread?.Join();
        _console?.Dispose();
        if (_thread is not null)
        {
            _pc.Dispose();
            _system?.Dispose();
        }
    }

    internal void StartThread(bool paused)
    {
        if (paused)
        {
            _pc.Machine.StartPaused();
            _pc.Virtio.Quiesce();
            _devicesQuiesced = true;
        }

        _thread = new Thread(() =>
        {
            try
            {
                _completion.TrySetResult(_pc.Machine.Run());
            }
            catch (Exception e)
            {
                _completion.TrySetException(e);
            }
        })
        {
            Name = "vm-run",
            IsBackground = true,
        };
        _thread.Start();
        _console?.Start();
    }

    private void ThrowIfExited()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_completion.Task.IsCompleted)
        {
            throw new InvalidOperationException("The microVM has ended.");
        }
    }
}
