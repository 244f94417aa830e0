using KvmSharp.Devices.Bus;
using KvmSharp.Devices.InterruptControllers;

namespace KvmSharp.Devices.Tests.InterruptControllers;

public class Pit8254Tests
{
    // The fake clock's timestamps are 100 ns ticks from 0, which is also the PIT's origin.
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2024, 1, 1, 0, 0, 0, TimeSpan.Zero));
    private readonly RecordingIrqLine _irq0 = new();
    private readonly Pit8254 _pit;
    private readonly IoDispatcher _io = new();

    public Pit8254Tests()
    {
        _pit = new Pit8254(_time, _irq0);
        _io.Ports.Register(Pit8254.BasePort, Pit8254.PortCount, _pit, "pit");
        _io.Ports.Register(Pit8254.PortBPort, 1, _pit.PortB, "port b");
    }

    /// <summary>The first fake timestamp at which the PIT has counted <paramref name="clock"/> clocks.</summary>
    private static long TimestampOfClock(long clock) =>
        (long)(((Int128)clock * TimeSpan.TicksPerSecond + Pit8254.InputFrequencyHz - 1) / Pit8254.InputFrequencyHz);

    private void AtClock(long clock) => _time.SetUtcNow(_time.Now.AddTicks(TimestampOfClock(clock) - _time.GetTimestamp()));

    private void Out(ushort port, byte value) => _io.PortWrite(port, [value]);

    private byte In(ushort port)
    {
        Span<byte> data = stackalloc byte[1];
        _io.PortRead(port, data);
        return data[0];
    }

    private int RisingEdges()
    {
        int rises = 0;
        foreach (bool level in _irq0.Transitions)
        {
            rises += level ? 1 : 0;
        }

        return rises;
    }

    [Fact]
    public void PowerOn_Counter0RunsMode3At18Hz()
    {
        Assert.Equal([true], _irq0.Transitions); // OUT starts high in mode 3
        Assert.Equal(TimestampOfClock(65536), _pit.NextDeadline);

        Out(0x43, 0xE2); // read-back status of counter 0
        Assert.Equal(0x36, In(0x40) & 0x7F);
    }

    [Fact]
    public void LinuxPeriodicMode2_Hz1000_OneEdgePerPeriod_MissedPeriodsCoalesce()
    {
        Out(0x43, 0x34); // counter 0, LSB then MSB, mode 2
        Out(0x40, 0xA9); // LATCH = 1193
        Out(0x40, 0x04);
        Assert.Equal([true], _irq0.Transitions);
        Assert.Equal(9999, _pit.NextDeadline); // ceil(1193 * 10^7 / 1193182)

        AtClock(1192);
        _pit.Poll(_time.GetTimestamp());
        Assert.Equal(1, RisingEdges());

        AtClock(1193);
        _pit.Poll(_time.GetTimestamp());
        Assert.Equal([true, false, true], _irq0.Transitions);
        Assert.Equal(TimestampOfClock(2 * 1193), _pit.NextDeadline);

        AtClock((10 * 1193) + 5); // nine periods missed: one edge
        _pit.Poll(_time.GetTimestamp());
        Assert.Equal(3, RisingEdges());
        Assert.Equal(TimestampOfClock(11 * 1193), _pit.NextDeadline);
        _pit.Poll(_time.GetTimestamp());
        Assert.Equal(3, RisingEdges());
    }

    [Fact]
    public void Mode2_CounterLatch_HoldsValueUntilBothBytesRead()
    {
        Out(0x43, 0x34);
        Out(0x40, 0xA9);
        Out(0x40, 0x04);
        AtClock(100);

        Out(0x43, 0x00); // latch counter 0
        AtClock(300);
        Out(0x43, 0x00); // ignored: the first latch is unread
        Assert.Equal(0x45, In(0x40)); // 1193 - 100 = 0x445
        Assert.Equal(0x04, In(0x40));
        Assert.Equal(0x7D, In(0x40)); // unlatched: 1193 - 300 = 0x37D, low byte first
        Assert.Equal(0x03, In(0x40));
    }

    [Fact]
    public void Mode2_CountWrittenWhileCounting_TakesEffectAtPeriodEnd()
    {
        Out(0x43, 0x34);
        Out(0x40, 0xE8); // 1000
        Out(0x40, 0x03);
        AtClock(400);
        Out(0x40, 0xF4); // 500
        Out(0x40, 0x01);

        Assert.Equal(600, _pit.GetCount(0));
        AtClock(1000);
        Assert.Equal(500, _pit.GetCount(0));
        AtClock(1200);
        Assert.Equal(300, _pit.GetCount(0));
        _pit.Poll(_time.GetTimestamp());
        Assert.Equal(2, RisingEdges());
        Assert.Equal(TimestampOfClock(1500), _pit.NextDeadline);
    }

    [Fact]
    public void LinuxPitCalibrateTsc_Channel2Mode0_Out2RisesAfterLatch()
    {
        // arch/x86/kernel/tsc.c pit_calibrate_tsc(): gate high, speaker off, mode 0, 50 ms.
        Out(0x61, (byte)((In(0x61) & ~0x02) | 0x01));
        Out(0x43, 0xB0);
        Out(0x42, 0x0B); // 59659 = 1193182 / 20
        Out(0x42, 0xE9);

        Assert.Equal(0x00, In(0x61) & 0x20);
        AtClock(1000);
        Assert.Equal(0x23, In(0x42)); // 58659 = 0xE523
        Assert.Equal(0xE5, In(0x42));
        AtClock(59658);
        Assert.Equal(0x00, In(0x61) & 0x20);
        AtClock(59659);
        Assert.Equal(0x20, In(0x61) & 0x20);
        Assert.Equal(0x01, In(0x61) & 0x0F);
        Assert.Equal(1, RisingEdges()); // counter 2 is not IRQ0
    }

    [Fact]
    public void Mode0_Counter0_LinuxShutdown_GivesOneEdgeAfter65536Clocks()
    {
        Out(0x43, 0x30); // pit_shutdown: mode 0, then count 0
        Out(0x40, 0x00);
        Assert.False(_irq0.Level); // OUT low once the first byte is written
        Out(0x40, 0x00);
        Assert.Equal(TimestampOfClock(65536), _pit.NextDeadline);

        AtClock(70000);
        _pit.Poll(_time.GetTimestamp());
        Assert.True(_irq0.Level);
        Assert.Equal(2, RisingEdges());
        Assert.Equal(long.MaxValue, _pit.NextDeadline);
        Assert.Equal(65536 - (70000 - 65536), _pit.GetCount(0)); // the counter wraps and goes on
    }

    [Fact]
    public void ReadBack_StatusThenCount_ThenLiveCount()
    {
        Out(0x61, 0x01);
        Out(0x43, 0xB0);
        Out(0x42, 0x10);
        Out(0x42, 0x27); // 10000
        AtClock(16);

        Out(0x43, 0xC8); // read-back, count and status, counter 2
        AtClock(32);
        Assert.Equal(0x30, In(0x42)); // OUT 0, count loaded, LSB-MSB, mode 0, binary
        Assert.Equal(0x00, In(0x42)); // 9984 = 0x2700
        Assert.Equal(0x27, In(0x42));
        Assert.Equal(0xF0, In(0x42)); // live: 9968 = 0x26F0
        Assert.Equal(0x26, In(0x42));

        Out(0x43, 0xE8); // status only
        Assert.Equal(0x30, In(0x42));
    }

    [Fact]
    public void ReadBack_StatusShowsNullCountAndOutputBeforeCountWritten()
    {
        Out(0x43, 0x36); // counter 0, mode 3
        Out(0x43, 0xE2);
        Assert.Equal(0xF6, In(0x40)); // OUT high, null count, LSB-MSB, mode 3

        Out(0x40, 0x00);
        Out(0x40, 0x01);
        Out(0x43, 0xE2);
        Assert.Equal(0xB6, In(0x40));

        Out(0x43, 0x3E); // mode written as 111 reads back as 111
        Out(0x43, 0xE2);
        Assert.Equal(0xFE, In(0x40));
    }

    [Theory]
    [InlineData(0, 10, true)]
    [InlineData(2, 6, true)]
    [InlineData(4, 2, true)]
    [InlineData(5, 10, false)]
    [InlineData(7, 6, false)]
    [InlineData(9, 2, false)]
    [InlineData(10, 10, true)]
    public void Mode3_EvenCount_CountsByTwos_HalfHighHalfLow(long clock, int count, bool output)
    {
        Out(0x43, 0x36);
        Out(0x40, 10);
        Out(0x40, 0);
        AtClock(clock);

        Assert.Equal(count, _pit.GetCount(0));
        Assert.Equal(output, _pit.GetOutput(0));
    }

    [Theory]
    [InlineData(0, 5, true)]
    [InlineData(1, 4, true)]
    [InlineData(2, 2, true)]
    [InlineData(3, 5, false)]
    [InlineData(4, 2, false)]
    [InlineData(5, 5, true)]
    public void Mode3_OddCount_HighOneClockLonger(long clock, int count, bool output)
    {
        Out(0x43, 0x36);
        Out(0x40, 5);
        Out(0x40, 0);
        AtClock(clock);

        Assert.Equal(count, _pit.GetCount(0));
        Assert.Equal(output, _pit.GetOutput(0));
    }

    [Fact]
    public void Mode3_Irq0EdgesAtEndOfEachLowHalf_LineFollowsOut()
    {
        Out(0x43, 0x36);
        Out(0x40, 100);
        Out(0x40, 0);

        AtClock(60);
        _pit.Poll(_time.GetTimestamp());
        Assert.Equal([true, false], _irq0.Transitions);
        AtClock(100);
        _pit.Poll(_time.GetTimestamp());
        Assert.Equal([true, false, true], _irq0.Transitions);
        AtClock(260); // crossed the edge at 200, now in a low half again
        _pit.Poll(_time.GetTimestamp());
        Assert.Equal([true, false, true, false, true, false], _irq0.Transitions);
    }

    [Fact]
    public void Gate_PausesMode0_AndResumes()
    {
        Out(0x61, 0x00);
        Out(0x43, 0xB0);
        Out(0x42, 0xE8); // 1000
        Out(0x42, 0x03);
        AtClock(500);
        Assert.Equal(1000, _pit.GetCount(2));

        Out(0x61, 0x01);
        AtClock(800);
        Assert.Equal(700, _pit.GetCount(2));
        Out(0x61, 0x00);
        AtClock(2000);
        Assert.Equal(700, _pit.GetCount(2));
        Assert.Equal(0x00, In(0x61) & 0x20);

        Out(0x61, 0x01);
        AtClock(2699);
        Assert.Equal(0x00, In(0x61) & 0x20);
        AtClock(2700);
        Assert.Equal(0x21, In(0x61) & 0x21);
    }

    [Fact]
    public void Gate_LowForcesMode2OutHigh_RisingGateReloads()
    {
        Out(0x61, 0x01);
        Out(0x43, 0xB4); // counter 2, mode 2
        Out(0x42, 100);
        Out(0x42, 0);
        AtClock(99);
        Assert.False(_pit.GetOutput(2));

        Out(0x61, 0x00);
        Assert.True(_pit.GetOutput(2));
        AtClock(150);
        Out(0x61, 0x01);
        Assert.Equal(100, _pit.GetCount(2));
        AtClock(180);
        Assert.Equal(70, _pit.GetCount(2));
    }

    [Fact]
    public void Mode1_Channel2_GateRisingEdgeTriggersOneShot()
    {
        Out(0x61, 0x00);
        Out(0x43, 0xB2); // counter 2, mode 1
        Out(0x42, 100);
        Out(0x42, 0);
        AtClock(50);
        Assert.True(_pit.GetOutput(2)); // waits for a trigger

        Out(0x61, 0x01);
        Assert.False(_pit.GetOutput(2));
        AtClock(149);
        Assert.Equal(1, _pit.GetCount(2));
        Assert.False(_pit.GetOutput(2));
        AtClock(150);
        Assert.True(_pit.GetOutput(2));
    }

    [Fact]
    public void Mode4_Counter0_StrobeGivesOneEdge()
    {
        Out(0x43, 0x38); // counter 0, mode 4
        Out(0x40, 50);
        Out(0x40, 0);
        Assert.Equal(TimestampOfClock(51), _pit.NextDeadline);

        AtClock(50);
        Assert.False(_pit.GetOutput(0));
        AtClock(51);
        _pit.Poll(_time.GetTimestamp());
        Assert.Equal(2, RisingEdges());
        Assert.Equal(long.MaxValue, _pit.NextDeadline);
    }

    [Fact]
    public void Bcd_CountsInDecimal()
    {
        Out(0x61, 0x01);
        Out(0x43, 0xB1); // counter 2, LSB-MSB, mode 0, BCD
        Out(0x42, 0x00);
        Out(0x42, 0x01); // 0100 = 100
        AtClock(30);

        Assert.Equal(0x70, In(0x42));
        Assert.Equal(0x00, In(0x42));
        AtClock(101);
        Assert.Equal(0x99, In(0x42)); // wraps to 9999
        Assert.Equal(0x99, In(0x42));
    }

    [Fact]
    public void LsbOnlyAndMsbOnlyAccess()
    {
        Out(0x61, 0x01);
        Out(0x43, 0x90); // counter 2, LSB only, mode 0
        Out(0x42, 0x64);
        AtClock(4);
        Assert.Equal(0x60, In(0x42));
        Assert.Equal(0x60, In(0x42)); // no flip-flop

        Out(0x43, 0xA0); // MSB only
        Out(0x42, 0x02); // 0x200
        AtClock(4 + 0x10);
        Assert.Equal(0x01, In(0x42)); // 0x1F0
    }

    [Fact]
    public void Mode0_FirstByteStopsCountingAndDropsOut()
    {
        Out(0x61, 0x01);
        Out(0x43, 0xB0);
        Out(0x42, 10);
        Out(0x42, 0);
        AtClock(20);
        Assert.True(_pit.GetOutput(2));

        Out(0x42, 0x50);
        Assert.False(_pit.GetOutput(2));
        AtClock(100);
        Out(0x42, 0x00);
        AtClock(179);
        Assert.Equal(1, _pit.GetCount(2));
        Assert.False(_pit.GetOutput(2));
    }

    [Fact]
    public void PortB_LowNibbleReadsBack_RefreshToggles_ControlPortFloats()
    {
        Out(0x61, 0xFC);
        Assert.Equal(0x0C, In(0x61) & 0xCF);

        AtClock(17);
        Assert.Equal(0x00, In(0x61) & 0x10);
        AtClock(18);
        Assert.Equal(0x10, In(0x61) & 0x10);
        AtClock(36);
        Assert.Equal(0x00, In(0x61) & 0x10);

        Assert.Equal(0xFF, In(0x43));
    }
}
