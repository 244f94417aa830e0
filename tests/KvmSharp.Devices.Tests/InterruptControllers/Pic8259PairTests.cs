using KvmSharp.Devices.Bus;
using KvmSharp.Devices.InterruptControllers;

namespace KvmSharp.Devices.Tests.InterruptControllers;

public class Pic8259PairTests
{
    private readonly Pic8259Pair _pic = new();
    private readonly IoDispatcher _io = new();

    public Pic8259PairTests()
    {
        _io.Ports.Register(Pic8259Pair.MasterPort, Pic8259Pair.PortCount, _pic.Master, "pic master");
        _io.Ports.Register(Pic8259Pair.SlavePort, Pic8259Pair.PortCount, _pic.Slave, "pic slave");
        _io.Ports.Register(Pic8259Pair.ElcrPort, Pic8259Pair.PortCount, _pic.Elcr, "elcr");
    }

    private void Out(ushort port, byte value) => _io.PortWrite(port, [value]);

    private byte In(ushort port)
    {
        Span<byte> data = stackalloc byte[1];
        _io.PortRead(port, data);
        return data[0];
    }

    /// <summary>arch/x86/kernel/i8259.c init_8259A(0) as Linux 6.1 writes it, then the masks it restores.</summary>
    private void LinuxInit(byte masterMask = 0xFB, byte slaveMask = 0xFF, bool autoEoi = false)
    {
        Out(0x21, 0xFF);
        Out(0xA1, 0xFF);
        Out(0x20, 0x11);                 // ICW1: edge, cascade, ICW4 follows
        Out(0x21, 0x30);                 // ICW2: IRQ0 at ISA_IRQ_VECTOR(0)
        Out(0x21, 0x04);                 // ICW3: slave on IR2
        Out(0x21, autoEoi ? (byte)0x03 : (byte)0x01); // ICW4: 8086 mode (+ AEOI)
        Out(0xA0, 0x11);
        Out(0xA1, 0x38);                 // ICW2: IRQ8 at 0x38
        Out(0xA1, 0x02);                 // ICW3: slave ID 2
        Out(0xA1, 0x01);                 // ICW4: 8086 mode
        Out(0x21, masterMask);
        Out(0xA1, slaveMask);
    }

    [Fact]
    public void PowerOn_IsFirmwareState_AllMaskedButCascade()
    {
        Assert.Equal((0x08, 0x70), (_pic.VectorBases.Master, _pic.VectorBases.Slave));
        Assert.Equal(0xFB, In(0x21));
        Assert.Equal(0xFF, In(0xA1));
        Assert.Equal(0x00, In(0x20)); // IRR
        Assert.False(_pic.InterruptOutput);
    }

    [Fact]
    public void LinuxProbe_MaskReadsBack()
    {
        // probe_8259A: mask everything, write ~(1 << PIC_CASCADE_IR) and read it back.
        Out(0xA1, 0xFF);
        Out(0x21, 0xFB);
        Assert.Equal(0xFB, In(0x21));
        Out(0x21, 0xFF);
        Assert.Equal(0xFF, In(0x21));
    }

    [Fact]
    public void LinuxInit_SetsVectorBasesAndMasks()
    {
        LinuxInit();

        Assert.Equal((0x30, 0x38), (_pic.VectorBases.Master, _pic.VectorBases.Slave));
        Assert.Equal(0xFB, In(0x21));
        Assert.Equal(0xFF, In(0xA1));
        Assert.Equal(0xFFFB, _pic.MaskRegister);
        Assert.Equal(0, _pic.InServiceRegister);
    }

    [Fact]
    public void MasterIrq_RaisesIntr_AckGivesVector_SpecificEoiClearsIsr()
    {
        LinuxInit(masterMask: 0xFA); // IRQ0 and the cascade unmasked

        _pic.SetIrq(0, true);
        Assert.True(_pic.InterruptOutput);
        Assert.Equal(0x01, In(0x20));

        Assert.Equal(0x30, _pic.Acknowledge());
        Assert.False(_pic.InterruptOutput);
        Assert.Equal(0x0001, _pic.InServiceRegister);
        Assert.Equal(0x0000, _pic.RequestRegister);

        Out(0x20, 0x60); // mask_and_ack_8259A: specific EOI for IRQ0
        Assert.Equal(0, _pic.InServiceRegister);
        Assert.False(_pic.InterruptOutput);
    }

    [Fact]
    public void SlaveIrq_AckGoesThroughCascade_BothIsrBitsSet_LinuxEoiOrderClearsThem()
    {
        LinuxInit(masterMask: 0xFB, slaveMask: 0xEF); // IRQ12 unmasked

        _pic.SetIrq(12, true);
        Assert.True(_pic.InterruptOutput);
        Assert.Equal(0x3C, _pic.Acknowledge());
        Assert.Equal(0x1004, _pic.InServiceRegister);
        Assert.False(_pic.InterruptOutput);

        Out(0xA0, 0x64); // specific EOI IRQ 4 on the slave
        Out(0x20, 0x62); // then the cascade on the master
        Assert.Equal(0, _pic.InServiceRegister);
    }

