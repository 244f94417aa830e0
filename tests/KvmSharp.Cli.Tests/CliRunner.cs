using System.Diagnostics;
using System.Text;

namespace KvmSharp.Cli.Tests;

internal sealed record CliResult(int ExitCode, string Output, string Error, string Guest);

internal static class CliRunner
{
    /// <summary>Runs <c>kvmsharp</c> in-process with captured streams.</summary>
    public static CliResult Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var guest = new MemoryStream();
        int code = new CliApp(output, error, () => new NonClosingStream(guest)).Run(args);
        return new CliResult(code, output.ToString(), error.ToString(), Encoding.ASCII.GetString(guest.ToArray()));
    }

    /// <summary>Runs the built kvmsharp.dll in a child process, optionally through a wrapper (setpriv ...).</summary>
    public static CliResult RunProcess(string[] wrapper, params string[] args) => RunProcessWithInput(wrapper, null, args);

    /// <summary>As <see cref="RunProcess"/>, writing <paramref name="input"/> to the child's stdin and then closing it.</summary>
    public static CliResult RunProcessWithInput(string[] wrapper, byte[]? input, params string[] args)
    {
        string dll = Path.Combine(AppContext.BaseDirectory, "kvmsharp.dll");
        var psi = new ProcessStartInfo(wrapper.Length > 0 ? wrapper[0] : "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = input is not null,
            UseShellExecute = false,
        };
        foreach (var w in wrapper.Skip(1))
        {
            psi.ArgumentList.Add(w);
        }

        if (wrapper.Length > 0)
        {
            psi.ArgumentList.Add("dotnet");
        }

        psi.ArgumentList.Add(dll);
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        psi.Environment["DOTNET_CLI_HOME"] = "/tmp";
        psi.Environment["HOME"] = "/tmp";
        using var process = Process.Start(psi)!;
        if (input is not null)
        {
            process.StandardInput.BaseStream.Write(input);
            process.StandardInput.Close();
        }

        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        var deadline = TestTime.Scaled(TimeSpan.FromSeconds(60));
        if (!process.WaitForExit(deadline))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"kvmsharp did not exit within {deadline.TotalSeconds} s.");
        }

        return new CliResult(process.ExitCode, stdout.Result, stderr.Result, string.Empty);
    }

    private sealed class NonClosingStream(Stream inner) : Stream
    {
        public override bool CanRead => false;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => inner.Length;

        public override long Position { get => inner.Position; set => throw new NotSupportedException(); }

        public override void Flush() => inner.Flush();

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => inner.Write(buffer, offset, count);

        public override void Write(ReadOnlySpan<byte> buffer) => inner.Write(buffer);
    }
}
