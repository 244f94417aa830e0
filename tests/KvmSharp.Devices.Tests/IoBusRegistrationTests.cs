using KvmSharp.Devices.Bus;

namespace KvmSharp.Devices.Tests;

public class IoBusRegistrationTests
{
    [Fact]
    public void IdenticalRange_IsRejected_WithAMessageNamingBothRangesAndTheOwner()
    {
        var bus = IoBus.CreatePortBus();
        var serial = new RecordingDevice(1);
        bus.Register(0x3F8, 8, serial, "Serial");

        var ex = Assert.Throws<BusConflictException>(() => bus.Register(0x3F8, 8, new RecordingDevice(2), "Other"));

        Assert.Equal(
            "Port range 0x3f8-0x3ff overlaps 0x3f8-0x3ff already registered to Serial. Move one of the devices or unregister Serial first.",
            ex.Message);
        Assert.Equal(0x3F8UL, ex.Start);
        Assert.Equal(0x3FFUL, ex.Last);
        Assert.Same(serial, ex.Existing.Device);
    }

    [Fact]
    public void DefaultName_IsTheDeviceTypeName()
    {
        var bus = IoBus.CreateMmioBus();
        bus.Register(0xD000_0000, 0x1000, new RecordingDevice(1));

        var ex = Assert.Throws<BusConflictException>(() => bus.Register(0xD000_0FFF, 2, new RecordingDevice(2)));

        Assert.Equal(
            "MMIO range 0xd0000fff-0xd0001000 overlaps 0xd0000000-0xd0000fff already registered to RecordingDevice. Move one of the devices or unregister RecordingDevice first.",
            ex.Message);
    }

    [Fact]
    public void OneByteOverlapAtTheStart_IsRejected()
    {
        var bus = IoBus.CreatePortBus();
        bus.Register(0x10, 8, new RecordingDevice(1), "low");

        var ex = Assert.Throws<BusConflictException>(() => bus.Register(0x17, 4, new RecordingDevice(2), "new"));
        Assert.Equal("low", ex.Existing.Name);
        Assert.Equal(0x17UL, ex.Start);
        Assert.Equal(0x1AUL, ex.Last);
    }

    [Fact]
    public void OneByteOverlapAtTheEnd_IsRejected()
    {
        var bus = IoBus.CreatePortBus();
        bus.Register(0x20, 8, new RecordingDevice(1), "high");

        var ex = Assert.Throws<BusConflictException>(() => bus.Register(0x1C, 5, new RecordingDevice(2), "new"));
        Assert.Equal("Port range 0x1c-0x20 overlaps 0x20-0x27 already registered to high. Move one of the devices or unregister high first.", ex.Message);
    }

    [Fact]
    public void RangeInsideOrAroundAnother_IsRejected()
    {
        var bus = IoBus.CreateMmioBus();
        bus.Register(0x1000, 0x1000, new RecordingDevice(1), "big");

        Assert.Throws<BusConflictException>(() => bus.Register(0x1800, 1, new RecordingDevice(2)));
        Assert.Throws<BusConflictException>(() => bus.Register(0x0, 0x10000, new RecordingDevice(3)));
    }

    [Fact]
    public void OverlapWithTheFollowingRange_IsFoundEvenWithSeveralRegistered()
    {
        var bus = IoBus.CreatePortBus();
        bus.Register(0x10, 1, new RecordingDevice(1), "a");
        bus.Register(0x40, 1, new RecordingDevice(2), "b");
        bus.Register(0x80, 1, new RecordingDevice(3), "c");

        var ex = Assert.Throws<BusConflictException>(() => bus.Register(0x41, 0x40, new RecordingDevice(4), "d"));
        Assert.Equal("c", ex.Existing.Name);
        Assert.Equal(3, bus.Ranges.Length);
    }

    [Fact]
    public void AdjacentRanges_OnBothSides_AreAccepted()
    {
        var bus = IoBus.CreatePortBus();
        bus.Register(0x10, 0x10, new RecordingDevice(1), "low");
        bus.Register(0x30, 0x10, new RecordingDevice(2), "high");
        bus.Register(0x20, 0x10, new RecordingDevice(3), "middle");

        var ranges = bus.Ranges;
        Assert.Equal(3, ranges.Length);
        Assert.Equal("middle", ranges[1].Name);
        Assert.Equal(0x20UL, ranges[1].Start);
        Assert.Equal(0x2FUL, ranges[1].Last);
    }

