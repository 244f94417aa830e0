using System.Globalization;

namespace KvmSharp.Compare;

internal enum Row
{
    StartToExit = 1,
    PioExit,
    MmioExit,
    DebianBoot,
    DiskRead,
    DiskWrite,
    TinyMemory,
    DebianMemory,
    Mips,
    DebianKvmBoot,
    NetSoftG2H,
    NetSoftH2G,
    NetSoftRtt,
    NetKvmG2H,
    NetKvmH2G,
    NetKvmRtt,
    NetSoftTapG2H,
    NetSoftTapH2G,
    NetSoftTapRtt,
    NetKvmTapG2H,
    NetKvmTapH2G,
    NetKvmTapRtt,
    SnapSoftPause,
    SnapSoftResume,
    SnapSoftCreate128,
    SnapSoftRestore128,
    SnapSoftCreate1G,
    SnapSoftRestore1G,
    SnapKvmPause,
    SnapKvmResume,
    SnapKvmCreate128,
    SnapKvmRestore128,
    SnapKvmCreate1G,
    SnapKvmRestore1G,
}

/// <summary>The markdown table: one row per measurement, medians, KvmSharp ÷ QEMU, and which way is better.</summary>
internal sealed class ResultTable
{
    private static readonly Dictionary<Row, string> Numbers = new()
    {
        [Row.StartToExit] = "1",
        [Row.PioExit] = "2",
        [Row.MmioExit] = "2",
        [Row.DebianBoot] = "3",
        [Row.DiskRead] = "4",
        [Row.DiskWrite] = "4",
        [Row.TinyMemory] = "5",
        [Row.DebianMemory] = "5",
        [Row.Mips] = "6",
        [Row.DebianKvmBoot] = "7",
        [Row.NetSoftG2H] = "8",
        [Row.NetSoftH2G] = "8",
        [Row.NetSoftRtt] = "8",
        [Row.NetKvmG2H] = "8",
        [Row.NetKvmH2G] = "8",
        [Row.NetKvmRtt] = "8",
        [Row.NetSoftTapG2H] = "8",
        [Row.NetSoftTapH2G] = "8",
        [Row.NetSoftTapRtt] = "8",
        [Row.NetKvmTapG2H] = "8",
        [Row.NetKvmTapH2G] = "8",
        [Row.NetKvmTapRtt] = "8",
        [Row.SnapSoftPause] = "9",
        [Row.SnapSoftResume] = "9",
        [Row.SnapSoftCreate128] = "9",
        [Row.SnapSoftRestore128] = "9",
        [Row.SnapSoftCreate1G] = "9",
        [Row.SnapSoftRestore1G] = "9",
        [Row.SnapKvmPause] = "9",
        [Row.SnapKvmResume] = "9",
        [Row.SnapKvmCreate128] = "9",
        [Row.SnapKvmRestore128] = "9",
        [Row.SnapKvmCreate1G] = "9",
        [Row.SnapKvmRestore1G] = "9",
    };

    private readonly SortedDictionary<Row, string> _rows = [];
    private readonly List<(Row Row, double Worse)> _ratios = [];

    private readonly List<string> _notes = [];

    public int Failures { get; private set; }

    public void Note(string text) => _notes.Add(text);

    public void Set(Row row, string name, double ours, double theirs, string format, bool higherIsBetter = false)
    {
        string o = ours.ToString(format, CultureInfo.InvariantCulture);
        string t = theirs.ToString(format, CultureInfo.InvariantCulture);
        double ratio = ours / theirs;
        double worse = higherIsBetter ? theirs / ours : ours / theirs;
        _ratios.Add((row, worse));
        string verdict = worse >= 1
            ? string.Create(CultureInfo.InvariantCulture, $"{worse:0.00}x worse")
            : string.Create(CultureInfo.InvariantCulture, $"{1 / worse:0.00}x better");
        _rows[row] = string.Create(CultureInfo.InvariantCulture, $"| {Numbers[row]} | {name} | {o} | {t} | {ratio:0.00} ({verdict}) |");
    }

    public void NotMeasured(Row row, string why) => _rows[row] = $"| {Numbers[row]} | {Name(row)} | — | — | {why} |";

    public void Failed(Row row, string why)
    {
        Failures++;
        string reason = why.Length > 160 ? why[..160] + "…" : why;
        _rows[row] = $"| {Numbers[row]} | {Name(row)} | — | — | failed: {reason.Replace('|', '/')} (the log has the rest) |";
    }

