using System.Diagnostics;
using System.Text;

namespace KvmSharp.Compare;

/// <summary>
/// One VMM process under measurement: its stdout and stderr read as they come, each complete line stamped with the
/// time since just before the process was started, its stdin open for typing into the guest's console.
/// </summary>
internal sealed class VmmProcess : IDisposable
{
    private readonly Process _process;
    private readonly Stopwatch _clock;
    private readonly object _gate = new();
    private readonly List<(TimeSpan At, string Line)> _lines = [];
    private readonly StringBuilder _all = new();
    private readonly StringBuilder _partial = new();
    private readonly Thread[] _readers;
    private TimeSpan? _exitedAt;

    private VmmProcess(Process process, Stopwatch clock)
    {
        _process = process;
        _clock = clock;
        _readers =
        [
            new Thread(() => Pump(process.StandardOutput.BaseStream)) { IsBackground = true, Name = "stdout" },
            new Thread(() => Pump(process.StandardError.BaseStream)) { IsBackground = true, Name = "stderr" },
        ];
    }

    public string CommandLine { get; private init; } = "";

    public int Pid => _process.Id;

    public string Output
    {
        get
        {
            lock (_gate)
            {
                return _all.ToString();
            }
        }
    }

    public static VmmProcess Start(string file, IEnumerable<string> arguments)
    {
        var info = new ProcessStartInfo(file)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string a in arguments)
        {
            info.ArgumentList.Add(a);
        }

        var process = new Process { StartInfo = info, EnableRaisingEvents = true };
        var clock = new Stopwatch();
        var vmm = new VmmProcess(process, clock) { CommandLine = file + " " + string.Join(' ', info.ArgumentList) };
        process.Exited += (_, _) =>
        {
            lock (vmm._gate)
            {
                vmm._exitedAt ??= clock.Elapsed;
                Monitor.PulseAll(vmm._gate);
            }
        };
        clock.Start();
        process.Start();
        foreach (var reader in vmm._readers)
        {
            reader.Start();
        }

        return vmm;
    }

    /// <summary>The time the first output line containing <paramref name="text"/> was complete.</summary>
    public TimeSpan WaitForLine(string text, TimeSpan timeout)
    {
        var deadline = _clock.Elapsed + timeout;
        lock (_gate)
        {
            int checkedLines = 0;
            while (true)
            {
                for (; checkedLines < _lines.Count; checkedLines++)
                {
                    if (_lines[checkedLines].Line.Contains(text, StringComparison.Ordinal))
                    {
                        return _lines[checkedLines].At;
                    }
                }

                var left = deadline - _clock.Elapsed;
                if (_exitedAt is not null && ReadersDone())
                {
                    throw new BenchException($"'{text}' never appeared: the VMM exited ({Describe()})");
                }

                if (left <= TimeSpan.Zero)
                {
                    throw new BenchException($"'{text}' did not appear within {timeout.TotalSeconds:0} s ({Describe()})");
                }

                Monitor.Wait(_gate, left < TimeSpan.FromMilliseconds(200) ? left : TimeSpan.FromMilliseconds(200));
            }
        }
    }

    /// <summary>Waits until the output (complete lines or not) holds <paramref name="text"/> after offset <paramref name="from"/>.</summary>
    public int WaitForText(string text, int from, TimeSpan timeout)
    {
        var deadline = _clock.Elapsed + timeout;
        lock (_gate)
        {
            while (true)
            {
                int at = _all.ToString(Math.Min(from, _all.Length), _all.Length - Math.Min(from, _all.Length)).IndexOf(text, StringComparison.Ordinal);
                if (at >= 0)
                {
                    return from + at + text.Length;
                }

                var left = deadline - _clock.Elapsed;
                if (left <= TimeSpan.Zero || (_exitedAt is not null && ReadersDone()))
                {
                    throw new BenchException($"'{text}' did not appear within {timeout.TotalSeconds:0} s ({Describe()})");
                }

                Monitor.Wait(_gate, left < TimeSpan.FromMilliseconds(200) ? left : TimeSpan.FromMilliseconds(200));
            }
        }
    }

    public int OutputLength
    {
        get
        {
            lock (_gate)
            {
                return _all.Length;
            }
        }
    }

    public void Type(string text)
    {
        _process.StandardInput.Write(text);
        _process.StandardInput.Flush();
    }

    /// <summary>Waits for the process to end; returns its exit code and the time it ended.</summary>
    public (int ExitCode, TimeSpan At) WaitForExit(TimeSpan timeout)
    {
        if (!_process.WaitForExit(timeout))
        {
            Kill();
            throw new BenchException($"the VMM did not exit within {timeout.TotalSeconds:0} s ({Describe()})");
        }

        _process.WaitForExit();
        foreach (var reader in _readers)
        {
            reader.Join(TimeSpan.FromSeconds(5));
        }

        lock (_gate)
        {
            _exitedAt ??= _clock.Elapsed;
            return (_process.ExitCode, _exitedAt.Value);
        }
    }

    public void Kill()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                _process.WaitForExit(TimeSpan.FromSeconds(10));
            }
        }
        catch (InvalidOperationException)
        {
            // Already gone.
        }
    }

    public void Dispose()
    {
        Kill();
        _process.Dispose();
    }

    private bool ReadersDone() => _readers.All(r => !r.IsAlive);

    private string Describe()
    {
        string tail = _all.Length > 600 ? _all.ToString(_all.Length - 600, 600) : _all.ToString();
        return $"command: {CommandLine}; last output: {tail.Trim()}";
    }

    private void Pump(Stream stream)
    {
        var buffer = new byte[4096];
        int n;
        while ((n = stream.Read(buffer, 0, buffer.Length)) > 0)
        {
            var at = _clock.Elapsed;
            string text = Encoding.Latin1.GetString(buffer, 0, n);
            lock (_gate)
            {
                _all.Append(text);
                foreach (char c in text)
                {
                    if (c == '\n')
                    {
                        _lines.Add((at, _partial.ToString().TrimEnd('\r')));
                        _partial.Clear();
                    }
                    else
                    {
                        _partial.Append(c);
                    }
                }

                Monitor.PulseAll(_gate);
            }
        }
    }
}

/// <summary>A measurement that could not be taken, with the reason for the table and the log.</summary>
internal class BenchException(string message) : Exception(message);
