using System.Text.Json;
using KvmSharp.Hypervisor;
using KvmSharp.Vmm.Control;

namespace KvmSharp.Api;

/// <summary>
/// PUT /metrics and the FlushMetrics action: each flush appends one JSON line. As in Firecracker, the <c>vcpu</c> block
/// counts exits since the previous flush (<c>exit_io_in</c>, <c>exit_io_out</c>, <c>exit_mmio_read</c>,
/// <c>exit_mmio_write</c>, <c>failures</c>) and <c>latencies_us</c> holds the last snapshot timings; the
/// <c>kvmsharp</c> block holds cumulative per-vCPU counts by exit kind and the device counters.
/// </summary>
internal sealed class MetricsSink : IDisposable
{
    private readonly Stream _stream;
    private long[] _lastTotals = new long[ExitStatistics.KindCount];

    private MetricsSink(string path, Stream stream)
    {
        Path = path;
        _stream = stream;
    }

    public string Path { get; }

    public static MetricsSink Open(string path)
    {
        try
        {
            var stream = new FileStream(path, FileMode.OpenOrCreate, FileAccess.Write, FileShare.ReadWrite, 1);
            if (stream.CanSeek)
            {
                stream.Seek(0, SeekOrigin.End);
            }

            return new MetricsSink(path, stream);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ApiFaultException($"Cannot open the metrics file '{path}': {e.Message}");
        }
    }

    public void Flush(IRunningVm? vm, long? createSnapshotUs, long? loadSnapshotUs)
    {
        var totals = new long[ExitStatistics.KindCount];
        var perVcpu = vm?.VcpuStatistics ?? [];
        var snapshots = new long[perVcpu.Count][];
        for (int i = 0; i < perVcpu.Count; i++)
        {
            snapshots[i] = perVcpu[i].Snapshot();
            for (int k = 0; k < totals.Length; k++)
            {
                totals[k] += snapshots[i][k];
            }
        }

        var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteNumber("utc_timestamp_ms", DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
            json.WriteStartObject("vcpu");
            json.WriteNumber("exit_io_in", Delta(totals, ExitKind.PortIn));
            json.WriteNumber("exit_io_out", Delta(totals, ExitKind.PortOut));
            json.WriteNumber("exit_mmio_read", Delta(totals, ExitKind.MmioRead));
            json.WriteNumber("exit_mmio_write", Delta(totals, ExitKind.MmioWrite));
            json.WriteNumber("failures", Delta(totals, ExitKind.InternalError) + Delta(totals, ExitKind.FailEntry));
            json.WriteEndObject();
            json.WriteStartObject("latencies_us");
            json.WriteNumber("full_create_snapshot", createSnapshotUs ?? 0);
            json.WriteNumber("load_snapshot", loadSnapshotUs ?? 0);
            json.WriteEndObject();
            json.WriteStartObject("kvmsharp");
            json.WriteStartArray("vcpus");
            foreach (var counts in snapshots)
            {
                json.WriteStartObject();
                foreach (var kind in Enum.GetValues<ExitKind>())
                {
                    json.WriteNumber(kind.ToString(), counts[(int)kind]);
                }

                json.WriteEndObject();
            }

            json.WriteEndArray();
            json.WriteStartObject("devices");
            if (vm is not null)
            {
                foreach (var (device, counters) in vm.DeviceCounters())
                {
                    json.WriteStartObject(device);
                    foreach (var (name, value) in counters)
                    {
                        json.WriteNumber(name, value);
                    }

                    json.WriteEndObject();
                }
            }

            json.WriteEndObject();
            json.WriteEndObject();
            json.WriteEndObject();
        }

        buffer.WriteByte((byte)'\n');
        try
        {
            _stream.Write(buffer.GetBuffer(), 0, (int)buffer.Length);
            _stream.Flush();
        }
        catch (IOException e)
        {
            throw new ApiFaultException($"Cannot write the metrics file '{Path}': {e.Message}");
        }

        _lastTotals = totals;
    }

    private long Delta(long[] totals, ExitKind kind) => totals[(int)kind] - _lastTotals[(int)kind];

    public void Dispose() => _stream.Dispose();
}
