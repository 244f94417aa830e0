using KvmSharp.Hypervisor;
using KvmSharp.Vmm.Config;

namespace KvmSharp.Vmm.Control;

/// <summary>
/// What the control API drives: the one machine of this process (Firecracker's model: one VMM process, one VM). A
/// machine is started from a configuration or loaded from a snapshot, once. Every member is called from API threads,
/// never from a vCPU thread. User errors (a missing kernel, a bad disk, a snapshot of another format) are thrown as the
/// exceptions <c>kvmsharp run</c> turns into one line: <see cref="VmConfigException"/>, <c>BootImageException</c>,
/// <c>BlockImageException</c>, <c>NetworkBackendException</c>, <c>KvmException</c>,
/// <see cref="Hypervisor.Snapshots.SnapshotStateException"/>; a request the machine's state forbids throws
/// <see cref="InvalidOperationException"/> with a message for the user.
/// </summary>
public interface IVmHost : IDisposable
{
    /// <summary>The running machine, once <see cref="Start"/> or <see cref="LoadSnapshot"/> made one.</summary>
    IRunningVm? Current { get; }

    /// <summary>Builds the machine of <paramref name="config"/> and starts its vCPUs; returns once they run.</summary>
    IRunningVm Start(VmConfig config);

    /// <summary>
    /// Restores a snapshot into this process (which must not have started a machine): guest memory mapped privately
    /// from <paramref name="memoryPath"/>, every vCPU and device as saved. The machine is paused unless
    /// <paramref name="resume"/>.
    /// </summary>
    IRunningVm LoadSnapshot(string statePath, string memoryPath, bool resume);
}

/// <summary>A machine that has been started (or restored): running, paused, or ended.</summary>
public interface IRunningVm
{
    /// <summary>The machine's description (for a restored machine, the one saved in the snapshot).</summary>
    VmConfig Config { get; }

    /// <summary>"kvm" or "emulator".</summary>
    string Accelerator { get; }

    VmRunState State { get; }

    /// <summary>How the machine ended, once <see cref="State"/> is <see cref="VmRunState.Exited"/>.</summary>
    MachineExit? Exit { get; }

    /// <summary>Completes when the machine has ended (guest power-off, reset, a VMM error, <see cref="Stop"/>).</summary>
    Task<MachineExit> Completion { get; }

    /// <summary>Parks every vCPU and quiesces the devices (in-flight block requests completed); returns once done.</summary>
    void Pause();

    void Resume();

    /// <summary>Ctrl-Alt-Del on the i8042 keyboard, as Firecracker's SendCtrlAltDel: the guest reboots (and so ends).</summary>
    void SendCtrlAltDel();

    /// <summary>Ends the machine (vCPUs stopped); <see cref="Completion"/> then completes.</summary>
    void Stop();

    /// <summary>
    /// Writes the paused machine's state to <paramref name="statePath"/> and its memory to <paramref name="memoryPath"/>;
    /// <paramref name="progress"/> hears bytes of memory written so far.
    /// </summary>
    SnapshotResult CreateSnapshot(string statePath, string memoryPath, IProgress<long>? progress = null);

    /// <summary>Each vCPU's exit counters by kind (index = vCPU).</summary>
    IReadOnlyList<ExitStatistics> VcpuStatistics { get; }

    /// <summary>Each device's counters: device id (<c>virtio-blk0</c>, <c>virtio-net0</c>, ...) to counter name to value.</summary>
    IReadOnlyDictionary<string, IReadOnlyDictionary<string, long>> DeviceCounters();
}

public enum VmRunState
{
    Running,
    Paused,
    Exited,
}

/// <summary>What a snapshot took: bytes of state and memory, and how long each part took.</summary>
public sealed record SnapshotResult(long StateBytes, long MemoryBytes, TimeSpan PauseToStateWritten, TimeSpan MemoryWritten);
