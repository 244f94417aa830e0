namespace KvmSharp.Hypervisor;

/// <summary>One virtual CPU. Run it on one thread; the other members may be called while it is not running.</summary>
public interface IVcpu : IDisposable
{
    int Index { get; }

    /// <summary>Runs guest code, handing port and MMIO accesses to <paramref name="io"/>, until a stop condition.</summary>
    VcpuStop Run(IVcpuIo io);

    /// <summary>Makes <see cref="Run"/> return <see cref="VcpuStopReason.Kicked"/> soon; safe from any thread.</summary>
    void Kick();

    /// <summary>Counts of exits by kind since the vCPU was created.</summary>
    ExitStatistics Statistics { get; }

    X86Registers GetRegisters();

    void SetRegisters(in X86Registers registers);

    X86SystemRegisters GetSystemRegisters();

    void SetSystemRegisters(in X86SystemRegisters registers);

    FpuState GetFpu();

    void SetFpu(in FpuState fpu);

    /// <summary>Reads the listed MSRs into <paramref name="values"/>; returns how many were read (stops at the first unknown one).</summary>
    int GetMsrs(ReadOnlySpan<uint> indices, Span<ulong> values);

    /// <summary>Writes the listed MSRs; returns how many were written (stops at the first refused one).</summary>
    int SetMsrs(ReadOnlySpan<uint> indices, ReadOnlySpan<ulong> values);

    /// <summary>Single-step and up to four hardware execution breakpoints; pass false/empty to turn debugging off.</summary>
    void SetGuestDebug(bool singleStep, ReadOnlySpan<ulong> breakpoints);
}
