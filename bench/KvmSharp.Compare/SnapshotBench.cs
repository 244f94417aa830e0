using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;

namespace KvmSharp.Compare;

/// <summary>
/// Item 9: pause, resume, snapshot and restore of the Debian guest at its shell, 128 MiB and 1 GiB of RAM. KvmSharp
/// through its Firecracker-compatible API (<c>kvmsharp serve</c>: PATCH /vm, PUT /snapshot/create, PUT /snapshot/load
/// into a fresh process, the request's latency as Firecracker's latencies_us.load_snapshot measures it); QEMU through
/// QMP (<c>stop</c>, <c>cont</c>, <c>migrate</c> to <c>exec:cat &gt; FILE</c> until completed, and a fresh
/// <c>-incoming defer</c> process's <c>migrate-incoming exec:cat FILE</c> until completed, then <c>cont</c>). Each
/// latency is the median of the rounds; each restore is checked by a command the restored guest answers.
/// </summary>
internal sealed class SnapshotBench(Options options, ResultTable table, Func<string[], (string File, string[] Args)> kvmsharpCommand,
    Func<string, long, string[]> qemuCommon)
{
    private const string Cmdline = "console=ttyS0 panic=-1 quiet kvmsharp.net=off";
    private static readonly TimeSpan BootTimeout = TimeSpan.FromMinutes(15);
    private static readonly TimeSpan CommandTimeout = TimeSpan.FromMinutes(5);

    public void Run(bool onKvm, string where, Row pause, Row resume, Row create128, Row restore128, Row create1G, Row restore1G)
    {
        string accel = onKvm ? "kvm" : "emulator";
        var pauses = new Dictionary<bool, List<double>> { [true] = [], [false] = [] };
        var resumes = new Dictionary<bool, List<double>> { [true] = [], [false] = [] };
        foreach (var (memory, createRow, restoreRow) in new[] { (128L << 20, create128, restore128), (1L << 30, create1G, restore1G) })
        {
            var creates = new Dictionary<bool, List<double>> { [true] = [], [false] = [] };
            var restores = new Dictionary<bool, List<double>> { [true] = [], [false] = [] };
            string dir = Directory.CreateTempSubdirectory("kvmsharp-snapbench-").FullName;
            try
            {
                foreach (bool ours in new[] { true, false })
                {
                    var m = ours ? MeasureOurs(accel, memory, dir) : MeasureQemu(onKvm, memory, dir);
                    pauses[ours].AddRange(m.Pause);
                    resumes[ours].AddRange(m.Resume);
                    creates[ours].AddRange(m.Create);
                    restores[ours].AddRange(m.Restore);
                    Program.Log(string.Create(CultureInfo.InvariantCulture,
                        $"snapshot {memory >> 20} MiB {(ours ? "kvmsharp" : "qemu")}: pause {Program.Median(m.Pause):0.00} ms, resume {Program.Median(m.Resume):0.00} ms, create {Program.Median(m.Create):0.0} ms, restore {Program.Median(m.Restore):0.0} ms"));
                }
            }
            finally
            {
                Directory.Delete(dir, recursive: true);
            }

            string size = memory >= 1L << 30 ? "1 GiB" : "128 MiB";
            table.Set(createRow, $"Snapshot create, Debian at its shell, {size} guest on {where}: PUT /snapshot/create (paused) vs QMP migrate to exec:cat>file (ms, lower is better)",
                Program.Median(creates[true]), Program.Median(creates[false]), "0.0");
            table.Set(restoreRow, $"Snapshot restore into a fresh process, {size} on {where}: PUT /snapshot/load (memory mapped MAP_PRIVATE) vs -incoming defer + migrate-incoming + cont (ms, lower is better)",
                Program.Median(restores[true]), Program.Median(restores[false]), "0.0");
        }

        table.Set(pause, $"Pause latency on {where}: PATCH /vm Paused (vCPUs parked, devices quiesced) vs QMP stop (ms, lower is better)",
            Program.Median(pauses[true]), Program.Median(pauses[false]), "0.00");
        table.Set(resume, $"Resume latency on {where}: PATCH /vm Resumed vs QMP cont (ms, lower is better)",
            Program.Median(resumes[true]), Program.Median(resumes[false]), "0.00");
    }

    private sealed record Measured(List<double> Pause, List<double> Resume, List<double> Create, List<double> Restore);

    private Measured MeasureOurs(string accel, long memory, string dir)
    {
        var m = new Measured([], [], [], []);
        string state = Path.Combine(dir, "vmstate.bin");
        string mem = Path.Combine(dir, "memory.bin");
        string socket = Path.Combine(dir, "api.sock");
        var command = kvmsharpCommand(["serve", "--api-sock", socket, "--accel", accel]);
        using (var vmm = VmmProcess.Start(command.File, command.Args))
        {
            var api = new RawHttp(socket);
            api.WaitUntilServing();
            api.Expect204("PUT", "/machine-config", string.Create(CultureInfo.InvariantCulture, $$"""{"vcpu_count": 1, "mem_size_mib": {{memory >> 20}}}"""));
            api.Expect204("PUT", "/boot-source", $$"""{"kernel_image_path": "{{Path.Combine(options.GuestDir, "vmlinuz")}}", "initrd_path": "{{Path.Combine(options.GuestDir, "initramfs.cpio.gz")}}", "boot_args": "{{Cmdline}}"}""");
            api.Expect204("PUT", "/actions", """{"action_type": "InstanceStart"}""");
            vmm.WaitForLine("KVMSHARP-GUEST-READY", BootTimeout);
            int at = vmm.WaitForText("guest# ", 0, CommandTimeout);
            for (int round = 0; round < options.Rounds; round++)
            {
                m.Pause.Add(api.Expect204("PATCH", "/vm", """{"state": "Paused"}"""));
                m.Resume.Add(api.Expect204("PATCH", "/vm", """{"state": "Resumed"}"""));
            }

            Program.GuestCommandAt(vmm, ref at, "echo before-snapshot", out _);
            api.Expect204("PATCH", "/vm", """{"state": "Paused"}""");
            for (int round = 0; round < options.DebianRounds; round++)
            {
                m.Create.Add(api.Expect204("PUT", "/snapshot/create", $$"""{"snapshot_path": "{{state}}", "mem_file_path": "{{mem}}"}"""));
            }

            vmm.Kill();
        }

        for (int round = 0; round < options.DebianRounds; round++)
        {
            File.Delete(socket);
            using var restored = VmmProcess.Start(command.File, command.Args);
            var api = new RawHttp(socket);
            api.WaitUntilServing();
            m.Restore.Add(api.Expect204("PUT", "/snapshot/load", $$"""{"snapshot_path": "{{state}}", "mem_backend": {"backend_type": "File", "backend_path": "{{mem}}"}, "resume_vm": true}"""));
            int at = restored.OutputLength;
            CheckAnswers(restored, ref at);
            restored.Kill();
        }

        return m;
    }

    private Measured MeasureQemu(bool onKvm, long memory, string dir)
    {
        var m = new Measured([], [], [], []);
        string file = Path.Combine(dir, "qemu-state.bin");
        string vmlinuz = Path.Combine(options.GuestDir, "vmlinuz");
        string initrd = Path.Combine(options.GuestDir, "initramfs.cpio.gz");
        string[] Args(string qmp, bool incoming) =>
            [.. qemuCommon(onKvm ? "kvm" : "tcg", memory), "-kernel", vmlinuz, "-initrd", initrd, "-append", Cmdline,
             "-qmp", $"unix:{qmp},server=on,wait=off", .. incoming ? new[] { "-incoming", "defer" } : []];
        string qmp1 = Path.Combine(dir, "qmp1.sock");
        using (var vmm = VmmProcess.Start(options.Qemu, Args(qmp1, incoming: false)))
        {
            vmm.WaitForLine("KVMSHARP-GUEST-READY", BootTimeout);
            int at = vmm.WaitForText("guest# ", 0, CommandTimeout);
            using var qmp = Qmp.Connect(qmp1);
            for (int round = 0; round < options.Rounds; round++)
            {
                m.Pause.Add(qmp.Timed("stop"));
                m.Resume.Add(qmp.Timed("cont"));
            }

            Program.GuestCommandAt(vmm, ref at, "echo before-snapshot", out _);
            for (int round = 0; round < options.DebianRounds; round++)
            {
                // QEMU leaves a migrated VM in "postmigrate" and refuses a second migrate from there: each round resumes
                // it and stops it again (untimed), so every timed migrate starts from a plain paused VM, as ours do.
                qmp.Execute("stop");
                var clock = Stopwatch.StartNew();
                qmp.Execute("migrate", new JsonObject { ["uri"] = $"exec:cat > {file}" });
                qmp.WaitForMigration();
                m.Create.Add(clock.Elapsed.TotalMilliseconds);
                qmp.Execute("cont");
            }

            vmm.Kill();
        }

        for (int round = 0; round < options.DebianRounds; round++)
        {
            string qmpPath = Path.Combine(dir, $"qmp-r{round}.sock");
            using var restored = VmmProcess.Start(options.Qemu, Args(qmpPath, incoming: true));
            using var qmp = Qmp.Connect(qmpPath);
            var clock = Stopwatch.StartNew();
            qmp.Execute("migrate-incoming", new JsonObject { ["uri"] = $"exec:cat {file}" });
            qmp.WaitForMigration();
            qmp.ContinueIncoming();
            m.Restore.Add(clock.Elapsed.TotalMilliseconds);
            int at = restored.OutputLength;
            CheckAnswers(restored, ref at);
            restored.Kill();
        }

        return m;
    }

    private static void CheckAnswers(VmmProcess vmm, ref int at)
    {
        string said = Program.GuestCommandAt(vmm, ref at, "echo restored-$((40 + 2))", out _);
        if (!said.Contains("restored-42", StringComparison.Ordinal))
        {
            throw new BenchException($"the restored guest did not answer: {said.Trim()}");
        }
    }

    /// <summary>HTTP/1.1 requests over a UNIX socket, one connection each, timed from the request's first byte to the response's end.</summary>
    private sealed class RawHttp(string socketPath)
    {
        public void WaitUntilServing()
        {
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
            while (true)
            {
                try
                {
                    if (Send("GET", "/", null).Status == 200)
                    {
                        return;
                    }
                }
                catch (SocketException)
                {
                }

                if (DateTime.UtcNow > deadline)
                {
                    throw new BenchException($"kvmsharp serve did not answer on {socketPath} within 60 s");
                }

                Thread.Sleep(20);
            }
        }

        /// <summary>Sends a request that must answer 204; returns its latency in milliseconds.</summary>
        public double Expect204(string method, string path, string body)
        {
            var (status, text, ms) = Send(method, path, body);
            if (status != 204)
            {
                throw new BenchException($"{method} {path} answered {status}: {text.Trim()}");
            }

            return ms;
        }

        private (int Status, string Body, double Ms) Send(string method, string path, string? body)
        {
            using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            socket.Connect(new UnixDomainSocketEndPoint(socketPath));
            byte[] content = Encoding.UTF8.GetBytes(body ?? "");
            string head = string.Create(CultureInfo.InvariantCulture,
                $"{method} {path} HTTP/1.1\r\nHost: localhost\r\nAccept: application/json\r\nConnection: close\r\n{(body is null ? "" : $"Content-Type: application/json\r\nContent-Length: {content.Length}\r\n")}\r\n");
            var clock = Stopwatch.StartNew();
            socket.Send([.. Encoding.ASCII.GetBytes(head), .. content]);
            var response = new MemoryStream();
            var buffer = new byte[4096];
            int n;
            while ((n = socket.Receive(buffer)) > 0)
            {
                response.Write(buffer, 0, n);
            }

            double ms = clock.Elapsed.TotalMilliseconds;
            string text = Encoding.UTF8.GetString(response.ToArray());
            string[] statusLine = text.Split("\r\n", 2)[0].Split(' ');
            if (statusLine.Length < 2 || !int.TryParse(statusLine[1], CultureInfo.InvariantCulture, out int status))
            {
                throw new BenchException($"{method} {path}: not an HTTP response: {text}");
            }

            return (status, text, ms);
        }
    }

    /// <summary>QEMU's monitor protocol: one JSON object per line; events are skipped while waiting for a return.</summary>
    private sealed class Qmp : IDisposable
    {
        private readonly Socket _socket;
        private readonly StreamReader _reader;
        private readonly NetworkStream _stream;

        private Qmp(Socket socket)
        {
            _socket = socket;
            _stream = new NetworkStream(socket);
            _reader = new StreamReader(_stream);
        }

        public static Qmp Connect(string path)
        {
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
            while (true)
            {
                var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                try
                {
                    socket.Connect(new UnixDomainSocketEndPoint(path));
                    var qmp = new Qmp(socket);
                    qmp._reader.ReadLine(); // the greeting
                    qmp.Execute("qmp_capabilities");
                    return qmp;
                }
                catch (SocketException) when (DateTime.UtcNow < deadline)
                {
                    socket.Dispose();
                    Thread.Sleep(20);
                }
            }
        }

        public double Timed(string command)
        {
            var clock = Stopwatch.StartNew();
            Execute(command);
            return clock.Elapsed.TotalMilliseconds;
        }

        public JsonNode? Execute(string command, JsonObject? arguments = null)
        {
            var request = new JsonObject { ["execute"] = command };
            if (arguments is not null)
            {
                request["arguments"] = arguments;
            }

            _stream.Write(Encoding.UTF8.GetBytes(request.ToJsonString() + "\n"));
            while (true)
            {
                string line = _reader.ReadLine() ?? throw new BenchException($"QMP closed during '{command}'");
                var reply = JsonNode.Parse(line)!;
                if (reply["error"] is { } error)
                {
                    throw new BenchException($"QMP '{command}' failed: {error.ToJsonString()}");
                }

                if (reply["return"] is { } value)
                {
                    return value;
                }
            }
        }

        /// <summary>
        /// cont on the destination: query-migrate says "completed" a moment before the main loop leaves the inmigrate
        /// state, and cont in between fails with "Migration is not finalized yet"; it is retried until it runs.
        /// </summary>
        public void ContinueIncoming()
        {
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
            while (true)
            {
                try
                {
                    Execute("cont");
                    return;
                }
                catch (BenchException e) when (e.Message.Contains("not finalized", StringComparison.Ordinal) && DateTime.UtcNow < deadline)
                {
                    Thread.Sleep(1);
                }
            }
        }

        public void WaitForMigration()
        {
            var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(10);
            while (true)
            {
                string? status = Execute("query-migrate")?["status"]?.GetValue<string>();
                if (status == "completed")
                {
                    return;
                }

                if (status is "failed" or "cancelled" || DateTime.UtcNow > deadline)
                {
                    throw new BenchException($"QEMU's migration ended as '{status}'");
                }

                Thread.Sleep(1);
            }
        }

        public void Dispose()
        {
            _reader.Dispose();
            _stream.Dispose();
            _socket.Dispose();
        }
    }
}
