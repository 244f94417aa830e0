using System.CommandLine;
using System.Reflection;
using KvmSharp.Cli.Commands;

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
        var parse = root.Parse(args);
        return parse.Invoke(new InvocationConfiguration { Output = Output, Error = Error, EnableDefaultExceptionHandler = false });
    }

    /// <summary>One line on stderr: what is wrong and what to do.</summary>
    public int Fail(int exitCode, string message)
    {
        Error.WriteLine($"kvmsharp: {message}");
        return exitCode;
    }
}
