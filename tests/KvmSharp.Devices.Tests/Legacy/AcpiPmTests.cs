using KvmSharp.Devices.Bus;
using KvmSharp.Devices.Legacy;

namespace KvmSharp.Devices.Tests.Legacy;

public class AcpiPmTests
{
    private readonly RecordingIrqLine _sci = new();
    private int _powerOffs;

    private AcpiPm NewDevice() => new(() => _powerOffs++, _sci);

    private static IoDispatcher Wire(AcpiPm pm)
    {
        var io = new IoDispatcher();
        io.Ports.Register(AcpiPm.EventBlockPort, AcpiPm.EventBlockLength, pm.Events, "acpi pm1a evt");
        io.Ports.Register(AcpiPm.ControlBlockPort, AcpiPm.ControlBlockLength, pm.Control, "acpi pm1a cnt");
        return io;
    }

    private static byte[] Read(IoDispatcher io, ushort port, int size)
    {
        byte[] data = new byte[size];
        io.PortRead(port, data);
        return data;
    }

    [Fact]
    public void Ports_AreTheOnesTheFadtNames()
    {
        Assert.Equal(0x600, AcpiPm.EventBlockPort);
        Assert.Equal(4, AcpiPm.EventBlockLength);
        Assert.Equal(0x604, AcpiPm.ControlBlockPort);
        Assert.Equal(2, AcpiPm.ControlBlockLength);
        Assert.Equal(5, AcpiPm.S5SleepType);
    }

    [Fact]
    public void Reset_StatusAndEnableAreZero_ControlReadsSciEnabled()
    {
        var io = Wire(NewDevice());

        Assert.Equal(new byte[] { 0, 0, 0, 0 }, Read(io, 0x600, 4));
        Assert.Equal(new byte[] { 0x01, 0x00 }, Read(io, 0x604, 2));
        Assert.Equal(new byte[] { 0x01 }, Read(io, 0x604, 1));
        Assert.Equal(new byte[] { 0x00 }, Read(io, 0x605, 1));
        Assert.Empty(_sci.Transitions);
    }

    [Fact]
    public void S5Write_WordWithSleepTypeAndSleepEnable_PowersOffOnce()
    {
        var pm = NewDevice();
        var io = Wire(pm);

        io.PortWrite(0x604, [0x00, 0x34]); // (5 << 10) | (1 << 13) = 0x3400

        Assert.Equal(1, _powerOffs);
        Assert.Equal(1L, pm.PowerOffRequests);
        Assert.Equal(0L, pm.IgnoredSleepRequests);

        // SLP_TYP is kept, SLP_EN reads 0, SCI_EN reads 1.
        Assert.Equal(new byte[] { 0x01, 0x14 }, Read(io, 0x604, 2));
    }

    [Fact]
    public void S5_AsLinuxWritesIt_TypeFirstThenEnable_PowersOffOnlyOnTheSecondWrite()
    {
        var pm = NewDevice();
        var io = Wire(pm);

        // acpi_hw_legacy_sleep: read PM1_CNT, clear SLP_TYP/SLP_EN, write SLP_TYP; then write again with SLP_EN.
        ushort value = (ushort)(pm.ControlValue & ~(AcpiPm.ControlSleepTypeMask | AcpiPm.ControlSleepEnable));
        value |= 5 << 10;
        io.PortWrite(0x604, [(byte)value, (byte)(value >> 8)]);
        Assert.Equal(0, _powerOffs);
        Assert.Equal((ushort)0x1401, pm.ControlValue);

        value |= AcpiPm.ControlSleepEnable;
        io.PortWrite(0x604, [(byte)value, (byte)(value >> 8)]);
        Assert.Equal(1, _powerOffs);
    }

    [Fact]
    public void S5_ByteWriteOfTheHighByte_UsesTheStoredLowByte()
    {
        var io = Wire(NewDevice());

        io.PortWrite(0x605, [0x34]);

        Assert.Equal(1, _powerOffs);
    }

    [Fact]
    public void S5_DwordWriteStartingAtTheControlBlock_IsDroppedByTheBus_BecauseItStraddlesTheRange()
    {
        var io = Wire(NewDevice());

        io.PortWrite(0x604, [0x00, 0x34, 0x00, 0x00]);

        Assert.Equal(0, _powerOffs);
        Assert.Equal(1L, io.Ports.UnhandledWrites);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(4)]
    [InlineData(6)]
    [InlineData(7)]
    public void OtherSleepTypes_AreIgnoredAndCounted(int sleepType)
    {
        var pm = NewDevice();
        var io = Wire(pm);
        ushort value = (ushort)((sleepType << 10) | (1 << 13));

        io.PortWrite(0x604, [(byte)value, (byte)(value >> 8)]);
        io.PortWrite(0x604, [(byte)value, (byte)(value >> 8)]);

        Assert.Equal(0, _powerOffs);
        Assert.Equal(0L, pm.PowerOffRequests);
        Assert.Equal(2L, pm.IgnoredSleepRequests);
        Assert.Equal(sleepType, pm.LastIgnoredSleepType);
        Assert.Equal((ushort)((sleepType << 10) | 1), pm.ControlValue);
    }

    [Fact]
    public void SleepTypeWithoutSleepEnable_DoesNothing()
    {
        var pm = NewDevice();
        var io = Wire(pm);

        io.PortWrite(0x604, [0x00, 0x14]);

        Assert.Equal(0, _powerOffs);
        Assert.Equal(0L, pm.IgnoredSleepRequests);
        Assert.Equal(-1, pm.LastIgnoredSleepType);
    }

