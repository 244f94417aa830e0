using KvmSharp.Devices.Bus;
using KvmSharp.Devices.Interrupts;

namespace KvmSharp.Devices.Legacy;

/// <summary>
/// A 16550A UART (COM1 is at ports 0x3F8-0x3FF, IRQ 4) with its 16-byte FIFOs, as Linux's 8250 driver and small
/// test kernels use it. Register layout and bits follow the National Semiconductor (now TI) PC16550D datasheet,
/// "Register Description" and Table II "Summary of Registers"; PC-specific behaviour follows QEMU's
/// hw/char/serial.c; the probing sequence it must pass is Linux's drivers/tty/serial/8250/8250_port.c
/// (autoconfig, autoconfig_16550a, and the THRE re-assertion test in serial8250_do_startup).
/// </summary>
/// <remarks>
/// <para>Transmission is instant: a byte written to THR goes to the output stream at once (or, in loopback mode,
/// straight back into the receiver), so LSR.THRE and LSR.TEMT always read 1 and the transmitter FIFO is never
/// occupied. Baud rate, word length, parity and stop bits are stored and read back but change nothing; parity,
/// framing and break errors never happen.</para>
/// <para>Host input arrives on another thread through <see cref="Enqueue"/> into a bounded buffer
/// (<see cref="InputBufferCapacity"/> bytes; the rest is refused, which is the host's backpressure). Bytes move
/// from there into the receiver (the 16-byte RX FIFO, or the single receiver buffer register when FIFOs are off)
/// as room appears, i.e. as the guest reads RBR, so host input never overruns the receiver. In loopback mode the
/// receiver is disconnected from the serial input (datasheet, MCR bit 4), so host input waits in the buffer.</para>
/// <para>There is no receive timer. The datasheet raises the character-timeout interrupt when bytes below the
/// trigger level sit in the RX FIFO for four character times with no new arrival; here everything the host has
/// sent is already in the receiver, so "no new arrival" is already true and the timeout indication (IIR 0xCC) is
/// pending at once whenever 1 to (trigger level - 1) bytes wait. Received-data-available (IIR 0xC4) is pending
/// when the FIFO holds at least the trigger level. Linux's driver reads the RX FIFO on either.</para>
/// <para>Interrupt line: on a PC the UART's INTR output reaches the interrupt controller through a buffer enabled by
/// the OUT2 modem-control output, so the line is asserted only while MCR.OUT2 is set and a source is pending
/// (Linux's 8250 driver sets OUT2 in serial8250_do_startup: "Most PC uarts need OUT2 raised to enable
/// interrupts"). In loopback mode the OUT2 pin is forced inactive, so the line stays low. QEMU's serial.c does
/// not model this gate; this model follows the PC wiring. The line is re-evaluated after every register access
/// and every <see cref="Enqueue"/>, and driven while the device lock is held so levels reach the line in order.</para>
/// <para>All members are thread-safe (one lock); register accesses allocate nothing.</para>
/// </remarks>
public sealed class Serial16550 : IBusDevice
{
    /// <summary>COM1's base port.</summary>
    public const ushort DefaultPort = 0x3F8;

    /// <summary>COM1's ISA interrupt.</summary>
    public const uint DefaultIrq = 4;

    /// <summary>Ports the UART decodes from its base.</summary>
    public const int RegisterCount = 8;

    /// <summary>Depth of the receive and transmit FIFOs of a 16550A.</summary>
    public const int FifoSize = 16;

    /// <summary>Host input the device holds beyond the RX FIFO before <see cref="Enqueue"/> refuses bytes.</summary>
    public const int InputBufferCapacity = 4096;

    // Register offsets (Table II). With LCR.DLAB set, offsets 0 and 1 reach the divisor latch instead.
    private const int ReceiveTransmitRegister = 0; // RBR (read) / THR (write) / DLL
    private const int InterruptEnableRegister = 1; // IER / DLM
    private const int InterruptIdentRegister = 2;  // IIR (read) / FCR (write)
    private const int LineControlRegister = 3;     // LCR
    private const int ModemControlRegister = 4;    // MCR
    private const int LineStatusRegister = 5;      // LSR
    private const int ModemStatusRegister = 6;     // MSR
    private const int ScratchRegister = 7;         // SCR

    // IER bits ("Interrupt Enable Register"); bits 4-7 are always 0 on a 16550A.
    private const byte IerReceivedDataAvailable = 0b0000_0001; // ERBFI (also enables the character timeout)
    private const byte IerTransmitterEmpty = 0b0000_0010;      // ETBEI
    private const byte IerReceiverLineStatus = 0b0000_0100;    // ELSI
    private const byte IerModemStatus = 0b0000_1000;           // EDSSI
    private const byte IerWritableMask = 0b0000_1111;

