using KvmSharp.Devices.Bus;
using KvmSharp.Devices.Legacy;

namespace KvmSharp.Devices.Tests.Legacy;

public class I8042Tests
{
    private readonly RecordingIrqLine _keyboardIrq = new();
    private readonly RecordingIrqLine _auxIrq = new();
    private readonly I8042 _controller;
    private int _resets;

    public I8042Tests() => _controller = new I8042(() => _resets++, _keyboardIrq, _auxIrq);

    [Fact]
    public void PowerOn_StatusIs0x18_CommandByteIs0x03()
    {
        Assert.Equal(0x18, _controller.ReadStatus());
        _controller.WriteCommand(0x20);
        Assert.Equal(0x19, _controller.ReadStatus());
        Assert.Equal(0x03, _controller.ReadData());
        Assert.Equal(0x18, _controller.ReadStatus());
    }

    [Fact]
    public void SelfTest_Answers0x55_AndSetsTheSystemFlag()
    {
        _controller.WriteCommand(0xAA);

        Assert.Equal(0x1D, _controller.ReadStatus()); // OBF | SYS | A2 | unlocked
        Assert.Equal(0x55, _controller.ReadData());
        Assert.Equal(0x1C, _controller.ReadStatus());
    }

    [Fact]
    public void InterfaceTests_AnswerNoError()
    {
        _controller.WriteCommand(0xAB);
        Assert.Equal(0x00, _controller.ReadData());
        _controller.WriteCommand(0xA9);
        Assert.Equal(0x19, _controller.ReadStatus());
        Assert.Equal(0x00, _controller.ReadData());
    }

    [Fact]
    public void CommandByte_IsWrittenThroughPort60_AndItsSysBitIsMirroredInStatus()
    {
        _controller.WriteCommand(0x60);
        _controller.WriteData(0x65);
        Assert.Equal(0x14, _controller.ReadStatus()); // SYS from the command byte, A2 clear after a data write

        _controller.WriteCommand(0x20);
        Assert.Equal(0x65, _controller.ReadData());

        _controller.WriteCommand(0x60);
        _controller.WriteData(0x61);
        Assert.Equal(0x10, _controller.ReadStatus());
    }

    [Fact]
    public void DisableAndEnableCommands_FlipTheCommandByteBits()
    {
        _controller.WriteCommand(0xA7);
        _controller.WriteCommand(0xAD);
        Assert.Equal(0x33, ReadCommandByte());
        _controller.WriteCommand(0xA8);
        Assert.Equal(0x13, ReadCommandByte());
        _controller.WriteCommand(0xAE);
        Assert.Equal(0x03, ReadCommandByte());
    }

    [Fact]
    public void PulseResetCommand_CallsOnReset()
    {
        _controller.WriteCommand(0xFE);
        Assert.Equal(1, _resets);
        Assert.Equal(1L, _controller.ResetRequests);

        _controller.WriteCommand(0xFF); // pulses nothing
        Assert.Equal(1, _resets);
        _controller.WriteCommand(0xF0); // bit 0 clear: pulses reset too
        Assert.Equal(2, _resets);
    }

    [Fact]
    public void WriteOutputPort_WithBit0Clear_Resets_OtherwiseIsStored()
    {
        _controller.WriteCommand(0xD0);
        Assert.Equal(0xCF, _controller.ReadData());
        Assert.True(_controller.A20Enabled);

        _controller.WriteCommand(0xD1);
        _controller.WriteData(0xCD); // A20 off, reset line released
        Assert.Equal(0, _resets);
        Assert.False(_controller.A20Enabled);
        _controller.WriteCommand(0xD0);
        Assert.Equal(0xCD, _controller.ReadData());

        _controller.WriteCommand(0xDF);
        Assert.True(_controller.A20Enabled);

        _controller.WriteCommand(0xD1);
        _controller.WriteData(0xFE);
        Assert.Equal(1, _resets);
    }

