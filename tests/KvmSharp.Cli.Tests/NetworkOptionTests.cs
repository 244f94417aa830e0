using KvmSharp.Native;

namespace KvmSharp.Cli.Tests;

/// <summary>Every bad --net gets one line saying what is wrong and what to do, and exit status 1, before any guest runs.</summary>
public sealed class NetworkOptionTests
{
    [Theory]
    [InlineData("bogus", "kvmsharp: --net 'bogus' names no backend. Use --net user[,hostfwd=tcp:[HOSTADDR]:HOSTPORT-:GUESTPORT]...[,mac=52:54:00:12:34:56] or --net tap=NAME[,mac=...].\n")]
    [InlineData("user,mac=01:00:00:00:00:01", "kvmsharp: --net mac '01:00:00:00:00:01' is a multicast address (the low bit of the first byte is set); a NIC needs a unicast one, for example 52:54:00:12:34:56.\n")]
    [InlineData("user,mac=52:54:00:12:34", "kvmsharp: --net mac '52:54:00:12:34' is not a MAC address. Write six hex pairs, for example mac=52:54:00:12:34:56.\n")]
    [InlineData("user,mac=00:00:00:00:00:00", "kvmsharp: --net mac '00:00:00:00:00:00' is all zeroes; a NIC needs a real address, for example 52:54:00:12:34:56.\n")]
    [InlineData("user,hostfwd=tcp:127.0.0.1:70000-:80", "kvmsharp: --net hostfwd 'tcp:127.0.0.1:70000-:80': '70000' is not a port (1-65535). Write hostfwd=tcp:[HOSTADDR]:HOSTPORT-:GUESTPORT, for example hostfwd=tcp:127.0.0.1:2222-:22.\n")]
    [InlineData("user,hostfwd=tcp::8080-10.0.2.15:80", "kvmsharp: --net hostfwd 'tcp::8080-10.0.2.15:80': the guest side must be ':GUESTPORT' (passt forwards to the guest's own address). Write hostfwd=tcp:[HOSTADDR]:HOSTPORT-:GUESTPORT, for example hostfwd=tcp:127.0.0.1:2222-:22.\n")]
    [InlineData("user,hostfwd=sctp::1-:2", "kvmsharp: --net hostfwd 'sctp::1-:2' is not PROTO:HOSTADDR:HOSTPORT on the host side. Write hostfwd=tcp:[HOSTADDR]:HOSTPORT-:GUESTPORT, for example hostfwd=tcp:127.0.0.1:2222-:22.\n")]
    [InlineData("user,hostfwd=tcp:localhost:80-:80", "kvmsharp: --net hostfwd host address 'localhost' is not an IPv4 address. Write hostfwd=tcp:[HOSTADDR]:HOSTPORT-:GUESTPORT, for example hostfwd=tcp:127.0.0.1:2222-:22.\n")]
    [InlineData("tap=bad/name", "kvmsharp: --net tap name 'bad/name' is not an interface name (1 to 15 characters, no '/', ':' or spaces).\n")]
    [InlineData("tap=tap0,hostfwd=tcp::1-:2", "kvmsharp: --net hostfwd is for --net user; a TAP's guest is reached on the TAP's network directly.\n")]
    [InlineData("user,speed=10", "kvmsharp: --net option 'speed=10' is unknown. Use --net user[,hostfwd=tcp:[HOSTADDR]:HOSTPORT-:GUESTPORT]...[,mac=52:54:00:12:34:56] or --net tap=NAME[,mac=...].\n")]
    public void BadNetOption_OneLineAndExitCode1(string value, string expected)
    {
        var r = CliRunner.Run("run", "--kernel", RepoPaths.Fixture("kernels", "multiboot-test.elf"), "--accel", "emulator", "--net", value);

        Assert.Equal(1, r.ExitCode);
        Assert.Equal(expected, r.Error);
    }

    [Fact]
    public void PasstMissing_SaysWhichPackage()
    {
        var r = CliRunner.RunProcess(["env", "KVMSHARP_PASST=/nonexistent/passt"],
            "run", "--kernel", RepoPaths.Fixture("kernels", "multiboot-test.elf"), "--accel", "emulator", "--net", "user");

        Assert.Equal(1, r.ExitCode);
        Assert.Equal("kvmsharp: --net user needs passt, which is not installed: apt-get install passt (Debian/Ubuntu), dnf install passt (Fedora); or set KVMSHARP_PASST to its path, or use --net tap=NAME.\n", r.Error);
    }

    [Fact]
    public void PasstCannotStart_GivesItsReason()
    {
        Assert.True(Environment.UserName == "root", "The test makes an empty network namespace (unshare -n), which needs root (CI runs the tests as root).");

        // In a namespace with only loopback, passt has no interface to copy and exits at once.
        var r = CliRunner.RunProcess(["unshare", "-n"],
            "run", "--kernel", RepoPaths.Fixture("kernels", "multiboot-test.elf"), "--accel", "emulator", "--console", "file:/dev/null", "--net", "user");

        Assert.Equal(1, r.ExitCode);
        Assert.Equal("kvmsharp: --net user: passt exited at start (status 1): External interface not usable. passt needs a host interface with a default route; check the --net hostfwd ports are free.\n", r.Error);
    }

    [Fact]
    public void TapBusy_OneLine()
    {
        Assert.True(Environment.UserName == "root", "Creating a TAP interface needs root (CI runs the tests as root).");
        string name = $"kvmsbusy{Environment.ProcessId % 100000}";
        using var holder = TapDevice.Open(name, 12);

        var r = CliRunner.Run("run", "--kernel", RepoPaths.Fixture("kernels", "multiboot-test.elf"), "--accel", "emulator", "--net", $"tap={name}");

        Assert.Equal(1, r.ExitCode);
        Assert.Equal($"kvmsharp: --net tap={name}: the TAP interface is busy (another process has it open). Close that process or pick another interface.\n", r.Error);
    }

    [Fact]
    public void TapWithoutPermission_SaysHowToGetIt()
    {
        string kernel = Path.Combine(Path.GetTempPath(), $"kvmsharp-net-{Environment.ProcessId}.elf");
        File.Copy(RepoPaths.Fixture("kernels", "multiboot-test.elf"), kernel, overwrite: true);
        File.SetUnixFileMode(kernel, (UnixFileMode)0x1A4);
        try
        {
            // As nobody: /dev/net/tun is 0666 on most systems (then TUNSETIFF refuses to create the interface), 0600 on some.
            var r = CliRunner.RunProcess(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"],
                "run", "--kernel", kernel, "--accel", "emulator", "--net", "tap=kvmsnoperm0");

            Assert.Equal(1, r.ExitCode);
            Assert.Matches(@"^kvmsharp: --net tap=kvmsnoperm0: (cannot open /dev/net/tun: Permission denied \(EACCES\)\. Run as a user who may open it|no permission to use or create the TAP interface\. Run as root \(CAP_NET_ADMIN\), or create it for your user: sudo ip tuntap add kvmsnoperm0 mode tap user \$USER)\.\n$", r.Error);
        }
        finally
        {
            File.Delete(kernel);
        }
    }
}
