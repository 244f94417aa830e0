using System.Runtime.CompilerServices;
using KvmSharp.Devices.Bus;
using KvmSharp.Devices.Interrupts;

namespace KvmSharp.Devices.InterruptControllers;

/// <summary>
/// The PC's Intel 8254 programmable interval timer at ports 0x40-0x43 (counters 0-2 and the control word), clocked at
/// 1.193182 MHz, with the speaker/NMI status port B at 0x61 that gates counter 2 and shows its OUT. Programming follows
/// the Intel 8254 datasheet (231164): control word, counter latch, read-back (status and count), RW modes LSB/MSB/
/// LSB-then-MSB, binary and BCD counting, modes 0-5 and the GATE input. Port B follows the IBM PC/AT technical
/// reference (bits 0-3 read back as written, bit 4 the refresh toggle, bit 5 counter 2's OUT).
/// </summary>
/// <remarks>
/// <para>No host timer runs: the counters are functions of the time from the injected <see cref="TimeProvider"/>.
/// Counter 0's OUT drives IRQ0 through an <see cref="IIrqLine"/>. Nothing runs between guest instructions, so the
/// vCPU loop calls <see cref="Poll"/> when <see cref="NextDeadline"/> has passed: OUT's rising edges that came due
/// since the last poll are given as one edge (missed periods coalesce, as QEMU's PIT does when it cannot catch up),
/// and the line is then left at OUT's level. Register accesses do the same before and after they act, so an edge is
/// never lost to a reprogramming.</para>
/// <para>Counters 0 and 1 have GATE tied high; counter 1's OUT (DRAM refresh on the PC/AT) goes nowhere. Power-on state
/// is QEMU's (the one PC firmware leaves): every counter in mode 3, LSB-then-MSB, binary, count 0 (65536), so IRQ0
/// runs at 18.2 Hz until the guest reprograms counter 0; counter 2 waits for its gate.</para>
/// <para>Simplifications (documented in docs/interrupt-controllers.md): a count is loaded at the instant it is
/// written, not at the next CLK; in mode 3 a count written while counting takes effect at the end of the current
/// period rather than the current half-period; port B's bit 4 toggles every 18 PIT clocks (15.1 µs). Thread-safe; port
/// accesses allocate nothing.</para>
/// </remarks>
public sealed class Pit8254 : IBusDevice
{
    /// <summary>Counter 0's port; counters 1 and 2 and the control word follow.</summary>
    public const ushort BasePort = 0x40;

    /// <summary>Ports at <see cref="BasePort"/>: three counters and the control word.</summary>
    public const int PortCount = 4;

    /// <summary>The PC/AT port B (speaker, counter 2 gate and OUT, refresh toggle).</summary>
    public const ushort PortBPort = 0x61;

    /// <summary>The PIT's input clock: 14.31818 MHz / 12.</summary>
    public const long InputFrequencyHz = 1_193_182;

    public const int ChannelCount = 3;

    // Control word (port 0x43): SC1-SC0, RW1-RW0, M2-M0, BCD.
    public const int ControlPort = 3;
    public const byte ControlReadBack = 0b1100_0000;
    public const byte ReadBackNoCount = 0b0010_0000;   // 0 = latch the count
    public const byte ReadBackNoStatus = 0b0001_0000;  // 0 = latch the status

    // Port B bits.
    public const byte PortBGate2 = 0b0000_0001;
    public const byte PortBSpeakerData = 0b0000_0010;
    public const byte PortBWritable = 0b0000_1111;
    public const byte PortBRefreshToggle = 0b0001_0000;
    public const byte PortBOut2 = 0b0010_0000;

    /// <summary>PIT clocks per half-period of port B's refresh toggle (15.085 µs on the PC/AT).</summary>
    public const long RefreshToggleClocks = 18;

    private readonly TimeProvider _time;
    private readonly IIrqLine _irq0;
    private readonly Lock _lock = new();
    private readonly Pit8254Channel[] _channels = [new(gate: true), new(gate: true), new(gate: false)];
    private readonly long _origin;
    private readonly long _timestampFrequency;