    [Fact]
    public void WriteKeyboardAndAuxOutputBuffers_EchoTheByte()
    {
        _controller.WriteCommand(0xD2);
        _controller.WriteData(0xAB);
        Assert.Equal(0x11, _controller.ReadStatus());
        Assert.Equal(0xAB, _controller.ReadData());

        // Linux's i8042_check_aux: I8042_CMD_AUX_LOOP (0xD3) with 0x5A must come back as aux data.
        _controller.WriteCommand(0xD3);
        _controller.WriteData(0x5A);
        Assert.Equal(0x31, _controller.ReadStatus());
        Assert.Equal(0x5A, _controller.ReadData());
        Assert.Equal(0x10, _controller.ReadStatus());
    }

    [Fact]
    public void BytesForAbsentDevices_AreAnsweredWith0xFE_AndTheTimeoutBit()
    {
        _controller.WriteCommand(0xD4);
        _controller.WriteData(0xF2); // GET ID to the mouse
        Assert.Equal(0x71, _controller.ReadStatus()); // timeout | aux | unlocked | OBF
        Assert.Equal(0xFE, _controller.ReadData());
        Assert.Equal(0x10, _controller.ReadStatus());

        _controller.WriteData(0xFF); // RESET to the keyboard
        Assert.Equal(0x51, _controller.ReadStatus());
        Assert.Equal(0xFE, _controller.ReadData());
    }

    [Fact]
    public void ReadingAnEmptyOutputBuffer_ReturnsTheLastValue()
    {
        _controller.WriteCommand(0xAA);
        Assert.Equal(0x55, _controller.ReadData());
        Assert.Equal(0x55, _controller.ReadData());
        Assert.Equal(0x00, _controller.ReadStatus() & 0x01);
    }

    [Fact]
    public void IrqLines_FollowTheOutputBufferAndTheCommandByte()
    {
        _controller.WriteCommand(0xAA);
        Assert.Equal(new[] { true }, _keyboardIrq.Transitions);
        _controller.ReadData();
        Assert.Equal(new[] { true, false }, _keyboardIrq.Transitions);

        _controller.WriteCommand(0xD3);
        _controller.WriteData(0xA5);
        Assert.Equal(new[] { true }, _auxIrq.Transitions);
        _controller.ReadData();
        Assert.Equal(new[] { true, false }, _auxIrq.Transitions);

        // Interrupts disabled in the command byte: answers raise nothing.
        _controller.WriteCommand(0x60);
        _controller.WriteData(0x44);
        _controller.WriteCommand(0xAA);
        _controller.WriteCommand(0xD3);
        _controller.WriteData(0xA5);
        Assert.Equal(2, _keyboardIrq.Transitions.Count);
        Assert.Equal(2, _auxIrq.Transitions.Count);
    }

    [Fact]
    public void UnknownCommands_AreIgnoredAndCounted()
    {
        _controller.WriteCommand(0xC0);
        _controller.WriteCommand(0x21);

        Assert.Equal(2L, _controller.UnknownCommands);
        Assert.Equal(0x18, _controller.ReadStatus());
    }

    [Fact]
    public void LinuxProbeSequence_ThroughTheIoBus()
    {
        var io = new IoDispatcher();
        io.Ports.Register(I8042.DataPort, 1, _controller.Data, "i8042-data");
        io.Ports.Register(I8042.CommandPort, 1, _controller.Command, "i8042-cmd");
        Span<byte> b = stackalloc byte[1];

        // i8042_controller_selftest
        io.PortWrite(0x64, [0xAA]);
        io.PortRead(0x64, b);
        Assert.Equal(0x01, b[0] & 0x03); // OBF set, IBF clear
        io.PortRead(0x60, b);
        Assert.Equal(0x55, b[0]);

        // i8042_controller_init: read the CTR twice, write it, read it back.
        io.PortWrite(0x64, [0x20]);
        io.PortRead(0x60, b);
        byte ctr = b[0];
        ctr = (byte)((ctr | 0x10) & ~0x01);
        io.PortWrite(0x64, [0x60]);
        io.PortRead(0x64, b);
        Assert.Equal(0, b[0] & 0x02);
        io.PortWrite(0x60, [ctr]);
        io.PortWrite(0x64, [0x20]);
        io.PortRead(0x60, b);
        Assert.Equal(0x12, b[0]);

        // 0x61 is the PIT's port B, not the controller's.
        io.PortRead(0x61, b);
        Assert.Equal(0xFF, b[0]);
        Assert.Equal(1L, io.Ports.UnhandledReads);

        io.PortWrite(0x64, [0xFE]);
        Assert.Equal(1, _resets);
    }

