using System.Diagnostics;
using System.Globalization;
using KvmSharp.Devices.Virtio.Net;
using KvmSharp.Native;
using KvmSharp.Vmm.Config;

namespace KvmSharp.Vmm.Net;

/// <summary>A network backend could not be set up; the message is one line saying what is wrong and what to do.</summary>
public sealed class NetworkBackendException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>Opens the backend a <see cref="NetConfig"/> names: passt for <c>user</c>, a TAP device for <c>tap=</c>.</summary>
public static class NetworkBackends
{
    /// <summary>The MTU passt hands out by DHCP (its default: the 802.3 maximum less the header, rounded to 32 bits).</summary>
    public const ushort PasstMtu = 65520;

    /// <summary>Opens the backend; throws <see cref="NetworkBackendException"/> with one line on any host problem.</summary>
    public static INetworkBackend Open(NetConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        return config.Kind switch
        {
            NetBackendKind.User => PasstBackend.Start(config.HostForwards),
            _ => OpenTap(config.TapName!),
        };
    }

    private static TapBackend OpenTap(string name)
    {
        TapDevice tap;
        try
        {
            tap = TapDevice.Open(name, VirtioNet.HeaderLength);
        }
        catch (NativeErrorException e) when (e.Operation.StartsWith("open(", StringComparison.Ordinal))
        {
            throw new NetworkBackendException(e.Errno == Errno.ENOENT
                ? $"--net tap={name}: {TapDevice.ControlPath} does not exist; load the tun module (modprobe tun)."
                : $"--net tap={name}: cannot open {TapDevice.ControlPath}: {Errno.Describe(e.Errno)}. Run as a user who may open it.", e);
        }
        catch (NativeErrorException e)
        {
            throw new NetworkBackendException(e.Errno switch
            {
                Errno.EBUSY => $"--net tap={name}: the TAP interface is busy (another process has it open). Close that process or pick another interface.",
                Errno.EPERM or Errno.EACCES => $"--net tap={name}: no permission to use or create the TAP interface. Run as root (CAP_NET_ADMIN), or create it for your user: sudo ip tuntap add {name} mode tap user $USER.",
                Errno.EINVAL => $"--net tap={name}: '{name}' exists and is not a TAP interface (a TUN, or another kind). Pick another name.",
                _ => $"--net tap={name}: {e.Message}.",
            }, e);
        }

        return new TapBackend(tap, mtu: 1500);
    }
}

/// <summary>
/// passt (https://passt.top) as a child process on one end of a socket pair (<c>--fd</c>), frames length-prefixed
/// as with QEMU's <c>-netdev stream</c>. passt runs sandboxed in its own process; with <c>--one-off</c> it exits when
/// the VMM closes the socket, so it never outlives the VM, even a VMM killed with SIGKILL.
/// </summary>
public sealed class PasstBackend : StreamFramedBackend
{
    /// <summary>Where passt is looked for when KVMSHARP_PASST is not set: PATH, then Debian's location.</summary>
    public const string ExecutableName = "passt";

    /// <summary>Socket buffer size asked for each way on both ends of the passt socket pair.</summary>
    public const int SocketBufferBytes = 2 << 20;

    /// <summary>How long passt must stay up after its start to count as serving.</summary>
    public static readonly TimeSpan StartupGrace = TimeSpan.FromMilliseconds(300);

    private readonly Process _process;
    private readonly System.Diagnostics.Stopwatch _started = System.Diagnostics.Stopwatch.StartNew();
    private readonly Lock _errorLock = new();
    private string? _lastError;

    private PasstBackend(FileDescriptor socket, Process process)
        : base(socket, "user (passt pid " + process.Id.ToString(CultureInfo.InvariantCulture) + ")", NetworkBackends.PasstMtu)
    {
        _process = process;
        _process.ErrorDataReceived += (_, e) =>
        {
            // passt reports on stderr with -e; keep the last real line (not its syslog complaints) for messages.
            if (!string.IsNullOrWhiteSpace(e.Data) && !e.Data.StartsWith("Failed to send", StringComparison.Ordinal)
                && !e.Data.Contains("Changing to nobody", StringComparison.Ordinal))
            {
                lock (_errorLock)
                {
                    _lastError = e.Data.Trim();
                }
            }
        };
        _process.BeginErrorReadLine();
    }

    /// <summary>The passt process id.</summary>
    public int ProcessId => _process.Id;

    /// <summary>passt's last complaint on stderr, if any (why it exited, typically).</summary>
    public string? LastError
    {
        get
        {
            lock (_errorLock)
            {
                return _lastError;
            }
        }
    }

