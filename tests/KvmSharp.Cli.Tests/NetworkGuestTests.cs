using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;

namespace KvmSharp.Cli.Tests;

/// <summary>
/// virtio-net end to end with Linux's driver, on KVM and on the software CPU. <c>--net user</c> (passt): the guest
/// gets its address by DHCP, fetches a 4 MiB file from a server on the host's 127.0.0.1 through the gateway address
/// (SHA-256 checked in the guest), and the host reaches the guest's web server through <c>hostfwd</c> (bytes checked
/// on the host). <c>--net tap=</c>: the same exchange with a peer in a network namespace the test makes and removes.
/// </summary>
public sealed partial class NetworkGuestTests
{
    private const int FileLength = 4 << 20;
    private static readonly TimeSpan BootTimeout = TestTime.Scaled(TimeSpan.FromMinutes(10));

    [Theory]
    [InlineData("kvm", Traits = [KvmTests.Trait, KvmTests.Kvm])]
    [InlineData("emulator")]
    public void DebianGuest_UserNetwork_DhcpFetchFromHostAndHostForward(string accel)
    {
        KvmTests.RequireFor(accel);
        string guest = GuestImages.RequireDefaultGuest();
        byte[] blob = new byte[FileLength];
        new Random(20261207).NextBytes(blob);
        string blobHash = Convert.ToHexStringLower(SHA256.HashData(blob));
        using var server = new OneFileHttpServer(blob);
        int forwardPort = FreeLoopbackPort();

        using var session = GuestSession.Start(
            "run", "--accel", accel, "--kernel", Path.Combine(guest, "vmlinux"),
            "--initrd", Path.Combine(guest, "initramfs.cpio.gz"), "--memory", "512M",
            "--cmdline", "console=ttyS0 reboot=k panic=-1 quiet",
            "--net", $"user,hostfwd=tcp:127.0.0.1:{forwardPort}-:8080", "--console", "virtio", "--stats");
        session.WaitFor("init: eth0 ", BootTimeout);
        session.WaitFor("guest# ", BootTimeout);

        // DHCP from passt: an address, the host's gateway as router, passt's MTU.
        var lease = LeaseLine().Match(session.Output);
        Assert.True(lease.Success, "no DHCP lease line:\n" + session.Output);
        string router = lease.Groups["router"].Value;
        Assert.Equal("65520", lease.Groups["mtu"].Value);
        Assert.Equal("52:54:00:12:34:56", session.Run("cat /sys/class/net/eth0/address"));

        // The gateway address reaches the host's loopback: a 4 MiB file, hashed in the guest.
        Assert.Equal($"{blobHash}  -", session.Run($"wget -q -O - http://{router}:{server.Port}/blob | sha256sum"));
        Assert.Equal(1, server.Requests);

        // hostfwd: the host's 127.0.0.1:PORT reaches the guest's port 8080 (busybox httpd), 1 MiB the guest made.
        string guestHash = session.Run("mkdir -p /www && dd if=/dev/urandom of=/www/g bs=65536 count=16 2>/dev/null && httpd -p 8080 -h /www && sha256sum < /www/g");
        byte[] fetched = FetchWithRetry($"http://127.0.0.1:{forwardPort}/g");
        Assert.Equal(1 << 20, fetched.Length);
        Assert.Equal($"{Convert.ToHexStringLower(SHA256.HashData(fetched))}  -", guestHash);

        session.Send("poweroff -f\n");
        Assert.Equal(0, session.WaitForExit(GuestSession.CommandTimeout));
        var stats = NetStats().Match(session.Output);
        Assert.True(stats.Success, "no virtio-net stats line:\n" + session.Output);
        Assert.True(long.Parse(stats.Groups["rxbytes"].Value.Replace(",", "", StringComparison.Ordinal)) > FileLength);
        Assert.True(long.Parse(stats.Groups["txbytes"].Value.Replace(",", "", StringComparison.Ordinal)) > 1 << 20);
        Assert.Equal("0", stats.Groups["errors"].Value);
        Assert.Equal("up", stats.Groups["link"].Value);
    }

