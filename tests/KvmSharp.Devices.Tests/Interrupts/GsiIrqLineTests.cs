using KvmSharp.Devices.Interrupts;

namespace KvmSharp.Devices.Tests.Interrupts;

public class GsiIrqLineTests
{
    [Fact]
    public void SetLevel_ForwardsOnlyChanges_ToItsGsi()
    {
        var sink = new RecordingInterruptSink();
        var line = new GsiIrqLine(sink, 4);

        line.SetLevel(false);
        line.SetLevel(true);
        line.SetLevel(true);
        line.SetLevel(true);
        line.SetLevel(false);
        line.SetLevel(false);
        line.SetLevel(true);

        Assert.Equal(new[] { (4u, true), (4u, false), (4u, true) }, sink.Levels);
        Assert.True(line.Level);
        Assert.Equal(4u, line.Gsi);
    }

    [Fact]
    public void FailedForward_IsNotRemembered_SoTheNextCallRetries()
    {
        var sink = new RecordingInterruptSink { FailNext = new InvalidOperationException("ioctl failed") };
        var line = new GsiIrqLine(sink, 12);

        Assert.Throws<InvalidOperationException>(() => line.SetLevel(true));
        Assert.False(line.Level);
        line.SetLevel(true);

        Assert.Equal(new[] { (12u, true) }, sink.Levels);
        Assert.True(line.Level);
    }

    [Fact]
    public void Constructor_RejectsANullSink() =>
        Assert.Throws<ArgumentNullException>(() => new GsiIrqLine(null!, 1));
}
