using KvmSharp.Devices.InterruptControllers;

namespace KvmSharp.Devices.Tests.InterruptControllers;

public class LocalApicTests
{
    private readonly InterruptFabric _f = new();

    private LocalApic Lapic => _f.Lapic;

    private void Fixed(byte vector, byte destination = 0, bool level = false) =>
        _f.Bus.Deliver(new ApicMessage(vector, ApicDeliveryMode.Fixed, false, destination, level));

    [Fact]
    public void PowerUpState()
    {
        var f = new InterruptFabric(cpus: 3);
        var ap = f.Lapics[2];

        Assert.Equal(0x0200_0000u, InterruptFabric.Read(ap, 0x20));
        Assert.Equal(0x0005_0014u, InterruptFabric.Read(ap, 0x30));
        Assert.Equal(0x0000_00FFu, InterruptFabric.Read(ap, 0xF0));
        Assert.Equal(0xFFFF_FFFFu, InterruptFabric.Read(ap, 0xE0));
        Assert.Equal(0u, InterruptFabric.Read(ap, 0xD0));
        for (int lvt = 0x320; lvt <= 0x370; lvt += 0x10)
        {
            Assert.Equal(0x0001_0000u, InterruptFabric.Read(ap, lvt));
        }

        Assert.Equal(0xFEE0_0800UL, ap.ApicBaseMsr);
        Assert.Equal(0xFEE0_0900UL, f.Lapics[0].ApicBaseMsr);
        Assert.False(ap.HasPendingInterrupt);
        Assert.Equal(long.MaxValue, ap.NextDeadline);
    }

    [Fact]
    public void FixedInterrupt_AckMovesIrrToIsr_EoiClearsIt()
    {
        _f.EnableApics();
        Fixed(0x41);
        Assert.True(Lapic.HasPendingInterrupt);
        Assert.True(Lapic.HasPendingMaskableInterrupt);
        Assert.Equal(0x0000_0002u, _f.Read(0x200 + 0x20)); // IRR bit 0x41: register 2, bit 1

        Assert.Equal(0x41, Lapic.AcknowledgeInterrupt());
        Assert.False(Lapic.HasPendingInterrupt);
        Assert.Equal(0u, _f.Read(0x220));
        Assert.Equal(0x0000_0002u, _f.Read(0x120));
        Assert.Equal(0x40u, _f.Read(0xA0)); // PPR follows ISR

        _f.Write(0xB0, 0);
        Assert.Equal(0u, _f.Read(0x120));
        Assert.Equal(0u, _f.Read(0xA0));
    }

    [Fact]
    public void Tpr_MasksClassesAtOrBelow_Cr8Style()
    {
        _f.EnableApics();
        Lapic.Tpr = 0x40; // CR8 = 4
        Fixed(0x4F);
        Assert.False(Lapic.HasPendingInterrupt);
        Assert.Equal(0x40u, _f.Read(0xA0));

        Fixed(0x50);
        Assert.True(Lapic.HasPendingInterrupt);
        Assert.Equal(0x50, Lapic.AcknowledgeInterrupt());

        _f.Write(0x80, 0x123); // TPR holds 8 bits
        Assert.Equal(0x23u, _f.Read(0x80));
        Assert.Equal(0x23, Lapic.Tpr);
        Assert.Equal(0x50, Lapic.Ppr); // ISR class 5 above TPR class 2
    }

    [Fact]
    public void Isr_BlocksSameClass_NestsHigher_EoiEndsHighestFirst()
    {
        _f.EnableApics();
        Fixed(0x61);
        Assert.Equal(0x61, Lapic.AcknowledgeInterrupt());
        Fixed(0x65);
        Assert.False(Lapic.HasPendingInterrupt); // same class as the one in service
        Fixed(0x71);
        Assert.Equal(0x71, Lapic.AcknowledgeInterrupt());

        _f.Write(0xB0, 0);
        Assert.False(Lapic.IsInService(0x71));
        Assert.True(Lapic.IsInService(0x61));
        Assert.False(Lapic.HasPendingInterrupt);

        _f.Write(0xB0, 0);
        Assert.True(Lapic.HasPendingInterrupt);
        Assert.Equal(0x65, Lapic.AcknowledgeInterrupt());
    }