    public void Print(TextWriter output, Options options, string qemuVersion)
    {
        output.WriteLine();
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"KvmSharp vs {qemuVersion}, {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC, {CpuModel()}, {Environment.ProcessorCount} CPUs. kvmsharp: {options.KvmSharpKind}."));
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"Medians of {options.Rounds} runs (items 1, 2, 6) and {options.DebianRounds} boots (3, 4, 5b, 7, 8) of each VMM, interleaved."));
        if (options.NestedKvm)
        {
            output.WriteLine(
                "Measured in scripts/with-kvm.sh's nested KVM host: KVM (kvm_amd) inside a Linux L1 that runs on QEMU's software CPU, so every " +
                "figure here, KvmSharp's and QEMU's, includes TCG's cost; compare the ratios, not the absolute values.");
        }

        output.WriteLine();
        output.WriteLine("| # | measurement | KvmSharp | QEMU | KvmSharp ÷ QEMU |");
        output.WriteLine("|---|---|---:|---:|---|");
        foreach (var row in _rows.Values)
        {
            output.WriteLine(row);
        }

        foreach (string note in _notes)
        {
            output.WriteLine();
            output.WriteLine(note);
        }

        if (_ratios.Count > 0)
        {
            var (worstRow, worse) = _ratios.MaxBy(r => r.Worse);
            output.WriteLine();
            output.WriteLine(worse >= 1
                ? string.Create(CultureInfo.InvariantCulture, $"Worst ratio: item {Numbers[worstRow]} ({worstRow}), KvmSharp {worse:0.00}x worse than QEMU.")
                : string.Create(CultureInfo.InvariantCulture, $"Worst ratio: item {Numbers[worstRow]} ({worstRow}), where KvmSharp is still {1 / worse:0.00}x better than QEMU."));
        }
    }

    private static string Name(Row row) => row switch
    {
        Row.StartToExit => "Start to exit, tiny guest",
        Row.PioExit => "PIO exit round trip",
        Row.MmioExit => "MMIO exit round trip",
        Row.DebianKvmBoot => "Debian boot to its ready marker on KVM",
        Row.DebianBoot => "Debian boot to its ready marker, software CPU",
        Row.DiskRead => "Sequential read in the guest",
        Row.DiskWrite => "Sequential write in the guest",
        Row.TinyMemory => "VMM memory overhead, tiny guest",
        Row.DebianMemory => "VMM memory overhead, Debian guest",
        Row.NetSoftG2H or Row.NetKvmG2H => "TCP throughput guest to host, --net user (passt)",
        Row.NetSoftH2G or Row.NetKvmH2G => "TCP throughput host to guest, --net user (passt)",
        Row.NetSoftRtt or Row.NetKvmRtt => "TCP round trip, 1 byte, host to guest and back, passt",
        Row.NetSoftTapG2H or Row.NetKvmTapG2H => "TCP throughput guest to host, TAP",
        Row.NetSoftTapH2G or Row.NetKvmTapH2G => "TCP throughput host to guest, TAP",
        Row.NetSoftTapRtt or Row.NetKvmTapRtt => "TCP round trip, 1 byte, TAP",
        Row.SnapSoftPause or Row.SnapKvmPause => "Pause latency, Debian guest",
        Row.SnapSoftResume or Row.SnapKvmResume => "Resume latency, Debian guest",
        Row.SnapSoftCreate128 or Row.SnapKvmCreate128 => "Snapshot create, 128 MiB guest",
        Row.SnapSoftRestore128 or Row.SnapKvmRestore128 => "Snapshot restore, 128 MiB guest",
        Row.SnapSoftCreate1G or Row.SnapKvmCreate1G => "Snapshot create, 1 GiB guest",
        Row.SnapSoftRestore1G or Row.SnapKvmRestore1G => "Snapshot restore, 1 GiB guest",
        Row.Mips => "Guest MIPS, software CPU",
        _ => row.ToString(),
    };

    private static string CpuModel()
    {
        try
        {
            foreach (string line in File.ReadLines("/proc/cpuinfo"))
            {
                if (line.StartsWith("model name", StringComparison.Ordinal))
                {
                    return line[(line.IndexOf(':', StringComparison.Ordinal) + 1)..].Trim();
                }
            }
        }
        catch (IOException)
        {
        }

        return "unknown CPU";
    }
}
