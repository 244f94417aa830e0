using KvmSharp.Devices.Bus;

namespace KvmSharp.Devices.Tests;

public class IoBusRoutingTests
{
    [Fact]
    public void Read_GoesToTheDeviceHoldingTheAddress_WithTheOffsetFromItsStart()
    {
        var bus = IoBus.CreatePortBus();
        var serial = new RecordingDevice(0x10);
        var keyboard = new RecordingDevice(0x20);
        var rtc = new RecordingDevice(0x30);
        bus.Register(0x3F8, 8, serial);
        bus.Register(0x60, 1, keyboard);
        bus.Register(0x70, 2, rtc);

        Span<byte> data = stackalloc byte[1];
        Assert.True(bus.Read(0x3FD, data));

        Assert.Equal(1, serial.ReadCount);
        Assert.Equal(5UL, serial.LastOffset);
        Assert.Equal(1, serial.LastReadLength);
        Assert.Equal(0x10 ^ 5, data[0]);
        Assert.Equal(0, keyboard.ReadCount);
        Assert.Equal(0, rtc.ReadCount);

        Assert.True(bus.Read(0x71, data));
        Assert.Equal(1UL, rtc.LastOffset);
        Assert.Equal(0x30 ^ 1, data[0]);

        Assert.True(bus.Read(0x60, data));
        Assert.Equal(0UL, keyboard.LastOffset);
        Assert.Equal(0x20, data[0]);
        Assert.Equal(0L, bus.UnhandledReads);
    }

    [Fact]
    public void Write_PassesTheExactBytesAndOffset()
    {
        var bus = IoBus.CreateMmioBus();
        var device = new RecordingDevice(1);
        bus.Register(0xFEC0_0000, 0x1000, device);

        Assert.True(bus.Write(0xFEC0_0010, [0xDE, 0xAD, 0xBE, 0xEF]));

        Assert.Equal(1, device.WriteCount);
        Assert.Equal(0x10UL, device.LastOffset);
        Assert.Equal(new byte[] { 0xDE, 0xAD, 0xBE, 0xEF }, device.LastWritten);
        Assert.Equal(0L, bus.UnhandledWrites);
    }

    [Fact]
    public void MultiByteRead_WhollyInsideARange_GetsEveryByteFromTheDevice()
    {
        var bus = IoBus.CreateMmioBus();
        var device = new RecordingDevice(0xA0);
        bus.Register(0x1000, 0x100, device);

        byte[] data = new byte[8];
        Assert.True(bus.Read(0x10F8, data));

        Assert.Equal(0xF8UL, device.LastOffset);
        Assert.Equal(new byte[] { 0xA0 ^ 0xF8, 0xA0 ^ 0xF9, 0xA0 ^ 0xFA, 0xA0 ^ 0xFB, 0xA0 ^ 0xFC, 0xA0 ^ 0xFD, 0xA0 ^ 0xFE, 0xA0 ^ 0xFF }, data);
    }

    [Fact]
    public void AdjacentRanges_EachGetTheirOwnEdges()
    {
        var bus = IoBus.CreatePortBus();
        var low = new RecordingDevice(0x40);
        var high = new RecordingDevice(0x80);
        bus.Register(0x10, 8, low);
        bus.Register(0x18, 8, high);

        Span<byte> data = stackalloc byte[1];
        bus.Read(0x17, data);
        Assert.Equal(7UL, low.LastOffset);
        Assert.Equal(0x40 ^ 7, data[0]);
        bus.Read(0x18, data);
        Assert.Equal(0UL, high.LastOffset);
        Assert.Equal(0x80, data[0]);
        Assert.Equal(1, low.ReadCount);
        Assert.Equal(1, high.ReadCount);
    }

    [Fact]
    public void AccessStraddlingTheEndOfARange_IsUnknown_AndNeverReachesTheDevice()
    {
        var bus = IoBus.CreatePortBus();
        var device = new RecordingDevice(0x55);
        bus.Register(0x100, 4, device);

        byte[] data = [1, 2, 3, 4];
        Assert.False(bus.Read(0x102, data));
        Assert.Equal(new byte[] { 0xFF, 0xFF, 0xFF, 0xFF }, data);
        Assert.False(bus.Write(0x103, [0x11, 0x22]));

        Assert.Equal(0, device.ReadCount);
        Assert.Equal(0, device.WriteCount);
        Assert.Equal(1L, bus.UnhandledReads);
        Assert.Equal(1L, bus.UnhandledWrites);
        Assert.Equal(0x103UL, bus.LastUnhandledAddress);

        // The same width ending exactly on the last byte is inside and is dispatched.
        Assert.True(bus.Read(0x100, data));
        Assert.Equal(1, device.ReadCount);
    }

    [Fact]
    public void AccessStraddlingTwoAdjacentRanges_IsUnknown()
    {
        var bus = IoBus.CreatePortBus();
        var low = new RecordingDevice(1);
        var high = new RecordingDevice(2);
        bus.Register(0x20, 2, low);
        bus.Register(0x22, 2, high);

        byte[] data = new byte[2];
        Assert.False(bus.Read(0x21, data));

        Assert.Equal(new byte[] { 0xFF, 0xFF }, data);
        Assert.Equal(0, low.ReadCount);
        Assert.Equal(0, high.ReadCount);
        Assert.Equal(0x21UL, bus.LastUnhandledAddress);
    }