    [Fact]
    public void FullyNested_HigherPriorityInterruptsLower_LowerWaitsForEoi()
    {
        LinuxInit(masterMask: 0x00);
        _pic.SetIrq(3, true);
        _pic.SetIrq(1, true);

        Assert.Equal(0x31, _pic.Acknowledge()); // IRQ1 outranks IRQ3
        Assert.False(_pic.InterruptOutput);      // IRQ3 is below IRQ1 in service

        _pic.SetIrq(0, true);
        Assert.True(_pic.InterruptOutput);       // IRQ0 outranks IRQ1
        Assert.Equal(0x30, _pic.Acknowledge());
        Assert.Equal(0x0003, _pic.InServiceRegister);

        Out(0x20, 0x20); // non-specific EOI ends the highest in service: IRQ0
        Assert.Equal(0x0002, _pic.InServiceRegister);
        Assert.False(_pic.InterruptOutput);

        Out(0x20, 0x20);
        Assert.Equal(0x0000, _pic.InServiceRegister);
        Assert.True(_pic.InterruptOutput);
        Assert.Equal(0x33, _pic.Acknowledge());
    }

    [Fact]
    public void Ocw3_SelectsIrrOrIsrForReads()
    {
        LinuxInit(masterMask: 0x00);
        _pic.SetIrq(5, true);
        _pic.SetIrq(6, true);
        Assert.Equal(0x35, _pic.Acknowledge());

        Out(0x20, 0x0B); // read ISR (i8259A_irq_real's probe)
        Assert.Equal(0x20, In(0x20));
        Assert.Equal(0x20, In(0x20)); // the selection sticks
        Out(0x20, 0x0A); // read IRR
        Assert.Equal(0x40, In(0x20));
        Assert.Equal(0x00, In(0x21)); // data port reads IMR whatever OCW3 says
    }

    [Fact]
    public void PollCommand_ActsAsInta_OnlyForTheNextRead()
    {
        LinuxInit(masterMask: 0x00);
        _pic.SetIrq(4, true);

        Out(0x20, 0x0C);
        Assert.Equal(0x84, In(0x20));
        Assert.Equal(0x0010, _pic.InServiceRegister);
        Assert.Equal(0x00, In(0x20)); // back to reading IRR: the edge request was consumed

        Out(0x20, 0x0C);
        Assert.Equal(0x00, In(0x20)); // nothing pending: I = 0
    }

    [Fact]
    public void AutoEoi_AckLeavesIsrClear()
    {
        LinuxInit(masterMask: 0x00, autoEoi: true);
        _pic.SetIrq(1, true);

        Assert.Equal(0x31, _pic.Acknowledge());
        Assert.Equal(0, _pic.InServiceRegister);
        _pic.SetIrq(1, false);
        _pic.SetIrq(1, true);
        Assert.True(_pic.InterruptOutput); // no EOI needed
    }

    [Fact]
    public void RotateOnNonSpecificEoi_MakesServedLevelLowest()
    {
        LinuxInit(masterMask: 0x00);
        _pic.SetIrq(0, true);
        Assert.Equal(0x30, _pic.Acknowledge());
        Out(0x20, 0xA0); // rotate on non-specific EOI: IRQ0 becomes lowest, IRQ1 highest

        _pic.SetIrq(0, false);
        _pic.SetIrq(0, true);
        _pic.SetIrq(7, true);
        Assert.Equal(0x37, _pic.Acknowledge()); // IRQ7 now outranks IRQ0
    }

    [Fact]
    public void SetPriority_MakesGivenLevelLowest()
    {
        LinuxInit(masterMask: 0x00);
        Out(0x20, 0xC3); // IRQ3 lowest, so IRQ4 highest
        _pic.SetIrq(1, true);
        _pic.SetIrq(5, true);

        Assert.Equal(0x35, _pic.Acknowledge());
    }

    [Fact]
    public void SpecialMaskMode_LetsLowerLevelsThroughAMaskedInServiceLevel()
    {
        LinuxInit(masterMask: 0x00);
        _pic.SetIrq(3, true);
        Assert.Equal(0x33, _pic.Acknowledge());
        _pic.SetIrq(5, true);
        Assert.False(_pic.InterruptOutput);

        Out(0x21, 0x08); // mask IRQ3 (in service)
        Out(0x20, 0x68); // OCW3: set special mask mode
        Assert.True(_pic.InterruptOutput);
        Assert.Equal(0x35, _pic.Acknowledge());

        Out(0x20, 0x48); // reset special mask mode: IRQ3 and IRQ5 in service again block
        _pic.SetIrq(6, true);
        Assert.False(_pic.InterruptOutput);
    }

    [Fact]
    public void MaskedRequest_StaysInIrr_AndFiresWhenUnmasked()
    {
        LinuxInit(masterMask: 0xFF);
        _pic.SetIrq(6, true);
        Assert.False(_pic.InterruptOutput);
        Assert.Equal(0x40, In(0x20));

        Out(0x21, 0xBF);
        Assert.True(_pic.InterruptOutput);
        Assert.Equal(0x36, _pic.Acknowledge());
    }

