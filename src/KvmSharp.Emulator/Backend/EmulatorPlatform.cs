using System.Diagnostics;
using KvmSharp.Emulator.Cpu;

namespace KvmSharp.Emulator.Backend;

/// <summary>
/// The platform of a software vCPU in a machine: a TSC that counts the machine's time (host time, or a test's
/// clock) at <see cref="TscFrequency"/> (invariant, as CPUID says), and the MSRs and CR8 that belong to its local APIC, through delegates the
/// interrupt fabric supplies.
/// </summary>
public sealed class EmulatorPlatform : ICpuPlatform
{
    /// <summary>The advertised TSC frequency (2 GHz).</summary>
    public const long TscFrequency = 2_000_000_000;

    private readonly TimeProvider _time;
    private readonly double _tscPerTimestamp;
    private long _offset;
    private ulong _cr8;

    /// <summary>A platform whose TSC counts host time (Stopwatch timestamps).</summary>
    public EmulatorPlatform()
        : this(TimeProvider.System)
    {
    }

    /// <summary>A platform whose TSC counts <paramref name="time"/>'s timestamps, the clock its machine's timers use.</summary>
    public EmulatorPlatform(TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(time);
        _time = time;
        _tscPerTimestamp = TscFrequency / (double)time.TimestampFrequency;
    }

    /// <summary>The local APIC's registers; until it is attached, no APIC MSRs exist and CR8 is a plain register.</summary>
    public ILocalApicRegisters? Apic { get; set; }

    /// <summary>The TSC value at a Stopwatch timestamp.</summary>
    public static ulong TscAt(long timestamp, long offset = 0) =>
        (ulong)((long)(timestamp * (TscFrequency / (double)Stopwatch.Frequency)) + offset);

    /// <summary>The timestamp of the platform's clock at which the TSC reaches <paramref name="tsc"/>.</summary>
    public long TimestampAt(ulong tsc) => (long)(((double)tsc - _offset) / _tscPerTimestamp);

    public ulong ReadTsc() => (ulong)((long)(_time.GetTimestamp() * _tscPerTimestamp) + _offset);

    public void WriteTsc(ulong value) => _offset = (long)value - (long)(_time.GetTimestamp() * _tscPerTimestamp);

    public bool TryReadMsr(uint index, out ulong value)
    {
        if (Apic is { } apic)
        {
            return apic.TryReadMsr(index, out value);
        }

        value = 0;
        return false;
    }

    public bool TryWriteMsr(uint index, ulong value) => Apic is { } apic && apic.TryWriteMsr(index, value);

    public ulong ReadCr8() => Apic is { } apic ? (ulong)(apic.Tpr >> 4) : _cr8;

    public void WriteCr8(ulong value)
    {
        if (Apic is { } apic)
        {
            apic.Tpr = (byte)(value << 4);
        }
        else
        {
            _cr8 = value & 0xF;
        }
    }
}

/// <summary>The local APIC registers the CPU reaches without MMIO: its MSRs (APIC base, TSC deadline) and the TPR (CR8).</summary>
public interface ILocalApicRegisters
{
    bool TryReadMsr(uint index, out ulong value);

    bool TryWriteMsr(uint index, ulong value);

    byte Tpr { get; set; }
}
