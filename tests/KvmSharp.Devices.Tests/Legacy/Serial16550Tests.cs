using System.Text;
using KvmSharp.Devices.Bus;
using KvmSharp.Devices.Legacy;

namespace KvmSharp.Devices.Tests.Legacy;

public class Serial16550Tests
{
    // Register offsets and values as Linux's include/uapi/linux/serial_reg.h names them.
    private const int Rx = 0, Tx = 0, Dll = 0, Ier = 1, Dlm = 1, Iir = 2, Fcr = 2, Efr = 2, Lcr = 3, Mcr = 4, Lsr = 5, Msr = 6, Scr = 7;
    private const byte IerRdi = 0x01, IerThri = 0x02, IerRlsi = 0x04, IerMsi = 0x08;
    private const byte McrDtr = 0x01, McrRts = 0x02, McrOut1 = 0x04, McrOut2 = 0x08, McrLoop = 0x10;
    private const byte FcrEnable = 0x01, FcrClearRcvr = 0x02, FcrClearXmit = 0x04;

    private readonly MemoryStream _output = new();
    private readonly RecordingIrqLine _irq = new();
    private readonly Serial16550 _uart;

    public Serial16550Tests() => _uart = new Serial16550(_output, _irq);

    [Fact]
    public void Reset_RegistersHoldTheirPowerOnValues()
    {
        Assert.Equal(0x00, In(Ier));
        Assert.Equal(0x01, In(Iir));
        Assert.Equal(0x00, In(Lcr));
        Assert.Equal(0x00, In(Mcr));
        Assert.Equal(0x60, In(Lsr));
        Assert.Equal(0xB0, In(Msr));
        Assert.Equal(0x00, In(Scr));
        Assert.Equal(0x00, In(Rx));
        Assert.Empty(_irq.Transitions);
    }

    [Fact]
    public void LinuxAutoconfig_DetectsA16550A()
    {
        // autoconfig(): the IER existence test.
        byte scratch = In(Ier);
        Out(Ier, 0);
        byte scratch2 = (byte)(In(Ier) & 0x0F);
        Out(Ier, 0x0F);
        byte scratch3 = (byte)(In(Ier) & 0x0F);
        Out(Ier, scratch);
        Assert.Equal(0x00, scratch2);
        Assert.Equal(0x0F, scratch3);

        // The loopback test: MCR = LOOP | OUT2 | RTS must read back DCD | CTS.
        byte saveMcr = In(Mcr);
        byte saveLcr = In(Lcr);
        Out(Mcr, McrLoop | 0x0A);
        byte status1 = (byte)(In(Msr) & 0xF0);
        Out(Mcr, saveMcr);
        Assert.Equal(0x90, status1);

        // EFR reset through LCR 0xBF, then FIFO enable: IIR[7:6] = 11 means 16550A.
        Out(Lcr, 0xBF);
        Out(Efr, 0);
        Out(Lcr, 0);
        Out(Fcr, FcrEnable);
        Assert.Equal(3, In(Iir) >> 6);

        // autoconfig_16550a(): no EFR behind DLAB (IIR reads non-zero), neither with LCR 0x80 nor 0xBF.
        Out(Lcr, 0x80);
        Assert.NotEqual(0, In(Efr));
        Out(Lcr, 0xBF);
        Assert.NotEqual(0, In(Efr));

        // Not an NS SuperIO: IIR (as EXCR1 with LCR 0xE0) does not follow MCR's LOOP bit.
        Out(Lcr, 0);
        byte mcr = In(Mcr);
        Out(Lcr, 0xE0);
        byte excr1 = In(2);
        Assert.Equal(0, (excr1 ^ mcr) & McrLoop);
        Out(Lcr, 0);
        Out(Mcr, (byte)(mcr ^ McrLoop));
        Out(Lcr, 0xE0);
        excr1 = In(2);
        Out(Lcr, 0);
        Out(Mcr, mcr);
        Assert.Equal(0, (excr1 ^ mcr) & McrLoop);

        // Not a 16750: IIR bit 5 (64-byte FIFO) never sets, with or without DLAB.
        Out(Fcr, FcrEnable | 0x20);
        Assert.Equal(0xC0, In(Iir) & 0xE0);
        Out(Fcr, FcrEnable);
        Out(Lcr, 0x80);
        Out(Fcr, FcrEnable | 0x20);
        Assert.Equal(0xC0, In(Iir) & 0xE0);
        Out(Fcr, FcrEnable);
        Out(Lcr, 0);

        // Not an XScale: IER bit 6 (UUE) does not stick.
        Out(Ier, 0x40);
        Assert.Equal(0x00, In(Ier));
        Out(Lcr, saveLcr);
        Assert.Equal(0x00, In(Lcr));
    }

