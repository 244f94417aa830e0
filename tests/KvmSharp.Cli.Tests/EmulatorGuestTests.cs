using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;

namespace KvmSharp.Cli.Tests;

/// <summary>
/// The default Debian guest (scripts/build-guest.sh: cloud kernel 6.1 + busybox initramfs) booted by
/// <c>kvmsharp run --accel emulator</c> to its shell, driven through the serial console: the kernel release,
/// shell arithmetic, the SHA-256 of a file this test adds to the initramfs, then <c>poweroff -f</c> ending the VMM
/// with exit code 0.
/// </summary>
public sealed class EmulatorGuestTests
{
    private static readonly TimeSpan BootTimeout = TimeSpan.FromMinutes(10);
    private static readonly TimeSpan CommandTimeout = TimeSpan.FromMinutes(2);

    private static string GuestDirectory
        => Environment.GetEnvironmentVariable("KVMSHARP_GUEST_DIR") is { Length: > 0 } dir
            ? dir
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "kvmsharp", "guest");

    [Fact]
    public void DebianGuest_BootsToItsShell_OnTheSoftwareCpu_AndRunsCommands()
    {
        string guest = GuestDirectory;
        string manifest = Path.Combine(guest, "manifest.txt");
        Assert.True(File.Exists(manifest), $"{manifest} is missing: run scripts/build-guest.sh first (.ci/run does).");
        string release = File.ReadAllLines(manifest).Single(l => l.StartsWith("kernel-release: ", StringComparison.Ordinal))["kernel-release: ".Length..];

        byte[] payload = new byte[65536];
        new Random(20261122).NextBytes(payload);
        string expectedHash = Convert.ToHexStringLower(SHA256.HashData(payload));
        string initrd = Path.Combine(Path.GetTempPath(), $"kvmsharp-initrd-{Guid.NewGuid():N}");
        File.WriteAllBytes(initrd, InitramfsWithFile(File.ReadAllBytes(Path.Combine(guest, "initramfs.cpio.gz")), "testdata/payload.bin", payload));
        try
        {
            using var session = GuestSession.Start(
                "run", "--accel", "emulator", "--kernel", Path.Combine(guest, "vmlinux"), "--initrd", initrd,
                "--memory", "512M", "--cmdline", "console=ttyS0 reboot=k panic=-1", "--stats");

            session.WaitFor("KVMSHARP-GUEST-READY", BootTimeout);
            session.WaitFor("guest# ", CommandTimeout);

            Assert.Equal($"{release}\n{121932631112635269}", session.Run("uname -r; echo $((123456789 * 987654321))"));
            Assert.Equal($"{expectedHash}  /testdata/payload.bin", session.Run("sha256sum /testdata/payload.bin"));
            Assert.Equal("65536", session.Run("wc -c < /testdata/payload.bin"));

            session.Send("poweroff -f\n");
            Assert.Equal(0, session.WaitForExit(CommandTimeout));

            // --stats reports the software CPU's instruction count and rate; booting Linux retires billions.
            var speed = Regex.Match(session.Output, @"vcpu0: ([\d,]+) guest instructions in [\d.]+ s running \([\d.]+ s halted\), ([\d.]+) MIPS");
            Assert.True(speed.Success, $"no speed line in:\n{session.Output}");
            Assert.InRange(ulong.Parse(speed.Groups[1].Value, NumberStyles.AllowThousands, CultureInfo.InvariantCulture), 1_000_000_000UL, ulong.MaxValue);
            Assert.InRange(double.Parse(speed.Groups[2].Value, CultureInfo.InvariantCulture), 0.1, 10_000);
        }
        finally
        {
            File.Delete(initrd);
        }
    }

    /// <summary>The compressed initramfs followed by an uncompressed newc archive holding one file (Linux unpacks both).</summary>
    private static byte[] InitramfsWithFile(byte[] initramfs, string path, byte[] contents)
    {
        var archive = new MemoryStream();
        archive.Write(initramfs);
        while (archive.Length % 4 != 0)
        {
            archive.WriteByte(0); // zero padding between archives is skipped by the kernel
        }

        string directory = path[..path.LastIndexOf('/')];
        WriteNewcEntry(archive, directory, 0x41ED, []); // drwxr-xr-x
        WriteNewcEntry(archive, path, 0x81A4, contents); // -rw-r--r--
        WriteNewcEntry(archive, "TRAILER!!!", 0, []);
        return archive.ToArray();
    }

    private static void WriteNewcEntry(MemoryStream archive, string name, int mode, byte[] data)
    {
        byte[] nameBytes = Encoding.ASCII.GetBytes(name + "\0");
        string header = "070701" + string.Concat(new[]
        {
            1, mode, 0, 0, 1, 0, data.Length, 0, 0, 0, 0, nameBytes.Length, 0,
        }.Select(v => v.ToString("X8")));
        archive.Write(Encoding.ASCII.GetBytes(header));
        archive.Write(nameBytes);
        Pad(archive);
        archive.Write(data);
        Pad(archive);
    }

    private static void Pad(MemoryStream archive)
    {
        while (archive.Length % 4 != 0)
        {
            archive.WriteByte(0);
        }
    }

    /// <summary>kvmsharp in a child process with its stdin and stdout piped: the guest's serial console.</summary>
    private sealed class GuestSession : IDisposable
    {
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

        public static GuestSession Start(params string[] args)
        {
            var psi = new ProcessStartInfo("dotnet")
            {
                RedirectStandardInput = true,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
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
}