    [Fact]
    public void SaveAndRestore_RoundTrip_IncludingAPendingCommand()
    {
        _controller.WriteCommand(0xAA);
        _controller.WriteCommand(0x60);
        I8042State saved = _controller.Save();
        Assert.Equal(new I8042State(0x1D, 0x03, 0xCF, 0x55, 0x60), saved);

        var keyboardIrq = new RecordingIrqLine();
        var copy = new I8042(() => { }, keyboardIrq);
        copy.Restore(saved);
        Assert.Equal(new[] { true }, keyboardIrq.Transitions);
        copy.WriteData(0x47);
        copy.WriteCommand(0x20);
        Assert.Equal(0x47, copy.ReadData());
        Assert.Equal(saved with { Status = 0x1C, CommandByte = 0x47, OutputBuffer = 0x47, PendingCommand = 0 }, copy.Save());
    }

    [Fact]
    public void SendCtrlAltDel_DeliversTheScanCodesOneReadAtATime_EachWithIrq1_AndSurvivesASnapshot()
    {
        // The reset command byte has no translation: the guest gets the keyboard's set 2.
        _controller.SendCtrlAltDel();
        Assert.Equal(new[] { true }, _keyboardIrq.Transitions);
        var read = new List<byte>();
        for (int i = 0; i < 3; i++)
        {
            Assert.Equal(0x01, _controller.ReadStatus() & 0x01);
            read.Add(_controller.ReadData());
        }

        // The fourth byte waits in the output buffer (moved there by the third read), the rest behind it.
        var saved = _controller.Save();
        Assert.Equal(0x71, saved.OutputBuffer);
        Assert.Equal(0x01, saved.Status & 0x01);
        Assert.Equal(new byte[] { 0xE0, 0xF0, 0x71, 0xF0, 0x11, 0xF0, 0x14 }, saved.PendingKeys);
        var copy = new I8042(() => { });
        copy.Restore(saved);
        while ((copy.ReadStatus() & 0x01) != 0)
        {
            read.Add(copy.ReadData());
        }

        Assert.Equal(new byte[] { 0x14, 0x11, 0xE0, 0x71, 0xE0, 0xF0, 0x71, 0xF0, 0x11, 0xF0, 0x14 }, read);
        Assert.Empty(copy.Save().PendingKeys);
        // IRQ 1 fell with each read and rose with the next byte.
        Assert.Equal(new[] { true, false, true, false, true, false, true }, _keyboardIrq.Transitions);
    }

    [Fact]
    public void SendCtrlAltDel_WithTranslationOn_DeliversSet1()
    {
        _controller.WriteCommand(0x60);
        _controller.WriteData(0x43); // interrupts on, translation on
        _controller.SendCtrlAltDel();
        var read = new List<byte>();
        while ((_controller.ReadStatus() & 0x01) != 0)
        {
            read.Add(_controller.ReadData());
        }

        Assert.Equal(new byte[] { 0x1D, 0x38, 0xE0, 0x53, 0xE0, 0xD3, 0xB8, 0x9D }, read);
    }

    [Fact]
    public void PortAccesses_AllocateNothing()
    {
        var controller = new I8042(() => { });
        Span<byte> b = stackalloc byte[1];
        // Warm up the very accesses measured below (JIT tiering and first-call paths are not the device's allocations).
        for (int i = 0; i < 100; i++)
        {
            controller.Command.Write(0, [0x20]);
            controller.Data.Read(0, b);
            controller.Command.Write(0, [0xAA]);
            controller.Command.Read(0, b);
            controller.Data.Read(0, b);
        }

        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 10_000; i++)
        {
            controller.Command.Write(0, [0xAA]);
            controller.Command.Read(0, b);
            controller.Data.Read(0, b);
        }

        Assert.Equal(0L, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    private byte ReadCommandByte()
    {
        _controller.WriteCommand(0x20);
        return _controller.ReadData();
    }
}