    [Fact]
    public void LinuxThreTest_ThreIsReassertedWhenEtbeiIsSetAgain()
    {
        // serial8250_do_startup(): a UART whose THRE does not come back gets UART_BUG_THRE.
        Out(Fcr, FcrEnable);
        Out(Ier, IerThri);
        byte iir1 = In(Iir);
        Out(Ier, 0);
        Out(Ier, IerThri);
        byte iir = In(Iir);
        Out(Ier, 0);

        Assert.Equal(0xC2, iir1);
        Assert.Equal(0xC2, iir);
    }

    [Fact]
    public void Thre_IsClearedByReadingIir_AndRaisedAgainByWritingThr()
    {
        Out(Fcr, FcrEnable);
        Out(Ier, IerThri);

        Assert.Equal(0xC2, In(Iir));
        Assert.Equal(0xC1, In(Iir));

        Out(Tx, (byte)'x');
        Assert.Equal(0xC2, In(Iir));
        Assert.Equal(0xC1, In(Iir));
        Assert.Equal(0x60, In(Lsr));
    }

    [Fact]
    public void Thre_IsNotReported_WhileEtbeiIsClear_AndSettingEtbeiRaisesIt()
    {
        Out(Tx, (byte)'a');
        Assert.Equal(0x01, In(Iir));

        Out(Ier, IerRdi);
        Assert.Equal(0x01, In(Iir));

        Out(Ier, IerRdi | IerThri);
        Assert.Equal(0x02, In(Iir));
        Assert.Equal(0x01, In(Iir));

        // Writing IER with ETBEI already set is no new edge: THRE stays cleared.
        Out(Ier, IerRdi | IerThri);
        Assert.Equal(0x01, In(Iir));
    }

    [Fact]
    public void IirValues_WithFifosOn_ForEachSource()
    {
        Out(Fcr, FcrEnable | 0x40); // trigger level 4
        Assert.Equal(0xC1, In(Iir));

        Out(Ier, IerMsi);
        Out(Mcr, McrLoop); // host lines DCD|DSR|CTS drop: delta bits
        Assert.Equal(0xC0, In(Iir));
        Assert.Equal(0x0B, In(Msr));
        Assert.Equal(0xC1, In(Iir));

        Out(Ier, IerThri);
        Assert.Equal(0xC2, In(Iir));

        Out(Ier, IerRdi);
        Out(Tx, 1);
        Assert.Equal(0xCC, In(Iir)); // one byte, below the trigger: character timeout
        Out(Tx, 2);
        Out(Tx, 3);
        Out(Tx, 4);
        Assert.Equal(0xC4, In(Iir)); // four bytes: received data available

        Out(Ier, IerRdi | IerRlsi);
        for (int i = 0; i < 13; i++)
        {
            Out(Tx, 0xEE); // 17 bytes into a 16-byte FIFO
        }

        Assert.Equal(0xC6, In(Iir));
        Assert.Equal(0x63, In(Lsr)); // DR | OE | THRE | TEMT
        Assert.Equal(0xC4, In(Iir));
    }

    [Fact]
    public void IirValues_WithFifosOff_HaveNoFifoBits()
    {
        Out(Mcr, McrLoop);
        Out(Ier, IerMsi);
        Assert.Equal(0x00, In(Iir));
        In(Msr);
        Assert.Equal(0x01, In(Iir));

        Out(Ier, IerThri);
        Assert.Equal(0x02, In(Iir));

        Out(Ier, IerRdi | IerRlsi);
        Out(Tx, 0x41);
        Assert.Equal(0x04, In(Iir));
        Out(Tx, 0x42);
        Assert.Equal(0x06, In(Iir));
    }

    [Fact]
    public void InterruptPriorities_LineStatusThenDataThenThreThenModemStatus()
    {
        Out(Fcr, FcrEnable);
        Out(Mcr, McrLoop);
        for (int i = 0; i < 17; i++)
        {
            Out(Tx, (byte)i);
        }

        Out(Ier, IerRdi | IerThri | IerRlsi | IerMsi);

        Assert.Equal(0xC6, In(Iir));
        Assert.Equal(0x63, In(Lsr));
        Assert.Equal(0xC4, In(Iir));
        for (int i = 0; i < 16; i++)
        {
            Assert.Equal(i, In(Rx));
        }

        Assert.Equal(0xC2, In(Iir));
        Assert.Equal(0xC0, In(Iir));
        Assert.Equal(0x0B, In(Msr));
        Assert.Equal(0xC1, In(Iir));
    }

