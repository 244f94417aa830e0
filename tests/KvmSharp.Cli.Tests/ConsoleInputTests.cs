using System.Text;

namespace KvmSharp.Cli.Tests;

/// <summary>Host input reaches the guest's UART: from a pipe, and from a terminal in raw mode with Ctrl-A escapes.</summary>
public class ConsoleInputTests
{
    [Theory]
    [InlineData("kvm", Traits = [KvmTests.Trait, KvmTests.Kvm])]
    [InlineData("emulator")]
    public void PipedStdin_IsEchoedByTheGuest_InOrder(string accel)
    {
        KvmTests.RequireFor(accel);
        string kernel = RunEndingTests.WriteImage(RunEndingTests.EchoGuest);
        try
        {
            // More than the UART's 16-byte FIFO, so the input path has to pace itself to the guest.
            string text = "hello, world: a brown fox jumps over the lazy dog 0123456789\n"; // no "q": that ends the guest
            var r = CliRunner.RunProcessWithInput([], Encoding.ASCII.GetBytes(text + "q"), "run", "--kernel", kernel, "--memory", "64M", "--accel", accel);

            Assert.Equal(1, r.ExitCode); // the guest's debug-exit write of 0
            Assert.Equal(text, r.Output);
            Assert.Equal(string.Empty, r.Error);
        }
        finally
        {
            File.Delete(kernel);
        }
    }

    [Theory]
    [InlineData("kvm", Traits = [KvmTests.Trait, KvmTests.Kvm])]
    [InlineData("emulator")]
#pragma warning disable xUnit1031 // the reader thread is a plain Task over a pipe; no sync context to deadlock on
    public void Terminal_RawMode_PassesKeysAndCtrlAXQuits(string accel)
    {
        KvmTests.RequireFor(accel);
        Assert.SkipUnless(File.Exists("/usr/bin/script"), "script(1) from util-linux provides the pseudo-terminal.");
        string kernel = RunEndingTests.WriteImage(RunEndingTests.EchoGuest);
        try
        {
            string dll = Path.Combine(AppContext.BaseDirectory, "kvmsharp.dll");
            // script runs kvmsharp on a pseudo-terminal and relays our pipe to it.
            var psi = new System.Diagnostics.ProcessStartInfo("script")
            {
                RedirectStandardInput = true,
                RedirectStandardOutput = true,
                UseShellExecute = false,
            };
            foreach (var a in new[] { "-qefc", $"stty -echo; dotnet {dll} run --kernel {kernel} --memory 64M --accel {accel}; echo \"[exit $?]\"; stty echo", "/dev/null" })
            {
                psi.ArgumentList.Add(a);
            }

            psi.Environment["DOTNET_CLI_HOME"] = "/tmp";
            using var process = System.Diagnostics.Process.Start(psi)!;
            var output = new StringBuilder();
            var reader = Task.Run(() =>
            {
                var buffer = new char[256];
                int n;
                while ((n = process.StandardOutput.Read(buffer, 0, buffer.Length)) > 0)
                {
                    lock (output)
                    {
                        output.Append(buffer, 0, n);
                    }
                }
            });
            string Seen()
            {
                lock (output)
                {
                    return output.ToString();
                }
            }

            bool WaitFor(string text)
            {
                var deadline = DateTime.UtcNow + TestTime.Scaled(TimeSpan.FromSeconds(30));
                while (DateTime.UtcNow < deadline)
                {
                    if (Seen().Contains(text, StringComparison.Ordinal))
                    {
                        return true;
                    }

                    Thread.Sleep(20);
                }

                return false;
            }

            Assert.True(WaitFor("Ctrl-A X quits"), Seen());
            // Raw mode: "ab" reaches the guest without a newline and comes back at once.
            process.StandardInput.Write("ab");
            process.StandardInput.Flush();
            Assert.True(WaitFor("ab"), Seen());
            process.StandardInput.Write("\u0001x");
            process.StandardInput.Flush();
            Assert.True(WaitFor("[exit 0]"), Seen());
            process.StandardInput.Close();
            Assert.True(process.WaitForExit(TestTime.Scaled(TimeSpan.FromSeconds(30))));
            Assert.True(reader.Wait(TestTime.Scaled(TimeSpan.FromSeconds(5)))); // output reader ends with the process
        }
        finally
        {
            File.Delete(kernel);
        }
    }
}
