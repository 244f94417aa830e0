using System.Text.Json;
using KvmSharp.Hypervisor.Snapshots;

namespace KvmSharp.Cli.Tests;

/// <summary>
/// <c>kvmsharp run --api-sock</c> and <c>kvmsharp serve --config-file</c> end to end with the polling echo guest
/// (Guests/echo32.S), driven by <c>kvmsharp ctl</c>; and serve's one-line refusals.
/// </summary>
public sealed class ControlCliTests
{
    private static readonly TimeSpan Timeout = TestTime.Scaled(TimeSpan.FromSeconds(60));

    [Theory]
    [InlineData("kvm", Traits = [KvmTests.Trait, KvmTests.Kvm])]
    [InlineData("emulator")]
    public void RunWithApiSock_CtlPausesResumesSnapshotsAndCounts(string accel)
    {
        KvmTests.RequireFor(accel);
        string dir = Directory.CreateTempSubdirectory("kvmsharp-ctl-").FullName;
        string kernel = RunEndingTests.WriteImage(RunEndingTests.EchoGuest);
        try
        {
            string socket = Path.Combine(dir, "api.sock");
            using var session = GuestSession.Start("run", "--kernel", kernel, "--memory", "64M", "--accel", accel, "--api-sock", socket);
            using (var api = new UnixApiClient(socket))
            {
                api.WaitUntilServing(Timeout);
            }

            var status = Ctl(socket, "status");
            Assert.Equal((0, $"anonymous-instance: Running (Firecracker {CliApp.Version})\n"), (status.ExitCode, status.Output));
            session.Send("a");
            session.WaitFor("a", Timeout);

            // Paused, the guest does not echo; resumed, it echoes what waited in the UART.
            Assert.Equal(0, Ctl(socket, "pause").ExitCode);
            Assert.Equal($"anonymous-instance: Paused (Firecracker {CliApp.Version})\n", Ctl(socket, "status").Output);
            session.Send("b");
            Thread.Sleep(TestTime.Scaled(TimeSpan.FromMilliseconds(500)));
            Assert.DoesNotContain("b", session.Output, StringComparison.Ordinal);
            Assert.Equal(0, Ctl(socket, "resume").ExitCode);
            session.WaitFor("b", Timeout);

            // ctl snapshot pauses the running machine, writes both files, resumes it.
            string snapshot = Path.Combine(dir, "snap");
            var taken = Ctl(socket, "snapshot", snapshot);
            Assert.Equal(0, taken.ExitCode);
            long stateBytes = new FileInfo(Path.Combine(snapshot, "vmstate.bin")).Length;
            Assert.Equal($"snapshot in {snapshot}: vmstate.bin {stateBytes:N0} bytes, memory.bin 67,108,864 bytes\n", taken.Output);
            var sections = SnapshotFile.Read(Path.Combine(snapshot, "vmstate.bin")).Select(s => s.Id).ToList();
            Assert.Equal("machine", sections[0]);
            Assert.Contains("vcpu0", sections);
            Assert.Contains("serial0", sections);
            Assert.Contains(accel == "kvm" ? "kvm-vm" : "platform", sections);
            Assert.Equal($"anonymous-instance: Running (Firecracker {CliApp.Version})\n", Ctl(socket, "status").Output);

            // The table counts the guest's port reads of the UART (its polling loop) on vCPU 0.
            var stats = Ctl(socket, "stats");
            Assert.Equal(0, stats.ExitCode);
            Assert.True(stats.Output.Contains("Running on " + accel, StringComparison.Ordinal), stats.Output);
            Assert.Matches(@"│ PortIn\s*│\s*[1-9][0-9,]* │", stats.Output);
            Assert.Matches(@"│ MmioRead\s*│\s*0 │", stats.Output);

            // 'q': the guest writes 0 to isa-debug-exit, which (as QEMU's) makes the process exit with (0 << 1) | 1.
            session.Send("q");
            Assert.Equal(1, session.WaitForExit(Timeout));
            Assert.False(File.Exists(socket), "the API socket is removed when the machine ends");
        }
        finally
        {
            File.Delete(kernel);
            Directory.Delete(dir, recursive: true);
        }
    }

    [Theory]
    [InlineData("kvm", Traits = [KvmTests.Trait, KvmTests.Kvm])]
    [InlineData("emulator")]
    public void ServeConfigFile_StartsTheMachineAtOnce_AndEndsWithIt(string accel)
    {
        KvmTests.RequireFor(accel);
        string dir = Directory.CreateTempSubdirectory("kvmsharp-serve-").FullName;
        string kernel = RunEndingTests.WriteImage(RunEndingTests.EchoGuest);
        try
        {
            string config = Path.Combine(dir, "vm.json");
            File.WriteAllText(config, JsonSerializer.Serialize(new Dictionary<string, object>
            {
                ["boot-source"] = new Dictionary<string, string> { ["kernel_image_path"] = kernel, ["boot_args"] = "echo" },
                ["machine-config"] = new Dictionary<string, int> { ["vcpu_count"] = 1, ["mem_size_mib"] = 64 },
            }));
            using var session = GuestSession.Start("serve", "--no-api", "--config-file", config, "--accel", accel);
            session.Send("hi");
            session.WaitFor("hi", Timeout);
            session.Send("q");
            Assert.Equal(1, session.WaitForExit(Timeout)); // isa-debug-exit's (0 << 1) | 1, as run gives it
        }
        finally
        {
            File.Delete(kernel);
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void Serve_BadInvocations_OneLineEachAndExitCode1()
    {
        string dir = Directory.CreateTempSubdirectory("kvmsharp-serve-").FullName;
        try
        {
            string missing = Path.Combine(dir, "none", "api.sock");
            string config = Path.Combine(dir, "bad.json");
            File.WriteAllText(config, """{"machine-config": {"vcpu_count": 1, "mem_size_mib": 64}}""");
            (string[] Args, string Message)[] cases =
            [
                (["serve"], "kvmsharp: serve needs --api-sock PATH (or --no-api with --config-file).\n"),
                (["serve", "--no-api"], "kvmsharp: --no-api needs --config-file: without the API nothing would start the machine.\n"),
                (["serve", "--api-sock", missing], $"kvmsharp: The directory of the API socket '{missing}' does not exist. Create it or pass another --api-sock.\n"),
                (["serve", "--api-sock", dir], $"kvmsharp: The API socket path '{dir}' is a directory. Pass the path of a socket file to create.\n"),
                (["serve", "--no-api", "--config-file", Path.Combine(dir, "absent.json")],
                    $"kvmsharp: Cannot read --config-file '{Path.Combine(dir, "absent.json")}': Could not find file '{Path.Combine(dir, "absent.json")}'.\n"),
                (["serve", "--no-api", "--config-file", config],
                    $"kvmsharp: --config-file '{config}': An error occurred when deserializing the json body of a request: missing field `boot-source` in VmmConfig.\n"),
            ];
            foreach (var (args, message) in cases)
            {
                var result = CliRunner.Run(args);
                Assert.Equal((string.Join(' ', args), 1, message), (string.Join(' ', args), result.ExitCode, result.Error));
            }

            var ctl = CliRunner.Run("ctl", "--api-sock", missing, "status");
            Assert.Equal(1, ctl.ExitCode);
            Assert.StartsWith($"kvmsharp: ", ctl.Error, StringComparison.Ordinal);
            Assert.Single(ctl.Error.TrimEnd('\n').Split('\n'));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private static CliResult Ctl(string socket, params string[] verb) => CliRunner.Run(["ctl", "--api-sock", socket, .. verb]);
}
