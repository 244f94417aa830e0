using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;

namespace KvmSharp.Compare;

/// <summary>
/// Item 8: the network through the same backend for both VMMs, passt (kvmsharp <c>--net user</c>; QEMU
/// <c>-netdev stream</c> to a passt socket, virtio-net on microvm's virtio-mmio): iperf3 from the Debian guest to
/// a server on the host's 127.0.0.1 through the gateway address and back (<c>-R</c>), the receiver's rate from the
/// client's summary; and a 1-byte TCP ping-pong from the host through a port forward to <c>nc -l -e cat</c> in the guest.
/// </summary>
internal sealed partial class NetworkBench(Options options, ResultTable table, Func<string[], (string File, string[] Args)> kvmsharpCommand,
    Func<string, long, string[]> qemuCommon)
{
    private const string Cmdline = "console=ttyS0 panic=-1 quiet";
    private const long Memory = 512L << 20;
    private const int GuestEchoPort = 7777;
    private const int PingPongs = 1000;
    private static readonly TimeSpan BootTimeout = TimeSpan.FromMinutes(15);
    private static readonly TimeSpan CommandTimeout = TimeSpan.FromMinutes(10);

    public void Run(bool onKvm, string where, bool tap, Row g2hRow, Row h2gRow, Row rttRow)
    {
        var results = new Dictionary<bool, List<(double G2H, double H2G, double RttUs)>> { [true] = [], [false] = [] };
        string backend = tap ? "tap" : "passt";
        for (int round = 1; round <= options.DebianRounds; round++)
        {
            foreach (bool ours in new[] { true, false })
            {
                var r = tap ? MeasureTap(ours, onKvm) : Measure(ours, onKvm);
                results[ours].Add(r);
                Program.Log($"network ({backend}) round {round} {(ours ? "kvmsharp" : "qemu")}: guest->host {r.G2H:0} Mbit/s, host->guest {r.H2G:0} Mbit/s, round trip {r.RttUs:0} us");
            }
        }

        double M(bool ours, Func<(double G2H, double H2G, double RttUs), double> f) => Program.Median(results[ours].Select(f));
        string seconds = options.NetSeconds.ToString(CultureInfo.InvariantCulture);
        string how = tap
            ? "TAP with vnet header both sides (`--net tap=` vs `-netdev tap,vnet_hdr=on`), peer in a network namespace"
            : "passt both sides (`--net user` vs `-netdev stream`)";
        table.Set(g2hRow, $"TCP throughput guest to host on {where}, {how}, `iperf3 -c PEER -t {seconds}` (Mbit/s, higher is better)",
            M(true, r => r.G2H), M(false, r => r.G2H), "0", higherIsBetter: true);
        table.Set(h2gRow, $"TCP throughput host to guest on {where}, {backend}, `iperf3 -R` (Mbit/s, higher is better)",
            M(true, r => r.H2G), M(false, r => r.H2G), "0", higherIsBetter: true);
        table.Set(rttRow, tap
                ? $"TCP round trip on {where}, {backend}, 1 byte from the namespace → guest `nc -e cat` → back (µs, median of {PingPongs}, lower is better)"
                : $"TCP round trip on {where}, {backend}, 1 byte host → guest `nc -e cat` → host through a passt port forward (µs, median of {PingPongs}, lower is better)",
            M(true, r => r.RttUs), M(false, r => r.RttUs), "0");
    }

    /// <summary>
    /// Both VMMs inside a network namespace made for the round, on a TAP interface there (192.0.2.1/24, TEST-NET-1)
    /// with iperf3's server and the ping-pong client beside it; the guest takes 192.0.2.2 by hand.
    /// </summary>
    private (double G2H, double H2G, double RttUs) MeasureTap(bool ours, bool onKvm)
    {
        string vmlinuz = Path.Combine(options.GuestDir, "vmlinuz");
        string initrd = Path.Combine(options.GuestDir, "initramfs.cpio.gz");
        string ns = string.Create(CultureInfo.InvariantCulture, $"kvmsharp-bench-{Environment.ProcessId}");
        const string Peer = "192.0.2.1";
        string cmdline = Cmdline + " kvmsharp.net=off";
        Shell($"ip netns add {ns} && ip -n {ns} link set lo up && ip -n {ns} tuntap add tap0 mode tap && ip -n {ns} addr add {Peer}/24 dev tap0 && ip -n {ns} link set tap0 up");
        try
        {
            var command = ours
                ? kvmsharpCommand(["run", "--accel", onKvm ? "kvm" : "emulator", "--kernel", vmlinuz, "--initrd", initrd, "--memory", "512M",
                    "--cmdline", cmdline, "--net", "tap=tap0"])
                : (options.Qemu, [.. qemuCommon(onKvm ? "kvm" : "tcg", Memory), "-kernel", vmlinuz, "-initrd", initrd, "-append", cmdline,
                    "-device", "virtio-net-device,netdev=n0", "-netdev", "tap,id=n0,ifname=tap0,script=no,downscript=no,vnet_hdr=on"]);
            using var vmm = VmmProcess.Start("ip", ["netns", "exec", ns, command.File, .. command.Args]);
            vmm.WaitForLine("KVMSHARP-GUEST-READY", BootTimeout);
            int at = vmm.WaitForText("guest# ", 0, CommandTimeout);
            string up = Program.GuestCommandAt(vmm, ref at, "ip addr add 192.0.2.2/24 dev eth0 && ip link set eth0 up && echo eth0-up", out _);
            if (!up.Contains("eth0-up", StringComparison.Ordinal))
            {
                throw new BenchException($"the guest could not configure eth0: {up.Trim()}");
            }

            double g2h = Iperf(vmm, ref at, Peer, reverse: false, ns);
            double h2g = Iperf(vmm, ref at, Peer, reverse: true, ns);
            Program.GuestCommandAt(vmm, ref at, string.Create(CultureInfo.InvariantCulture, $"nc -l -p {GuestEchoPort} -e cat >/dev/null 2>&1 &"), out _);
            string script = Path.Combine(Path.GetTempPath(), string.Create(CultureInfo.InvariantCulture, $"kvmsharp-pingpong-{Environment.ProcessId}.py"));
            File.WriteAllText(script, string.Create(CultureInfo.InvariantCulture, $$"""
                import socket, statistics, time
                for attempt in range(200):
                    try:
                        s = socket.create_connection(("192.0.2.2", {{GuestEchoPort}}), 5)
                        break
                    except OSError:
                        time.sleep(0.5)
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                samples = []
                for i in range({{PingPongs + 50}}):
                    b = bytes([i % 256])
                    t0 = time.perf_counter()
                    s.sendall(b)
                    assert s.recv(1) == b
                    samples.append(time.perf_counter() - t0)
                print("rtt-us", statistics.median(samples[50:]) * 1e6)

                """));
            string said;
            try
            {
                said = Shell($"ip netns exec {ns} python3 {script}");
            }
            finally
            {
                File.Delete(script);
            }

            var rtt = RttLine().Match(said);
            if (!rtt.Success)
            {
                throw new BenchException($"the ping-pong from the namespace failed: {said.Trim()}");
            }

            vmm.Type("poweroff -f\n");
            try
            {
                vmm.WaitForExit(TimeSpan.FromSeconds(30));
            }
            catch (BenchException)
            {
                vmm.Kill();
            }

            return (g2h, h2g, double.Parse(rtt.Groups[1].Value, CultureInfo.InvariantCulture));
        }
        finally
        {
            Shell($"ip netns delete {ns}", check: false);
        }
    }

    private static string Shell(string command, bool check = true)
    {
        using var p = Process.Start(new ProcessStartInfo("sh", ["-c", command])
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        }) ?? throw new BenchException("cannot start sh");
        var stdout = p.StandardOutput.ReadToEndAsync();
        string stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (check && p.ExitCode != 0)
        {
            throw new BenchException($"'{command}' failed ({p.ExitCode}): {stderr.Trim()}");
        }

        return stdout.GetAwaiter().GetResult() + stderr;
    }

    private (double G2H, double H2G, double RttUs) Measure(bool ours, bool onKvm)
    {
        string vmlinuz = Path.Combine(options.GuestDir, "vmlinuz");
        string initrd = Path.Combine(options.GuestDir, "initramfs.cpio.gz");
        int forward = FreePort();
        string? passtDir = null;
        Process? passt = null;
        try
        {
            (string File, string[] Args) command;
            if (ours)
            {
                command = kvmsharpCommand(["run", "--accel", onKvm ? "kvm" : "emulator", "--kernel", vmlinuz, "--initrd", initrd, "--memory", "512M",
                    "--cmdline", Cmdline, "--net", string.Create(CultureInfo.InvariantCulture, $"user,hostfwd=tcp:127.0.0.1:{forward}-:{GuestEchoPort}")]);
            }
            else
            {
                // passt drops to nobody before it binds its socket when started as root: the directory must let it.
                passtDir = Directory.CreateTempSubdirectory("kvmsharp-compare-passt-").FullName;
                File.SetUnixFileMode(passtDir, (UnixFileMode)0x1FF);
                string socket = Path.Combine(passtDir, "passt.sock");
                passt = Process.Start(new ProcessStartInfo("passt",
                    ["-f", "-q", "-e", "-1", "-s", socket, "-t", string.Create(CultureInfo.InvariantCulture, $"127.0.0.1/{forward}:{GuestEchoPort}")])
                {
                    UseShellExecute = false,
                    RedirectStandardError = true,
                    RedirectStandardOutput = true,
                }) ?? throw new BenchException("cannot start passt");
                passt.BeginErrorReadLine();
                passt.BeginOutputReadLine();
                var clock = Stopwatch.StartNew();
                while (!File.Exists(socket))
                {
                    if (passt.HasExited || clock.Elapsed > TimeSpan.FromSeconds(30))
                    {
                        throw new BenchException("passt did not create its socket");
                    }

                    Thread.Sleep(20);
                }

                command = (options.Qemu, [.. qemuCommon(onKvm ? "kvm" : "tcg", Memory), "-kernel", vmlinuz, "-initrd", initrd, "-append", Cmdline,
                    "-device", "virtio-net-device,netdev=n0", "-netdev", $"stream,id=n0,server=off,addr.type=unix,addr.path={socket}"]);
            }

            using var vmm = VmmProcess.Start(command.File, command.Args);
            vmm.WaitForLine("KVMSHARP-GUEST-READY", BootTimeout);
            int at = vmm.WaitForText("guest# ", 0, CommandTimeout);
            var lease = LeaseLine().Match(vmm.Output);
            if (!lease.Success)
            {
                throw new BenchException($"the guest printed no DHCP lease ({vmm.CommandLine})");
            }

            string gateway = lease.Groups[1].Value;
            double g2h = Iperf(vmm, ref at, gateway, reverse: false);
            double h2g = Iperf(vmm, ref at, gateway, reverse: true);
            Program.GuestCommandAt(vmm, ref at, string.Create(CultureInfo.InvariantCulture, $"nc -l -p {GuestEchoPort} -e cat >/dev/null 2>&1 &"), out _);
            double rtt = PingPong(forward);
            vmm.Type("poweroff -f\n");
            try
            {
                vmm.WaitForExit(TimeSpan.FromSeconds(30));
            }
            catch (BenchException)
            {
                vmm.Kill();
            }

            return (g2h, h2g, rtt);
        }
        finally
        {
            if (passt is { HasExited: false })
            {
                passt.Kill();
                passt.WaitForExit();
            }

            passt?.Dispose();
            if (passtDir is not null)
            {
                Directory.Delete(passtDir, recursive: true);
            }
        }
    }

    /// <summary>
    /// One iperf3 run against a one-off server on the host's 127.0.0.1; the receiver's rate in Mbit/s, from the
    /// client's summary (with -R the guest is the receiver; without, the server reports its rate to the client).
    /// </summary>
    private double Iperf(VmmProcess vmm, ref int at, string gateway, bool reverse, string? ns = null)
    {
        int port = FreePort();
        string p = port.ToString(CultureInfo.InvariantCulture);
        var start = ns is null
            ? new ProcessStartInfo("iperf3", ["-s", "-1", "-B", "127.0.0.1", "-p", p])
            : new ProcessStartInfo("ip", ["netns", "exec", ns, "iperf3", "-s", "-1", "-B", gateway, "-p", p]);
        start.UseShellExecute = false;
        start.RedirectStandardOutput = true;
        start.RedirectStandardError = true;
        using var server = Process.Start(start) ?? throw new BenchException("cannot start iperf3 on the host");
        _ = server.StandardOutput.ReadToEndAsync();
        _ = server.StandardError.ReadToEndAsync();
        WaitListening(port, ns);
        string seconds = options.NetSeconds.ToString(CultureInfo.InvariantCulture);
        string said = Program.GuestCommandAt(vmm, ref at,
            string.Create(CultureInfo.InvariantCulture, $"iperf3 -c {gateway} -p {port} -t {seconds} -f m {(reverse ? "-R" : "")} | grep receiver"), out _);
        var rate = ReceiverLine().Match(said);
        if (!server.WaitForExit(TimeSpan.FromMinutes(2)) || !rate.Success)
        {
            server.Kill();
            throw new BenchException($"iperf3 {(reverse ? "host to guest" : "guest to host")} did not complete: {said.Trim()}");
        }

        return double.Parse(rate.Groups[1].Value, CultureInfo.InvariantCulture);
    }

    /// <summary>Median microseconds of 1-byte writes echoed back through the forward, after a warm-up.</summary>
    private static double PingPong(int port)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                using var client = new TcpClient { NoDelay = true };
                client.Connect(IPAddress.Loopback, port);
                using var stream = client.GetStream();
                stream.ReadTimeout = 30_000;
                var one = new byte[1];
                var samples = new List<double>(PingPongs);
                for (int i = 0; i < PingPongs + 50; i++)
                {
                    one[0] = (byte)i;
                    long t0 = Stopwatch.GetTimestamp();
                    stream.Write(one);
                    if (stream.Read(one) != 1 || one[0] != (byte)i)
                    {
                        throw new IOException("the echo did not come back");
                    }

                    if (i >= 50)
                    {
                        samples.Add(Stopwatch.GetElapsedTime(t0).TotalMicroseconds);
                    }
                }

                return Program.Median(samples);
            }
            catch (Exception e) when (e is IOException or SocketException && clock.Elapsed < TimeSpan.FromMinutes(2))
            {
                // nc in the guest may not listen yet (passt accepts on the host side and resets when the guest refuses).
                Thread.Sleep(500);
            }
        }
    }

    /// <summary>Waits until something listens on TCP <paramref name="port"/>, in the root namespace or in <paramref name="ns"/>.</summary>
    private static void WaitListening(int port, string? ns)
    {
        string hex = string.Create(CultureInfo.InvariantCulture, $":{port:X4} ");
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < TimeSpan.FromSeconds(60))
        {
            string table = ns is null ? File.ReadAllText("/proc/net/tcp") : Shell($"ip netns exec {ns} cat /proc/net/tcp");
            // A listening socket: local address ends in the port, state 0A (TCP_LISTEN).
            if (table.Split('\n').Any(line => line.Contains(hex, StringComparison.Ordinal) && line.Contains(" 0A ", StringComparison.Ordinal)))
            {
                return;
            }

            Thread.Sleep(50);
        }

        throw new BenchException("the iperf3 server did not start listening");
    }

    private static int FreePort()
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        return ((IPEndPoint)probe.LocalEndpoint).Port;
    }

    [GeneratedRegex(@"([\d.]+) Mbits/sec\s+receiver")]
    private static partial Regex ReceiverLine();

    [GeneratedRegex(@"rtt-us ([\d.]+)")]
    private static partial Regex RttLine();

    [GeneratedRegex(@"init: eth0 \S+ via (\S+) mtu")]
    private static partial Regex LeaseLine();
}