    // IIR values ("Interrupt Identification Register", Table IV), before the FIFO bits are ORed in.
    private const byte IirNoInterruptPending = 0b0000_0001;
    private const byte IirModemStatus = 0b0000_0000;
    private const byte IirTransmitterEmpty = 0b0000_0010;
    private const byte IirReceivedDataAvailable = 0b0000_0100;
    private const byte IirReceiverLineStatus = 0b0000_0110;
    private const byte IirCharacterTimeout = 0b0000_1100;
    private const byte IirFifosEnabled = 0b1100_0000;

    // FCR bits ("FIFO Control Register"). FCR0 must be set for the other bits to be programmed.
    private const byte FcrFifoEnable = 0b0000_0001;
    private const byte FcrResetReceiver = 0b0000_0010;
    private const byte FcrResetTransmitter = 0b0000_0100;
    private const byte FcrDmaMode = 0b0000_1000;
    private const byte FcrTriggerMask = 0b1100_0000;
    private const int FcrTriggerShift = 6;

    // LCR bit 7 ("Line Control Register").
    private const byte LcrDivisorLatchAccess = 0b1000_0000;

    // MCR bits ("Modem Control Register"); bits 5-7 are always 0.
    private const byte McrDataTerminalReady = 0b0000_0001;
    private const byte McrRequestToSend = 0b0000_0010;
    private const byte McrOut1 = 0b0000_0100;
    private const byte McrOut2 = 0b0000_1000;
    private const byte McrLoopback = 0b0001_0000;
    private const byte McrWritableMask = 0b0001_1111;

    // LSR bits ("Line Status Register"). PE (bit 2), FE (bit 3), BI (bit 4) and the FIFO error bit 7 never set.
    private const byte LsrDataReady = 0b0000_0001;
    private const byte LsrOverrunError = 0b0000_0010;
    private const byte LsrTransmitterHoldingEmpty = 0b0010_0000;
    private const byte LsrTransmitterEmpty = 0b0100_0000;

    // MSR bits ("Modem Status Register"): deltas in the low nibble, line states in the high one.
    private const byte MsrDeltaClearToSend = 0b0000_0001;
    private const byte MsrDeltaDataSetReady = 0b0000_0010;
    private const byte MsrTrailingEdgeRingIndicator = 0b0000_0100;
    private const byte MsrDeltaDataCarrierDetect = 0b0000_1000;
    private const byte MsrDeltaMask = 0b0000_1111;
    private const byte MsrClearToSend = 0b0001_0000;
    private const byte MsrDataSetReady = 0b0010_0000;
    private const byte MsrRingIndicator = 0b0100_0000;
    private const byte MsrDataCarrierDetect = 0b1000_0000;

    /// <summary>The host side's modem lines outside loopback: carrier, data set ready and clear to send, as in QEMU's serial_reset.</summary>
    private const byte HostModemLines = MsrDataCarrierDetect | MsrDataSetReady | MsrClearToSend;

    /// <summary>Divisor after reset: 12, i.e. 9600 baud from the PC's 1.8432 MHz clock (the BIOS default).</summary>
    private const ushort ResetDivisor = 12;

    private const byte LineFeed = (byte)'\n';

    private readonly Stream _output;
    private readonly IIrqLine _irq;
    private readonly Lock _lock = new();
    private readonly ByteRing _receiveFifo = new(FifoSize);
    private readonly ByteRing _pendingInput = new(InputBufferCapacity);

    private byte _ier;
    private byte _lcr;
    private byte _mcr;
    private byte _fcr;
    private byte _msr = HostModemLines;
    private byte _scr;
    private ushort _divisor = ResetDivisor;
    private bool _overrun;
    private bool _thrInterruptPending;
    private byte _lastReceived;
    private long _bytesTransmitted;

    /// <param name="output">Where transmitted bytes go; flushed after each newline and on <see cref="Flush"/>.</param>
    /// <param name="irq">The UART's interrupt line (IRQ 4 for COM1).</param>
    public Serial16550(Stream output, IIrqLine irq)
    {
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(irq);
        if (!output.CanWrite)
        {
            throw new ArgumentException("The serial port needs a writable output stream.", nameof(output));
        }

        _output = output;
        _irq = irq;
    }

    /// <summary>Bytes the guest has transmitted to the output stream (loopback bytes excluded).</summary>
    public long BytesTransmitted => Interlocked.Read(ref _bytesTransmitted);

