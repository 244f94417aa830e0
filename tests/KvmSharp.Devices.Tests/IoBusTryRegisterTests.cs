using KvmSharp.Devices.Bus;

namespace KvmSharp.Devices.Tests;

public class IoBusTryRegisterTests
{
    [Fact]
    public void FreeRange_IsRegistered_AndDispatched()
    {
        var bus = IoBus.CreateMmioBus();
        var device = new RecordingDevice(0x40);

        Assert.True(bus.TryRegister(0xE000_0000, 0x1000, device, "bar", out var conflict));

        Assert.Equal(default, conflict);
        Assert.True(bus.TryFind(0xE000_0FFF, out var range));
        Assert.Equal(0xE000_0000UL, range.Start);
        Assert.Equal(0xE000_0FFFUL, range.Last);
        Assert.Equal("bar", range.Name);
        var data = new byte[2];
        Assert.True(bus.Read(0xE000_0010, data));
        Assert.Equal(RecordingDevice.Expected(0x40, 0x10), data[0]);
        Assert.Equal(0x10UL, device.LastOffset);
    }

    [Fact]
    public void Overlap_ReturnsFalse_NamesTheHeldRange_AndRegistersNothing()
    {
        var bus = IoBus.CreateMmioBus();
        var timer = new RecordingDevice(1);
        bus.Register(0xD000_0000, 1, timer, "boot timer");

        Assert.False(bus.TryRegister(0xCFFF_F000, 0x2000, new RecordingDevice(2), "bar", out var conflict));

        Assert.Same(timer, conflict.Device);
        Assert.Equal("boot timer", conflict.Name);
        Assert.Equal(1, bus.Ranges.Length);
        Assert.False(bus.TryFind(0xCFFF_F000, out _));
    }

    [Fact]
    public void RangeBelowAndAboveAnother_Overlaps_AreBothFound()
    {
        var bus = IoBus.CreateMmioBus();
        bus.Register(0x2000, 0x1000, new RecordingDevice(1), "middle");

        Assert.False(bus.TryRegister(0x1000, 0x1001, new RecordingDevice(2), "low", out var low));
        Assert.False(bus.TryRegister(0x2FFF, 0x10, new RecordingDevice(3), "high", out var high));
        Assert.True(bus.TryRegister(0x1000, 0x1000, new RecordingDevice(4), "adjacent below", out _));
        Assert.True(bus.TryRegister(0x3000, 0x1000, new RecordingDevice(5), "adjacent above", out _));

        Assert.Equal("middle", low.Name);
        Assert.Equal("middle", high.Name);
        Assert.Equal(3, bus.Ranges.Length);
    }

    [Fact]
    public void EmptyOrOutOfSpaceRange_StillThrows()
    {
        var bus = IoBus.CreatePortBus();

        Assert.Throws<ArgumentOutOfRangeException>(() => bus.TryRegister(0x10, 0, new RecordingDevice(1), "empty", out _));
        Assert.Throws<ArgumentOutOfRangeException>(() => bus.TryRegister(0xFFFF, 2, new RecordingDevice(1), "beyond", out _));
    }
}