    [Theory]
    [InlineData(0x01, 1)]
    [InlineData(0x41, 4)]
    [InlineData(0x81, 8)]
    [InlineData(0xC1, 14)]
    public void RxTriggerLevel_DataAvailableFromTheLevel_TimeoutBelowIt(byte fcr, int level)
    {
        Out(Fcr, fcr);
        Out(Ier, IerRdi);

        for (int count = 1; count <= 16; count++)
        {
            Assert.Equal(1, _uart.Enqueue([(byte)count]));
            Assert.Equal(count < level ? 0xCC : 0xC4, In(Iir));
        }

        // Reading below the level brings back the timeout indication, then nothing once empty.
        for (int count = 15; count >= 0; count--)
        {
            In(Rx);
            Assert.Equal(count == 0 ? 0xC1 : count < level ? 0xCC : 0xC4, In(Iir));
        }
    }

    [Fact]
    public void Overrun_InFifoMode_KeepsTheFifo_SetsOe_AndLsrReadClearsIt()
    {
        Out(Fcr, FcrEnable);
        Out(Mcr, McrLoop);
        for (int i = 0; i < 17; i++)
        {
            Out(Tx, (byte)(0x30 + i));
        }

        Assert.Equal(0x63, In(Lsr));
        Assert.Equal(0x61, In(Lsr));
        for (int i = 0; i < 16; i++)
        {
            Assert.Equal(0x30 + i, In(Rx));
        }

        Assert.Equal(0x60, In(Lsr));
        Assert.Equal(0x00, In(Rx)); // an empty FIFO reads 0
    }

    [Fact]
    public void Overrun_WithFifosOff_TheNewByteOverwritesRbr()
    {
        Out(Mcr, McrLoop);
        Out(Tx, 0x41);
        Out(Tx, 0x42);

        Assert.Equal(0x63, In(Lsr));
        Assert.Equal(0x42, In(Rx));
        Assert.Equal(0x60, In(Lsr));
        Assert.Equal(0x42, In(Rx)); // RBR keeps its last byte
    }

    [Fact]
    public void DivisorLatch_RoundTripsBehindDlab_AndLeavesIerAndRbrAlone()
    {
        Out(Ier, IerRdi | IerThri);
        Out(Lcr, 0x83);
        Assert.Equal(0x0C, In(Dll)); // 9600 baud after reset
        Assert.Equal(0x00, In(Dlm));
        Out(Dll, 0x01);
        Out(Dlm, 0x02);
        Assert.Equal(0x01, In(Dll));
        Assert.Equal(0x02, In(Dlm));
        Assert.Equal(0x83, In(Lcr));
        Assert.Equal(0, _output.Length);

        Out(Lcr, 0x03);
        Assert.Equal(IerRdi | IerThri, In(Ier));
        Assert.Equal(0x02, _uart.Save().Divisor >> 8);
        Assert.Equal(0x0201, _uart.Save().Divisor);
    }

    [Fact]
    public void Transmit_WritesEachByteAtOnce_AndFlushesOnNewline()
    {
        var output = new FlushCountingStream();
        var uart = new Serial16550(output, _irq);

        foreach (byte b in "ok"u8)
        {
            uart.Write(Tx, [b]);
        }

        Assert.Equal("ok", Encoding.ASCII.GetString(output.ToArray()));
        Assert.Equal(0, output.FlushCount);
        uart.Write(Tx, "\n"u8);
        Assert.Equal(1, output.FlushCount);
        uart.Write(Tx, "$"u8);
        uart.Flush();
        Assert.Equal(2, output.FlushCount);
        Assert.Equal("ok\n$", Encoding.ASCII.GetString(output.ToArray()));
        Assert.Equal(4L, uart.BytesTransmitted);
    }

    [Fact]
    public void Loopback_ReturnsTransmittedBytes_AndSendsNothingOut()
    {
        Out(Mcr, McrLoop);
        Out(Tx, 0x5A);

        Assert.Equal(0x61, In(Lsr));
        Assert.Equal(0x5A, In(Rx));
        Assert.Equal(0, _output.Length);
        Assert.Equal(0L, _uart.BytesTransmitted);
    }