    [Fact]
    public void Acknowledge_WhenInterruptVanished_ReturnsSpuriousVector_StateUnchanged()
    {
        _f.Write(0xF0, 0x1EF);
        Fixed(0x41);
        Assert.True(Lapic.HasPendingInterrupt);
        Lapic.Tpr = 0xF0; // raised between INTR and INTA

        Assert.Equal(0xEF, Lapic.AcknowledgeInterrupt());
        Assert.True(Lapic.IsRequested(0x41));
        Assert.False(Lapic.IsInService(0xEF));
        Assert.Equal(0u, _f.Read(0x170)); // ISR word of vectors 0xE0-0xFF
    }

    [Fact]
    public void SoftwareDisabled_DropsFixed_MasksLvtWrites()
    {
        Fixed(0x41);
        Assert.False(Lapic.IsRequested(0x41));

        _f.Write(0x370, 0xFE);
        Assert.Equal(0x0001_00FEu, _f.Read(0x370));

        _f.EnableApics();
        _f.Write(0x370, 0xFE);
        Assert.Equal(0x0000_00FEu, _f.Read(0x370));
        _f.Write(0xF0, 0x0FF); // software disable masks all LVTs
        Assert.Equal(0x0001_00FEu, _f.Read(0x370));
    }

    [Fact]
    public void ExtIntThroughLint0_RunsThePicInta()
    {
        _f.InitPic(masterMask: 0xF9); // IRQ1 and the cascade
        _f.Router.SetLevel(1, true);
        Assert.False(Lapic.HasPendingInterrupt); // LINT0 masked at power-up

        Lapic.ConfigureVirtualWire();
        Assert.Equal(0x0000_0700u, _f.Read(0x350));
        Assert.Equal(0x0000_0400u, _f.Read(0x360));
        Assert.True(Lapic.HasPendingInterrupt); // even though the APIC is software-disabled, as KVM accepts it

        Assert.Equal(0x31, Lapic.AcknowledgeInterrupt());
        Assert.Equal(0x0002, _f.Pic.InServiceRegister);
        Assert.False(Lapic.HasPendingInterrupt);

        _f.PicOut(0x20, 0x61);
        _f.Router.SetLevel(1, false);
        _f.Router.SetLevel(1, true);
        Assert.True(Lapic.HasPendingInterrupt);
        _f.EnableApics();
        _f.Write(0x350, 0x0001_0700); // Linux masks LINT0 once the IOAPIC takes over
        Assert.False(Lapic.HasPendingInterrupt);
    }

    [Fact]
    public void HardwareDisabled_PicIntrGoesStraightToTheCpu()
    {
        _f.InitPic(masterMask: 0xFB, slaveMask: 0xEF);
        Assert.True(Lapic.TryWriteApicBaseMsr(0xFEE0_0100));
        Assert.False(Lapic.HardwareEnabled);
        Assert.False(Lapic.ContainsAddress(0xFEE0_0020));

        _f.Router.SetLevel(12, true);
        Assert.True(Lapic.HasPendingInterrupt);
        Assert.Equal(0x3C, Lapic.AcknowledgeInterrupt());

        byte[] data = new byte[4];
        Lapic.Read(0x30, data);
        Assert.Equal(new byte[] { 0xFF, 0xFF, 0xFF, 0xFF }, data);
    }

    [Theory]
    [InlineData(0xFEE0_0901UL)]      // bit 0
    [InlineData(0xFEE0_0B00UL)]      // bit 9
    [InlineData(0xFEE0_0D00UL)]      // x2APIC enable: not offered
    [InlineData(0x100_FEE0_0900UL)]  // bit 40, at MAXPHYADDR
    public void ApicBaseMsr_ReservedBitsRefused(ulong value)
    {
        Assert.False(Lapic.TryWriteApicBaseMsr(value));
        Assert.Equal(0xFEE0_0900UL, Lapic.ApicBaseMsr);
    }

