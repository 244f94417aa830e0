using KvmSharp.Devices.Bus;

namespace KvmSharp.Devices.Legacy;

/// <summary>
/// The PC's CMOS real-time clock, a Motorola MC146818 at ports 0x70 (index; bit 7 disables NMI) and 0x71 (data).
/// Register layout and bits follow the MC146818A datasheet ("Address Map", "Time, Calendar and Alarm Locations",
/// "Registers A-D"); the century byte at 0x32 and the memory-size bytes follow the IBM PC/AT convention as QEMU's
/// hw/rtc/mc146818rtc.c and hw/i386/pc.c (pc_cmos_init) use it.
/// </summary>
/// <remarks>
/// <para>The clock is host UTC from an injected <see cref="TimeProvider"/> plus an offset the guest sets by writing
/// the time registers, so a guest can set its clock and a snapshot keeps it. The offset is a whole number of
/// seconds, so the guest's seconds tick at the host's second boundaries. While register B's SET bit is 1, or
/// register A's divider bits are not 010 (the only 32.768 kHz setting), the clock is stopped: the time registers
/// hold the time latched when it stopped and take writes freely; when it runs again it continues from them.</para>
/// <para>UIP (register A bit 7) reads 1 during the last 244 µs before each second boundary of the running clock
/// (the datasheet's tBUC, "Update Cycle"), computed from the host time's sub-second part, so a guest that waits
/// for UIP to fall sees a real edge at the second boundary.</para>
/// <para>Register C: UF (bit 4) reads 1 when at least one update cycle completed since C was last read, and IRQF
/// (bit 7) when UF is set and enabled by register B's UIE; reading C clears it. The periodic (PF) and alarm (AF)
/// flags and the IRQ 8 interrupt itself are not modelled, nor are daylight saving (DSE) and the square-wave
/// output. The alarm registers are plain storage. Register D always reads VRT = 1 (valid RAM and time).</para>
/// <para>Bytes 0x0E-0x7F other than the century byte are battery-backed RAM; the VMM presets them with
/// <see cref="WriteRam"/> and <see cref="SetMemorySize"/>. Thread-safe; port accesses allocate nothing.</para>
/// </remarks>
public sealed class CmosRtc : IBusDevice
{
    /// <summary>The index port (bit 7 of a write disables NMI); register the device here with <see cref="PortCount"/> ports.</summary>
    public const ushort IndexPort = 0x70;

    /// <summary>The data port.</summary>
    public const ushort DataPort = 0x71;

    /// <summary>Ports the device decodes (index and data).</summary>
    public const int PortCount = 2;

    /// <summary>Bytes of CMOS the index reaches (7 bits).</summary>
    public const int Size = 128;

    // Time, calendar and alarm locations (MC146818A "Address Map"); 0x32 is the PC/AT century byte.
    public const byte RegisterSeconds = 0x00;
    public const byte RegisterSecondsAlarm = 0x01;
    public const byte RegisterMinutes = 0x02;
    public const byte RegisterMinutesAlarm = 0x03;
    public const byte RegisterHours = 0x04;
    public const byte RegisterHoursAlarm = 0x05;
    public const byte RegisterDayOfWeek = 0x06;
    public const byte RegisterDayOfMonth = 0x07;
    public const byte RegisterMonth = 0x08;
    public const byte RegisterYear = 0x09;
    public const byte RegisterA = 0x0A;
    public const byte RegisterB = 0x0B;
    public const byte RegisterC = 0x0C;
    public const byte RegisterD = 0x0D;
    public const byte RegisterCentury = 0x32;

    // Register A.
    public const byte RegisterAUpdateInProgress = 0b1000_0000;
    public const byte RegisterADividerMask = 0b0111_0000;
    public const byte RegisterADivider32Khz = 0b0010_0000;

    /// <summary>Register A at power-on as PC firmware programs it: 32.768 kHz time base, 1.024 kHz periodic rate.</summary>
    public const byte RegisterADefault = 0x26;

