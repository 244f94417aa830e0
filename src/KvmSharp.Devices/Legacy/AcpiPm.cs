using KvmSharp.Devices.Bus;
using KvmSharp.Devices.Interrupts;

namespace KvmSharp.Devices.Legacy;

/// <summary>
/// The ACPI fixed-hardware PM1a register blocks (ACPI 6.5, 4.8.3.1 "PM1 Event Grouping" and 4.8.3.2 "PM1 Control
/// Grouping"), enough for OSPM to power the machine off and to see a power-button press:
/// <code>
/// PM1a_EVT_BLK (4 ports, 0x600)  +0 PM1_STS (16 bits, write 1 to clear)   +2 PM1_EN (16 bits)
/// PM1a_CNT_BLK (2 ports, 0x604)  +0 PM1_CNT (16 bits)
/// </code>
/// ACPI is always enabled (there is no SMI command port): PM1_CNT.SCI_EN always reads 1. A write of PM1_CNT with
/// SLP_EN set and SLP_TYP equal to <see cref="S5SleepType"/> (the \_S5_ value of KvmSharp's DSDT) calls the
/// injected power-off action; other sleep types are counted and ignored, as a machine that cannot sleep would.
/// The SCI is asserted while a status bit and its enable bit are both set (only the power button raises one).
/// </summary>
/// <remarks>
/// Accesses of any width are taken apart into the 16-bit registers they touch; the bytes of a register that an
/// access does not cover keep their value. Thread-safe; accesses allocate nothing.
/// </remarks>
public sealed class AcpiPm
{
    /// <summary>PM1a event block base (FADT PM1a_EVT_BLK in KvmSharp's tables).</summary>
    public const ushort EventBlockPort = 0x600;

    public const int EventBlockLength = 4;

    /// <summary>PM1a control block base (FADT PM1a_CNT_BLK in KvmSharp's tables).</summary>
    public const ushort ControlBlockPort = 0x604;

    public const int ControlBlockLength = 2;

    /// <summary>SLP_TYP of S5 (soft off) in KvmSharp's DSDT: Package(){5, 5, 0, 0}.</summary>
    public const int S5SleepType = 5;

    // PM1_STS bits (ACPI 6.5, Table 4.16).
    public const ushort StatusTimer = 1 << 0;
    public const ushort StatusBusMaster = 1 << 4;
    public const ushort StatusGlobal = 1 << 5;
    public const ushort StatusPowerButton = 1 << 8;
    public const ushort StatusSleepButton = 1 << 9;
    public const ushort StatusRtc = 1 << 10;
    public const ushort StatusPciExpressWake = 1 << 14;
    public const ushort StatusWake = 1 << 15;

    // PM1_EN bits (Table 4.17).
    public const ushort EnableTimer = 1 << 0;
    public const ushort EnableGlobal = 1 << 5;
    public const ushort EnablePowerButton = 1 << 8;
    public const ushort EnableSleepButton = 1 << 9;
    public const ushort EnableRtc = 1 << 10;
    public const ushort DisablePciExpressWake = 1 << 14;

    // PM1_CNT bits (Table 4.18).
    public const ushort ControlSciEnable = 1 << 0;
    public const ushort ControlBusMasterReload = 1 << 1;
    public const ushort ControlGlobalRelease = 1 << 2; // write-only
    public const int ControlSleepTypeShift = 10;
    public const ushort ControlSleepTypeMask = 0b111 << ControlSleepTypeShift;
    public const ushort ControlSleepEnable = 1 << 13; // write-only

    /// <summary>PM1_EN bits that hold what is written; the others are reserved and read 0.</summary>
    public const ushort EnableWritableMask = EnableTimer | EnableGlobal | EnablePowerButton | EnableSleepButton | EnableRtc | DisablePciExpressWake;

    /// <summary>PM1_CNT bits that hold what is written (SCI_EN is fixed at 1; GBL_RLS and SLP_EN read 0).</summary>
    public const ushort ControlStoredMask = ControlBusMasterReload | ControlSleepTypeMask;

    /// <summary>PM1_STS bits this model can set; the rest read 0.</summary>
    public const ushort StatusImplementedMask = StatusPowerButton;

    private const ushort EventsRaisingSci = StatusPowerButton;

    private readonly Action _onPowerOff;
    private readonly IIrqLine? _sci;
    private readonly Lock _lock = new();

    private ushort _status;
    private ushort _enable;
    private ushort _control;
    private long _powerOffRequests;
    private long _ignoredSleepRequests;
    private int _lastIgnoredSleepType = -1;

    /// <param name="onPowerOff">Called (on the vCPU thread, outside the device lock) for each S5 request.</param>
    /// <param name="sci">The SCI (ISA IRQ 9, level triggered), or null to leave it unwired.</param>
    public AcpiPm(Action onPowerOff, IIrqLine? sci = null)
    {
        ArgumentNullException.ThrowIfNull(onPowerOff);
        _onPowerOff = onPowerOff;
        _sci = sci;
        Events = new EventBlock(this);
        Control = new ControlBlock(this);
    }

    /// <summary>The PM1a event block to register at <see cref="EventBlockPort"/> with <see cref="EventBlockLength"/> ports.</summary>
    public IBusDevice Events { get; }

    /// <summary>The PM1a control block to register at <see cref="ControlBlockPort"/> with <see cref="ControlBlockLength"/> ports.</summary>
    public IBusDevice Control { get; }

    /// <summary>S5 requests seen (PM1_CNT writes with SLP_EN and SLP_TYP 5).</summary>
    public long PowerOffRequests => Interlocked.Read(ref _powerOffRequests);

