namespace KvmSharp.Emulator.Cpu;

/// <summary>
/// What the software CPU asks of the machine around it beyond memory and I/O: the time stamp counter, the MSRs
/// that belong to the platform (the local APIC's, MTRRs), and CR8 (the local APIC's TPR). Called on the vCPU
/// thread only; implementations must not allocate.
/// </summary>
public interface ICpuPlatform
{
    /// <summary>The TSC value now (guest cycles at the advertised TSC frequency).</summary>
    ulong ReadTsc();

    /// <summary>Sets the TSC so that it reads <paramref name="value"/> now (WRMSR 0x10).</summary>
    void WriteTsc(ulong value);

    /// <summary>Reads a platform MSR; false means the MSR does not exist (#GP).</summary>
    bool TryReadMsr(uint index, out ulong value);

    /// <summary>Writes a platform MSR; false means it does not exist or refuses the value (#GP).</summary>
    bool TryWriteMsr(uint index, ulong value);

    /// <summary>CR8 reads: TPR bits 7-4.</summary>
    ulong ReadCr8();

    /// <summary>CR8 writes.</summary>
    void WriteCr8(ulong value);
}