    // Register B.
    public const byte RegisterBSet = 0b1000_0000;
    public const byte RegisterBPeriodicInterruptEnable = 0b0100_0000;
    public const byte RegisterBAlarmInterruptEnable = 0b0010_0000;
    public const byte RegisterBUpdateInterruptEnable = 0b0001_0000;
    public const byte RegisterBBinary = 0b0000_0100;
    public const byte RegisterB24Hour = 0b0000_0010;

    /// <summary>Register B at power-on as PC firmware programs it: BCD, 24-hour, no interrupts.</summary>
    public const byte RegisterBDefault = RegisterB24Hour;

    // Register C.
    public const byte RegisterCInterruptRequest = 0b1000_0000;
    public const byte RegisterCUpdateEnded = 0b0001_0000;

    // Register D.
    public const byte RegisterDValidRamAndTime = 0b1000_0000;

    /// <summary>Bit 7 of the hours byte in 12-hour mode.</summary>
    public const byte HoursPm = 0b1000_0000;

    /// <summary>What a read of the index port returns (QEMU's cmos_ioport_read).</summary>
    public const byte IndexReadValue = 0xFF;

    /// <summary>
    /// Where RAM stops below 4 GiB by default: 3 GiB, KvmSharp's MMIO hole (Boot's PcMemoryLayout.MmioHoleStart),
    /// also where QEMU's i440FX machine splits RAM of 0xE000_0000 bytes or more (pc_init1, gigabyte_align).
    /// </summary>
    public const ulong DefaultLowMemoryLimit = 0xC000_0000;

    private const byte IndexMask = 0x7F;
    private const byte NmiDisableBit = 0x80;

    /// <summary>Length of the update cycle (tBUC = 244 µs) in ticks.</summary>
    private const long UpdateCycleTicks = 2440;

    private const long TicksPerSecond = TimeSpan.TicksPerSecond;
    private const ulong KiB = 1024;
    private const ulong MiB = 1024 * KiB;

    private readonly TimeProvider _time;
    private readonly Lock _lock = new();
    private readonly byte[] _data = new byte[Size];

    private byte _index;
    private bool _nmiDisabled;
    private long _offsetTicks;
    private long _updateFlagSecond;

    public CmosRtc(TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(time);
        _time = time;
        _data[RegisterA] = RegisterADefault;
        _data[RegisterB] = RegisterBDefault;
        _updateFlagSecond = GuestTicks(HostTicks()) / TicksPerSecond;
    }

    /// <summary>The CMOS byte the next data-port access reaches.</summary>
    public byte Index
    {
        get
        {
            lock (_lock)
            {
                return _index;
            }
        }
    }

    /// <summary>Bit 7 of the last index write: the guest asked for NMIs to be masked (recorded, not applied).</summary>
    public bool NmiDisabled
    {
        get
        {
            lock (_lock)
            {
                return _nmiDisabled;
            }
        }
    }

    /// <summary>The guest's clock now (host UTC plus the guest's offset, or the latched time while stopped).</summary>
    public DateTime GuestTime
    {
        get
        {
            lock (_lock)
            {
                return Running ? new DateTime(GuestTicks(HostTicks()), DateTimeKind.Utc) : new DateTime(DecodeTimeRegisters(), DateTimeKind.Utc);
            }
        }
    }

    private bool Running =>
        (_data[RegisterB] & RegisterBSet) == 0 && (_data[RegisterA] & RegisterADividerMask) == RegisterADivider32Khz;

    private bool Binary => (_data[RegisterB] & RegisterBBinary) != 0;

    private bool TwentyFourHour => (_data[RegisterB] & RegisterB24Hour) != 0;

    public void Read(ulong offset, Span<byte> data)
    {
        lock (_lock)
        {
            for (int i = 0; i < data.Length; i++)
            {
                ulong port = offset + (ulong)i;
                data[i] = port switch
                {
                    0 => IndexReadValue,
                    1 => ReadRegister(_index),
                    _ => IoBus.UnhandledReadValue,
                };
            }
        }
    }