    [Fact]
    public void ApicBaseMsr_RelocatesThePage_DisableResetsState()
    {
        _f.EnableApics();
        Assert.True(Lapic.TryWriteApicBaseMsr(0xFED0_0900));
        Assert.Equal(0xFED0_0000UL, Lapic.BaseAddress);
        Assert.True(Lapic.ContainsAddress(0xFED0_0FFC));
        Assert.False(Lapic.ContainsAddress(0xFEE0_0020));
        Assert.True(Lapic.TryWriteApicBaseMsr(0xFF_FED0_0900)); // below MAXPHYADDR 40
        Assert.Equal(0xFF_FED0_0000UL, Lapic.BaseAddress);

        Assert.True(Lapic.TryWriteApicBaseMsr(0xFEE0_0100));
        Assert.True(Lapic.TryWriteApicBaseMsr(0xFEE0_0900));
        Assert.Equal(0xFFu, _f.Read(0xF0)); // back to the power-up SVR
    }

    [Fact]
    public void TimerOneShot_CountsDownAndFiresOnce()
    {
        _f.EnableApics();
        _f.Write(0x3E0, 0xB);        // divide by 1: 1 GHz
        _f.Write(0x320, 0x30);       // one-shot, vector 0x30
        _f.Write(0x380, 1_000_000);  // 1 ms
        long start = _f.Now;
        Assert.Equal(start + 10_000, Lapic.NextDeadline);

        _f.Advance(5_000);
        Assert.Equal(500_000u, _f.Read(0x390));
        Lapic.Poll(_f.Now);
        Assert.False(Lapic.HasPendingInterrupt);

        _f.Advance(5_000);
        Lapic.Poll(_f.Now);
        Assert.True(Lapic.IsRequested(0x30));
        Assert.Equal(0u, _f.Read(0x390));
        Assert.Equal(long.MaxValue, Lapic.NextDeadline);
        Assert.Equal(0x30, Lapic.AcknowledgeInterrupt());

        _f.Advance(50_000);
        Lapic.Poll(_f.Now);
        Assert.False(Lapic.HasPendingInterrupt);
        Assert.Equal(1_000_000u, _f.Read(0x380));
    }

    [Fact]
    public void TimerPeriodic_MissedPeriodsCoalesce_DivideApplies()
    {
        _f.EnableApics();
        _f.Write(0x3E0, 0x3);        // divide by 16
        _f.Write(0x320, 0x2_0031);   // periodic, vector 0x31
        _f.Write(0x380, 62_500);     // 62,500 * 16 ns = 1 ms
        long start = _f.Now;
        Assert.Equal(start + 10_000, Lapic.NextDeadline);

        _f.Advance(35_000);          // 3.5 periods
        Assert.Equal(31_250u, _f.Read(0x390));
        Lapic.Poll(_f.Now);
        Assert.Equal(0x31, Lapic.AcknowledgeInterrupt());
        Assert.Equal(start + 40_000, Lapic.NextDeadline);
        _f.Write(0xB0, 0);

        Lapic.Poll(_f.Now);
        Assert.False(Lapic.HasPendingInterrupt);
        _f.Advance(5_000);
        Lapic.Poll(_f.Now);
        Assert.True(Lapic.IsRequested(0x31));
        Assert.Equal(0x3u, _f.Read(0x3E0));
    }

    [Fact]
    public void TimerMasked_CountsButSignalsNothing()
    {
        _f.EnableApics();
        _f.Write(0x3E0, 0xB);
        _f.Write(0x320, 0x1_0030);
        _f.Write(0x380, 1000);
        Assert.Equal(long.MaxValue, Lapic.NextDeadline);

        _f.Advance(5);
        Assert.Equal(500u, _f.Read(0x390));
        _f.Advance(100);
        Lapic.Poll(_f.Now);
        _f.Write(0x320, 0x30); // unmasked after expiry: nothing owed
        Lapic.Poll(_f.Now);
        Assert.False(Lapic.HasPendingInterrupt);
    }