    private long _lastClock;
    private bool _irq0Level;
    private byte _portB;
    private long _nextDeadline = long.MaxValue;

    public Pit8254(TimeProvider time, IIrqLine irq0)
    {
        ArgumentNullException.ThrowIfNull(time);
        ArgumentNullException.ThrowIfNull(irq0);
        _time = time;
        _irq0 = irq0;
        _origin = time.GetTimestamp();
        _timestampFrequency = time.TimestampFrequency;
        foreach (var channel in _channels)
        {
            channel.Program(Pit8254Channel.AccessLowHigh, 3, bcd: false);
            channel.Write(0, 0);
            channel.Write(0, 0);
        }

        PortB = new PortBDevice(this);
        lock (_lock)
        {
            SyncIrq0(0);
        }
    }

    /// <summary>Port B: register at <see cref="PortBPort"/> with one port.</summary>
    public IBusDevice PortB { get; }

    /// <summary>
    /// The timestamp (of the <see cref="TimeProvider"/>) of counter 0's next rising edge, or long.MaxValue when none is
    /// coming; the vCPU may sleep in HLT until then. Read without the lock.
    /// </summary>
    public long NextDeadline => Volatile.Read(ref _nextDeadline);

    /// <summary>Raises IRQ0 for counter 0's rising edges due by <paramref name="nowTimestamp"/> (coalesced into one).</summary>
    public void Poll(long nowTimestamp)
    {
        lock (_lock)
        {
            SyncIrq0(ClockAt(nowTimestamp));
        }
    }

    /// <summary>Counter <paramref name="channel"/>'s OUT pin now.</summary>
    public bool GetOutput(int channel)
    {
        lock (_lock)
        {
            return _channels[channel].OutputAt(Now());
        }
    }

    /// <summary>Counter <paramref name="channel"/>'s counting element now (a number; BCD is not applied).</summary>
    public int GetCount(int channel)
    {
        lock (_lock)
        {
            return _channels[channel].CountAt(Now());
        }
    }

    /// <summary>Captures the counters (after signalling the edges due now), port B and IRQ0's level.</summary>
    public Pit8254State Save()
    {
        lock (_lock)
        {
            long clock = Now();
            SyncIrq0(clock);
            var channels = new Pit8254ChannelState[ChannelCount];
            for (int i = 0; i < ChannelCount; i++)
            {
                channels[i] = _channels[i].Save();
            }

            return new Pit8254State(channels, _portB, _irq0Level, clock);
        }
    }

    /// <summary>
    /// Restores a state from <see cref="Save"/>: the counters continue from where they were when saved (their phase is
    /// kept; the time between saving and restoring does not count). IRQ0 is driven to the saved level.
    /// </summary>
    public void Restore(Pit8254State state)
    {
        ArgumentNullException.ThrowIfNull(state);
        if (state.Channels is not { Length: ChannelCount })
        {
            throw new ArgumentException($"A PIT state must hold {ChannelCount} counters. Restore a state saved by this PIT model.", nameof(state));
        }

        lock (_lock)
        {
            long clock = Now();
            for (int i = 0; i < ChannelCount; i++)
            {
                _channels[i].Restore(state.Channels[i], clock - state.Clock);
            }

            _portB = (byte)(state.PortB & PortBWritable);
            _irq0Level = state.Irq0Level;
            _irq0.SetLevel(_irq0Level);
            SyncIrq0(clock);
        }
    }

    public void Read(ulong offset, Span<byte> data)
    {
        lock (_lock)
        {
            long clock = Now();
            SyncIrq0(clock);
            for (int i = 0; i < data.Length; i++)
            {
                ulong port = offset + (ulong)i;
                // The control word register cannot be read (the datasheet leaves the bus floating).
                data[i] = port < ChannelCount ? _channels[port].Read(clock) : IoBus.UnhandledReadValue;
            }

            SyncIrq0(clock);
        }
    }

    public void Write(ulong offset, ReadOnlySpan<byte> data)
    {
        lock (_lock)
        {
            long clock = Now();
            SyncIrq0(clock);
            for (int i = 0; i < data.Length; i++)
            {
                ulong port = offset + (ulong)i;
                if (port < ChannelCount)
                {
                    _channels[port].Write(data[i], clock);
                }
                else if (port == ControlPort)
                {
                    WriteControl(data[i], clock);
                }
            }

            SyncIrq0(clock);
        }
    }