    /// <summary>Host input accepted by <see cref="Enqueue"/> that the guest has not yet read (FIFO included).</summary>
    public int PendingInputCount
    {
        get
        {
            lock (_lock)
            {
                return _pendingInput.Count + _receiveFifo.Count;
            }
        }
    }

    private bool DivisorLatchAccess => (_lcr & LcrDivisorLatchAccess) != 0;

    private bool FifosEnabled => (_fcr & FcrFifoEnable) != 0;

    private bool Loopback => (_mcr & McrLoopback) != 0;

    private int ReceiverCapacity => FifosEnabled ? FifoSize : 1;

    /// <summary>RX FIFO trigger level for FCR bits 7:6 = 00, 01, 10, 11 ("FIFO Control Register").</summary>
    private int TriggerLevel => ((_fcr & FcrTriggerMask) >> FcrTriggerShift) switch
    {
        0 => 1,
        1 => 4,
        2 => 8,
        _ => 14,
    };

    public void Read(ulong offset, Span<byte> data)
    {
        lock (_lock)
        {
            // A wider access is split into byte accesses, as the ISA bus does for an 8-bit device.
            for (int i = 0; i < data.Length; i++)
            {
                ulong register = offset + (ulong)i;
                data[i] = register < RegisterCount ? ReadRegister((int)register) : IoBus.UnhandledReadValue;
            }

            UpdateIrq();
        }
    }

    public void Write(ulong offset, ReadOnlySpan<byte> data)
    {
        lock (_lock)
        {
            for (int i = 0; i < data.Length; i++)
            {
                ulong register = offset + (ulong)i;
                if (register < RegisterCount)
                {
                    WriteRegister((int)register, data[i]);
                }
            }

            UpdateIrq();
        }
    }

    /// <summary>
    /// Offers host input to the guest; any thread. Returns how many leading bytes of <paramref name="bytes"/> were
    /// accepted: the rest did not fit (the device holds at most <see cref="InputBufferCapacity"/> bytes beyond the
    /// receiver's 16, or 1 with FIFOs off) and should be offered again after the guest has read some.
    /// </summary>
    public int Enqueue(ReadOnlySpan<byte> bytes)
    {
        lock (_lock)
        {
            // Move what fits into the receiver, then top the buffer up again: the bound is InputBufferCapacity
            // bytes beyond what the receiver holds.
            int accepted = _pendingInput.Write(bytes);
            FillReceiver();
            accepted += _pendingInput.Write(bytes[accepted..]);
            UpdateIrq();
            return accepted;
        }
    }

    /// <summary>Pushes output not yet followed by a newline (a shell prompt, say) to the stream's sink.</summary>
    public void Flush()
    {
        lock (_lock)
        {
            _output.Flush();
        }
    }

    public Serial16550State Save()
    {
        lock (_lock)
        {
            return new Serial16550State(
                _ier,
                _lcr,
                _mcr,
                _fcr,
                _msr,
                _scr,
                _divisor,
                _overrun,
                _thrInterruptPending,
                _lastReceived,
                _receiveFifo.ToArray(),
                _pendingInput.ToArray());
        }
    }

    /// <summary>Restores a state from <see cref="Save"/> and drives the interrupt line to match it.</summary>
    public void Restore(Serial16550State state)
    {
        ArgumentNullException.ThrowIfNull(state);
        ArgumentNullException.ThrowIfNull(state.ReceiveFifo);
        ArgumentNullException.ThrowIfNull(state.PendingInput);
        bool fifos = (state.FifoControl & FcrFifoEnable) != 0;
        if (state.ReceiveFifo.Length > (fifos ? FifoSize : 1))
        {
            throw new ArgumentException(
                $"Serial state holds {state.ReceiveFifo.Length} received bytes, more than the receiver holds with FIFOs {(fifos ? "on" : "off")}. Restore a state saved by this device model.",
                nameof(state));
        }

        if (state.PendingInput.Length > InputBufferCapacity)
        {
            throw new ArgumentException(
                $"Serial state holds {state.PendingInput.Length} bytes of pending input, more than the {InputBufferCapacity} the device buffers. Restore a state saved by this device model.",
                nameof(state));
        }

        lock (_lock)
        {
            _ier = (byte)(state.InterruptEnable & IerWritableMask);
            _lcr = state.LineControl;
            _mcr = (byte)(state.ModemControl & McrWritableMask);
            _fcr = fifos ? (byte)(state.FifoControl & (FcrFifoEnable | FcrDmaMode | FcrTriggerMask)) : (byte)0;
            _msr = state.ModemStatus;
            _scr = state.Scratch;
            _divisor = state.Divisor;
            _overrun = state.OverrunError;
            _thrInterruptPending = state.TransmitterEmptyInterruptPending;
            _lastReceived = state.LastReceived;
            _receiveFifo.Clear();
            _receiveFifo.Write(state.ReceiveFifo);
            _pendingInput.Clear();
            _pendingInput.Write(state.PendingInput);
            UpdateIrq();
        }
    }

