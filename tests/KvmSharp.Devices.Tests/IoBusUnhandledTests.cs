using KvmSharp.Devices.Bus;

namespace KvmSharp.Devices.Tests;

public class IoBusUnhandledTests
{
    [Fact]
    public void ReadOfAnUnknownPort_ReturnsAllOnes_AndIsCounted()
    {
        var bus = IoBus.CreatePortBus();
        bus.Register(0x60, 1, new RecordingDevice(0));

        byte[] data = [0x12, 0x34, 0x56, 0x78];
        Assert.False(bus.Read(0x80, data));

        Assert.Equal(new byte[] { 0xFF, 0xFF, 0xFF, 0xFF }, data);
        Assert.Equal(1L, bus.UnhandledReads);
        Assert.Equal(0L, bus.UnhandledWrites);
        Assert.Equal(0x80UL, bus.LastUnhandledAddress);
    }

    [Fact]
    public void WriteToAnUnknownAddress_IsDropped_AndCountedSeparately()
    {
        var bus = IoBus.CreateMmioBus();
        var device = new RecordingDevice(0);
        bus.Register(0x1000, 0x10, device);

        Assert.False(bus.Write(0x2000, [1, 2]));
        Assert.False(bus.Write(0xFFF, [3]));

        Assert.Equal(0, device.WriteCount);
        Assert.Equal(2L, bus.UnhandledWrites);
        Assert.Equal(0L, bus.UnhandledReads);
        Assert.Equal(0xFFFUL, bus.LastUnhandledAddress);
    }

    [Fact]
    public void EmptyBus_AnswersEveryReadWithAllOnes()
    {
        var bus = IoBus.CreateMmioBus();
        byte[] data = new byte[8];

        bus.Read(0, data);
        bus.Read(ulong.MaxValue, data);

        Assert.Equal(new byte[] { 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF }, data);
        Assert.Equal(2L, bus.UnhandledReads);
        Assert.Equal(ulong.MaxValue, bus.LastUnhandledAddress);
    }

    [Fact]
    public void EmptyAccess_DoesNothing_AndIsNotCounted()
    {
        var bus = IoBus.CreatePortBus();
        var device = new RecordingDevice(0);
        bus.Register(0x60, 1, device);

        Assert.False(bus.Read(0x60, []));
        Assert.False(bus.Write(0x60, []));
        Assert.False(bus.Read(0x70, []));

        Assert.Equal(0, device.ReadCount);
        Assert.Equal(0, device.WriteCount);
        Assert.Equal(0L, bus.UnhandledReads);
        Assert.Equal(0L, bus.UnhandledWrites);
    }

    [Fact]
    public void Counters_AreExactUnderConcurrentVcpus()
    {
        var bus = IoBus.CreatePortBus();
        const int PerThread = 50_000;
        var threads = new Thread[4];
        for (int t = 0; t < threads.Length; t++)
        {
            ushort port = (ushort)(0x100 + t);
            threads[t] = new Thread(() =>
            {
                Span<byte> data = stackalloc byte[1];
                for (int i = 0; i < PerThread; i++)
                {
                    bus.Read(port, data);
                    bus.Write(port, data);
                }
            });
            threads[t].Start();
        }

        foreach (var thread in threads)
        {
            thread.Join();
        }

        Assert.Equal(4L * PerThread, bus.UnhandledReads);
        Assert.Equal(4L * PerThread, bus.UnhandledWrites);
        Assert.InRange(bus.LastUnhandledAddress, 0x100UL, 0x103UL);
    }
}
