using KvmSharp.Devices.Bus;
using KvmSharp.Devices.Interrupts;

namespace KvmSharp.Devices.Legacy;

/// <summary>
/// The PS/2 keyboard controller (Intel 8042) at ports 0x60 (data) and 0x64 (status on read, command on write),
/// modelled far enough for Linux's i8042 driver to probe it and for the guest to reset the machine through it.
/// Commands and bits follow the IBM PS/2 Hardware Interface Technical Reference ("Keyboard/Auxiliary Device
/// Controller"), with the PC behaviour of QEMU's hw/input/pckbd.c and the names of Linux's
/// drivers/input/serio/i8042.h.
/// </summary>
/// <remarks>
/// <para>Modelled: the status register (IBF always 0 because commands complete at once; SYS set by the self test or
/// by writing the command byte), the command byte (0x20 read, 0x60 write), controller self test 0xAA (0x55),
/// interface tests 0xAB/0xA9 (0x00, no error), 0xA7/0xA8 and 0xAD/0xAE (disable/enable the aux and keyboard
/// interfaces in the command byte), 0xD0/0xD1 (read/write the output port; clearing bit 0 resets the machine),
/// 0xDD/0xDF (A20 off/on, recorded only), 0xD2/0xD3 (echo a byte as keyboard/aux data, the "loop" Linux uses to
/// test the aux port), 0xD4 (send a byte to the aux device) and 0xF0-0xFF (pulse output lines: an even command,
/// 0xFE above all, pulses the reset line).</para>
/// <para>Not modelled: there is no keyboard and no mouse behind the controller (no scancodes yet). A byte sent to
/// either device (a data write to 0x60, or 0xD4 + byte) is answered as a PS/2 controller answers for an absent
/// device: 0xFE in the output buffer with the timeout bit (0x40) set, so Linux's libps2 sees an error at once
/// instead of waiting for its command timeout. The controller RAM beyond the command byte, the input port
/// (0xC0), passwords and the A20 gate's effect on addressing are not modelled; unknown commands are ignored and
/// counted. The output buffer holds one byte: a new answer replaces an unread one.</para>
/// <para>Interrupt lines (optional): IRQ 1 is asserted while the output buffer holds keyboard-side data and the
/// command byte enables the keyboard interrupt (and the keyboard interface), IRQ 12 while it holds aux data and
/// the aux interrupt is enabled (as QEMU's kbd_update_irq_lines does).</para>
/// <para>Register the two one-port views <see cref="Data"/> at <see cref="DataPort"/> and
/// <see cref="Command"/> at <see cref="CommandPort"/>; the ports between (0x61, the PIT's port B) are
/// not the controller's. All members are thread-safe; port accesses allocate nothing.</para>
/// </remarks>
public sealed class I8042
{
    /// <summary>The data port (output buffer on read, data on write).</summary>
    public const ushort DataPort = 0x60;

    /// <summary>The status (read) / command (write) port.</summary>
    public const ushort CommandPort = 0x64;

    // Status register bits (port 0x64 read).
    public const byte StatusOutputFull = 0b0000_0001;    // OBF: a byte waits in the output buffer
    public const byte StatusInputFull = 0b0000_0010;     // IBF: never set, commands complete at once
    public const byte StatusSystemFlag = 0b0000_0100;    // SYS: set after a successful self test
    public const byte StatusLastWasCommand = 0b0000_1000; // A2: the last write went to 0x64
    public const byte StatusUnlocked = 0b0001_0000;      // keyboard inhibit switch off
    public const byte StatusAuxOutputFull = 0b0010_0000; // the output byte came from the aux device
    public const byte StatusTimeout = 0b0100_0000;       // the device did not answer

    // Command byte bits (read with 0x20, written with 0x60).
    public const byte CommandByteKeyboardInterrupt = 0b0000_0001;
    public const byte CommandByteAuxInterrupt = 0b0000_0010;
    public const byte CommandByteSystemFlag = 0b0000_0100;
    public const byte CommandByteKeyboardDisabled = 0b0001_0000;
    public const byte CommandByteAuxDisabled = 0b0010_0000;
    public const byte CommandByteTranslate = 0b0100_0000;

    // Output port bits (read with 0xD0, written with 0xD1).
    public const byte OutputPortResetDeasserted = 0b0000_0001; // 0 holds the CPU in reset
    public const byte OutputPortA20 = 0b0000_0010;

