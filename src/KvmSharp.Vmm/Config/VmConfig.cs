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

    /// <summary>
    /// The VMM's stdin/stdout on a virtio console port (the guest's hvc0); the UART's output (the kernel log on
    /// console=ttyS0) still goes to stdout, its input is not connected.
    /// </summary>
    Virtio,
}

/// <summary>One <c>--disk</c>: a raw image file as a virtio block device.</summary>
/// <param name="Path">The image file.</param>
/// <param name="ReadOnly">The guest may not write (VIRTIO_BLK_F_RO; the file is opened read-only).</param>
/// <param name="Serial">What VIRTIO_BLK_T_GET_ID answers (at most 20 bytes), or null for none.</param>
public sealed record DiskConfig(string Path, bool ReadOnly = false, string? Serial = null)
{
    /// <summary>The virtio-blk serial field's size (VIRTIO_BLK_ID_BYTES).</summary>
    public const int MaximumSerialLength = 20;

    /// <summary>Parses <c>PATH[,readonly][,serial=ID]</c>; throws <see cref="VmConfigException"/> with one line on a bad option.</summary>
    public static DiskConfig Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var parts = text.Split(',');
        if (parts[0].Length == 0)
        {
            throw new VmConfigException($"--disk '{text}' has no path. Use --disk PATH[,readonly][,serial=ID].");
        }

        bool readOnly = false;
        string? serial = null;
        foreach (var option in parts.AsSpan(1))
        {
            if (option is "readonly" or "ro")
            {
                readOnly = true;
            }
            else if (option.StartsWith("serial=", StringComparison.Ordinal))
            {
                serial = option["serial=".Length..];
                if (serial.Length == 0 || serial.Length > MaximumSerialLength || !IsPrintableAscii(serial))
                {
                    throw new VmConfigException($"--disk serial '{serial}' is not 1 to {MaximumSerialLength} printable ASCII characters.");
                }
            }
            else
            {
                throw new VmConfigException($"--disk option '{option}' is unknown. Use --disk PATH[,readonly][,serial=ID] (a path cannot contain commas).");
            }
        }

        return new DiskConfig(parts[0], readOnly, serial);
    }

    private static bool IsPrintableAscii(string text)
    {
        foreach (char c in text)
        {
            if (c is < ' ' or > '~')
            {
                return false;
            }
        }

        return true;
    }
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

    /// <summary>Raw disk images, as virtio block devices in this order (vda, vdb, ...).</summary>
    public IReadOnlyList<DiskConfig> Disks { get; init; } = [];

    /// <summary>A virtio entropy device fed by the host's getrandom.</summary>
    public bool Rng { get; init; }

    /// <summary>Network adapters (virtio-net), in this order (eth0, eth1, ...).</summary>
    public IReadOnlyList<NetConfig> Nets { get; init; } = [];
}

/// <summary>A user error in the machine description; the message is one line that says what to do.</summary>
public sealed class VmConfigException(string message) : Exception(message);