    private void WriteControl(byte value, long clock)
    {
        int select = value >> 6;
        if (value >= ControlReadBack)
        {
            // Read-back: D3-D1 select counters 2-0, COUNT and STATUS are active low; D0 must be 0 (ignored).
            for (int channel = 0; channel < ChannelCount; channel++)
            {
                if ((value & (2 << channel)) == 0)
                {
                    continue;
                }

                if ((value & ReadBackNoStatus) == 0)
                {
                    _channels[channel].LatchStatus(clock);
                }

                if ((value & ReadBackNoCount) == 0)
                {
                    _channels[channel].LatchCount(clock);
                }
            }

            return;
        }

        int access = (value >> 4) & 3;
        if (access == Pit8254Channel.AccessLatch)
        {
            _channels[select].LatchCount(clock);
        }
        else
        {
            _channels[select].Program(access, (value >> 1) & 7, (value & 1) != 0);
        }
    }

    private byte ReadPortB()
    {
        long clock = Now();
        SyncIrq0(clock);
        byte value = _portB;
        if (((clock / RefreshToggleClocks) & 1) != 0)
        {
            value |= PortBRefreshToggle;
        }

        if (_channels[2].OutputAt(clock))
        {
            value |= PortBOut2;
        }

        return value;
    }

    private void WritePortB(byte value)
    {
        long clock = Now();
        SyncIrq0(clock);
        _portB = (byte)(value & PortBWritable);
        _channels[2].SetGate((value & PortBGate2) != 0, clock);
    }

    /// <summary>Gives counter 0's due rising edges to IRQ0, leaves the line at OUT's level, and refreshes the deadline.</summary>
    private void SyncIrq0(long clock)
    {
        var channel = _channels[0];
        bool output = channel.OutputAt(clock);
        if (channel.TakeRisingEdges(clock))
        {
            if (_irq0Level)
            {
                _irq0.SetLevel(false);
            }

            _irq0.SetLevel(true);
            _irq0Level = true;
        }

        if (output != _irq0Level)
        {
            _irq0.SetLevel(output);
            _irq0Level = output;
        }

        long next = channel.NextRisingEdge(clock);
        Volatile.Write(ref _nextDeadline, next == long.MaxValue ? long.MaxValue : TimestampOf(next));
    }

    private long Now() => ClockAt(_time.GetTimestamp());

    /// <summary>PIT clocks since construction at <paramref name="timestamp"/>; never goes backwards.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private long ClockAt(long timestamp)
    {
        long elapsed = timestamp - _origin;
        long clock = elapsed <= 0 ? 0 : (long)((Int128)elapsed * InputFrequencyHz / _timestampFrequency);
        if (clock < _lastClock)
        {
            return _lastClock;
        }

        _lastClock = clock;
        return clock;
    }

    /// <summary>The first timestamp at which the PIT clock reads <paramref name="clock"/>.</summary>
    private long TimestampOf(long clock)
    {
        Int128 ticks = (((Int128)clock * _timestampFrequency) + InputFrequencyHz - 1) / InputFrequencyHz;
        Int128 timestamp = _origin + ticks;
        return timestamp >= long.MaxValue ? long.MaxValue - 1 : (long)timestamp;
    }

    private sealed class PortBDevice(Pit8254 pit) : IBusDevice
    {
        public void Read(ulong offset, Span<byte> data)
        {
            lock (pit._lock)
            {
                for (int i = 0; i < data.Length; i++)
                {
                    data[i] = offset + (ulong)i == 0 ? pit.ReadPortB() : IoBus.UnhandledReadValue;
                }
            }
        }

        public void Write(ulong offset, ReadOnlySpan<byte> data)
        {
            lock (pit._lock)
            {
                for (int i = 0; i < data.Length; i++)
                {
                    if (offset + (ulong)i == 0)
                    {
                        pit.WritePortB(data[i]);
                    }
                }
            }
        }
    }
}