    // Controller commands (port 0x64 write).
    public const byte CommandReadCommandByte = 0x20;
    public const byte CommandWriteCommandByte = 0x60;
    public const byte CommandDisableAux = 0xA7;
    public const byte CommandEnableAux = 0xA8;
    public const byte CommandTestAux = 0xA9;
    public const byte CommandSelfTest = 0xAA;
    public const byte CommandTestKeyboard = 0xAB;
    public const byte CommandDisableKeyboard = 0xAD;
    public const byte CommandEnableKeyboard = 0xAE;
    public const byte CommandReadOutputPort = 0xD0;
    public const byte CommandWriteOutputPort = 0xD1;
    public const byte CommandWriteKeyboardOutput = 0xD2;
    public const byte CommandWriteAuxOutput = 0xD3;
    public const byte CommandWriteAux = 0xD4;
    public const byte CommandDisableA20 = 0xDD;
    public const byte CommandEnableA20 = 0xDF;
    public const byte CommandPulseFirst = 0xF0;
    public const byte CommandPulseReset = 0xFE;

    /// <summary>Answer of a passed controller self test (0xAA).</summary>
    public const byte SelfTestPassed = 0x55;

    /// <summary>Answer of a passed interface test (0xAB, 0xA9).</summary>
    public const byte InterfaceTestPassed = 0x00;

    /// <summary>What an absent PS/2 device "answers" (with <see cref="StatusTimeout"/>).</summary>
    public const byte NoDeviceResponse = 0xFE;

    /// <summary>Command byte at power-on: both interrupts enabled (QEMU's kbd_reset).</summary>
    public const byte ResetCommandByte = CommandByteKeyboardInterrupt | CommandByteAuxInterrupt;

    /// <summary>Output port at power-on: reset line released, A20 enabled, the unused bits high (QEMU's KBD_OUT_ONES).</summary>
    public const byte ResetOutputPort = 0xCF;

    private const byte ResetStatus = StatusLastWasCommand | StatusUnlocked;
    private const byte NoPendingCommand = 0;

    private readonly Action _onReset;
    private readonly IIrqLine? _keyboardIrq;
    private readonly IIrqLine? _auxIrq;
    private readonly Lock _lock = new();

    private byte _status = ResetStatus;
    private byte _commandByte = ResetCommandByte;
    private byte _outputPort = ResetOutputPort;
    private byte _outputBuffer;
    private byte _pendingCommand = NoPendingCommand;
    private readonly Queue<byte> _pendingKeys = new();
    private long _resetRequests;
    private long _unknownCommands;

    /// <param name="onReset">Called (on the vCPU thread, outside the device lock) when the guest pulses the reset line.</param>
    /// <param name="keyboardIrq">IRQ 1, or null to leave it unwired.</param>
    /// <param name="auxIrq">IRQ 12, or null to leave it unwired.</param>
    public I8042(Action onReset, IIrqLine? keyboardIrq = null, IIrqLine? auxIrq = null)
    {
        ArgumentNullException.ThrowIfNull(onReset);
        _onReset = onReset;
        _keyboardIrq = keyboardIrq;
        _auxIrq = auxIrq;
        Data = new PortView(this, isCommandPort: false);
        Command = new PortView(this, isCommandPort: true);
    }

    /// <summary>The one-port device to register at <see cref="DataPort"/> (0x60).</summary>
    public IBusDevice Data { get; }

    /// <summary>The one-port device to register at <see cref="CommandPort"/> (0x64).</summary>
    public IBusDevice Command { get; }

    /// <summary>How many times the guest asked for a reset (0xFE, an even 0xF0-0xFE pulse, or 0xD1 with bit 0 clear).</summary>
    public long ResetRequests => Interlocked.Read(ref _resetRequests);

    /// <summary>Commands written to 0x64 that this model does not implement (ignored).</summary>
    public long UnknownCommands => Interlocked.Read(ref _unknownCommands);

    /// <summary>Whether the output port enables the A20 line (recorded, not applied).</summary>
    public bool A20Enabled
    {
        get
        {
            lock (_lock)
            {
                return (_outputPort & OutputPortA20) != 0;
            }
        }
    }

    /// <summary>Reads the status register (port 0x64).</summary>
    public byte ReadStatus()
    {
        lock (_lock)
        {
            return _status;
        }
    }

