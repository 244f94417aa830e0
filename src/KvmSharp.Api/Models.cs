using System.Text.Json.Serialization;

namespace KvmSharp.Api;

// The request and response bodies of the Firecracker API (src/firecracker/swagger/firecracker.yaml), with its field
// names (snake_case) and enum strings. Requests are read by RequestReader (strict: unknown fields, wrong types and
// missing required fields are 400s naming the field); these records are what it produces and what responses write.

/// <summary>Every error body: <c>{"fault_message": "..."}</c>.</summary>
public sealed record Fault(string FaultMessage);

public enum InstanceState
{
    [JsonStringEnumMemberName("Not started")]
    NotStarted,
    Running,
    Paused,

    /// <summary>KvmSharp's own: the machine ended and the process is about to exit (Firecracker's process is gone by then).</summary>
    Exited,
}

public sealed record InstanceInfo(string Id, InstanceState State, string VmmVersion, string AppName);

public sealed record VersionInfo(string FirecrackerVersion);

public enum HugePages
{
    None,
    Transparent,
    [JsonStringEnumMemberName("2M")]
    Hugetlbfs2M,
}

public sealed record MachineConfiguration
{
    public required int VcpuCount { get; init; }

    public required int MemSizeMib { get; init; }

    public bool Smt { get; init; }

    public bool TrackDirtyPages { get; init; }

    public HugePages HugePages { get; init; } = HugePages.None;
}

/// <summary>PATCH /machine-config: every field optional.</summary>
public sealed record MachineConfigurationUpdate
{
    public int? VcpuCount { get; init; }

    public int? MemSizeMib { get; init; }

    public bool? Smt { get; init; }

    public bool? TrackDirtyPages { get; init; }

    public HugePages? HugePages { get; init; }
}

public sealed record BootSource
{
    public required string KernelImagePath { get; init; }

    public string? BootArgs { get; init; }

    public string? InitrdPath { get; init; }
}

public enum CacheType
{
    Unsafe,
    Writeback,
}

public enum IoEngine
{
    Sync,
    Async,
}

public sealed record Drive
{
    public required string DriveId { get; init; }

    public required bool IsRootDevice { get; init; }

    public required string PathOnHost { get; init; }

    public bool IsReadOnly { get; init; }

    public string? Partuuid { get; init; }

    public CacheType CacheType { get; init; } = CacheType.Unsafe;

    public IoEngine IoEngine { get; init; } = IoEngine.Sync;
}

public sealed record NetworkInterface
{
    public required string IfaceId { get; init; }

    public required string HostDevName { get; init; }

    public string? GuestMac { get; init; }
}

/// <summary>PUT /entropy: a virtio-rng device; Firecracker's only field is a rate limiter, which KvmSharp refuses.</summary>
public sealed record EntropyDevice;

public enum LogLevel
{
    Off,
    Error,
    Warning,
    Info,
    Debug,
    Trace,
}

public sealed record Logger
{
    public string? LogPath { get; init; }

    public LogLevel Level { get; init; } = LogLevel.Info;

    public bool ShowLevel { get; init; }

    public bool ShowLogOrigin { get; init; }

    public string? Module { get; init; }
}

public sealed record Metrics
{
    public required string MetricsPath { get; init; }
}

public enum ActionType
{
    InstanceStart,
    SendCtrlAltDel,
    FlushMetrics,
}

public sealed record InstanceActionInfo
{
    public required ActionType ActionType { get; init; }
}

public enum VmStateRequest
{
    Paused,
    Resumed,
}

public sealed record Vm
{
    public required VmStateRequest State { get; init; }
}

public enum SnapshotType
{
    Full,
    Diff,
}

public sealed record SnapshotCreateParams
{
    public required string SnapshotPath { get; init; }

    public required string MemFilePath { get; init; }

    public SnapshotType SnapshotType { get; init; } = SnapshotType.Full;
}

public enum MemoryBackendType
{
    File,
    Uffd,
}

public sealed record MemoryBackend
{
    public required MemoryBackendType BackendType { get; init; }

    public required string BackendPath { get; init; }
}

public sealed record SnapshotLoadParams
{
    public required string SnapshotPath { get; init; }

    public MemoryBackend? MemBackend { get; init; }

    /// <summary>Deprecated in Firecracker in favour of <see cref="MemBackend"/>; exactly one of the two is given.</summary>
    public string? MemFilePath { get; init; }

    public bool TrackDirtyPages { get; init; }

    public bool ResumeVm { get; init; }
}

/// <summary>GET /vm/config and <c>--config-file</c>: the whole machine, Firecracker's keys.</summary>
public sealed record FullVmConfiguration
{
    [JsonPropertyName("balloon")]
    public object? Balloon { get; init; }

    [JsonPropertyName("drives")]
    public IReadOnlyList<Drive> Drives { get; init; } = [];

    [JsonPropertyName("boot-source")]
    public BootSource? BootSource { get; init; }

    [JsonPropertyName("cpu-config")]
    public object? CpuConfig { get; init; }

    [JsonPropertyName("logger")]
    public Logger? Logger { get; init; }

    [JsonPropertyName("machine-config")]
    public MachineConfiguration? MachineConfig { get; init; }

    [JsonPropertyName("metrics")]
    public Metrics? Metrics { get; init; }

    [JsonPropertyName("mmds-config")]
    public object? MmdsConfig { get; init; }

    [JsonPropertyName("network-interfaces")]
    public IReadOnlyList<NetworkInterface> NetworkInterfaces { get; init; } = [];

    [JsonPropertyName("vsock")]
    public object? Vsock { get; init; }

    [JsonPropertyName("entropy")]
    public EntropyDevice? Entropy { get; init; }
}

/// <summary>GET /x/stats: KvmSharp's own.</summary>
public sealed record VmStatistics(
    string State,
    string Accelerator,
    IReadOnlyList<VcpuExitStatistics> Vcpus,
    IReadOnlyDictionary<string, IReadOnlyDictionary<string, long>> Devices);

/// <summary>One vCPU's exit counts by <c>ExitKind</c> name (PortIn, PortOut, MmioRead, ...).</summary>
public sealed record VcpuExitStatistics(int Vcpu, long Total, IReadOnlyDictionary<string, long> Exits);

[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    DefaultIgnoreCondition = JsonIgnoreCondition.Never,
    UseStringEnumConverter = true)]
[JsonSerializable(typeof(Fault))]
[JsonSerializable(typeof(InstanceInfo))]
[JsonSerializable(typeof(VersionInfo))]
[JsonSerializable(typeof(MachineConfiguration))]
[JsonSerializable(typeof(MachineConfigurationUpdate))]
[JsonSerializable(typeof(BootSource))]
[JsonSerializable(typeof(Drive))]
[JsonSerializable(typeof(NetworkInterface))]
[JsonSerializable(typeof(EntropyDevice))]
[JsonSerializable(typeof(Logger))]
[JsonSerializable(typeof(Metrics))]
[JsonSerializable(typeof(InstanceActionInfo))]
[JsonSerializable(typeof(Vm))]
[JsonSerializable(typeof(SnapshotCreateParams))]
[JsonSerializable(typeof(SnapshotLoadParams))]
[JsonSerializable(typeof(FullVmConfiguration))]
[JsonSerializable(typeof(VmStatistics))]
public sealed partial class ApiJsonContext : JsonSerializerContext;