    public void Write(ulong offset, ReadOnlySpan<byte> data)
    {
        lock (_lock)
        {
            for (int i = 0; i < data.Length; i++)
            {
                ulong port = offset + (ulong)i;
                if (port == 0)
                {
                    _index = (byte)(data[i] & IndexMask);
                    _nmiDisabled = (data[i] & NmiDisableBit) != 0;
                }
                else if (port == 1)
                {
                    WriteRegister(_index, data[i]);
                }
            }
        }
    }

    /// <summary>Reads CMOS byte <paramref name="address"/> as the guest would, with all side effects.</summary>
    public byte ReadRegisterValue(byte address)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(address, Size);
        lock (_lock)
        {
            return ReadRegister(address);
        }
    }

    /// <summary>Stores <paramref name="value"/> at <paramref name="address"/> with no side effects (VMM presets).</summary>
    public void WriteRam(int address, byte value)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(address);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(address, Size);
        lock (_lock)
        {
            _data[address] = value;
        }
    }

    /// <summary>The stored byte at <paramref name="address"/> (for RAM; time registers hold their latched value).</summary>
    public byte ReadRam(int address)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(address);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(address, Size);
        lock (_lock)
        {
            return _data[address];
        }
    }

    /// <summary>
    /// Records a machine with <paramref name="bytes"/> of RAM: up to <paramref name="lowMemoryLimit"/> of it below
    /// 4 GiB, the rest above (see <see cref="SetMemorySplit"/> for the bytes written).
    /// </summary>
    public void SetMemorySize(ulong bytes, ulong lowMemoryLimit = DefaultLowMemoryLimit)
    {
        ulong below = Math.Min(bytes, lowMemoryLimit);
        SetMemorySplit(below, bytes - below);
    }

    /// <summary>
    /// Fills the memory-size bytes exactly as QEMU's pc_cmos_init does: 0x15/0x16 base memory in KiB (at most
    /// 640), 0x17/0x18 and 0x30/0x31 memory above 1 MiB in KiB (at most 65535), 0x34/0x35 memory above 16 MiB in
    /// 64 KiB units (at most 65535), 0x5B-0x5D memory above 4 GiB in 64 KiB units (24 bits); all little-endian.
    /// </summary>
    public void SetMemorySplit(ulong belowFourGiB, ulong aboveFourGiB)
    {
        ulong baseKiB = Math.Min(belowFourGiB / KiB, 640);
        ulong extendedKiB = belowFourGiB > MiB ? Math.Min((belowFourGiB - MiB) / KiB, 65535) : 0;
        ulong above16MiB = belowFourGiB > 16 * MiB ? Math.Min((belowFourGiB - (16 * MiB)) / (64 * KiB), 65535) : 0;
        ulong above4GiB = aboveFourGiB / (64 * KiB);
        lock (_lock)
        {
            _data[0x15] = (byte)baseKiB;
            _data[0x16] = (byte)(baseKiB >> 8);
            _data[0x17] = (byte)extendedKiB;
            _data[0x18] = (byte)(extendedKiB >> 8);
            _data[0x30] = (byte)extendedKiB;
            _data[0x31] = (byte)(extendedKiB >> 8);
            _data[0x34] = (byte)above16MiB;
            _data[0x35] = (byte)(above16MiB >> 8);
            _data[0x5B] = (byte)above4GiB;
            _data[0x5C] = (byte)(above4GiB >> 8);
            _data[0x5D] = (byte)(above4GiB >> 16);
        }
    }

    public CmosRtcState Save()
    {
        lock (_lock)
        {
            if (Running)
            {
                LatchTime(GuestTicks(HostTicks()));
            }

            return new CmosRtcState((byte[])_data.Clone(), _index, _nmiDisabled, _offsetTicks, _updateFlagSecond);
        }
    }

    /// <summary>Restores a state from <see cref="Save"/>. A running clock continues from host time plus the saved offset.</summary>
    public void Restore(CmosRtcState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        ArgumentNullException.ThrowIfNull(state.Data);
        if (state.Data.Length != Size)
        {
            throw new ArgumentException(
                $"CMOS state holds {state.Data.Length} bytes; it must hold exactly {Size}. Restore a state saved by this device model.",
                nameof(state));
        }

        lock (_lock)
        {
            state.Data.CopyTo(_data, 0);
            _index = (byte)(state.Index & IndexMask);
            _nmiDisabled = state.NmiDisabled;
            _offsetTicks = state.OffsetTicks;
            _updateFlagSecond = state.UpdateFlagSecond;
        }
    }

    private static bool IsTimeRegister(byte address) =>
        address is RegisterSeconds or RegisterMinutes or RegisterHours or RegisterDayOfWeek
            or RegisterDayOfMonth or RegisterMonth or RegisterYear or RegisterCentury;

    private byte ReadRegister(byte address)
    {
        switch (address)
        {
            case RegisterA:
                return ReadRegisterA();
            case RegisterC:
                return ReadRegisterC();
            case RegisterD:
                return RegisterDValidRamAndTime;
            default:
                if (Running && IsTimeRegister(address))
                {
                    return EncodeTimeRegister(address, new DateTime(GuestTicks(HostTicks()), DateTimeKind.Utc));
                }

                return _data[address];
        }
    }

    private void WriteRegister(byte address, byte value)
    {
        switch (address)
        {
            case RegisterA:
            {
                bool wasRunning = Running;
                _data[RegisterA] = (byte)(value & ~RegisterAUpdateInProgress); // UIP is read-only.
                OnRunningChanged(wasRunning);
                break;
            }

            case RegisterB:
            {
                bool wasRunning = Running;
                if ((value & RegisterBSet) != 0)
                {
                    value &= unchecked((byte)~RegisterBUpdateInterruptEnable); // SET = 1 clears UIE ("Register B").
                }

                _data[RegisterB] = value;
                OnRunningChanged(wasRunning);
                break;
            }

            case RegisterC:
            case RegisterD:
                break; // Read-only.
            default:
                if (Running && IsTimeRegister(address))
                {
                    // Setting one field of a running clock: take the others from the current time, then restart.
                    long hostTicks = HostTicks();
                    LatchTime(GuestTicks(hostTicks));
                    _data[address] = value;
                    SetOffsetFromRegisters(hostTicks);
                }
                else
                {
                    _data[address] = value;
                }

                break;
        }
    }

    private void OnRunningChanged(bool wasRunning)
    {
        bool running = Running;
        if (wasRunning && !running)
        {
            LatchTime(GuestTicks(HostTicks()));
        }
        else if (!wasRunning && running)
        {
            long hostTicks = HostTicks();
            SetOffsetFromRegisters(hostTicks);
            _updateFlagSecond = GuestTicks(hostTicks) / TicksPerSecond;
        }
    }

    private byte ReadRegisterA()
    {
        byte value = _data[RegisterA];
        if (Running && GuestTicks(HostTicks()) % TicksPerSecond >= TicksPerSecond - UpdateCycleTicks)
        {
            value |= RegisterAUpdateInProgress;
        }

        return value;
    }

    private byte ReadRegisterC()
    {
        byte value = 0;
        if (Running)
        {
            long second = GuestTicks(HostTicks()) / TicksPerSecond;
            if (second > _updateFlagSecond)
            {
                value |= RegisterCUpdateEnded;
                if ((_data[RegisterB] & RegisterBUpdateInterruptEnable) != 0)
                {
                    value |= RegisterCInterruptRequest;
                }
            }

            _updateFlagSecond = second;
        }

        return value;
    }

    private long HostTicks() => _time.GetUtcNow().UtcTicks;

    private long GuestTicks(long hostTicks)
    {
        long ticks = hostTicks + _offsetTicks;
        return Math.Clamp(ticks, DateTime.MinValue.Ticks, DateTime.MaxValue.Ticks);
    }

    private void LatchTime(long guestTicks)
    {
        var time = new DateTime(guestTicks, DateTimeKind.Utc);
        _data[RegisterSeconds] = EncodeTimeRegister(RegisterSeconds, time);
        _data[RegisterMinutes] = EncodeTimeRegister(RegisterMinutes, time);
        _data[RegisterHours] = EncodeTimeRegister(RegisterHours, time);
        _data[RegisterDayOfWeek] = EncodeTimeRegister(RegisterDayOfWeek, time);
        _data[RegisterDayOfMonth] = EncodeTimeRegister(RegisterDayOfMonth, time);
        _data[RegisterMonth] = EncodeTimeRegister(RegisterMonth, time);
        _data[RegisterYear] = EncodeTimeRegister(RegisterYear, time);
        _data[RegisterCentury] = EncodeTimeRegister(RegisterCentury, time);
    }

    /// <summary>Makes the guest clock read the time registers now, keeping host and guest second boundaries aligned.</summary>
    private void SetOffsetFromRegisters(long hostTicks)
    {
        long wholeSecond = hostTicks - (hostTicks % TicksPerSecond);
        _offsetTicks = DecodeTimeRegisters() - wholeSecond;
    }

    private byte EncodeTimeRegister(byte address, DateTime time)
    {
        switch (address)
        {
            case RegisterSeconds:
                return Encode(time.Second);
            case RegisterMinutes:
                return Encode(time.Minute);
            case RegisterHours:
                if (TwentyFourHour)
                {
                    return Encode(time.Hour);
                }

                // 12-hour mode: 12, 1-11 with bit 7 set after noon ("Time, Calendar and Alarm Locations").
                int hour12 = time.Hour % 12 == 0 ? 12 : time.Hour % 12;
                return time.Hour >= 12 ? (byte)(Encode(hour12) | HoursPm) : Encode(hour12);
            case RegisterDayOfWeek:
                return Encode((int)time.DayOfWeek + 1); // 1 = Sunday.
            case RegisterDayOfMonth:
                return Encode(time.Day);
            case RegisterMonth:
                return Encode(time.Month);
            case RegisterYear:
                return Encode(time.Year % 100);
            default:
                return Encode(time.Year / 100);
        }
    }

    /// <summary>The time the registers hold, in ticks; out-of-range fields (guest mistakes) are clamped, never thrown.</summary>
    private long DecodeTimeRegisters()
    {
        int second = Math.Clamp(Decode(_data[RegisterSeconds]), 0, 59);
        int minute = Math.Clamp(Decode(_data[RegisterMinutes]), 0, 59);
        byte hoursByte = _data[RegisterHours];
        int hour;
        if (TwentyFourHour)
        {
            hour = Math.Clamp(Decode(hoursByte), 0, 23);
        }
        else
        {
            int hour12 = Math.Clamp(Decode((byte)(hoursByte & ~HoursPm)), 1, 12);
            hour = (hour12 % 12) + ((hoursByte & HoursPm) != 0 ? 12 : 0);
        }

        int year = (Math.Clamp(Decode(_data[RegisterCentury]), 0, 99) * 100) + Math.Clamp(Decode(_data[RegisterYear]), 0, 99);
        year = Math.Max(year, 1);
        int month = Math.Clamp(Decode(_data[RegisterMonth]), 1, 12);
        int day = Math.Clamp(Decode(_data[RegisterDayOfMonth]), 1, DateTime.DaysInMonth(year, month));
        return new DateTime(year, month, day, hour, minute, second, DateTimeKind.Utc).Ticks;
    }

    private byte Encode(int value) => Binary ? (byte)value : (byte)(((value / 10) << 4) | (value % 10));

    private int Decode(byte value) => Binary ? value : ((value >> 4) * 10) + (value & 0x0F);
}