    [Fact]
    public void EdgeInput_NeedsANewRisingEdge_FallingLineKeepsLatchedRequest()
    {
        LinuxInit(masterMask: 0x00);
        _pic.SetIrq(4, true);
        _pic.SetIrq(4, false); // latched: the request survives the line falling
        Assert.Equal(0x34, _pic.Acknowledge());
        Out(0x20, 0x20);

        _pic.SetIrq(4, true);
        Assert.Equal(0x34, _pic.Acknowledge());
        Out(0x20, 0x20);
        _pic.SetIrq(4, true); // still high: no new edge
        Assert.False(_pic.InterruptOutput);
    }

    [Fact]
    public void Elcr_ReservedBitsReadZero_LevelInputFollowsLine()
    {
        Out(0x4D0, 0xFF);
        Out(0x4D1, 0xFF);
        Assert.Equal(0xF8, In(0x4D0));
        Assert.Equal(0xDE, In(0x4D1));

        Out(0x4D0, 0x00);
        Out(0x4D1, 0x02); // IRQ9 level (the SCI)
        LinuxInit(masterMask: 0xFB, slaveMask: 0xFD);
        _pic.SetIrq(9, true);
        Assert.Equal(0x0200, _pic.RequestRegister & 0xFF00);
        Assert.Equal(0x39, _pic.Acknowledge());
        Assert.Equal(0x0200, _pic.RequestRegister & 0xFF00); // a level request stays while the line is high
        Out(0xA0, 0x61);
        Out(0x20, 0x62);
        Assert.True(_pic.InterruptOutput);                  // ... and asks again after EOI

        _pic.SetIrq(9, false);
        Assert.Equal(0x0000, _pic.RequestRegister & 0xFF00);
        Assert.Equal(0x0200, _pic.EdgeLevelControl);
    }

    [Fact]
    public void SpuriousIrq7_WhenALevelRequestVanishesBeforeInta()
    {
        Out(0x4D0, 0x08); // IRQ3 level
        LinuxInit(masterMask: 0x00);
        _pic.SetIrq(3, true);
        Assert.True(_pic.InterruptOutput);
        _pic.SetIrq(3, false);

        Assert.Equal(0x37, _pic.Acknowledge());
        Assert.Equal(0, _pic.InServiceRegister); // a spurious IRQ7 sets no ISR bit
    }

    [Fact]
    public void SpuriousIrq15_WhenSlaveRequestVanishesAfterMasterLatchedCascade()
    {
        Out(0x4D1, 0x04); // IRQ10 level
        LinuxInit(masterMask: 0xFB, slaveMask: 0xFB);
        _pic.SetIrq(10, true);
        Assert.True(_pic.InterruptOutput);
        _pic.SetIrq(10, false);
        Assert.True(_pic.InterruptOutput); // the master latched the cascade edge

        Assert.Equal(0x3F, _pic.Acknowledge());
        Assert.Equal(0x0004, _pic.InServiceRegister); // only the master's IR2: Linux EOIs the master alone
    }

    [Fact]
    public void Icw1WithoutIcw4_AndSingleMode_SkipsIcw3AndIcw4()
    {
        Out(0x20, 0x12); // ICW1: single, no ICW4
        Out(0x21, 0x48); // ICW2
        Out(0x21, 0x5A); // already operational: this is OCW1
        Assert.Equal(0x48, _pic.VectorBases.Master);
        Assert.Equal(0x5A, In(0x21));
    }

    [Fact]
    public void Icw2_LowThreeBitsIgnored()
    {
        Out(0x20, 0x11);
        Out(0x21, 0x37);
        Out(0x21, 0x04);
        Out(0x21, 0x01);
        Out(0x21, 0xFE);
        _pic.SetIrq(0, true);

        Assert.Equal(0x30, _pic.Acknowledge());
    }

    [Fact]
    public void Icw1_ClearsImrAndLatchedEdges()
    {
        LinuxInit(masterMask: 0xFF);
        _pic.SetIrq(5, true);
        Assert.Equal(0x20, In(0x20));

        Out(0x20, 0x11);
        Assert.Equal(0x00, In(0x20));
        Assert.Equal(0x00, In(0x21));
    }

    [Fact]
    public void OutputChanged_FiresOnEdgesOfIntrOnly()
    {
        int calls = 0;
        _pic.OutputChanged = () => calls++;
        LinuxInit(masterMask: 0x00);

        _pic.SetIrq(1, true);
        _pic.SetIrq(4, true); // INTR already high
        Assert.Equal(1, calls);
        _pic.Acknowledge();    // IRQ1 in service blocks IRQ4: INTR falls
        Assert.Equal(2, calls);
    }

    [Fact]
    public void WideAccesses_AreBytewise_OutsideBytesFloat()
    {
        LinuxInit(masterMask: 0x5A);
        byte[] data = new byte[2];
        _io.PortRead(0x20, data);
        Assert.Equal(new byte[] { 0x00, 0x5A }, data);

        _pic.SetIrq(99, true); // nonsense IRQ number: ignored
        Assert.Equal(0, _pic.RequestRegister);
    }
}
