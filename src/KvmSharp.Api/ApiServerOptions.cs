using KvmSharp.Vmm.Config;

namespace KvmSharp.Api;

/// <summary>How <see cref="ApiServer"/> presents itself and how it builds the machine InstanceStart runs.</summary>
public sealed record ApiServerOptions
{
    /// <summary>Firecracker's <c>--id</c>: the instance id GET / reports and every log line carries.</summary>
    public string InstanceId { get; init; } = "anonymous-instance";

    /// <summary>What GET / reports as <c>vmm_version</c> and GET /version as <c>firecracker_version</c>.</summary>
    public string VmmVersion { get; init; } = "0.0.0";

    /// <summary>The backend InstanceStart asks for (<c>kvmsharp serve --accel</c>).</summary>
    public Accelerator Accelerator { get; init; } = Accelerator.Auto;

    /// <summary>Where the guest's serial console goes.</summary>
    public ConsoleKind Console { get; init; } = ConsoleKind.Stdio;

    /// <summary>For <see cref="ConsoleKind.File"/>: the file.</summary>
    public string? ConsolePath { get; init; }

    public string KvmDevicePath { get; init; } = "/dev/kvm";

    /// <summary>Firecracker's <c>--http-api-max-payload-size</c> (51200 bytes by default).</summary>
    public long MaxPayloadBytes { get; init; } = 51200;

    /// <summary>Where log lines go before (or without) PUT /logger; null drops them.</summary>
    public TextWriter? Log { get; init; }
}
