namespace KvmSharp.Devices.InterruptControllers;

/// <summary>
/// One counter of the 8254 (Intel 8254 datasheet, 231164: "Control Word Format", "Modes", "Read Operations",
/// "Read-Back Command"), as a function of the PIT clock: no timer runs, every query computes the counter and OUT from
/// the clock at which the counting element was last loaded. Not thread-safe: <see cref="Pit8254"/> holds its lock
/// around every call.
/// </summary>
internal sealed class Pit8254Channel
{
    // Control word RW field (bits 5-4).
    public const int AccessLatch = 0;
    public const int AccessLow = 1;
    public const int AccessHigh = 2;
    public const int AccessLowHigh = 3;

    // Status byte (read-back): OUT, NULL COUNT, then RW, mode and BCD as programmed.
    public const byte StatusOutput = 0b1000_0000;
    public const byte StatusNullCount = 0b0100_0000;

    private int _modeBits;        // M2-M0 as written
    private int _access = AccessLowHigh;
    private bool _bcd;

    private int _countRegister;   // CR as a number (BCD decoded); 0 stands for the maximum count
    private bool _countWritten;   // a whole count arrived since the control word
    private bool _writeHighNext;  // write flip-flop for RW = 3
    private byte _pendingLow;

    private bool _readHighNext;   // read flip-flop for RW = 3 (unlatched reads)
    private int _latchedCount = -1;
    private bool _latchedHighNext;
    private int _latchedStatus = -1;
    private bool _nullCount = true;

    private bool _armed;          // the counting element holds a count (modes 1/5: after a trigger)
    private bool _counting;       // the clock advances the counting element (the gate allows it)
    private int _initial;         // N loaded into the counting element (0 = maximum)
    private long _loadClock;      // clock at which the counting element was at N (elapsed 0)
    private long _frozenElapsed;  // elapsed clocks while not counting
    private bool _reloadPending;  // modes 2/3: a count written while counting waits for the period's end
    private long _reloadClock;

    private long _edgesDelivered; // rising edges of OUT since the last load that the owner has seen
    private bool _edgeOwed;       // a rising edge before a reload that the owner has not seen

    public Pit8254Channel(bool gate) => Gate = gate;

    public bool Gate { get; private set; }

    /// <summary>The effective mode 0-5 (M2-M0 = 11x are modes 2 and 3).</summary>
    public int Mode => _modeBits >= 6 ? _modeBits - 4 : _modeBits;

    public bool Bcd => _bcd;

    public int Access => _access;

    /// <summary>The modulus of the counting element: 2^16 in binary, 10^4 in BCD.</summary>
    private int Modulus => _bcd ? 10000 : 65536;

    private long InitialCount => _initial == 0 ? Modulus : _initial;

    public Pit8254ChannelState Save() => new(
        _modeBits,
        _access,
        _bcd,
        _countRegister,
        _countWritten,
        _writeHighNext,
        _pendingLow,
        _readHighNext,
        _latchedCount,
        _latchedHighNext,
        _latchedStatus,
        _nullCount,
        Gate,
        _armed,
        _counting,
        _initial,
        _loadClock,
        _frozenElapsed,
        _reloadPending,
        _reloadClock,
        _edgesDelivered,
        _edgeOwed);

    /// <summary>Restores a saved counter, moving its clock fields by <paramref name="clockShift"/> onto this PIT's time line.</summary>
    public void Restore(Pit8254ChannelState state, long clockShift)
    {
        _modeBits = state.ModeBits & 7;
        _access = state.Access is >= AccessLow and <= AccessLowHigh ? state.Access : AccessLowHigh;
        _bcd = state.Bcd;
        _countRegister = state.CountRegister & 0xFFFF;
        _countWritten = state.CountWritten;
        _writeHighNext = state.WriteHighNext;
        _pendingLow = state.PendingLow;
        _readHighNext = state.ReadHighNext;
        _latchedCount = state.LatchedCount is >= 0 and <= 0xFFFF ? state.LatchedCount : -1;
        _latchedHighNext = state.LatchedHighNext;
        _latchedStatus = state.LatchedStatus is >= 0 and <= 0xFF ? state.LatchedStatus : -1;
        _nullCount = state.NullCount;
        Gate = state.Gate;
        _armed = state.Armed;
        _counting = state.Counting;
        _initial = state.Initial & 0xFFFF;
        _loadClock = state.LoadClock + clockShift;
        _frozenElapsed = Math.Max(0, state.FrozenElapsed);
        _reloadPending = state.ReloadPending;
        _reloadClock = state.ReloadClock + clockShift;
        _edgesDelivered = Math.Max(0, state.EdgesDelivered);
        _edgeOwed = state.EdgeOwed;
    }