    /// <summary>Reads the output buffer (port 0x60): the waiting byte, or the last one again when empty.</summary>
    public byte ReadData()
    {
        lock (_lock)
        {
            _status &= unchecked((byte)~(StatusOutputFull | StatusAuxOutputFull | StatusTimeout));
            byte value = _outputBuffer;
            UpdateIrqs();
            FeedKeyboard();
            return value;
        }
    }

    /// <summary>
    /// Presses and releases Ctrl-Alt-Del on the keyboard, as Firecracker's SendCtrlAltDel. A keyboard speaks scan code
    /// set 2: Ctrl 0x14, Alt 0x11, Del 0xE0 0x71, then the breaks 0xE0 0xF0 0x71, 0xF0 0x11, 0xF0 0x14; with the
    /// command byte's translation bit (0x40) set the controller hands the guest set 1 instead (0x1D, 0x38, 0xE0 0x53,
    /// 0xE0 0xD3, 0xB8, 0x9D). Linux without PNP (i8042.nopnp, as Firecracker boots it) leaves translation off and reads
    /// set 2. The bytes queue behind the output buffer and are delivered one at a time, each with IRQ 1, as the guest
    /// reads them. A guest whose keyboard driver takes it reboots (the i8042 reset line or the ACPI reset ends the
    /// machine).
    /// </summary>
    public void SendCtrlAltDel()
    {
        lock (_lock)
        {
            ReadOnlySpan<byte> keys = (_commandByte & CommandByteTranslate) != 0
                ? [0x1D, 0x38, 0xE0, 0x53, 0xE0, 0xD3, 0xB8, 0x9D]
                : [0x14, 0x11, 0xE0, 0x71, 0xE0, 0xF0, 0x71, 0xF0, 0x11, 0xF0, 0x14];
            foreach (byte b in keys)
            {
                _pendingKeys.Enqueue(b);
            }

            FeedKeyboard();
        }
    }

    /// <summary>Moves the next queued key byte into an empty output buffer (under the lock).</summary>
    private void FeedKeyboard()
    {
        if ((_status & StatusOutputFull) == 0 && _pendingKeys.TryDequeue(out byte key))
        {
            SetOutput(key, aux: false, timeout: false);
            UpdateIrqs();
        }
    }

    /// <summary>Writes a controller command (port 0x64).</summary>
    public void WriteCommand(byte command)
    {
        bool reset;
        lock (_lock)
        {
            _status |= StatusLastWasCommand;
            _pendingCommand = NoPendingCommand;
            reset = ExecuteCommand(command);
            UpdateIrqs();
        }

        if (reset)
        {
            RequestReset();
        }
    }

    /// <summary>Writes a data byte (port 0x60): the parameter of a pending command, or a byte for the keyboard.</summary>
    public void WriteData(byte value)
    {
        bool reset = false;
        lock (_lock)
        {
            _status &= unchecked((byte)~StatusLastWasCommand);
            byte command = _pendingCommand;
            _pendingCommand = NoPendingCommand;
            switch (command)
            {
                case CommandWriteCommandByte:
                    _commandByte = value;
                    _status = (value & CommandByteSystemFlag) != 0
                        ? (byte)(_status | StatusSystemFlag)
                        : (byte)(_status & ~StatusSystemFlag);
                    break;
                case CommandWriteOutputPort:
                    _outputPort = value;
                    reset = (value & OutputPortResetDeasserted) == 0;
                    break;
                case CommandWriteKeyboardOutput:
                    SetOutput(value, aux: false, timeout: false);
                    break;
                case CommandWriteAuxOutput:
                    SetOutput(value, aux: true, timeout: false);
                    break;
                case CommandWriteAux:
                    SetOutput(NoDeviceResponse, aux: true, timeout: true);
                    break;
                default:
                    // A byte for the keyboard, which is absent.
                    SetOutput(NoDeviceResponse, aux: false, timeout: true);
                    break;
            }

            UpdateIrqs();
        }

        if (reset)
        {
            RequestReset();
        }
    }

    public I8042State Save()
    {
        lock (_lock)
        {
            return new I8042State(_status, _commandByte, _outputPort, _outputBuffer, _pendingCommand) { PendingKeys = _pendingKeys.Count == 0 ? [] : [.. _pendingKeys] };
        }
    }