    [Fact]
    public void TscDeadline_FiresAtTheDeadline_MsrReadsZeroAfter()
    {
        _f.EnableApics();
        Lapic.TscDeadline = _f.ReadTsc() + 1000;
        Assert.Equal(0UL, Lapic.TscDeadline); // ignored outside TSC-deadline mode

        _f.Write(0x320, 0x4_0032);
        _f.Write(0x380, 1234); // the initial count is ignored in this mode
        Assert.Equal(0u, _f.Read(0x380));
        ulong deadline = _f.ReadTsc() + 2_000_000; // 2 ms at 1 GHz
        Lapic.TscDeadline = deadline;
        Assert.Equal(deadline, Lapic.TscDeadline);
        Assert.Equal(_f.Now + 20_000, Lapic.NextDeadline);

        _f.Advance(19_999);
        Lapic.Poll(_f.Now);
        Assert.False(Lapic.HasPendingInterrupt);
        _f.Advance(1);
        Lapic.Poll(_f.Now);
        Assert.Equal(0x32, Lapic.AcknowledgeInterrupt());
        Assert.Equal(0UL, Lapic.TscDeadline);
        Assert.Equal(long.MaxValue, Lapic.NextDeadline);

        Lapic.TscDeadline = _f.ReadTsc() - 5; // already past: at once
        Assert.True(Lapic.IsRequested(0x32));
    }

    [Fact]
    public void TimerModeSwitchToDeadline_Disarms()
    {
        _f.EnableApics();
        _f.Write(0x320, 0x30);
        _f.Write(0x380, 1000);
        _f.Write(0x320, 0x4_0030);

        Assert.Equal(0u, _f.Read(0x380));
        Assert.Equal(long.MaxValue, Lapic.NextDeadline);
    }

    [Fact]
    public void LevelVector_EoiBroadcastReachesIoApic_RedeliversWhileHigh()
    {
        _f.EnableApics();
        _f.WriteIoApic(0x22, 0x0000_8039); // pin 9 (SCI): level, vector 0x39, APIC ID 0
        _f.WriteIoApic(0x23, 0);

        _f.Router.SetLevel(9, true);
        Assert.True(Lapic.IsLevelTriggered(0x39));
        Assert.Equal(0x39, Lapic.AcknowledgeInterrupt());
        Assert.Equal(0x0000_C039u, _f.ReadIoApic(0x22));

        _f.Write(0xB0, 0);
        Assert.True(Lapic.IsRequested(0x39)); // still asserted: delivered again
        Assert.Equal(0x0000_C039u, _f.ReadIoApic(0x22));

        _f.Router.SetLevel(9, false);
        Assert.Equal(0x39, Lapic.AcknowledgeInterrupt());
        _f.Write(0xB0, 0);
        Assert.Equal(0x0000_8039u, _f.ReadIoApic(0x22));
        Assert.False(Lapic.HasPendingInterrupt);
    }

    [Fact]
    public void EdgeVector_EoiDoesNotTouchIoApic()
    {
        _f.EnableApics();
        _f.WriteIoApic(0x22, 0x0000_8039);
        _f.Router.SetLevel(9, true);
        Assert.Equal(0x39, Lapic.AcknowledgeInterrupt());

        Fixed(0x39); // the same vector arrives as an edge IPI: TMR cleared
        Assert.False(Lapic.IsLevelTriggered(0x39));
        _f.Write(0xB0, 0);
        Assert.Equal(0x0000_C039u, _f.ReadIoApic(0x22));
    }

    [Fact]
    public void Esr_LatchesOnWrite_IllegalVectorsAndRegisters()
    {
        _f.EnableApics();
        _f.Write(0x370, 0xFE); // error LVT
        Fixed(0x05);
        Assert.False(Lapic.IsRequested(0x05));
        Assert.True(Lapic.IsRequested(0xFE));
        Assert.Equal(0u, _f.Read(0x280)); // nothing until ESR is written

        _f.Write(0x280, 0);
        Assert.Equal(0x40u, _f.Read(0x280));
        _f.Write(0x280, 0);
        Assert.Equal(0u, _f.Read(0x280));

        Assert.Equal(0u, _f.Read(0x2F0)); // CMCI does not exist with six LVT entries
        _f.Write(0x3F0, 0x42);            // SELF IPI is x2APIC only
        _f.Write(0x300, 0x4003);          // fixed IPI with vector 3
        _f.Write(0x280, 0);
        Assert.Equal(0xA0u, _f.Read(0x280));
    }

