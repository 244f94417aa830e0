using KvmSharp.Hypervisor;
using KvmSharp.Vmm;
using KvmSharp.Vmm.Config;
using KvmSharp.Vmm.Control;

namespace KvmSharp.Api.Tests;

/// <summary>An <see cref="IVmHost"/> that records every call and runs no guest.</summary>
internal sealed class FakeVmHost : IVmHost
{
    private readonly Lock _lock = new();

    public List<string> Calls { get; } = [];

    public VmConfig? Started { get; private set; }

    public FakeRunningVm? Vm { get; private set; }

    /// <summary>Thrown by the next Start/LoadSnapshot, if set.</summary>
    public Exception? FailWith { get; set; }

    public IRunningVm? Current => Vm;

    public void Record(string call)
    {
        lock (_lock)
        {
            Calls.Add(call);
        }
    }

    public IRunningVm Start(VmConfig config)
    {
        Record("Start");
        if (FailWith is { } e)
        {
            throw e;
        }

        Started = config;
        Vm = new FakeRunningVm(this, config, VmRunState.Running);
        return Vm;
    }

    public IRunningVm LoadSnapshot(string statePath, string memoryPath, bool resume)
    {
        Record($"LoadSnapshot {statePath} {memoryPath} {resume}");
        if (FailWith is { } e)
        {
            throw e;
        }

        var config = new VmConfig { KernelPath = "/restored/vmlinux", Cpus = 2, MemoryBytes = 256UL << 20, Disks = [new DiskConfig("/restored/disk.img", false, "rootfs")] };
        Vm = new FakeRunningVm(this, config, resume ? VmRunState.Running : VmRunState.Paused);
        return Vm;
    }

    public void Dispose() => Record("Dispose");
}

internal sealed class FakeRunningVm(FakeVmHost host, VmConfig config, VmRunState state) : IRunningVm
{
    private readonly TaskCompletionSource<MachineExit> _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly ExitStatistics[] _stats = [new ExitStatistics(), new ExitStatistics()];

    public VmConfig Config { get; } = config;

    public string Accelerator => "emulator";

    public VmRunState State { get; private set; } = state;

    public MachineExit? Exit { get; private set; }

    public Task<MachineExit> Completion => _completion.Task;

    public IReadOnlyList<ExitStatistics> VcpuStatistics => _stats;

    /// <summary>Adds exits as a vCPU would.</summary>
    public void CountExits(int vcpu, ExitKind kind, int count)
    {
        for (int i = 0; i < count; i++)
        {
            _stats[vcpu].Increment(kind);
        }
    }

    public IReadOnlyDictionary<string, IReadOnlyDictionary<string, long>> DeviceCounters() =>
        new Dictionary<string, IReadOnlyDictionary<string, long>>
        {
            ["virtio-blk0"] = new Dictionary<string, long> { ["reads"] = 7, ["writes"] = 3 },
        };

    public void Pause()
    {
        host.Record("Pause");
        State = VmRunState.Paused;
    }

    public void Resume()
    {
        host.Record("Resume");
        State = VmRunState.Running;
    }

    public void SendCtrlAltDel()
    {
        host.Record("SendCtrlAltDel");
        End(MachineExitReason.Reset);
    }

    public void Stop()
    {
        host.Record("Stop");
        End(MachineExitReason.StopRequested);
    }

    public void End(MachineExitReason reason, int? guestExitCode = null)
    {
        State = VmRunState.Exited;
        Exit = new MachineExit(reason, [], null) { GuestExitCode = guestExitCode };
        _completion.TrySetResult(Exit);
    }

    public SnapshotResult CreateSnapshot(string statePath, string memoryPath, IProgress<long>? progress = null)
    {
        host.Record($"CreateSnapshot {statePath} {memoryPath}");
        if (State != VmRunState.Paused)
        {
            throw new InvalidOperationException("The machine is not paused.");
        }

        File.WriteAllText(statePath, "state");
        File.WriteAllText(memoryPath, "memory");
        return new SnapshotResult(5, 6, TimeSpan.FromMilliseconds(1), TimeSpan.FromMilliseconds(2));
    }
}