    /// <summary>A control word for this counter (RW != 0): all control logic is reset and OUT takes its initial level.</summary>
    public void Program(int access, int modeBits, bool bcd)
    {
        _access = access;
        _modeBits = modeBits;
        _bcd = bcd;
        _countWritten = false;
        _writeHighNext = false;
        _readHighNext = false;
        _latchedCount = -1;
        _latchedStatus = -1;
        _nullCount = true;
        _armed = false;
        _counting = false;
        _reloadPending = false;
        _edgesDelivered = 0;
        _edgeOwed = false;
    }

    /// <summary>Counter latch command (RW = 00), or the COUNT part of a read-back: ignored while a latch is unread.</summary>
    public void LatchCount(long clock)
    {
        if (_latchedCount < 0)
        {
            _latchedCount = EncodeCount(CountAt(clock));
            _latchedHighNext = _access == AccessHigh;
        }
    }

    /// <summary>The STATUS part of a read-back: ignored while a status is unread.</summary>
    public void LatchStatus(long clock)
    {
        if (_latchedStatus < 0)
        {
            _latchedStatus = (OutputAt(clock) ? StatusOutput : 0)
                | (_nullCount ? StatusNullCount : 0)
                | (_access << 4) | (_modeBits << 1) | (_bcd ? 1 : 0);
        }
    }

    public byte Read(long clock)
    {
        if (_latchedStatus >= 0)
        {
            byte status = (byte)_latchedStatus;
            _latchedStatus = -1;
            return status;
        }

        if (_latchedCount >= 0)
        {
            int latched = _latchedCount;
            bool high = _latchedHighNext;
            if (_access == AccessLowHigh && !high)
            {
                _latchedHighNext = true;
            }
            else
            {
                _latchedCount = -1;
            }

            return (byte)(high ? latched >> 8 : latched);
        }

        int count = EncodeCount(CountAt(clock));
        switch (_access)
        {
            case AccessLow:
                return (byte)count;
            case AccessHigh:
                return (byte)(count >> 8);
            default:
                bool readHigh = _readHighNext;
                _readHighNext = !readHigh;
                return (byte)(readHigh ? count >> 8 : count);
        }
    }

    public void Write(byte value, long clock)
    {
        int raw;
        switch (_access)
        {
            case AccessLow:
                raw = value;
                break;
            case AccessHigh:
                raw = value << 8;
                break;
            default:
                if (!_writeHighNext)
                {
                    _pendingLow = value;
                    _writeHighNext = true;
                    if (Mode == 0)
                    {
                        // "Writing the first byte disables counting. OUT is set low immediately."
                        Settle(clock);
                        _armed = false;
                        _counting = false;
                        _reloadPending = false;
                    }

                    return;
                }

                _writeHighNext = false;
                raw = _pendingLow | (value << 8);
                break;
        }

        LoadCountRegister(DecodeCount(raw), clock);
    }

    /// <summary>Drives the GATE input: level-sensitive in modes 0, 2, 3, 4; a rising edge triggers modes 1, 2, 3, 5.</summary>
    public void SetGate(bool gate, long clock)
    {
        if (gate == Gate)
        {
            return;
        }

        Settle(clock);
        Gate = gate;
        switch (Mode)
        {
            case 1:
            case 5:
                if (gate && _countWritten)
                {
                    Load(_countRegister, clock);
                }

                break;
            case 2:
            case 3:
                if (!_armed)
                {
                    break;
                }

                if (gate)
                {
                    Load(_initial, clock);
                }
                else
                {
                    _frozenElapsed = ElapsedAt(clock);
                    _counting = false;
                }

                break;
            default:
                if (!_armed)
                {
                    break;
                }

                if (gate)
                {
                    _loadClock = clock - _frozenElapsed;
                    _counting = true;
                }
                else
                {
                    _frozenElapsed = ElapsedAt(clock);
                    _counting = false;
                }

                break;
        }
    }

    /// <summary>The value the counting element holds at <paramref name="clock"/> (a plain number, BCD not applied).</summary>
    public int CountAt(long clock)
    {
        Settle(clock);
        if (!_armed)
        {
            return _initial;
        }

        long n = InitialCount;
        long elapsed = ElapsedAt(clock);
        switch (Mode)
        {
            case 2:
                return n < 2 ? (int)n : (int)(n - (elapsed % n));
            case 3:
                return (int)SquareWaveCount(n, elapsed);
            default:
                long modulus = Modulus;
                return (int)(((n - (elapsed % modulus)) + modulus) % modulus);
        }
    }

    /// <summary>The OUT pin at <paramref name="clock"/>.</summary>
    public bool OutputAt(long clock)
    {
        Settle(clock);
        int mode = Mode;
        if (!_armed)
        {
            return mode != 0;
        }

        if (!_counting && mode is 2 or 3)
        {
            return true; // gate low forces OUT high
        }

        long n = InitialCount;
        long elapsed = ElapsedAt(clock);
        return mode switch
        {
            0 or 1 => elapsed >= n,
            2 => n < 2 || elapsed % n != n - 1,
            3 => n < 2 || elapsed % n < (n + 1) / 2,
            _ => elapsed != n, // 4, 5: low for one clock at terminal count
        };
    }

