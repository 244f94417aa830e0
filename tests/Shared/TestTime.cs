namespace KvmSharp.Testing;

/// <summary>
/// Deadlines for waits on guests and child processes. In scripts/with-kvm.sh's nested KVM host (KVMSHARP_NESTED_KVM=1)
/// everything runs under QEMU's software CPU, so a .NET process starts in seconds and the machine is shared with
/// parallel guest boots: waits there are five times longer. A deadline only bounds a hang; it never decides a result.
/// </summary>
internal static class TestTime
{
    public static int Factor { get; } = Environment.GetEnvironmentVariable("KVMSHARP_NESTED_KVM") == "1" ? 5 : 1;

    public static TimeSpan Scaled(TimeSpan wait) => wait * Factor;
}
