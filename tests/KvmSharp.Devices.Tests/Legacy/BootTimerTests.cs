using KvmSharp.Devices.Bus;
using KvmSharp.Devices.Legacy;

namespace KvmSharp.Devices.Tests.Legacy;

public class BootTimerTests
{
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2024, 1, 1, 0, 0, 0, TimeSpan.Zero));
    private readonly List<TimeSpan> _calls = [];

    [Fact]
    public void Magic123_RecordsTheTimeSinceStart_Once()
    {
        var timer = new BootTimer(_time, _calls.Add);
        _time.Advance(TimeSpan.FromMilliseconds(1234.5));

        timer.Write(0, [123]);
        _time.Advance(TimeSpan.FromSeconds(5));
        timer.Write(0, [123]);

        Assert.Equal(TimeSpan.FromTicks(12_345_000), timer.BootTime);
        Assert.Equal(new[] { TimeSpan.FromTicks(12_345_000) }, _calls);
    }

    [Fact]
    public void OtherValues_AreIgnored_AndReadsReturnZero()
    {
        var timer = new BootTimer(_time, _calls.Add);
        timer.Write(0, [122]);
        timer.Write(0, [0]);
        byte[] data = [0xAA];
        timer.Read(0, data);

        Assert.Null(timer.BootTime);
        Assert.Empty(_calls);
        Assert.Equal(0, data[0]);
    }

    [Fact]
    public void ExplicitStartTimestamp_IsMeasuredFrom_ThroughTheIoBus()
    {
        long start = _time.GetTimestamp();
        _time.Advance(TimeSpan.FromMilliseconds(300));
        var timer = new BootTimer(_time, start);
        var io = new IoDispatcher();
        io.Ports.Register(BootTimer.DefaultPort, 1, timer, "boot-timer");
        _time.Advance(TimeSpan.FromMilliseconds(200));

        io.PortWrite(0x3F0, [BootTimer.BootCompleteMagic]);

        Assert.Equal(TimeSpan.FromMilliseconds(500), timer.BootTime);
    }
}