    /// <summary>
    /// Whether OUT rose since the last call (one answer for any number of missed rising edges) — the owner wires
    /// channel 0's OUT to IRQ0 and calls this on every poll.
    /// </summary>
    public bool TakeRisingEdges(long clock)
    {
        Settle(clock);
        long edges = RisingEdgesAt(clock);
        bool due = _edgeOwed || edges > _edgesDelivered;
        _edgeOwed = false;
        _edgesDelivered = edges;
        return due;
    }

    /// <summary>The clock of the next rising edge of OUT after the ones delivered, or long.MaxValue.</summary>
    public long NextRisingEdge(long clock)
    {
        Settle(clock);
        if (_edgeOwed)
        {
            return clock;
        }

        if (!_armed || !_counting)
        {
            return long.MaxValue;
        }

        long n = InitialCount;
        long elapsed = Mode switch
        {
            0 or 1 => _edgesDelivered == 0 ? n : -1,
            4 or 5 => _edgesDelivered == 0 ? n + 1 : -1,
            _ => n < 2 ? -1 : (_edgesDelivered + 1) * n,
        };

        return elapsed < 0 ? long.MaxValue : _loadClock + elapsed;
    }

    private long RisingEdgesAt(long clock)
    {
        if (!_armed)
        {
            return 0;
        }

        long n = InitialCount;
        long elapsed = ElapsedAt(clock);
        return Mode switch
        {
            0 or 1 => elapsed >= n ? 1 : 0,
            4 or 5 => elapsed > n ? 1 : 0,
            _ => n < 2 ? 0 : elapsed / n,
        };
    }

    private long ElapsedAt(long clock) => _counting ? clock - _loadClock : _frozenElapsed;

    /// <summary>Mode 3's counting element: by twos, with the odd-count rules of the datasheet's mode 3 description.</summary>
    private static long SquareWaveCount(long n, long elapsed)
    {
        if (n < 2)
        {
            return n;
        }

        long highClocks = (n + 1) / 2;
        long phase = elapsed % n;
        bool odd = (n & 1) != 0;
        if (phase < highClocks)
        {
            // Even: N, N-2, ...; odd: N, then N-1, N-3, ... (the first clock takes one).
            return phase == 0 || !odd ? n - (2 * phase) : n + 1 - (2 * phase);
        }

        long low = phase - highClocks;
        // Even: N, N-2, ...; odd: N, then N-3, N-5, ... (the first clock after the reload takes three).
        return low == 0 || !odd ? n - (2 * low) : n - 1 - (2 * low);
    }

    private void LoadCountRegister(int count, long clock)
    {
        Settle(clock);
        _countRegister = count;
        _countWritten = true;
        _nullCount = true;
        switch (Mode)
        {
            case 1:
            case 5:
                break; // loaded by the next trigger
            case 2:
            case 3:
                if (_armed && _counting)
                {
                    // The new count takes effect when the current period ends (a documented simplification for
                    // mode 3, where the datasheet reloads at the end of the current half-cycle).
                    long n = InitialCount;
                    long elapsed = ElapsedAt(clock);
                    _reloadPending = true;
                    _reloadClock = _loadClock + (((elapsed / n) + 1) * n);
                }
                else
                {
                    Load(count, clock);
                }

                break;
            default:
                Load(count, clock);
                break;
        }
    }

    /// <summary>Loads the counting element with <paramref name="count"/> at <paramref name="clock"/> and starts it if the gate allows.</summary>
    private void Load(int count, long clock)
    {
        _initial = count;
        _armed = true;
        _nullCount = false;
        _reloadPending = false;
        _loadClock = clock;
        _frozenElapsed = 0;
        _counting = Gate || Mode is 1 or 5;
        _edgesDelivered = 0;
    }

    /// <summary>Applies a reload that came due by <paramref name="clock"/> (modes 2 and 3).</summary>
    private void Settle(long clock)
    {
        if (!_reloadPending || !_counting || clock < _reloadClock)
        {
            return;
        }

        long edgesBefore = RisingEdgesAt(_reloadClock);
        bool owed = edgesBefore > _edgesDelivered;
        _reloadPending = false;
        _initial = _countRegister;
        _nullCount = false;
        _loadClock = _reloadClock;
        _edgesDelivered = 0;
        _edgeOwed |= owed;
    }

    private int DecodeCount(int raw)
    {
        if (!_bcd)
        {
            return raw;
        }

        int value = ((raw >> 12) & 0xF) * 1000 + ((raw >> 8) & 0xF) * 100 + ((raw >> 4) & 0xF) * 10 + (raw & 0xF);
        return value % 10000;
    }

    private int EncodeCount(int count)
    {
        if (!_bcd)
        {
            return count & 0xFFFF;
        }

        count %= 10000;
        return ((count / 1000) << 12) | (((count / 100) % 10) << 8) | (((count / 10) % 10) << 4) | (count % 10);
    }
}
