using System.Diagnostics;
using System.Text;

namespace KvmSharp.Cli.Tests;

/// <summary>kvmsharp in a child process with its stdin and stdout piped: the guest's serial console.</summary>
internal sealed class GuestSession : IDisposable
{
    /// <summary>How long one shell command may take on the software CPU.</summary>
    public static readonly TimeSpan CommandTimeout = TestTime.Scaled(TimeSpan.FromMinutes(2));

    private readonly Process _process;
    private readonly StringBuilder _output = new();
    private readonly Lock _lock = new();
    private readonly List<Thread> _pumps = [];
    private int _consumed;
    private int _commands;

    private GuestSession(Process process)
    {
        _process = process;
    }

    public static GuestSession Start(params string[] args) => StartWrapped([], args);

    /// <summary>kvmsharp run through a wrapper command (<c>ip netns exec NAME</c>).</summary>
    public static GuestSession StartWrapped(string[] wrapper, params string[] args)
    {
        var psi = new ProcessStartInfo(wrapper.Length > 0 ? wrapper[0] : "dotnet")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var w in wrapper.Skip(1).Concat(wrapper.Length > 0 ? ["dotnet"] : []))
        {
            psi.ArgumentList.Add(w);
        }

        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "kvmsharp.dll"));
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        psi.Environment["DOTNET_CLI_HOME"] = "/tmp";
        var session = new GuestSession(Process.Start(psi)!);
        session.Pump(session._process.StandardOutput);
        session.Pump(session._process.StandardError);
        return session;
    }

    private void Pump(StreamReader reader)
    {
        var thread = new Thread(() =>
        {
            var buffer = new char[4096];
            int n;
            while ((n = reader.Read(buffer, 0, buffer.Length)) > 0)
            {
                lock (_lock)
                {
                    _output.Append(buffer, 0, n);
                }
            }
        })
        { IsBackground = true };
        _pumps.Add(thread);
        thread.Start();
    }

    /// <summary>Waits until <paramref name="text"/> appears after what earlier waits consumed; consumes through it.</summary>
    public void WaitFor(string text, TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            lock (_lock)
            {
                int at = _output.ToString().IndexOf(text, _consumed, StringComparison.Ordinal);
                if (at >= 0)
                {
                    _consumed = at + text.Length;
                    return;
                }
            }

            if (_process.HasExited)
            {
                Thread.Sleep(200); // let the pumps drain
                Assert.Fail($"kvmsharp exited with {_process.ExitCode} before printing '{text}'. Output:\n{Tail()}");
            }

            if (clock.Elapsed > timeout)
            {
                Assert.Fail($"'{text}' did not appear within {timeout.TotalSeconds:0} s. Output:\n{Tail()}");
            }

            Thread.Sleep(50);
        }
    }

    /// <summary>Runs a shell command line and returns its output (without the echoed command, \r removed, trimmed).</summary>
    public string Run(string command)
    {
        int id = ++_commands;
        // The markers print computed numbers, so the echoed command line (which holds the expressions) never matches them.
        Send($"echo \"[$(({id} * 1000 + 1))]\"; {command}; echo \"[$(({id} * 1000 + 2))]\"\n");
        string begin = $"[{(id * 1000) + 1}]";
        string end = $"[{(id * 1000) + 2}]";
        WaitFor(begin, CommandTimeout);
        int start = _consumed;
        WaitFor(end, CommandTimeout);
        string between;
        lock (_lock)
        {
            between = _output.ToString(start, _consumed - end.Length - start);
        }

        WaitFor("guest# ", CommandTimeout);
        return between.Replace("\r", string.Empty, StringComparison.Ordinal).Trim('\n');
    }

    public void Send(string text)
    {
        _process.StandardInput.Write(text);
        _process.StandardInput.Flush();
    }

    public int WaitForExit(TimeSpan timeout)
    {
        if (!_process.WaitForExit(timeout))
        {
            Assert.Fail($"kvmsharp did not exit within {timeout.TotalSeconds:0} s. Output:\n{Tail()}");
        }

        foreach (var pump in _pumps)
        {
            pump.Join(); // everything the process wrote is in Output
        }

        return _process.ExitCode;
    }

    public string Output
    {
        get
        {
            lock (_lock)
            {
                return _output.ToString();
            }
        }
    }

    private string Tail()
    {
        lock (_lock)
        {
            string all = _output.ToString();
            return all.Length > 4000 ? all[^4000..] : all;
        }
    }

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit();
        }

        _process.Dispose();
    }
}