    public void Restore(I8042State state)
    {
        ArgumentNullException.ThrowIfNull(state);
        lock (_lock)
        {
            _status = (byte)(state.Status & ~StatusInputFull);
            _commandByte = state.CommandByte;
            _outputPort = state.OutputPort;
            _outputBuffer = state.OutputBuffer;
            _pendingCommand = state.PendingCommand;
            _pendingKeys.Clear();
            foreach (byte b in state.PendingKeys ?? [])
            {
                _pendingKeys.Enqueue(b);
            }

            UpdateIrqs();
        }
    }

    /// <summary>Runs <paramref name="command"/>; returns whether it pulses the reset line.</summary>
    private bool ExecuteCommand(byte command)
    {
        switch (command)
        {
            case CommandReadCommandByte:
                SetOutput(_commandByte, aux: false, timeout: false);
                return false;
            case CommandWriteCommandByte:
            case CommandWriteOutputPort:
            case CommandWriteKeyboardOutput:
            case CommandWriteAuxOutput:
            case CommandWriteAux:
                _pendingCommand = command;
                return false;
            case CommandDisableAux:
                _commandByte |= CommandByteAuxDisabled;
                return false;
            case CommandEnableAux:
                _commandByte &= unchecked((byte)~CommandByteAuxDisabled);
                return false;
            case CommandTestAux:
            case CommandTestKeyboard:
                SetOutput(InterfaceTestPassed, aux: false, timeout: false);
                return false;
            case CommandSelfTest:
                _status |= StatusSystemFlag;
                SetOutput(SelfTestPassed, aux: false, timeout: false);
                return false;
            case CommandDisableKeyboard:
                _commandByte |= CommandByteKeyboardDisabled;
                return false;
            case CommandEnableKeyboard:
                _commandByte &= unchecked((byte)~CommandByteKeyboardDisabled);
                return false;
            case CommandReadOutputPort:
                SetOutput(_outputPort, aux: false, timeout: false);
                return false;
            case CommandDisableA20:
                _outputPort &= unchecked((byte)~OutputPortA20);
                return false;
            case CommandEnableA20:
                _outputPort |= OutputPortA20;
                return false;
            default:
                if (command >= CommandPulseFirst)
                {
                    // 0xF0-0xFF pulse output port bits 0-3 whose command bits are 0; bit 0 is the reset line.
                    return (command & OutputPortResetDeasserted) == 0;
                }

                Interlocked.Increment(ref _unknownCommands);
                return false;
        }
    }

    private void SetOutput(byte value, bool aux, bool timeout)
    {
        _outputBuffer = value;
        byte status = (byte)((_status & ~(StatusAuxOutputFull | StatusTimeout)) | StatusOutputFull);
        if (aux)
        {
            status |= StatusAuxOutputFull;
        }

        if (timeout)
        {
            status |= StatusTimeout;
        }

        _status = status;
    }

    private void UpdateIrqs()
    {
        bool full = (_status & StatusOutputFull) != 0;
        bool aux = (_status & StatusAuxOutputFull) != 0;
        _keyboardIrq?.SetLevel(
            full && !aux
            && (_commandByte & (CommandByteKeyboardInterrupt | CommandByteKeyboardDisabled)) == CommandByteKeyboardInterrupt);
        _auxIrq?.SetLevel(full && aux && (_commandByte & CommandByteAuxInterrupt) != 0);
    }

    private void RequestReset()
    {
        Interlocked.Increment(ref _resetRequests);
        _onReset();
    }

    /// <summary>One of the controller's two ports as a bus device; wider accesses are split into byte accesses.</summary>
    private sealed class PortView(I8042 controller, bool isCommandPort) : IBusDevice
    {
        public void Read(ulong offset, Span<byte> data)
        {
            for (int i = 0; i < data.Length; i++)
            {
                data[i] = offset + (ulong)i != 0
                    ? IoBus.UnhandledReadValue
                    : isCommandPort ? controller.ReadStatus() : controller.ReadData();
            }
        }

        public void Write(ulong offset, ReadOnlySpan<byte> data)
        {
            if (offset != 0 || data.IsEmpty)
            {
                return;
            }

            if (isCommandPort)
            {
                controller.WriteCommand(data[0]);
            }
            else
            {
                controller.WriteData(data[0]);
            }
        }
    }
}