    [Fact]
    public void OddAccesses_AnsweredLikeHardware()
    {
        _f.EnableApics();
        byte[] one = new byte[1];
        Lapic.Read(0x32, one);
        Assert.Equal(0x05, one[0]); // byte 2 of the version

        byte[] beyond = [0xAA, 0xAA, 0xAA, 0xAA];
        Lapic.Read(0x34, beyond);
        Assert.Equal(new byte[4], beyond);

        Lapic.Write(0x80, new byte[] { 0x50, 0x00 });       // 2-byte write: dropped
        Lapic.Write(0x84, new byte[] { 0x50, 0, 0, 0 });    // not at the register's start: dropped
        Lapic.Write(0x80, new byte[] { 0x50, 0, 0, 0, 0, 0, 0, 0 }); // 8 bytes: dropped
        Assert.Equal(0u, _f.Read(0x80));

        _f.Write(0x30, 0);          // version is read-only
        _f.Write(0x390, 5);         // current count is read-only
        _f.Write(0x100, 0xFFFF_FFFF); // ISR is read-only
        Assert.Equal(0x0005_0014u, _f.Read(0x30));
        Assert.Equal(0u, _f.Read(0x390));
        Assert.Equal(0u, _f.Read(0x100));

        _f.Write(0x3E0, 0xFF);
        Assert.Equal(0xBu, _f.Read(0x3E0));
        _f.Write(0xE0, 0);
        Assert.Equal(0x0FFF_FFFFu, _f.Read(0xE0));
        _f.Write(0xD0, 0xFFFF_FFFF);
        Assert.Equal(0xFF00_0000u, _f.Read(0xD0));
        _f.Write(0xF0, 0xFFFF_FFFF);
        Assert.Equal(0x3FFu, _f.Read(0xF0));
        _f.Write(0x320, 0xFFFF_FFFF);
        Assert.Equal(0x0007_00FFu, _f.Read(0x320));
        _f.Write(0x350, 0xFFFF_FFFF);
        Assert.Equal(0x0001_A7FFu, _f.Read(0x350));
        _f.Write(0x310, 0xFFFF_FFFF);
        Assert.Equal(0xFF00_0000u, _f.Read(0x310));

        byte[] outside = new byte[4];
        Lapic.Read(0x1000, outside);
        Assert.Equal(new byte[] { 0xFF, 0xFF, 0xFF, 0xFF }, outside);
    }

    [Fact]
    public void Apr_FollowsTheSdmFormula()
    {
        _f.EnableApics();
        Lapic.Tpr = 0x35;
        Assert.Equal(0x35u, _f.Read(0x90)); // TPR class above IRR and ISR: TPR itself

        Fixed(0x61);
        Assert.Equal(0x60u, _f.Read(0x90)); // IRR class above TPR
        Assert.Equal(0x61, Lapic.AcknowledgeInterrupt());
        Assert.Equal(0x60u, _f.Read(0x90)); // ISR class
    }

    [Fact]
    public void Lint1_RisingEdgeIsNmi_TakenOnce()
    {
        Lapic.ConfigureVirtualWire();
        Lapic.SetLint1(true);
        Lapic.SetLint1(true);
        Assert.True(Lapic.HasPendingNmi);
        Assert.False(Lapic.HasPendingMaskableInterrupt);
        Assert.True(Lapic.TakeNmi());
        Assert.False(Lapic.TakeNmi());
        Assert.False(Lapic.HasPendingInterrupt);
    }

    [Fact]
    public void InitReset_KeepsIdAndBase_ClearsTheRest()
    {
        _f.EnableApics();
        _f.Write(0x20, 0x0700_0000);
        _f.Write(0x80, 0x20);
        Fixed(0x41, destination: 7);
        Assert.True(Lapic.IsRequested(0x41));

        Lapic.InitReset();
        Assert.Equal(0x0700_0000u, _f.Read(0x20));
        Assert.Equal(0u, _f.Read(0x80));
        Assert.Equal(0xFFu, _f.Read(0xF0));
        Assert.False(Lapic.IsRequested(0x41));
        Assert.Equal(0xFEE0_0900UL, Lapic.ApicBaseMsr);
    }
}