    [Fact]
    public void ZeroLength_IsRejected()
    {
        var bus = IoBus.CreatePortBus();

        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => bus.Register(0x80, 0, new RecordingDevice(1), "post"));
        Assert.StartsWith("Port range at 0x80 for post is empty. Give the device at least one address.", ex.Message, StringComparison.Ordinal);
        Assert.Equal(0, bus.Ranges.Length);
    }

    [Fact]
    public void PortRangePastTheLastPort_IsRejected()
    {
        var bus = IoBus.CreatePortBus();
        bus.Register(0xFFFF, 1, new RecordingDevice(1), "top");

        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => bus.Register(0xFFF0, 0x11, new RecordingDevice(2), "wide"));
        Assert.StartsWith("Port range 0xfff0-0x10000 for wide lies outside the pio space, which ends at 0xffff.", ex.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentOutOfRangeException>(() => bus.Register(0x10000, 1, new RecordingDevice(3)));
        Assert.Equal(1, bus.Ranges.Length);
    }

    [Fact]
    public void RangeThatWrapsPastTheTopOfTheAddressSpace_IsRejected()
    {
        var bus = IoBus.CreateMmioBus();

        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => bus.Register(0xFFFF_FFFF_FFFF_FFF0, 0x11, new RecordingDevice(1), "wrap"));
        Assert.StartsWith("MMIO range 0xfffffffffffffff0+0x11 for wrap wraps around the end of the address space.", ex.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentOutOfRangeException>(() => bus.Register(2, ulong.MaxValue, new RecordingDevice(2)));
        Assert.Throws<ArgumentOutOfRangeException>(() => bus.Register(ulong.MaxValue, 2, new RecordingDevice(3)));

        // The largest legal ranges end exactly at the top.
        bus.Register(ulong.MaxValue, 1, new RecordingDevice(4), "last");
        bus.Register(0, ulong.MaxValue, new RecordingDevice(5), "all-but-last");
        Assert.Equal(2, bus.Ranges.Length);
        Assert.Equal(ulong.MaxValue - 1, bus.Ranges[0].Last);
    }

    [Fact]
    public void RejectedRegistration_LeavesTheBusUnchanged()
    {
        var bus = IoBus.CreatePortBus();
        var serial = new RecordingDevice(0x10);
        bus.Register(0x3F8, 8, serial);

        Assert.Throws<BusConflictException>(() => bus.Register(0x3F0, 0x10, new RecordingDevice(0x20)));

        Span<byte> data = stackalloc byte[1];
        Assert.True(bus.Read(0x3F8, data));
        Assert.Equal(0x10, data[0]);
        Assert.False(bus.Read(0x3F0, data));
        Assert.Equal(1, bus.Ranges.Length);
    }

    [Fact]
    public void UnregisterByStart_RemovesOnlyThatRange()
    {
        var bus = IoBus.CreatePortBus();
        var a = new RecordingDevice(0xA0);
        var b = new RecordingDevice(0xB0);
        bus.Register(0x60, 1, a);
        bus.Register(0x64, 1, b);

        Assert.True(bus.Unregister(0x60));
        Assert.False(bus.Unregister(0x60));
        Assert.False(bus.Unregister(0x65)); // inside nothing / not a start

        Span<byte> data = stackalloc byte[1];
        Assert.False(bus.Read(0x60, data));
        Assert.Equal(0xFF, data[0]);
        Assert.True(bus.Read(0x64, data));
        Assert.Equal(0xB0, data[0]);
        Assert.Equal(0, a.ReadCount);

        // The freed range can be taken again.
        bus.Register(0x60, 1, new RecordingDevice(0xC0));
        bus.Read(0x60, data);
        Assert.Equal(0xC0, data[0]);
    }

    [Fact]
    public void UnregisterByStart_OfAnAddressInsideARange_RemovesNothing()
    {
        var bus = IoBus.CreatePortBus();
        bus.Register(0x3F8, 8, new RecordingDevice(1));

        Assert.False(bus.Unregister(0x3F9));
        Assert.Equal(1, bus.Ranges.Length);
    }

    [Fact]
    public void UnregisterByDevice_RemovesAllOfItsRanges()
    {
        var bus = IoBus.CreatePortBus();
        var ata = new RecordingDevice(1);
        var other = new RecordingDevice(2);
        bus.Register(0x1F0, 8, ata);
        bus.Register(0x200, 1, other);
        bus.Register(0x3F6, 1, ata);

        Assert.Equal(2, bus.Unregister(ata));
        Assert.Equal(0, bus.Unregister(ata));

        Assert.Equal(1, bus.Ranges.Length);
        Assert.Same(other, bus.Ranges[0].Device);
        Assert.False(bus.Write(0x1F0, [1]));
        Assert.False(bus.Write(0x3F6, [1]));
        Assert.Equal(0, ata.WriteCount);
        Assert.Equal(2L, bus.UnhandledWrites);
    }

    [Fact]
    public void RangesSnapshot_IsNotChangedByLaterRegistrations()
    {
        var bus = IoBus.CreatePortBus();
        bus.Register(0x10, 1, new RecordingDevice(1));
        var before = bus.Ranges;

        bus.Register(0x20, 1, new RecordingDevice(2));
        bus.Unregister(0x10);

        Assert.Equal(1, before.Length);
        Assert.Equal(0x10UL, before[0].Start);
        Assert.Equal(0x20UL, bus.Ranges[0].Start);
    }

    [Fact]
    public void Constructor_RejectsMissingNames()
    {
        Assert.Throws<ArgumentException>(() => new IoBus("", "Port", 0xFFFF));
        Assert.Throws<ArgumentException>(() => new IoBus("pio", "", 0xFFFF));
        var bus = new IoBus("isa", "ISA", 0x3FF);
        Assert.Equal("isa", bus.Name);
        Assert.Equal(0x3FFUL, bus.LastAddress);
        Assert.Throws<ArgumentOutOfRangeException>(() => bus.Register(0x3FF, 2, new RecordingDevice(1)));
    }
}