    [Fact]
    public void Loopback_MsrFollowsMcrOutputs()
    {
        Out(Mcr, McrLoop | McrDtr);
        Assert.Equal(0x20, In(Msr) & 0xF0);
        Out(Mcr, McrLoop | McrRts);
        Assert.Equal(0x10, In(Msr) & 0xF0);
        Out(Mcr, McrLoop | McrOut1);
        Assert.Equal(0x40, In(Msr) & 0xF0);
        Out(Mcr, McrLoop | McrOut2);
        Assert.Equal(0x80, In(Msr) & 0xF0);
        Out(Mcr, McrLoop | McrDtr | McrRts | McrOut1 | McrOut2);
        Assert.Equal(0xF0, In(Msr) & 0xF0);
        Out(Mcr, 0);
        Assert.Equal(0xB0, In(Msr) & 0xF0);
    }

    [Fact]
    public void ModemStatusDeltas_AreSetOnChange_AndClearedByReadingMsr()
    {
        Out(Mcr, McrLoop | McrDtr | McrRts | McrOut1 | McrOut2);
        Assert.Equal(0xF0, In(Msr)); // DSR/CTS/DCD as the host lines were; RI rose, which sets no delta


        Out(Mcr, McrLoop | McrDtr | McrRts | McrOut2); // RI falls: trailing edge
        Assert.Equal(0xB4, In(Msr));
        Assert.Equal(0xB0, In(Msr));

        Out(Mcr, McrLoop); // DSR, CTS, DCD fall
        Assert.Equal(0x0B, In(Msr));
        Assert.Equal(0x00, In(Msr));
    }

    [Fact]
    public void IrqLine_TransitionsExactly_WithOut2Set()
    {
        Out(Mcr, McrOut2 | McrDtr | McrRts);
        Out(Ier, IerRdi);
        Assert.Empty(_irq.Transitions);

        _uart.Enqueue("ab"u8);
        Assert.Equal(new[] { true }, _irq.Transitions);

        Assert.Equal((byte)'a', In(Rx));
        Assert.Equal(new[] { true }, _irq.Transitions);
        Assert.Equal((byte)'b', In(Rx));
        Assert.Equal(new[] { true, false }, _irq.Transitions);

        Out(Ier, IerRdi | IerThri);
        Assert.Equal(new[] { true, false, true }, _irq.Transitions);
        Assert.Equal(0x02, In(Iir));
        Assert.Equal(new[] { true, false, true, false }, _irq.Transitions);
        Assert.False(_irq.Level);
    }

    [Fact]
    public void IrqLine_IsGatedByOut2_AndLowInLoopback()
    {
        Out(Ier, IerThri);
        Assert.Equal(0x02, In(Iir) & 0x0F);
        Out(Ier, 0);
        Out(Ier, IerThri);
        Assert.Empty(_irq.Transitions); // pending, but OUT2 is clear

        Out(Mcr, McrOut2);
        Assert.Equal(new[] { true }, _irq.Transitions);
        Out(Mcr, McrOut2 | McrLoop);
        Assert.Equal(new[] { true, false }, _irq.Transitions);
        Out(Mcr, McrOut2);
        Assert.Equal(new[] { true, false, true }, _irq.Transitions);
        Out(Mcr, 0);
        Assert.Equal(new[] { true, false, true, false }, _irq.Transitions);

        // The device drives the line after every access; only changes are transitions.
        Assert.True(_irq.Calls > _irq.Transitions.Count);
    }

    [Fact]
    public void Enqueue_RaisesTheLine_FromTheInputThread()
    {
        Out(Mcr, McrOut2);
        Out(Ier, IerRdi);

        var thread = new Thread(() => _uart.Enqueue("z"u8));
        thread.Start();
        thread.Join();

        Assert.Equal(new[] { true }, _irq.Transitions);
        Assert.Equal((byte)'z', In(Rx));
        Assert.Equal(new[] { true, false }, _irq.Transitions);
    }

