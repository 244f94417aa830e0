namespace KvmSharp.Vmm.Config;

/// <summary>Which execution backend runs the guest.</summary>
public enum Accelerator
{
    /// <summary>KVM where it can run the guest, else the software CPU; the choice and the reason are reported.</summary>
    Auto,

    /// <summary>Linux KVM through /dev/kvm.</summary>
    Kvm,

    /// <summary>The software x86-64 CPU (src/KvmSharp.Emulator): no /dev/kvm needed.</summary>
    Emulator,
}

/// <summary>Where the guest's serial console goes.</summary>
public enum ConsoleKind
{
    /// <summary>The VMM's stdin/stdout; raw mode with Ctrl-A X to quit when stdin is a terminal.</summary>
    Stdio,

    /// <summary>Output appended to a file; no input.</summary>
    File,
}

/// <summary>A validated description of the machine to run (see <see cref="VmConfigValidator"/>).</summary>
public sealed record VmConfig
{
    public const ulong DefaultMemory = 512UL * 1024 * 1024;
    public const string DefaultCommandLine = "console=ttyS0 reboot=k panic=-1";

    public required string KernelPath { get; init; }

    public string? InitrdPath { get; init; }

    public string CommandLine { get; init; } = DefaultCommandLine;

    public ulong MemoryBytes { get; init; } = DefaultMemory;

    public int Cpus { get; init; } = 1;

    public Accelerator Accelerator { get; init; } = Accelerator.Auto;

    public ConsoleKind Console { get; init; } = ConsoleKind.Stdio;

    /// <summary>For <see cref="ConsoleKind.File"/>: the output file.</summary>
    public string? ConsolePath { get; init; }

    public string KvmDevicePath { get; init; } = "/dev/kvm";
}

/// <summary>A user error in the machine description; the message is one line that says what to do.</summary>
public sealed class VmConfigException(string message) : Exception(message);