    [Theory]
    [InlineData("kvm", Traits = [KvmTests.Trait, KvmTests.Kvm])]
    [InlineData("emulator")]
    public void DebianGuest_TapNetwork_ExchangesWithAPeerInANamespace(string accel)
    {
        KvmTests.RequireFor(accel);
        Assert.True(Environment.UserName == "root" || Environment.GetEnvironmentVariable("USER") == "root",
            "The TAP test creates a network namespace and a TAP interface: run the tests as root (CI does).");
        string guest = GuestImages.RequireDefaultGuest();
        string ns = $"kvmsharp-net-{Environment.ProcessId}-{accel}";
        string dir = Directory.CreateTempSubdirectory("kvmsharp-tap-").FullName;
        byte[] blob = new byte[FileLength];
        new Random(20261208).NextBytes(blob);
        File.WriteAllBytes(Path.Combine(dir, "blob"), blob);
        string blobHash = Convert.ToHexStringLower(SHA256.HashData(blob));
        Process? server = null;
        try
        {
            // 192.0.2.0/24 is TEST-NET-1: nothing real, and the namespace keeps it off the host's own network.
            Shell($"ip netns add {ns}");
            Shell($"ip -n {ns} link set lo up && ip -n {ns} tuntap add tap0 mode tap && ip -n {ns} addr add 192.0.2.1/24 dev tap0 && ip -n {ns} link set tap0 up");
            server = Process.Start(new ProcessStartInfo("ip", ["netns", "exec", ns, "python3", "-m", "http.server", "18080", "--bind", "192.0.2.1", "--directory", dir])
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            })!;

            using var session = GuestSession.StartWrapped(
                ["ip", "netns", "exec", ns],
                "run", "--accel", accel, "--kernel", Path.Combine(guest, "vmlinux"),
                "--initrd", Path.Combine(guest, "initramfs.cpio.gz"), "--memory", "512M",
                "--cmdline", "console=ttyS0 reboot=k panic=-1 quiet kvmsharp.net=off",
                "--net", "tap=tap0,mac=52:54:00:00:02:02", "--console", "virtio", "--stats");
            session.WaitFor("guest# ", BootTimeout);

            Assert.Equal("52:54:00:00:02:02", session.Run("cat /sys/class/net/eth0/address"));
            session.Run("ip addr add 192.0.2.2/24 dev eth0 && ip link set eth0 up");
            Assert.Equal($"{blobHash}  -", session.Run("wget -q -O - http://192.0.2.1:18080/blob | sha256sum"));

            string guestHash = session.Run("mkdir -p /www && dd if=/dev/urandom of=/www/g bs=65536 count=16 2>/dev/null && httpd -p 8080 -h /www && sha256sum < /www/g");
            string hostHash = Shell(
                $"ip netns exec {ns} python3 -c \"import hashlib,urllib.request; print(hashlib.sha256(urllib.request.urlopen('http://192.0.2.2:8080/g', timeout=60).read()).hexdigest())\"");
            Assert.Equal($"{hostHash.Trim()}  -", guestHash);

            session.Send("poweroff -f\n");
            Assert.Equal(0, session.WaitForExit(GuestSession.CommandTimeout));
            var stats = NetStats().Match(session.Output);
            Assert.True(stats.Success, "no virtio-net stats line:\n" + session.Output);
            Assert.Equal("tap tap0", stats.Groups["backend"].Value);
            Assert.Equal("0", stats.Groups["errors"].Value);
        }
        finally
        {
            if (server is not null)
            {
                server.Kill();
                server.WaitForExit();
            }

            Shell($"ip netns delete {ns}", check: false);
            Directory.Delete(dir, recursive: true);
        }

        // The namespace and its TAP are gone.
        Assert.DoesNotContain(ns, Shell("ip netns list"), StringComparison.Ordinal);
    }

    [GeneratedRegex(@"init: eth0 (?<addr>[0-9.]+)/(?<mask>[0-9.]+) via (?<router>[0-9.]+) mtu (?<mtu>\d+)")]
    private static partial Regex LeaseLine();

    [GeneratedRegex(@"virtio 00:[0-9a-f]{2}\.0 net (?<backend>[^:]+): rx (?<rx>[\d,]+) packets (?<rxbytes>[\d,]+) bytes 0 dropped, tx (?<tx>[\d,]+) packets (?<txbytes>[\d,]+) bytes 0 dropped; guest errors (?<errors>\d+) .* link (?<link>up|down);")]
    private static partial Regex NetStats();

    private static int FreeLoopbackPort()
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        return ((IPEndPoint)probe.LocalEndpoint).Port;
    }

    /// <summary>GET through a forward that may take a moment to be served (httpd just started in the guest).</summary>
    private static byte[] FetchWithRetry(string url)
    {
        using var client = new HttpClient { Timeout = GuestSession.CommandTimeout };
        var clock = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                return client.GetByteArrayAsync(new Uri(url)).GetAwaiter().GetResult();
            }
            catch (HttpRequestException) when (clock.Elapsed < GuestSession.CommandTimeout)
            {
                Thread.Sleep(500);
            }
        }
    }

    private static string Shell(string command, bool check = true)
    {
        using var p = Process.Start(new ProcessStartInfo("sh", ["-c", command])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        })!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        string stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (check)
        {
            Assert.True(p.ExitCode == 0, $"'{command}' failed ({p.ExitCode}): {stderr}");
        }

        return stdout.GetAwaiter().GetResult();
    }

    /// <summary>An HTTP/1.0 server on 127.0.0.1 that answers every GET with one file.</summary>
    private sealed class OneFileHttpServer : IDisposable
    {
        private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
        private readonly byte[] _body;
        private readonly Thread _thread;
        private int _requests;

        public OneFileHttpServer(byte[] body)
        {
            _body = body;
            _listener.Start();
            _thread = new Thread(Serve) { IsBackground = true };
            _thread.Start();
        }

        public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

        public int Requests => Volatile.Read(ref _requests);

        public void Dispose() => _listener.Stop();

        private void Serve()
        {
            try
            {
                while (true)
                {
                    using var client = _listener.AcceptTcpClient();
                    using var stream = client.GetStream();
                    var request = new StringBuilder();
                    var buffer = new byte[4096];
                    while (!request.ToString().Contains("\r\n\r\n", StringComparison.Ordinal))
                    {
                        int n = stream.Read(buffer);
                        if (n == 0)
                        {
                            break;
                        }

                        request.Append(Encoding.ASCII.GetString(buffer, 0, n));
                    }

                    Interlocked.Increment(ref _requests);
                    stream.Write(Encoding.ASCII.GetBytes($"HTTP/1.0 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {_body.Length}\r\nConnection: close\r\n\r\n"));
                    stream.Write(_body);
                }
            }
            catch (SocketException)
            {
                // stopped
            }
            catch (ObjectDisposedException)
            {
                // stopped
            }
        }
    }
}