    [Fact]
    public void Enqueue_RefusesInputBeyondTheBound_AndAcceptsMoreAsTheGuestReads()
    {
        Out(Fcr, FcrEnable);
        var input = new byte[5000];
        for (int i = 0; i < input.Length; i++)
        {
            input[i] = (byte)(i * 7);
        }

        int accepted = _uart.Enqueue(input);
        Assert.Equal(Serial16550.InputBufferCapacity + Serial16550.FifoSize, accepted);
        Assert.Equal(4112, _uart.PendingInputCount);
        Assert.Equal(0, _uart.Enqueue(input.AsSpan(accepted)));

        Assert.Equal(input[0], In(Rx));
        Assert.Equal(input[1], In(Rx));
        Assert.Equal(2, _uart.Enqueue(input.AsSpan(accepted)));
        Assert.Equal(0, _uart.Enqueue(input.AsSpan(accepted + 2)));

        for (int i = 2; i < accepted + 2; i++)
        {
            Assert.Equal(0x61, In(Lsr));
            Assert.Equal(input[i], In(Rx));
        }

        Assert.Equal(0x60, In(Lsr));
    }

    [Fact]
    public void Enqueue_WithFifosOff_HoldsOneByteInRbr()
    {
        Assert.Equal(Serial16550.InputBufferCapacity + 1, _uart.Enqueue(new byte[5000]));
    }

    [Fact]
    public void HostInput_WaitsWhileInLoopback_AndArrivesAfterIt()
    {
        Out(Fcr, FcrEnable);
        Out(Mcr, McrLoop);
        Assert.Equal(3, _uart.Enqueue("abc"u8));
        Assert.Equal(0x60, In(Lsr));
        Out(Tx, (byte)'L');
        Assert.Equal((byte)'L', In(Rx));

        Out(Mcr, 0);
        Assert.Equal(0x61, In(Lsr));
        Assert.Equal((byte)'a', In(Rx));
        Assert.Equal((byte)'b', In(Rx));
        Assert.Equal((byte)'c', In(Rx));
        Assert.Equal(0x60, In(Lsr));
    }

    [Fact]
    public void Fcr_ResetReceiverClearsTheFifo_AndTogglingFifoEnableFlushes()
    {
        Out(Fcr, FcrEnable);
        _uart.Enqueue("hello"u8);
        Out(Fcr, FcrEnable | FcrClearRcvr);
        Assert.Equal(0x60, In(Lsr));

        _uart.Enqueue("xy"u8);
        Out(Fcr, 0); // FIFOs off: both FIFOs are cleared
        Assert.Equal(0x60, In(Lsr));
        Assert.Equal(0x01, In(Iir));
    }

    [Fact]
    public void Fcr_TransmitterReset_RaisesThre()
    {
        Out(Fcr, FcrEnable);
        Out(Ier, IerThri);
        Assert.Equal(0xC2, In(Iir));
        Assert.Equal(0xC1, In(Iir));

        Out(Fcr, FcrEnable | FcrClearXmit);
        Assert.Equal(0xC2, In(Iir));
    }

    [Fact]
    public void ScratchAndLcr_HoldAnyValue_LsrAndMsrWritesAreIgnored()
    {
        Out(Scr, 0xA5);
        Out(Lcr, 0x1B);
        Out(Lsr, 0xFF);
        Out(Msr, 0xFF);

        Assert.Equal(0xA5, In(Scr));
        Assert.Equal(0x1B, In(Lcr));
        Assert.Equal(0x60, In(Lsr));
        Assert.Equal(0xB0, In(Msr));
        Out(Mcr, 0xFF);
        Assert.Equal(0x1F, In(Mcr));
    }

    [Fact]
    public void RoutedThroughAnIoBus_AtCom1()
    {
        var io = new IoDispatcher();
        io.Ports.Register(Serial16550.DefaultPort, Serial16550.RegisterCount, _uart, "com1");
        Span<byte> data = stackalloc byte[1];

        foreach (byte b in "hi\n"u8)
        {
            io.PortWrite(0x3F8, [b]);
        }

        io.PortRead(0x3FD, data);
        Assert.Equal(0x60, data[0]);
        io.PortWrite(0x3FF, [0x42]);
        io.PortRead(0x3FF, data);
        Assert.Equal(0x42, data[0]);
        io.PortRead(0x3FE, data);
        Assert.Equal(0xB0, data[0]);
        Assert.Equal("hi\n", Encoding.ASCII.GetString(_output.ToArray()));
        Assert.Equal(0L, io.Ports.UnhandledReads + io.Ports.UnhandledWrites);
    }

