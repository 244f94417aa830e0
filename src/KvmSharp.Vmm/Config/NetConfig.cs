using System.Globalization;
using System.Net;

namespace KvmSharp.Vmm.Config;

/// <summary>Where a virtio-net adapter's frames go on the host.</summary>
public enum NetBackendKind
{
    /// <summary>User-mode networking through passt (no root): DHCP, DNS, the gateway address reaching the host's loopback, port forwards.</summary>
    User,

    /// <summary>A TAP interface (IFF_VNET_HDR, offloads): needs CAP_NET_ADMIN, or a persistent TAP owned by the user.</summary>
    Tap,
}

/// <summary>A host port passed into the guest (<c>hostfwd=tcp:HOSTADDR:HOSTPORT-:GUESTPORT</c>, QEMU's syntax).</summary>
/// <param name="Udp">UDP instead of TCP.</param>
/// <param name="HostAddress">The host address to listen on, or null for every address.</param>
/// <param name="HostPort">The host port (1-65535).</param>
/// <param name="GuestPort">The guest port (1-65535).</param>
public sealed record HostForward(bool Udp, IPAddress? HostAddress, int HostPort, int GuestPort)
{
    /// <summary>passt's -t/-u argument: <c>[ADDR/]HOSTPORT:GUESTPORT</c>.</summary>
    public string PasstSpec => string.Create(CultureInfo.InvariantCulture,
        $"{(HostAddress is null ? "" : HostAddress + "/")}{HostPort}:{GuestPort}");
}

/// <summary>One <c>--net</c>: a virtio-net adapter and its backend.</summary>
public sealed record NetConfig(NetBackendKind Kind, string? TapName, byte[] Mac, IReadOnlyList<HostForward> HostForwards)
{
    /// <summary>QEMU's first default MAC (52:54:00 is its locally administered prefix); the n-th adapter adds n to the last byte.</summary>
    public static readonly byte[] DefaultMac = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];

    private const string Usage = "Use --net user[,hostfwd=tcp:[HOSTADDR]:HOSTPORT-:GUESTPORT]...[,mac=52:54:00:12:34:56] or --net tap=NAME[,mac=...].";

    /// <summary>"52:54:00:12:34:56".</summary>
    public string MacText => string.Join(':', Mac.Select(b => b.ToString("x2", CultureInfo.InvariantCulture)));

    /// <summary>Parses one --net value; <paramref name="index"/> (0, 1, ...) picks the default MAC. Throws <see cref="VmConfigException"/> with one line.</summary>
    public static NetConfig Parse(string text, int index = 0)
    {
        ArgumentNullException.ThrowIfNull(text);
        var parts = text.Split(',');
        NetBackendKind kind;
        string? tapName = null;
        if (parts[0] == "user")
        {
            kind = NetBackendKind.User;
        }
        else if (parts[0].StartsWith("tap=", StringComparison.Ordinal))
        {
            kind = NetBackendKind.Tap;
            tapName = parts[0]["tap=".Length..];
            if (!KvmSharp.Native.TapDevice.IsValidName(tapName))
            {
                throw new VmConfigException($"--net tap name '{tapName}' is not an interface name (1 to 15 characters, no '/', ':' or spaces).");
            }
        }
        else
        {
            throw new VmConfigException($"--net '{text}' names no backend. {Usage}");
        }

        byte[] mac = DefaultMac.ToArray();
        mac[5] = (byte)(mac[5] + index);
        var forwards = new List<HostForward>();
        foreach (var option in parts.AsSpan(1))
        {
            if (option.StartsWith("mac=", StringComparison.Ordinal))
            {
                mac = ParseMac(option["mac=".Length..]);
            }
            else if (option.StartsWith("hostfwd=", StringComparison.Ordinal))
            {
                if (kind != NetBackendKind.User)
                {
                    throw new VmConfigException($"--net hostfwd is for --net user; a TAP's guest is reached on the TAP's network directly.");
                }

                forwards.Add(ParseForward(option["hostfwd=".Length..]));
            }
            else
            {
                throw new VmConfigException($"--net option '{option}' is unknown. {Usage}");
            }
        }

        return new NetConfig(kind, tapName, mac, forwards);
    }

    /// <summary>Six hex pairs separated by ':' or '-', unicast.</summary>
    public static byte[] ParseMac(string text)
    {
        var pieces = text.Split(':', '-');
        var mac = new byte[6];
        if (pieces.Length != 6)
        {
            throw new VmConfigException($"--net mac '{text}' is not a MAC address. Write six hex pairs, for example mac=52:54:00:12:34:56.");
        }

        for (int i = 0; i < 6; i++)
        {
            if (pieces[i].Length != 2 || !byte.TryParse(pieces[i], NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out mac[i]))
            {
                throw new VmConfigException($"--net mac '{text}' is not a MAC address. Write six hex pairs, for example mac=52:54:00:12:34:56.");
            }
        }

        if ((mac[0] & 1) != 0)
        {
            throw new VmConfigException($"--net mac '{text}' is a multicast address (the low bit of the first byte is set); a NIC needs a unicast one, for example 52:54:00:12:34:56.");
        }

        if (mac.All(b => b == 0))
        {
            throw new VmConfigException($"--net mac '{text}' is all zeroes; a NIC needs a real address, for example 52:54:00:12:34:56.");
        }

        return mac;
    }

    /// <summary><c>tcp:[HOSTADDR]:HOSTPORT-:GUESTPORT</c> or <c>udp:...</c> (QEMU's hostfwd; the guest address must stay empty).</summary>
    public static HostForward ParseForward(string text)
    {
        const string ForwardUsage = "Write hostfwd=tcp:[HOSTADDR]:HOSTPORT-:GUESTPORT, for example hostfwd=tcp:127.0.0.1:2222-:22.";
        int dash = text.IndexOf('-', StringComparison.Ordinal);
        if (dash < 0)
        {
            throw new VmConfigException($"--net hostfwd '{text}' has no '-' between the host and the guest side. {ForwardUsage}");
        }

        var host = text[..dash].Split(':');
        var guest = text[(dash + 1)..];
        if (host.Length != 3 || host[0] is not ("tcp" or "udp" or ""))
        {
            throw new VmConfigException($"--net hostfwd '{text}' is not PROTO:HOSTADDR:HOSTPORT on the host side. {ForwardUsage}");
        }

        IPAddress? address = null;
        if (host[1].Length != 0 && (!IPAddress.TryParse(host[1], out address) || address.AddressFamily != System.Net.Sockets.AddressFamily.InterNetwork))
        {
            throw new VmConfigException($"--net hostfwd host address '{host[1]}' is not an IPv4 address. {ForwardUsage}");
        }

        if (!guest.StartsWith(':'))
        {
            throw new VmConfigException($"--net hostfwd '{text}': the guest side must be ':GUESTPORT' (passt forwards to the guest's own address). {ForwardUsage}");
        }

        int hostPort = ParsePort(host[2], text, ForwardUsage);
        int guestPort = ParsePort(guest[1..], text, ForwardUsage);
        return new HostForward(host[0] == "udp", address, hostPort, guestPort);
    }

    private static int ParsePort(string text, string spec, string usage)
    {
        if (!int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int port) || port is < 1 or > 65535)
        {
            throw new VmConfigException($"--net hostfwd '{spec}': '{text}' is not a port (1-65535). {usage}");
        }

        return port;
    }
}
