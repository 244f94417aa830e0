using System.CommandLine;
using System.Reflection;
using KvmSharp.Cli.Commands;
using KvmSharp.Native;
using KvmSharp.Vmm.Config;
using KvmSharp.Vmm.Control;

namespace KvmSharp.Cli;

/// <summary>The <c>kvmsharp</c> command line, with its streams injected so tests can run it in-process.</summary>
internal sealed class CliApp
{
    public CliApp(TextWriter output, TextWriter error, Func<Stream> guestConsole)
    {
        Output = output;
        Error = error;
        GuestConsole = guestConsole;
    }

    public TextWriter Output { get; }

    public TextWriter Error { get; }

    /// <summary>Where guest console bytes go (stdout for the real program).</summary>
    public Func<Stream> GuestConsole { get; }

    public static string Version =>
        typeof(CliApp).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "0.0.0";

    public int Run(string[] args)
    {
        var root = new RootCommand("KvmSharp: a virtual machine monitor for Linux KVM, written in C#.");
        root.Add(CapsCommand.Create(this));
        root.Add(DemoCommand.Create(this));
        root.Add(RunCommand.Create(this));
        root.Add(ServeCommand.Create(this));
        root.Add(CtlCommand.Create(this));
        var parse = root.Parse(args);
        return parse.Invoke(new InvocationConfiguration { Output = Output, Error = Error, EnableDefaultExceptionHandler = false });
    }

    /// <summary>
    /// The machine host of <c>kvmsharp serve</c>: one PC per process, the guest's serial console on this process's
    /// stdout and stdin (as Firecracker's), reports on stderr, a progress line on a terminal for a large snapshot.
    /// </summary>
    internal IVmHost CreateHost(Accelerator accelerator, string kvmDevicePath) => new PcVmHost(new PcVmHostOptions
    {
        Accelerator = accelerator == Accelerator.Auto ? null : accelerator,
        KvmDevicePath = kvmDevicePath,
        ConsoleOutput = GuestConsole(),
        ConsoleInputFd = 0,
        Report = message => Error.WriteLine($"kvmsharp: {message}"),
        SnapshotProgress = SnapshotProgress,
    });

    /// <summary>A progress line on stderr for a snapshot of a large memory, when stderr is a terminal; else null.</summary>
    internal IProgress<long>? SnapshotProgress(long bytes) =>
        bytes >= SnapshotProgressLine.LargeMemory && Terminal.IsTerminal(2) ? new SnapshotProgressLine(Error, bytes) : null;

    /// <summary>One line on stderr: what is wrong and what to do.</summary>
    public int Fail(int exitCode, string message)
    {
        Error.WriteLine($"kvmsharp: {message}");
        return exitCode;
    }
}

/// <summary>"snapshot memory [#####.....] 40% 410/1024 MiB" on stderr, redrawn in place, for a snapshot of a large memory.</summary>
internal sealed class SnapshotProgressLine(TextWriter error, long total) : IProgress<long>, IDisposable
{
    /// <summary>Memory from which a snapshot shows its progress.</summary>
    public const long LargeMemory = 512L << 20;

    private int _lastPercent = -1;

    public void Report(long value)
    {
        int percent = (int)(value * 100 / Math.Max(total, 1));
        if (percent == _lastPercent)
        {
            return;
        }

        _lastPercent = percent;
        string bar = new string('#', percent / 5).PadRight(20, '.');
        error.Write($"\rkvmsharp: snapshot memory [{bar}] {percent,3}% {value >> 20}/{total >> 20} MiB");
    }

    public void Dispose() => error.WriteLine();
}