    private byte ReadRegister(int register)
    {
        switch (register)
        {
            case ReceiveTransmitRegister:
                return DivisorLatchAccess ? (byte)_divisor : ReadReceiveBuffer();
            case InterruptEnableRegister:
                return DivisorLatchAccess ? (byte)(_divisor >> 8) : _ier;
            case InterruptIdentRegister:
                return ReadInterruptIdentification();
            case LineControlRegister:
                return _lcr;
            case ModemControlRegister:
                return _mcr;
            case LineStatusRegister:
                return ReadLineStatus();
            case ModemStatusRegister:
                return ReadModemStatus();
            default:
                return _scr;
        }
    }

    private void WriteRegister(int register, byte value)
    {
        switch (register)
        {
            case ReceiveTransmitRegister:
                if (DivisorLatchAccess)
                {
                    _divisor = (ushort)((_divisor & 0xFF00) | value);
                }
                else
                {
                    Transmit(value);
                }

                break;
            case InterruptEnableRegister:
                if (DivisorLatchAccess)
                {
                    _divisor = (ushort)((_divisor & 0x00FF) | (value << 8));
                }
                else
                {
                    WriteInterruptEnable(value);
                }

                break;
            case InterruptIdentRegister:
                WriteFifoControl(value);
                break;
            case LineControlRegister:
                _lcr = value;
                break;
            case ModemControlRegister:
                WriteModemControl(value);
                break;
            case ScratchRegister:
                _scr = value;
                break;
            default:
                // LSR and MSR are read-only here (writing them is a factory-test feature the datasheet leaves undefined).
                break;
        }
    }

    private byte ReadReceiveBuffer()
    {
        if (_receiveFifo.Count == 0)
        {
            // An empty FIFO reads 0; with FIFOs off RBR keeps the last byte (as QEMU's serial_ioport_read does).
            return FifosEnabled ? (byte)0 : _lastReceived;
        }

        _lastReceived = _receiveFifo.Read();
        FillReceiver();
        return _lastReceived;
    }

    private byte ReadInterruptIdentification()
    {
        byte id = PendingInterrupt();

        // Reading IIR while THRE is the source reported clears it (Table IV, "Reset Control" of THRE).
        if (id == IirTransmitterEmpty)
        {
            _thrInterruptPending = false;
        }

        return FifosEnabled ? (byte)(id | IirFifosEnabled) : id;
    }

    private byte ReadLineStatus()
    {
        byte value = LsrTransmitterHoldingEmpty | LsrTransmitterEmpty;
        if (_receiveFifo.Count != 0)
        {
            value |= LsrDataReady;
        }

        if (_overrun)
        {
            value |= LsrOverrunError;
            _overrun = false; // OE is cleared by reading LSR.
        }

        return value;
    }

    private byte ReadModemStatus()
    {
        byte value = _msr;
        _msr &= unchecked((byte)~MsrDeltaMask); // The delta bits are cleared by reading MSR.
        return value;
    }

    private void Transmit(byte value)
    {
        if (Loopback)
        {
            Receive(value);
        }
        else
        {
            _output.Write(new ReadOnlySpan<byte>(in value));
            if (value == LineFeed)
            {
                _output.Flush();
            }

            Interlocked.Increment(ref _bytesTransmitted);
        }

        // The byte left THR (and the FIFO) at once, so THR is empty again: raise THRE (as QEMU's serial_xmit does).
        _thrInterruptPending = true;
    }

    /// <summary>A byte arrives from the line (loopback only: host input goes through <see cref="FillReceiver"/>).</summary>
    private void Receive(byte value)
    {
        if (_receiveFifo.Count < ReceiverCapacity)
        {
            _receiveFifo.TryWrite(value);
            return;
        }

        _overrun = true;
        if (!FifosEnabled)
        {
            // 16450 mode: the new character overwrites the unread one in RBR. With FIFOs on, the FIFO keeps its
            // contents and the character in the shift register is lost ("Line Status Register", bit 1).
            _receiveFifo.Clear();
            _receiveFifo.TryWrite(value);
        }
    }