    /// <summary>PM1_CNT writes with SLP_EN and another SLP_TYP, which this machine cannot enter and ignores.</summary>
    public long IgnoredSleepRequests => Interlocked.Read(ref _ignoredSleepRequests);

    /// <summary>SLP_TYP of the last ignored sleep request, -1 if none.</summary>
    public int LastIgnoredSleepType => Volatile.Read(ref _lastIgnoredSleepType);

    /// <summary>PM1_STS as the guest reads it.</summary>
    public ushort Status
    {
        get
        {
            lock (_lock)
            {
                return _status;
            }
        }
    }

    /// <summary>PM1_EN as the guest reads it.</summary>
    public ushort Enable
    {
        get
        {
            lock (_lock)
            {
                return _enable;
            }
        }
    }

    /// <summary>PM1_CNT as the guest reads it (SCI_EN set).</summary>
    public ushort ControlValue
    {
        get
        {
            lock (_lock)
            {
                return (ushort)(_control | ControlSciEnable);
            }
        }
    }

    /// <summary>A press of the fixed-feature power button: sets PWRBTN_STS; the SCI fires if PWRBTN_EN is set.</summary>
    public void PressPowerButton()
    {
        lock (_lock)
        {
            _status |= StatusPowerButton;
            UpdateSci();
        }
    }

    public AcpiPmState Save()
    {
        lock (_lock)
        {
            return new AcpiPmState(_status, _enable, _control);
        }
    }

    public void Restore(AcpiPmState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        lock (_lock)
        {
            _status = (ushort)(state.Status & StatusImplementedMask);
            _enable = (ushort)(state.Enable & EnableWritableMask);
            _control = (ushort)(state.Control & ControlStoredMask);
            UpdateSci();
        }
    }

    private void ReadEvents(ulong offset, Span<byte> data)
    {
        uint block;
        lock (_lock)
        {
            block = _status | ((uint)_enable << 16);
        }

        ReadBytes(block, EventBlockLength, offset, data);
    }

    private void WriteEvents(ulong offset, ReadOnlySpan<byte> data)
    {
        var (status, statusMask) = Gather(offset, data, 0);
        var (enable, enableMask) = Gather(offset, data, 2);
        lock (_lock)
        {
            // PM1_STS: writing 1 clears a bit, writing 0 leaves it (ACPI 6.5, 4.8.3.1).
            _status &= (ushort)~(status & statusMask);
            _enable = (ushort)(((_enable & ~enableMask) | (enable & enableMask)) & EnableWritableMask);
            UpdateSci();
        }
    }

    private void ReadControl(ulong offset, Span<byte> data) => ReadBytes(ControlValue, ControlBlockLength, offset, data);

    private void WriteControl(ulong offset, ReadOnlySpan<byte> data)
    {
        var (value, mask) = Gather(offset, data, 0);
        if (mask == 0)
        {
            return;
        }

        int sleepType;
        lock (_lock)
        {
            ushort merged = (ushort)(((_control | ControlSciEnable) & ~mask) | (value & mask));
            _control = (ushort)(merged & ControlStoredMask);
            if ((value & mask & ControlSleepEnable) == 0)
            {
                return;
            }

            sleepType = (merged & ControlSleepTypeMask) >> ControlSleepTypeShift;
        }

        if (sleepType == S5SleepType)
        {
            Interlocked.Increment(ref _powerOffRequests);
            _onPowerOff();
        }
        else
        {
            Volatile.Write(ref _lastIgnoredSleepType, sleepType);
            Interlocked.Increment(ref _ignoredSleepRequests);
        }
    }

    private void UpdateSci() => _sci?.SetLevel((_status & _enable & EventsRaisingSci) != 0);

    /// <summary>Bytes of <paramref name="block"/> (little-endian) at the access's offsets; all ones past the block.</summary>
    private static void ReadBytes(uint block, int blockLength, ulong offset, Span<byte> data)
    {
        for (int i = 0; i < data.Length; i++)
        {
            ulong at = offset + (ulong)i;
            data[i] = at < (ulong)blockLength ? (byte)(block >> (int)(at * 8)) : IoBus.UnhandledReadValue;
        }
    }

    /// <summary>The bytes of an access that fall on the 16-bit register at <paramref name="registerOffset"/>, and which bytes those are.</summary>
    private static (ushort Value, ushort Mask) Gather(ulong offset, ReadOnlySpan<byte> data, int registerOffset)
    {
        ushort value = 0;
        ushort mask = 0;
        for (int i = 0; i < data.Length; i++)
        {
            ulong at = offset + (ulong)i;
            if (at == (ulong)registerOffset)
            {
                value |= data[i];
                mask |= 0x00FF;
            }
            else if (at == (ulong)registerOffset + 1)
            {
                value |= (ushort)(data[i] << 8);
                mask |= 0xFF00;
            }
        }

        return (value, mask);
    }

    private sealed class EventBlock(AcpiPm pm) : IBusDevice
    {
        public void Read(ulong offset, Span<byte> data) => pm.ReadEvents(offset, data);

        public void Write(ulong offset, ReadOnlySpan<byte> data) => pm.WriteEvents(offset, data);
    }

    private sealed class ControlBlock(AcpiPm pm) : IBusDevice
    {
        public void Read(ulong offset, Span<byte> data) => pm.ReadControl(offset, data);

        public void Write(ulong offset, ReadOnlySpan<byte> data) => pm.WriteControl(offset, data);
    }
}
