namespace KvmSharp.Api;

/// <summary>A request the API refuses: the status code (400 unless said) and Firecracker's <c>fault_message</c>.</summary>
public sealed class ApiFaultException(string message, int statusCode = 400) : Exception(message)
{
    public int StatusCode { get; } = statusCode;

    /// <summary>Firecracker's answer to a pre-boot-only request after InstanceStart (rpc_interface.rs).</summary>
    public const string NotSupportedAfterStart = "The requested operation is not supported after starting the microVM.";

    /// <summary>Firecracker's answer to a request that needs a running machine, sent before InstanceStart.</summary>
    public const string NotSupportedBeforeStart = "The requested operation is not supported before starting the microVM.";

    public const string LoadSnapshotNotAllowed = "Loading a microVM snapshot not allowed after configuring boot-specific resources.";

    public static ApiFaultException NotSupported(string what) =>
        new($"{what} is not supported by KvmSharp.");
}
