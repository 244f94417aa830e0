using System.Net;
using KvmSharp.Vmm.Config;

namespace KvmSharp.Vmm.Tests;

/// <summary>--net values as users write them (QEMU's hostfwd syntax), and what passt is told.</summary>
public sealed class NetConfigTests
{
    [Fact]
    public void User_WithForwardsAndMac()
    {
        var net = NetConfig.Parse("user,hostfwd=tcp:127.0.0.1:2222-:22,hostfwd=udp::5353-:53,mac=52-54-00-AB-cd-01");

        Assert.Equal(NetBackendKind.User, net.Kind);
        Assert.Null(net.TapName);
        Assert.Equal("52:54:00:ab:cd:01", net.MacText);
        Assert.Equal([new HostForward(false, IPAddress.Loopback, 2222, 22), new HostForward(true, null, 5353, 53)], net.HostForwards);
        Assert.Equal(["127.0.0.1/2222:22", "5353:53"], net.HostForwards.Select(f => f.PasstSpec));
    }

    [Fact]
    public void DefaultMacs_AreQemusCountingUp()
    {
        Assert.Equal("52:54:00:12:34:56", NetConfig.Parse("user").MacText);
        Assert.Equal("52:54:00:12:34:57", NetConfig.Parse("tap=tap1", index: 1).MacText);
    }

    [Fact]
    public void Tap_Name()
    {
        var net = NetConfig.Parse("tap=kvm-tap.0");

        Assert.Equal(NetBackendKind.Tap, net.Kind);
        Assert.Equal("kvm-tap.0", net.TapName);
        Assert.Empty(net.HostForwards);
    }

    [Theory]
    [InlineData("tap=")]
    [InlineData("tap=sixteen-chars-xx")]
    [InlineData("user,hostfwd=tcp:1.2.3.4:0-:80")]
    [InlineData("user,hostfwd=tcp:1.2.3.4:80")]
    [InlineData("user,mac=zz:54:00:12:34:56")]
    [InlineData("user,mac=53:54:00:12:34:56")]
    public void Invalid_Throws(string text) => Assert.Throws<VmConfigException>(() => NetConfig.Parse(text));
}
