using KvmSharp.Kvm;
using KvmSharp.Vmm.Pci;

namespace KvmSharp.Vmm.Tests.Pci;

public class KvmMsiWiringTests
{
    private readonly RecordingWiring _wiring = new();

    [Fact]
    public void Routing_KeepsThePcDefaults_AndAddsOrReplacesMsiRoutes()
    {
        var routing = new KvmMsiRouting(_wiring);
        uint a = routing.AllocateGsi();
        uint b = routing.AllocateGsi();

        routing.SetMsiRoute(b, 0xFEE0_1000, 0x41);
        routing.SetMsiRoute(a, 0xFEE0_0000, 0x40);
        routing.SetMsiRoute(b, 0xFEE0_2000, 0x42);

        Assert.Equal((24u, 25u), (a, b));
        Assert.Equal(3, _wiring.Tables.Count);
        var last = _wiring.Tables[^1];
        Assert.Equal(GsiRoute.PcDefaults().Count + 2, last.Count);
        Assert.Equal(GsiRoute.PcDefaults(), last.Take(40));
        Assert.Equal([GsiRoute.ToMsi(25, 0xFEE0_2000, 0x42), GsiRoute.ToMsi(24, 0xFEE0_0000, 0x40)], last.Skip(40));
        Assert.Equal(2, routing.MsiRouteCount);
    }

    [Fact]
    public void Delivery_InstallsRouteThenIrqfd_OnceForAnUnchangedMessage_AndSignalsTheEventFd()
    {
        var routing = new KvmMsiRouting(_wiring);
        using var delivery = new KvmIrqfdMsiDelivery(routing, vectorCount: 3);

        delivery.Deliver(1, 0xFEE0_1000, 0x41);
        delivery.Deliver(1, 0xFEE0_1000, 0x41);

        Assert.Equal(["routing 41", "irqfd 25"], _wiring.Calls);
        Assert.Equal(25u, delivery.GsiOf(1));
        Assert.Equal(2UL, _wiring.Irqfds[25].Consume());
        Assert.Equal(1, delivery.RouteUpdates);
        Assert.Equal(2, delivery.Delivered);
    }

    [Fact]
    public void Delivery_ReinstallsTheRoute_WhenTheGuestReprogrammedTheVector()
    {
        var routing = new KvmMsiRouting(_wiring);
        using var delivery = new KvmIrqfdMsiDelivery(routing, vectorCount: 2);

        delivery.Deliver(0, 0xFEE0_0000, 0x40);
        delivery.Deliver(0, 0xFEE0_1000, 0x40);
        delivery.Deliver(0, 0xFEE0_1000, 0x51);

        Assert.Equal(["routing 41", "irqfd 24", "routing 41", "routing 41"], _wiring.Calls);
        Assert.Equal(GsiRoute.ToMsi(24, 0xFEE0_1000, 0x51), _wiring.Tables[^1][^1]);
        Assert.Equal(3UL, _wiring.Irqfds[24].Consume());
    }

    [Fact]
    public void Delivery_DropsNonInterruptAddressesAndUnknownVectors()
    {
        var routing = new KvmMsiRouting(_wiring);
        using var delivery = new KvmIrqfdMsiDelivery(routing, vectorCount: 2);

        delivery.Deliver(0, 0x0000_1000, 0x40);
        delivery.Deliver(2, 0xFEE0_0000, 0x40);
        delivery.Deliver(-1, 0xFEE0_0000, 0x40);

        Assert.Empty(_wiring.Calls);
        Assert.Equal(3, delivery.Dropped);
    }

    [Fact]
    public void Dispose_RemovesTheIrqfds_AndLaterDeliveriesAreDropped()
    {
        var routing = new KvmMsiRouting(_wiring);
        var delivery = new KvmIrqfdMsiDelivery(routing, vectorCount: 2);
        delivery.Deliver(1, 0xFEE0_1000, 0x41);

        delivery.Dispose();
        delivery.Deliver(1, 0xFEE0_1000, 0x41);
        delivery.Dispose();

        Assert.Equal(["routing 41", "irqfd 25", "irqfd- 25"], _wiring.Calls);
        Assert.Equal(1, delivery.Dropped);
    }
}