    [Fact]
    public void RangeEndingAtTheTopOfTheMmioSpace_IsRoutedUpToItsLastByte()
    {
        var bus = IoBus.CreateMmioBus();
        var device = new RecordingDevice(0x0F);
        bus.Register(0xFFFF_FFFF_FFFF_FFF0, 0x10, device);

        byte[] data = new byte[8];
        Assert.True(bus.Read(0xFFFF_FFFF_FFFF_FFF8, data));
        Assert.Equal(8UL, device.LastOffset);
        Assert.Equal(0x0F ^ 8, data[0]);
        Assert.Equal(0x0F ^ 0xF, data[7]);

        // Reading past the end of the address space must not wrap to 0.
        Assert.False(bus.Read(0xFFFF_FFFF_FFFF_FFFC, data));
        Assert.Equal(1L, bus.UnhandledReads);
    }

    [Fact]
    public void SameDeviceAtTwoRanges_SeesOffsetsRelativeToTheRangeHit()
    {
        var bus = IoBus.CreatePortBus();
        var device = new RecordingDevice(0);
        bus.Register(0x1F0, 8, device, "ata-command");
        bus.Register(0x3F6, 1, device, "ata-control");

        Span<byte> data = stackalloc byte[1];
        bus.Read(0x1F7, data);
        Assert.Equal(7UL, device.LastOffset);
        bus.Read(0x3F6, data);
        Assert.Equal(0UL, device.LastOffset);
    }

    [Fact]
    public void TryFind_ReturnsTheRangeAndName()
    {
        var bus = IoBus.CreatePortBus();
        var device = new RecordingDevice(0);
        bus.Register(0x3F8, 8, device, "Serial");

        Assert.True(bus.TryFind(0x3FF, out var range));
        Assert.Equal(new BusRange(0x3F8, 0x3FF, device, "Serial"), range);
        Assert.Equal(8UL, range.Length);
        Assert.False(bus.TryFind(0x400, out _));
        Assert.False(bus.TryFind(0x3F7, out _));
    }

    [Fact]
    public void Ranges_AreListedInAddressOrder_WhateverTheRegistrationOrder()
    {
        var bus = IoBus.CreatePortBus();
        var a = new RecordingDevice(1);
        var b = new RecordingDevice(2);
        var c = new RecordingDevice(3);
        bus.Register(0x500, 1, c, "c");
        bus.Register(0x10, 1, a, "a");
        bus.Register(0x80, 1, b, "b");

        var ranges = bus.Ranges;
        Assert.Equal(3, ranges.Length);
        Assert.Equal(0x10UL, ranges[0].Start);
        Assert.Equal(0x80UL, ranges[1].Start);
        Assert.Equal(0x500UL, ranges[2].Start);
        Assert.Equal("a", ranges[0].Name);
        Assert.Equal("c", ranges[2].Name);
    }

    [Fact]
    public void Lookup_AllocatesNothing()
    {
        var bus = IoBus.CreateMmioBus();
        var devices = new RecordingDevice[64];
        for (int i = 0; i < devices.Length; i++)
        {
            devices[i] = new RecordingDevice((byte)i);
            bus.Register(0x1000UL * (ulong)i, 0x100, devices[i]);
        }

        Span<byte> data = stackalloc byte[4];
        // Warm up so tiered compilation is not counted.
        for (int i = 0; i < 1000; i++)
        {
            bus.Read(0x1000UL * (ulong)(i % 64), data);
            bus.Read(0x800, data); // unknown: the cold path must not allocate either
            bus.Write(0x1000UL * (ulong)(i % 64), [9]);
        }

        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 10_000; i++)
        {
            bus.Read(0x1000UL * (ulong)(i % 64) + 0x10, data);
            bus.Read((0x1000UL * (ulong)(i % 64)) + 0x800 + (ulong)(i % 0x800), data);
        }

        long after = GC.GetAllocatedBytesForCurrentThread();
        Assert.Equal(0L, after - before);
        Assert.Equal(10_000L + 1000, bus.UnhandledReads);
    }

    [Fact]
    public void RegistrationWhileVcpusRead_NeverMisroutesAStableRange()
    {
        var bus = IoBus.CreatePortBus();
        var stable = new RecordingDevice(0x77);
        bus.Register(0x800, 0x10, stable);
        var churn = new RecordingDevice(0x11);

        using var stop = new ManualResetEventSlim();
        using var started = new ManualResetEventSlim();
        long reads = 0;
        long misroutes = 0;
        var reader = new Thread(() =>
        {
            Span<byte> data = stackalloc byte[1];
            while (!stop.IsSet)
            {
                for (ulong offset = 0; offset < 0x10; offset++)
                {
                    if (!bus.Read(0x800 + offset, data) || data[0] != (0x77 ^ (byte)offset))
                    {
                        misroutes++;
                    }

                    reads++;
                }

                started.Set();
            }
        });
        reader.Start();
        started.Wait(TestContext.Current.CancellationToken);

        for (int i = 0; i < 20_000; i++)
        {
            ulong start = (ulong)(i % 2 == 0 ? 0x7F0 : 0x810) + (ulong)(i % 7);
            bus.Register(start, 1, churn);
            Assert.True(bus.Unregister(start));
        }

        stop.Set();
        reader.Join();
        Assert.Equal(0L, misroutes);
        Assert.True(reads > 0);
        Assert.Equal(1, bus.Ranges.Length);
    }
}
