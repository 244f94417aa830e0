using KvmSharp.Devices.Bus;
using KvmSharp.Hypervisor;

namespace KvmSharp.Devices.Tests;

public class IoDispatcherTests
{
    [Fact]
    public void PortAndMmioAccesses_GoToTheirOwnBus_EvenAtTheSameNumber()
    {
        var io = new IoDispatcher();
        var portDevice = new RecordingDevice(0x50);
        var mmioDevice = new RecordingDevice(0xA0);
        io.Ports.Register(0x70, 2, portDevice);
        io.Mmio.Register(0x70, 2, mmioDevice);
        IVcpuIo vcpuIo = io;

        Span<byte> data = stackalloc byte[1];
        vcpuIo.PortRead(0x71, data);
        Assert.Equal(0x50 ^ 1, data[0]);
        vcpuIo.MmioRead(0x70, data);
        Assert.Equal(0xA0, data[0]);
        vcpuIo.PortWrite(0x70, [0x8F]);
        ReadOnlySpan<byte> twoBytes = [0x12, 0x34];
        vcpuIo.MmioWrite(0x71, twoBytes[..1]);

        Assert.Equal(1, portDevice.ReadCount);
        Assert.Equal(1, portDevice.WriteCount);
        Assert.Equal(new byte[] { 0x8F }, portDevice.LastWritten);
        Assert.Equal(1, mmioDevice.ReadCount);
        Assert.Equal(1, mmioDevice.WriteCount);
        Assert.Equal(1UL, mmioDevice.LastOffset);
        Assert.Equal(new byte[] { 0x12 }, mmioDevice.LastWritten);
    }

    [Fact]
    public void UnknownPortAndMmio_ReadAllOnes_AndCountOnTheirOwnBus()
    {
        var io = new IoDispatcher();
        byte[] word = [0, 0];
        byte[] quad = [0, 0, 0, 0, 0, 0, 0, 0];

        io.PortRead(0xCF8, word);
        io.MmioRead(0xFED0_0000, quad);
        io.MmioWrite(0xFED0_0000, quad);

        Assert.Equal(new byte[] { 0xFF, 0xFF }, word);
        Assert.Equal(new byte[] { 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF }, quad);
        Assert.Equal(1L, io.Ports.UnhandledReads);
        Assert.Equal(0L, io.Ports.UnhandledWrites);
        Assert.Equal(0xCF8UL, io.Ports.LastUnhandledAddress);
        Assert.Equal(1L, io.Mmio.UnhandledReads);
        Assert.Equal(1L, io.Mmio.UnhandledWrites);
        Assert.Equal(0xFED0_0000UL, io.Mmio.LastUnhandledAddress);
    }

    [Fact]
    public void PortAccessAtTheLastPort_WiderThanOneByte_IsUnknown()
    {
        var io = new IoDispatcher();
        var device = new RecordingDevice(1);
        io.Ports.Register(0xFFFF, 1, device);

        byte[] data = [0, 0];
        io.PortRead(0xFFFF, data);

        Assert.Equal(new byte[] { 0xFF, 0xFF }, data);
        Assert.Equal(0, device.ReadCount);
    }

    [Fact]
    public void RequestStop_FromADevice_IsSeenByTheVcpu_AndCanBeCleared()
    {
        var io = new IoDispatcher();
        io.Ports.Register(0xF4, 1, new StopOnWriteDevice(io));
        IVcpuIo vcpuIo = io;

        Assert.False(vcpuIo.StopRequested);
        vcpuIo.PortWrite(0xF4, [0x01]);
        Assert.True(vcpuIo.StopRequested);

        io.ClearStopRequest();
        Assert.False(vcpuIo.StopRequested);
    }

    [Fact]
    public void Buses_MustBeDistinct()
    {
        var bus = IoBus.CreatePortBus();

        Assert.Throws<ArgumentException>(() => new IoDispatcher(bus, bus));
        Assert.Throws<ArgumentNullException>(() => new IoDispatcher(null!, bus));

        var mmio = IoBus.CreateMmioBus();
        var io = new IoDispatcher(bus, mmio);
        Assert.Same(bus, io.Ports);
        Assert.Same(mmio, io.Mmio);
        Assert.Equal("pio", io.Ports.Name);
        Assert.Equal(0xFFFFUL, io.Ports.LastAddress);
        Assert.Equal("mmio", io.Mmio.Name);
        Assert.Equal(ulong.MaxValue, io.Mmio.LastAddress);
    }

    private sealed class StopOnWriteDevice(IoDispatcher io) : IBusDevice
    {
        public void Read(ulong offset, Span<byte> data) => data.Clear();

        public void Write(ulong offset, ReadOnlySpan<byte> data) => io.RequestStop();
    }
}
