using KvmSharp.Devices.InterruptControllers;

namespace KvmSharp.Devices.Tests.InterruptControllers;

public class SaveRestoreTests
{
    [Fact]
    public void Pic_RestoredPairAnswersLikeTheSavedOne()
    {
        var source = new InterruptFabric();
        source.InitPic(masterMask: 0xF8, slaveMask: 0xEF);
        source.PicOut(0x20, 0xC1);       // IRQ1 lowest, so the cascade (IR2) highest
        source.PicOut(0x20, 0x0B);       // read ISR
        source.Router.SetLevel(1, true);
        source.Router.SetLevel(12, true);
        Assert.Equal(0x3C, source.Pic.Acknowledge()); // the cascade outranks IR1 after the rotation
        var saved = source.Pic.Save();

        var target = new InterruptFabric();
        int outputChanges = 0;
        target.Pic.OutputChanged += () => outputChanges++;
        target.Pic.Restore(saved);

        Assert.Equal(saved, target.Pic.Save());
        Assert.Equal(1, outputChanges);
        Assert.Equal((0x30, 0x38), (target.Pic.VectorBases.Master, target.Pic.VectorBases.Slave));
        Assert.Equal(0x1004, target.Pic.InServiceRegister);
        byte[] isr = new byte[1];
        target.Pic.Master.Read(0, isr);
        Assert.Equal(0x04, isr[0]);
        Assert.False(target.Pic.InterruptOutput); // IR1 waits below IR2 in service

        target.PicOut(0xA0, 0x64);
        target.PicOut(0x20, 0x62);
        Assert.True(target.Pic.InterruptOutput);
        Assert.Equal(0x31, target.Pic.Acknowledge());
    }

    [Fact]
    public void IoApic_RestoredEntriesAndRemoteIrrBehaveTheSame()
    {
        var source = new InterruptFabric();
        source.EnableApics();
        source.WriteIoApic(0x00, 0x0300_0000);
        source.WriteIoApic(0x22, 0x0000_8039);
        source.WriteIoApic(0x18, 0x0000_0034);
        source.Router.SetLevel(9, true);
        var saved = source.IoApic.Save();

        var target = new InterruptFabric();
        target.EnableApics();
        target.IoApic.Restore(saved);

        Assert.Equal(0x0300_0000u, target.ReadIoApic(0x00));
        Assert.Equal(0x0000_C039u, target.ReadIoApic(0x22));
        Assert.Equal(0x0000_0034u, target.ReadIoApic(0x18));
        Assert.Equal(1u << 9, target.IoApic.PinLevels);
        Assert.False(target.Lapic.HasPendingInterrupt); // restoring delivers nothing

        target.IoApic.EndOfInterrupt(0x39); // the pin is still asserted: delivered again
        Assert.True(target.Lapic.IsRequested(0x39));

        Assert.Throws<ArgumentException>(() => target.IoApic.Restore(saved with { RedirectionEntries = new ulong[3] }));
    }

    [Fact]
    public void Pit_RestoredCountersContinueFromTheSavedPhase()
    {
        var source = new InterruptFabric();
        var sourcePit = new Pit8254(source.Time, new RecordingIrqLine());
        sourcePit.Write(3, [0x34]);
        sourcePit.Write(0, [0xA9]);
        sourcePit.Write(0, [0x04]);   // mode 2, 1193
        sourcePit.PortB.Write(0, [0x01]);
        sourcePit.Write(3, [0xB0]);
        sourcePit.Write(2, [0x10]);
        sourcePit.Write(2, [0x27]);   // counter 2, mode 0, 10000
        source.Advance(4_200);        // 501 PIT clocks
        sourcePit.Write(3, [0x00]);   // latch counter 0, left unread
        var saved = sourcePit.Save();

        var target = new InterruptFabric();
        target.Advance(123_456_789);  // a different time line
        var irq0 = new RecordingIrqLine();
        var targetPit = new Pit8254(target.Time, irq0);
        targetPit.Restore(saved);

        Assert.Equal(1193 - 501, targetPit.GetCount(0));
        Assert.Equal(10000 - 501, targetPit.GetCount(2));
        byte[] latched = new byte[1];
        targetPit.Read(0, latched);
        Assert.Equal((1193 - 501) & 0xFF, latched[0]);
        byte[] portB = new byte[1];
        targetPit.PortB.Read(0, portB);
        Assert.Equal(0x01, portB[0] & 0x0F);
        Assert.True(irq0.Level);

        long clocksToEdge = 1193 - 501;
        long expected = target.Now + (long)Math.Ceiling(clocksToEdge * 1e7 / Pit8254.InputFrequencyHz);
        Assert.InRange(targetPit.NextDeadline, expected - 9, expected + 9); // within one PIT clock

        Assert.Throws<ArgumentException>(() => targetPit.Restore(saved with { Channels = [] }));
    }

    [Fact]
    public void Lapic_RestoredTimerAndVectorsContinue()
    {
        var source = new InterruptFabric();
        source.EnableApics();
        source.Lapic.ConfigureVirtualWire();
        source.Write(0x3E0, 0xB);
        source.Write(0x320, 0x2_0031);  // periodic 0x31
        source.Write(0x380, 1_000_000); // 1 ms
        source.Write(0x80, 0x20);
        source.Bus.Deliver(new ApicMessage(0x61, ApicDeliveryMode.Fixed, false, 0, true));
        Assert.Equal(0x61, source.Lapic.AcknowledgeInterrupt());
        source.Bus.Deliver(new ApicMessage(0x45, ApicDeliveryMode.Fixed, false, 0, false));
        source.Lapic.SetLint1(true);
        source.Advance(2_500);          // a quarter period
        var saved = source.Lapic.Save();

        var target = new InterruptFabric();
        target.Advance(987_654_321);
        target.Lapic.Restore(saved);

        Assert.Equal(750_000u, target.Read(0x390));
        Assert.Equal(0x20u, target.Read(0x80));
        Assert.Equal(0x60u, target.Read(0xA0));
        Assert.True(target.Lapic.IsInService(0x61));
        Assert.True(target.Lapic.IsLevelTriggered(0x61));
        Assert.True(target.Lapic.IsRequested(0x45));
        Assert.True(target.Lapic.HasPendingNmi);
        Assert.Equal(target.Now + 7_500, target.Lapic.NextDeadline);

        target.Write(0xB0, 0);          // EOI of the level vector reaches the target's IOAPIC, not the source's
        Assert.False(target.Lapic.IsInService(0x61));

        Assert.Throws<ArgumentException>(() => target.Lapic.Restore(saved with { Irr = new uint[7] }));
        Assert.Throws<ArgumentException>(() => target.Lapic.Restore(saved with { ApicBase = 0xFEE0_0D00 }));
    }
}