    /// <summary>Finds passt, starts it on a new socket pair and checks it came up. Throws <see cref="NetworkBackendException"/>.</summary>
    public static PasstBackend Start(IReadOnlyList<HostForward> forwards)
    {
        ArgumentNullException.ThrowIfNull(forwards);
        string executable = FindExecutable()
            ?? throw new NetworkBackendException("--net user needs passt, which is not installed: apt-get install passt (Debian/Ubuntu), dnf install passt (Fedora); or set KVMSHARP_PASST to its path, or use --net tap=NAME.");

        var (ours, theirs) = StreamIo.CreateSocketPair(inheritSecond: true);
        // The default socket buffers (~200 KiB) hold three of passt's 64 KiB frames: passt then waits for room after
        // every few frames and host-to-guest TCP ran at a fifth of the rate measured with 2 MiB (bench item 8). The
        // kernel caps the request at net.core.[rw]mem_max; a refusal leaves the defaults, which still work.
        StreamIo.SetSocketBuffers(ours, SocketBufferBytes);
        StreamIo.SetSocketBuffers(theirs, SocketBufferBytes);

        Process process;
        try
        {
            var start = new ProcessStartInfo(executable)
            {
                UseShellExecute = false,
                RedirectStandardError = true,
                RedirectStandardOutput = true,
                RedirectStandardInput = false,
            };
            // Foreground, stderr logging, quiet, one client, our socket.
            foreach (string arg in (string[])["--foreground", "--stderr", "--quiet", "--one-off", "--fd", theirs.Number.ToString(CultureInfo.InvariantCulture)])
            {
                start.ArgumentList.Add(arg);
            }

            var tcp = forwards.Where(f => !f.Udp).Select(f => f.PasstSpec).ToArray();
            var udp = forwards.Where(f => f.Udp).Select(f => f.PasstSpec).ToArray();
            if (tcp.Length > 0)
            {
                start.ArgumentList.Add("--tcp-ports");
                start.ArgumentList.Add(string.Join(',', tcp));
            }

            if (udp.Length > 0)
            {
                start.ArgumentList.Add("--udp-ports");
                start.ArgumentList.Add(string.Join(',', udp));
            }

            try
            {
                process = Process.Start(start) ?? throw new NetworkBackendException($"--net user: could not start {executable}.");
            }
            catch (System.ComponentModel.Win32Exception e)
            {
                throw new NetworkBackendException($"--net user: could not start {executable}: {e.Message}.", e);
            }
        }
        catch
        {
            ours.Dispose();
            theirs.Dispose();
            throw;
        }

        // passt has its copy of the socket now; ours would keep the pair alive after passt exits.
        theirs.Dispose();
        var backend = new PasstBackend(ours, process);
        process.StandardOutput.Close();
        return backend;
    }

    /// <summary>
    /// passt checks its configuration (interfaces, routes) before it serves, and a bad setup exits within tens of
    /// milliseconds. The machine is built meanwhile; before the vCPUs start, this waits out the rest of
    /// <see cref="StartupGrace"/> from passt's start and throws <see cref="NetworkBackendException"/> (one line, with
    /// passt's reason) if it exited.
    /// </summary>
    public void EnsureServing()
    {
        var left = StartupGrace - _started.Elapsed;
        if (!_process.WaitForExit(left > TimeSpan.Zero ? left : TimeSpan.Zero))
        {
            return;
        }

        _process.WaitForExit(); // drain stderr
        throw new NetworkBackendException(string.Create(CultureInfo.InvariantCulture,
            $"--net user: passt exited at start (status {_process.ExitCode}): {LastError ?? "no message"}. passt needs a host interface with a default route; check the --net hostfwd ports are free."));
    }

    private static string? FindExecutable()
    {
        if (Environment.GetEnvironmentVariable("KVMSHARP_PASST") is { Length: > 0 } configured)
        {
            return File.Exists(configured) ? configured : null;
        }

        foreach (string dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries).Append("/usr/bin").Append("/usr/sbin"))
        {
            string candidate = Path.Combine(dir, ExecutableName);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        return null;
    }

    protected override void Dispose(bool disposing)
    {
        // Closing the socket makes passt (--one-off) exit; give it a moment, then make sure.
        base.Dispose(disposing);
        if (disposing)
        {
            try
            {
                if (!_process.WaitForExit(TimeSpan.FromSeconds(1)))
                {
                    _process.Kill();
                    _process.WaitForExit();
                }
            }
            catch (InvalidOperationException)
            {
                // already reaped
            }

            _process.Dispose();
        }
    }
}
