namespace KvmSharp.Hypervisor;

/// <summary>Why control left the guest, by kind (the categories of the original kvm_stat).</summary>
public enum ExitKind
{
    PortIn,
    PortOut,
    MmioRead,
    MmioWrite,
    Halt,
    Shutdown,
    SystemEvent,
    Debug,
    IrqWindowOpen,
    Interrupted,
    InternalError,
    FailEntry,
    Other,
}

/// <summary>Per-vCPU exit counters. Written only by the vCPU's own thread; read from anywhere (values may lag).</summary>
public sealed class ExitStatistics
{
    public static readonly int KindCount = Enum.GetValues<ExitKind>().Length;

    private readonly long[] _counts = new long[KindCount];

    public void Increment(ExitKind kind) => _counts[(int)kind]++;

    public long this[ExitKind kind] => Volatile.Read(ref _counts[(int)kind]);

    public long Total
    {
        get
        {
            long sum = 0;
            for (int i = 0; i < _counts.Length; i++)
            {
                sum += Volatile.Read(ref _counts[i]);
            }

            return sum;
        }
    }

    /// <summary>A copy of all counters, indexed by <see cref="ExitKind"/>.</summary>
    public long[] Snapshot()
    {
        var copy = new long[_counts.Length];
        for (int i = 0; i < copy.Length; i++)
        {
            copy[i] = Volatile.Read(ref _counts[i]);
        }

        return copy;
    }
}