    [Fact]
    public void WideAccess_IsSplitIntoByteAccesses()
    {
        Out(Lcr, 0x80);
        _uart.Write(Dll, [0x34, 0x12]);
        byte[] data = new byte[2];
        _uart.Read(Dll, data);
        Assert.Equal(new byte[] { 0x34, 0x12 }, data);

        // Bytes past the eighth register read as an undecoded port.
        _uart.Read(7, data);
        Assert.Equal(0xFF, data[1]);
    }

    [Fact]
    public void SaveAndRestore_ReproduceRegistersFifoInputAndLine()
    {
        Out(Fcr, FcrEnable | 0x80);
        Out(Lcr, 0x80);
        Out(Dll, 0x03);
        Out(Lcr, 0x03);
        Out(Scr, 0x77);
        Out(Ier, IerRdi | IerThri);
        Out(Mcr, McrOut2 | McrDtr);
        _uart.Enqueue(new byte[] { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20 });
        In(Rx);
        Serial16550State saved = _uart.Save();

        var irq = new RecordingIrqLine();
        var copy = new Serial16550(new MemoryStream(), irq);
        copy.Restore(saved);

        Assert.Equal(new[] { true }, irq.Transitions);
        Assert.Equal(Enumerable.Range(2, 16).Select(i => (byte)i), saved.ReceiveFifo);
        Assert.Equal(new byte[] { 18, 19, 20 }, saved.PendingInput);
        Assert.Equal(0x81, saved.FifoControl);
        Assert.Equal(0xC4, ReadOn(copy, Iir));
        for (int i = 2; i <= 20; i++)
        {
            Assert.Equal(i, ReadOn(copy, Rx));
        }

        Assert.Equal(0x77, ReadOn(copy, Scr));
        Assert.Equal(0x03, ReadOn(copy, Lcr));
        Assert.Equal(0x09, ReadOn(copy, Mcr));
        Assert.Equal(0x03, ReadOn(copy, Ier));
        Assert.Equal(0xC2, ReadOn(copy, Iir));
        Assert.Equal(3, copy.Save().Divisor);
    }

    [Fact]
    public void Restore_RejectsMoreReceivedBytesThanTheReceiverHolds()
    {
        var state = _uart.Save() with { ReceiveFifo = new byte[2] };
        var ex = Assert.Throws<ArgumentException>(() => _uart.Restore(state));
        Assert.StartsWith("Serial state holds 2 received bytes", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void RegisterAccesses_AllocateNothing()
    {
        var uart = new Serial16550(new MemoryStream(1 << 20), new LevelOnlyIrqLine());
        uart.Write(Fcr, [FcrEnable]);
        uart.Write(Mcr, [McrOut2]);
        uart.Write(Ier, [IerRdi | IerThri]);
        Span<byte> data = stackalloc byte[1];
        ReadOnlySpan<byte> x = "x"u8;
        ReadOnlySpan<byte> newline = "\n"u8;
        for (int i = 0; i < 100; i++)
        {
            uart.Write(Tx, x);
            uart.Read(Iir, data);
        }

        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 10_000; i++)
        {
            uart.Write(Tx, x);
            uart.Write(Tx, newline);
            uart.Read(Iir, data);
            uart.Read(Lsr, data);
            uart.Enqueue(x);
            uart.Read(Rx, data);
        }

        long after = GC.GetAllocatedBytesForCurrentThread();
        Assert.Equal(0L, after - before);
    }

    [Fact]
    public void Constructor_RejectsAReadOnlyStreamAndNulls()
    {
        using var readOnly = new MemoryStream([1], writable: false);
        var ex = Assert.Throws<ArgumentException>(() => new Serial16550(readOnly, _irq));
        Assert.StartsWith("The serial port needs a writable output stream.", ex.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentNullException>(() => new Serial16550(null!, _irq));
        Assert.Throws<ArgumentNullException>(() => new Serial16550(new MemoryStream(), null!));
    }

    private static byte ReadOn(Serial16550 uart, int register)
    {
        byte[] data = new byte[1];
        uart.Read((ulong)register, data);
        return data[0];
    }

    private byte In(int register) => ReadOn(_uart, register);

    private void Out(int register, byte value) => _uart.Write((ulong)register, [value]);

    private sealed class LevelOnlyIrqLine : KvmSharp.Devices.Interrupts.IIrqLine
    {
        public bool Level { get; private set; }

        public void SetLevel(bool high) => Level = high;
    }

    private sealed class FlushCountingStream : MemoryStream
    {
        public int FlushCount { get; private set; }

        public override void Flush()
        {
            FlushCount++;
            base.Flush();
        }
    }
}
