using KvmSharp.Devices.Bus;
using KvmSharp.Devices.Legacy;

namespace KvmSharp.Devices.Tests.Legacy;

public class DebugExitTests
{
    private readonly List<int> _statuses = [];

    [Theory]
    [InlineData(new byte[] { 0x00 }, 0x01)]
    [InlineData(new byte[] { 0x10 }, 0x21)]
    [InlineData(new byte[] { 0xFF }, 0x1FF)]
    [InlineData(new byte[] { 0x34, 0x12 }, 0x2469)]
    [InlineData(new byte[] { 0x78, 0x56, 0x34, 0x12 }, 0x2468ACF1)]
    [InlineData(new byte[] { 0x00, 0x00, 0x00, 0x80 }, 0x01)]
    [InlineData(new byte[] { 0xFF, 0xFF, 0xFF, 0xFF }, -1)]
    public void Write_ExitsWithValueShiftedLeftOrOne(byte[] data, int status)
    {
        var device = new DebugExit(_statuses.Add);

        device.Write(0, data);

        Assert.Equal(new[] { status }, _statuses);
        Assert.Equal(status, device.LastStatus);
        Assert.Equal(1L, device.ExitRequests);
    }

    [Fact]
    public void Read_ReturnsZeros_AsQemuDoes()
    {
        var device = new DebugExit(_statuses.Add);
        byte[] data = [0xAA, 0xAA, 0xAA, 0xAA];

        device.Read(0, data);

        Assert.Equal(new byte[4], data);
        Assert.Empty(_statuses);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(4)]
    public void RoutedThroughAnIoBus_AtItsIoBase_ForEachIoSize(int ioSize)
    {
        var device = new DebugExit(_statuses.Add, DebugExit.DefaultPort, ioSize);
        var io = new IoDispatcher();
        io.Ports.Register(device.IoBase, (ulong)device.IoSize, device, "isa-debug-exit");

        io.PortWrite(0xF4, [0x10]);
        io.PortWrite(0xF4, [0x01, 0x00]);
        io.PortWrite(0xF4, [0x02, 0x00, 0x00, 0x00]);

        // Each width fits only when iosize allows it; the rest straddles the range and the bus drops it.
        int[] expected = ioSize switch
        {
            1 => [0x21],
            2 => [0x21, 0x03],
            _ => [0x21, 0x03, 0x05],
        };
        Assert.Equal(expected, _statuses);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(3)]
    [InlineData(8)]
    public void Constructor_RejectsIoSizesOtherThan1_2_4(int ioSize) =>
        Assert.Throws<ArgumentOutOfRangeException>(() => new DebugExit(_statuses.Add, 0xF4, ioSize));

    [Fact]
    public void Constructor_RejectsARangePastTheLastPort() =>
        Assert.Throws<ArgumentOutOfRangeException>(() => new DebugExit(_statuses.Add, 0xFFFE, 4));

    [Fact]
    public void Defaults_AreTheTestKernelConvention()
    {
        var device = new DebugExit(_statuses.Add);
        Assert.Equal(0xF4, device.IoBase);
        Assert.Equal(4, device.IoSize);
    }
}
