using System.Diagnostics;

namespace KvmSharp.Emulator.Cpu;

/// <summary>
/// The platform of a CPU with nothing around it (unit tests, tools): a TSC counting host time at
/// <see cref="TscFrequency"/>, no platform MSRs, and CR8 kept as a plain register.
/// </summary>
public sealed class StandalonePlatform : ICpuPlatform
{
    /// <summary>The TSC frequency: 1 GHz, so one tick is one nanosecond.</summary>
    public const long TscFrequency = 1_000_000_000;

    private long _offset;
    private ulong _cr8;

    public ulong ReadTsc() => (ulong)(Ticks() + _offset);

    public void WriteTsc(ulong value) => _offset = (long)value - Ticks();

    public bool TryReadMsr(uint index, out ulong value)
    {
        value = 0;
        return false;
    }

    public bool TryWriteMsr(uint index, ulong value) => false;

    public ulong ReadCr8() => _cr8;

    public void WriteCr8(ulong value) => _cr8 = value & 0xF;

    private static long Ticks() => (long)(Stopwatch.GetTimestamp() * (TscFrequency / (double)Stopwatch.Frequency));
}
