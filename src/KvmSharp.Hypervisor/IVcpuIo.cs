namespace KvmSharp.Hypervisor;

/// <summary>
/// What a vCPU calls when guest code touches a port or an address that is not RAM. Implementations answer
/// like hardware: unknown ports and addresses read as all ones and ignore writes. A handler may ask the
/// vCPU to stop after the access (debug-exit) by returning through <see cref="StopRequested"/>.
/// </summary>
public interface IVcpuIo
{
    void PortRead(ushort port, Span<byte> data);

    void PortWrite(ushort port, ReadOnlySpan<byte> data);

    void MmioRead(ulong address, Span<byte> data);

    void MmioWrite(ulong address, ReadOnlySpan<byte> data);

    /// <summary>Checked by the backend after each access; true makes Run return <see cref="VcpuStopReason.IoRequestedStop"/>.</summary>
    bool StopRequested { get; }
}