    private void WriteInterruptEnable(byte value)
    {
        value &= IerWritableMask;
        byte changed = (byte)(_ier ^ value);
        _ier = value;

        // Enabling ETBEI while THR is empty raises THRE even if an IIR read had cleared it (QEMU; Linux's
        // start_tx and its THRE re-assertion test rely on it). THR is always empty here.
        if ((changed & IerTransmitterEmpty) != 0)
        {
            _thrInterruptPending = (value & IerTransmitterEmpty) != 0;
        }
    }

    private void WriteFifoControl(byte value)
    {
        bool enable = (value & FcrFifoEnable) != 0;
        if (enable != FifosEnabled)
        {
            // Changing FCR0 clears both FIFOs.
            value |= FcrResetReceiver | FcrResetTransmitter;
        }

        if ((value & FcrResetReceiver) != 0)
        {
            _receiveFifo.Clear();
        }

        if ((value & FcrResetTransmitter) != 0)
        {
            // The (always empty) transmitter FIFO is reset: THR is empty, so THRE is raised (QEMU serial_ioport_write).
            _thrInterruptPending = true;
        }

        _fcr = enable ? (byte)(value & (FcrFifoEnable | FcrDmaMode | FcrTriggerMask)) : (byte)0;
        FillReceiver();
    }

    private void WriteModemControl(byte value)
    {
        byte oldLines = (byte)(_msr & ~MsrDeltaMask);
        _mcr = (byte)(value & McrWritableMask);
        byte newLines = ModemInputLines();
        byte changed = (byte)(oldLines ^ newLines);
        byte deltas = 0;
        if ((changed & MsrClearToSend) != 0)
        {
            deltas |= MsrDeltaClearToSend;
        }

        if ((changed & MsrDataSetReady) != 0)
        {
            deltas |= MsrDeltaDataSetReady;
        }

        if ((oldLines & MsrRingIndicator) != 0 && (newLines & MsrRingIndicator) == 0)
        {
            deltas |= MsrTrailingEdgeRingIndicator;
        }

        if ((changed & MsrDataCarrierDetect) != 0)
        {
            deltas |= MsrDeltaDataCarrierDetect;
        }

        _msr = (byte)(newLines | (_msr & MsrDeltaMask) | deltas);

        // Leaving loopback reconnects the serial input: let waiting host input in.
        FillReceiver();
    }

    /// <summary>
    /// The modem input lines in MSR's high nibble: in loopback the outputs feed them (DTR to DSR, RTS to CTS, OUT1
    /// to RI, OUT2 to DCD; "Modem Control Register", bit 4); otherwise the host side's fixed lines.
    /// </summary>
    private byte ModemInputLines()
    {
        if (!Loopback)
        {
            return HostModemLines;
        }

        byte lines = 0;
        if ((_mcr & McrDataTerminalReady) != 0)
        {
            lines |= MsrDataSetReady;
        }

        if ((_mcr & McrRequestToSend) != 0)
        {
            lines |= MsrClearToSend;
        }

        if ((_mcr & McrOut1) != 0)
        {
            lines |= MsrRingIndicator;
        }

        if ((_mcr & McrOut2) != 0)
        {
            lines |= MsrDataCarrierDetect;
        }

        return lines;
    }

    /// <summary>Moves waiting host input into the receiver while it has room (never in loopback).</summary>
    private void FillReceiver()
    {
        if (Loopback)
        {
            return;
        }

        int room = ReceiverCapacity - _receiveFifo.Count;
        while (room > 0 && _pendingInput.Count != 0)
        {
            _receiveFifo.TryWrite(_pendingInput.Read());
            room--;
        }
    }

    /// <summary>The highest-priority enabled source as an IIR value without the FIFO bits (Table IV).</summary>
    private byte PendingInterrupt()
    {
        if ((_ier & IerReceiverLineStatus) != 0 && _overrun)
        {
            return IirReceiverLineStatus;
        }

        if ((_ier & IerReceivedDataAvailable) != 0 && _receiveFifo.Count != 0)
        {
            return FifosEnabled && _receiveFifo.Count < TriggerLevel ? IirCharacterTimeout : IirReceivedDataAvailable;
        }

        if ((_ier & IerTransmitterEmpty) != 0 && _thrInterruptPending)
        {
            return IirTransmitterEmpty;
        }

        if ((_ier & IerModemStatus) != 0 && (_msr & MsrDeltaMask) != 0)
        {
            return IirModemStatus;
        }

        return IirNoInterruptPending;
    }

    private void UpdateIrq()
    {
        bool gateOpen = (_mcr & (McrOut2 | McrLoopback)) == McrOut2;
        _irq.SetLevel(gateOpen && PendingInterrupt() != IirNoInterruptPending);
    }
}