    [Fact]
    public void Control_KeepsBusMasterReload_ReadsGlobalReleaseAndReservedBitsAsZero_SciEnStaysSet()
    {
        var pm = NewDevice();
        var io = Wire(pm);

        io.PortWrite(0x604, [0xFE, 0xC3]); // SCI_EN 0, BM_RLD, GBL_RLS, reserved bits, SLP_TYP 0, no SLP_EN

        Assert.Equal(new byte[] { 0x03, 0x00 }, Read(io, 0x604, 2));
        Assert.Equal(0L, pm.IgnoredSleepRequests);
    }

    [Fact]
    public void Enable_HoldsItsDefinedBitsOnly()
    {
        var pm = NewDevice();
        var io = Wire(pm);

        io.PortWrite(0x602, [0xFF, 0xFF]);

        Assert.Equal((ushort)0x4721, pm.Enable);
        Assert.Equal(new byte[] { 0x00, 0x00, 0x21, 0x47 }, Read(io, 0x600, 4));

        io.PortWrite(0x603, [0x01]); // high byte only: PWRBTN_EN stays, the others in it go
        Assert.Equal((ushort)0x0121, pm.Enable);
    }

    [Fact]
    public void PowerButton_SetsStatus_RaisesSciWhenEnabled_WriteOneClears()
    {
        var pm = NewDevice();
        var io = Wire(pm);

        pm.PressPowerButton();
        Assert.Equal(new byte[] { 0x00, 0x01 }, Read(io, 0x600, 2));
        Assert.Empty(_sci.Transitions); // not enabled yet

        io.PortWrite(0x602, [0x00, 0x01]); // PWRBTN_EN
        Assert.Equal(new[] { true }, _sci.Transitions);

        io.PortWrite(0x600, [0x00, 0x00]); // writing 0 clears nothing
        Assert.Equal((ushort)0x0100, pm.Status);
        Assert.True(_sci.Level);

        io.PortWrite(0x600, [0xFF, 0xFE]); // every bit but PWRBTN_STS: still set
        Assert.Equal((ushort)0x0100, pm.Status);

        io.PortWrite(0x600, [0x00, 0x01]); // write 1 to clear
        Assert.Equal((ushort)0x0000, pm.Status);
        Assert.Equal(new[] { true, false }, _sci.Transitions);
        Assert.Equal(0, _powerOffs);
    }

    [Fact]
    public void DwordWriteToTheEventBlock_ClearsStatusAndSetsEnableTogether()
    {
        var pm = NewDevice();
        var io = Wire(pm);
        pm.PressPowerButton();

        io.PortWrite(0x600, [0x00, 0x01, 0x00, 0x01]); // clear PWRBTN_STS, set PWRBTN_EN

        Assert.Equal((ushort)0, pm.Status);
        Assert.Equal((ushort)0x0100, pm.Enable);
        Assert.Empty(_sci.Transitions);
    }

    [Fact]
    public void DisablingTheEvent_DropsTheSci()
    {
        var pm = NewDevice();
        var io = Wire(pm);
        io.PortWrite(0x602, [0x00, 0x01]);
        pm.PressPowerButton();

        io.PortWrite(0x602, [0x00, 0x00]);

        Assert.Equal(new[] { true, false }, _sci.Transitions);
        Assert.Equal((ushort)0x0100, pm.Status);
    }

    [Fact]
    public void SaveRestore_RoundTripsAndReassertsTheSci()
    {
        var pm = NewDevice();
        var io = Wire(pm);
        io.PortWrite(0x602, [0x21, 0x01]);
        io.PortWrite(0x604, [0x02, 0x0C]); // BM_RLD, SLP_TYP 3, no SLP_EN
        pm.PressPowerButton();

        var state = pm.Save();
        Assert.Equal(new AcpiPmState(0x0100, 0x0121, 0x0C02), state);

        var sci = new RecordingIrqLine();
        var restored = new AcpiPm(() => _powerOffs++, sci);
        restored.Restore(state);

        Assert.Equal((ushort)0x0100, restored.Status);
        Assert.Equal((ushort)0x0121, restored.Enable);
        Assert.Equal((ushort)0x0C03, restored.ControlValue);
        Assert.Equal(new[] { true }, sci.Transitions);
    }

    [Fact]
    public void Restore_MasksBitsTheModelDoesNotHold()
    {
        var pm = NewDevice();

        pm.Restore(new AcpiPmState(0xFFFF, 0xFFFF, 0xFFFF));

        Assert.Equal(new AcpiPmState(0x0100, 0x4721, 0x1C02), pm.Save());
        Assert.Equal((ushort)0x1C03, pm.ControlValue);
        Assert.Equal(0, _powerOffs);
    }

    [Fact]
    public void ReadsPastTheBlock_AnswerAllOnes_WhenCalledDirectly()
    {
        var pm = NewDevice();
        byte[] data = new byte[4];

        pm.Control.Read(0, data);

        Assert.Equal(new byte[] { 0x01, 0x00, 0xFF, 0xFF }, data);
    }

    [Fact]
    public void WithoutAnSciLine_PowerButtonStillSetsStatus()
    {
        var pm = new AcpiPm(() => _powerOffs++);

        pm.PressPowerButton();
        pm.Events.Write(2, [0x00, 0x01]);

        Assert.Equal((ushort)0x0100, pm.Status);
    }

    [Fact]
    public void Constructor_RejectsANullPowerOffAction() =>
        Assert.Throws<ArgumentNullException>(() => new AcpiPm(null!));
}
