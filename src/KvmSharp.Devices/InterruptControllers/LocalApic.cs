using System.Buffers.Binary;
using System.Numerics;
using System.Runtime.CompilerServices;
using KvmSharp.Devices.Bus;

namespace KvmSharp.Devices.InterruptControllers;

/// <summary>
/// One vCPU's local APIC in xAPIC mode, after the Intel SDM Vol. 3A chapter 11 ("Advanced Programmable Interrupt
/// Controller"): the 4 KiB register page (11.4.1, Table 11-1), IA32_APIC_BASE (11.4.4), the LVT (11.5.1), the timer
/// in one-shot, periodic and TSC-deadline modes (11.5.4), ESR (11.5.3), ICR and IPIs (11.6), priorities TPR/PPR/APR
/// (11.8.3), IRR/ISR/TMR, EOI (11.8.5) and the spurious vector (11.9).
/// </summary>
/// <remarks>
/// <para>The CPU reaches the register page itself (<see cref="ContainsAddress"/>, then <see cref="Read"/>/<see
/// cref="Write"/> with the offset into the page), because each CPU sees its own LAPIC at the same address. Version
/// register 0x00050014: an integrated APIC (0x14) with six LVT entries (timer, thermal, performance counters, LINT0,
/// LINT1, error; no CMCI), no EOI-broadcast suppression. Reserved offsets read 0 and set ESR bit 7; writes to
/// read-only registers are ignored; only aligned 32-bit writes at a register's start take effect (as KVM), and reads of
/// 1-4 bytes inside a register's first dword return its bytes.</para>
/// <para>The timer counts at <c>timerFrequencyHz</c> / divide (the CPU advertises the frequency as the crystal clock in
/// CPUID 0x15, which Linux uses for the APIC timer); TSC-deadline converts the deadline into host time with
/// <c>tscFrequencyHz</c> at arming time. No host timer runs: the vCPU loop calls <see cref="Poll"/> once
/// <see cref="NextDeadline"/> has passed; missed periodic ticks coalesce into one.</para>
/// <para>CPU side: <see cref="HasPendingInterrupt"/> reads one volatile field; <see cref="AcknowledgeInterrupt"/>,
/// <see cref="TakeNmi"/> and the rest take the interrupt fabric's lock. Nothing allocates. Like KVM, the LAPIC accepts
/// the 8259's INTR through LINT0 while LINT0 is unmasked ExtINT even when the APIC is software-disabled (see
/// <see cref="ConfigureVirtualWire"/>), and passes INTR straight to the CPU when IA32_APIC_BASE disables it.</para>
/// </remarks>
public sealed class LocalApic : IBusDevice
{
    public const ulong DefaultBaseAddress = 0xFEE0_0000;
    public const ulong PageSize = 0x1000;

    /// <summary>The APIC timer's input clock by default: 1 GHz, so every divide value gives whole nanoseconds.</summary>
    public const long DefaultTimerFrequencyHz = 1_000_000_000;

    /// <summary>Physical address width assumed for IA32_APIC_BASE's reserved bits unless told otherwise.</summary>
    public const int DefaultPhysicalAddressBits = 40;

    /// <summary>Version register: version 0x14, maximum LVT entry 5 (six entries), no EOI-broadcast suppression.</summary>
    public const uint VersionRegisterValue = 0x0005_0014;

    // IA32_APIC_BASE (MSR 0x1B).
    public const uint ApicBaseMsrIndex = 0x1B;
    public const uint TscDeadlineMsrIndex = 0x6E0;
    public const ulong ApicBaseBsp = 1UL << 8;
    public const ulong ApicBaseX2Apic = 1UL << 10;
    public const ulong ApicBaseEnable = 1UL << 11;

    // Register offsets (Table 11-1).
    public const int RegisterId = 0x20;
    public const int RegisterVersion = 0x30;
    public const int RegisterTpr = 0x80;
    public const int RegisterApr = 0x90;
    public const int RegisterPpr = 0xA0;
    public const int RegisterEoi = 0xB0;
    public const int RegisterRemoteRead = 0xC0;
    public const int RegisterLdr = 0xD0;
    public const int RegisterDfr = 0xE0;
    public const int RegisterSvr = 0xF0;
    public const int RegisterIsr = 0x100;
    public const int RegisterTmr = 0x180;
    public const int RegisterIrr = 0x200;
    public const int RegisterEsr = 0x280;
    public const int RegisterIcrLow = 0x300;
    public const int RegisterIcrHigh = 0x310;
    public const int RegisterLvtTimer = 0x320;
    public const int RegisterLvtThermal = 0x330;
    public const int RegisterLvtPerformance = 0x340;
    public const int RegisterLvtLint0 = 0x350;
    public const int RegisterLvtLint1 = 0x360;
    public const int RegisterLvtError = 0x370;
    public const int RegisterTimerInitialCount = 0x380;
    public const int RegisterTimerCurrentCount = 0x390;
    public const int RegisterTimerDivide = 0x3E0;

    // SVR.
    public const uint SvrApicEnabled = 1u << 8;
    public const uint SvrWritableMask = 0x3FF; // vector, APIC enable, focus processor checking

    // LVT and ICR fields.
    public const uint LvtMasked = 1u << 16;
    public const uint LvtDeliveryStatus = 1u << 12;
    public const int LvtTimerModeShift = 17;
    public const uint LvtTimerModeOneShot = 0;
    public const uint LvtTimerModePeriodic = 1;
    public const uint LvtTimerModeTscDeadline = 2;
    public const uint IcrLogicalDestination = 1u << 11;
    public const uint IcrLevelAssert = 1u << 14;
    public const uint IcrLevelTriggered = 1u << 15;
    public const int IcrShorthandShift = 18;
    public const uint IcrWritableMask = 0x000C_CFFF;

    // ESR bits (11.5.3).
    public const uint EsrSendIllegalVector = 1u << 5;
    public const uint EsrReceiveIllegalVector = 1u << 6;
    public const uint EsrIllegalRegisterAddress = 1u << 7;

    /// <summary>LVT entries: timer, thermal, performance, LINT0, LINT1, error.</summary>
    public const int LvtCount = 6;

    private const uint LvtTimerWritable = 0x0007_00FF;
    private const uint LvtThermalWritable = 0x0001_07FF;
    private const uint LvtLintWritable = 0x0001_A7FF;
    private const uint LvtErrorWritable = 0x0001_00FF;
    private const uint PowerUpLvt = LvtMasked;
    private const int LvtTimer = 0;
    private const int LvtThermal = 1;
    private const int LvtPerformance = 2;
    private const int LvtLint0 = 3;
    private const int LvtLint1 = 4;
    private const int LvtError = 5;

    private const int PendingMaskable = 1;
    private const int PendingNmi = 2;

    private readonly ApicBus _bus;
    private readonly Lock _sync;
    private readonly TimeProvider _time;
    private readonly Func<ulong> _readTsc;
    private readonly long _tscFrequency;
    private readonly long _timerFrequency;
    private readonly long _timestampFrequency;
    private readonly ulong _apicBaseReserved;

    private readonly uint[] _isr = new uint[8];
    private readonly uint[] _tmr = new uint[8];
    private readonly uint[] _irr = new uint[8];
    private readonly uint[] _lvt = new uint[LvtCount];

    private ulong _apicBase;
    private uint _id;
    private uint _tpr;
    private uint _ldr;
    private uint _dfr;
    private uint _svr;
    private uint _esr;
    private uint _esrPending;
    private uint _icrLow;
    private uint _icrHigh;
    private uint _divideConfig;
    private uint _initialCount;

    private bool _nmiPending;
    private bool _extIntPending;
    private bool _lint1Level;
    private bool _initPending;
    private int _startupVector = -1;

    // Timer: the count equals _initialCount at _timerBase (a timestamp); _timerPending says whether an expiry is still
    // to be signalled (one-shot) or periods are being counted (periodic, _timerPeriodsSignalled of them so far).
    private long _timerBase;
    private bool _timerPending;
    private long _timerPeriodsSignalled;
    private ulong _tscDeadline;
    private long _deadlineTimestamp;

    private volatile int _pending;
    private long _nextDeadline = long.MaxValue;

    /// <param name="bus">The APIC bus; the LAPIC adds itself to it.</param>
    /// <param name="apicId">The initial APIC ID (the MADT's and CPUID's).</param>
    /// <param name="bootstrapProcessor">Sets IA32_APIC_BASE.BSP.</param>
    /// <param name="time">The clock of <see cref="Poll"/>'s timestamps.</param>
    /// <param name="readTsc">Reads this vCPU's TSC (for IA32_TSC_DEADLINE); advances at <paramref name="tscFrequencyHz"/>.</param>
    /// <param name="tscFrequencyHz">The TSC frequency the CPU advertises.</param>
    /// <param name="timerFrequencyHz">The APIC timer's input clock (before the divide).</param>
    /// <param name="physicalAddressBits">MAXPHYADDR: IA32_APIC_BASE bits from here up are reserved.</param>
    public LocalApic(
        ApicBus bus,
        byte apicId,
        bool bootstrapProcessor,
        TimeProvider time,
        Func<ulong> readTsc,
        long tscFrequencyHz,
        long timerFrequencyHz = DefaultTimerFrequencyHz,
        int physicalAddressBits = DefaultPhysicalAddressBits)
    {
        ArgumentNullException.ThrowIfNull(bus);
        ArgumentNullException.ThrowIfNull(time);
        ArgumentNullException.ThrowIfNull(readTsc);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(tscFrequencyHz);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(timerFrequencyHz);
        ArgumentOutOfRangeException.ThrowIfLessThan(physicalAddressBits, 32);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(physicalAddressBits, 52);
        _bus = bus;
        _sync = bus.Sync;
        _time = time;
        _readTsc = readTsc;
        _tscFrequency = tscFrequencyHz;
        _timerFrequency = timerFrequencyHz;
        _timestampFrequency = time.TimestampFrequency;
        _apicBaseReserved = 0x6FFUL | ~((1UL << physicalAddressBits) - 1); // bits 0-7, 9, 10 (no x2APIC), >= MAXPHYADDR
        InitialApicId = apicId;
        _apicBase = DefaultBaseAddress | ApicBaseEnable | (bootstrapProcessor ? ApicBaseBsp : 0);
        lock (_sync)
        {
            ResetRegisters(keepId: false);
        }

        bus.Add(this);
    }

    /// <summary>The APIC ID given at construction (the ID register starts with it, and INIT keeps the current one).</summary>
    public byte InitialApicId { get; }

    /// <summary>
    /// A maskable interrupt (fixed above PPR, ExtINT) or an NMI is waiting. One volatile read: the CPU may check it
    /// before every instruction.
    /// </summary>
    public bool HasPendingInterrupt => _pending != 0;

    /// <summary>A maskable interrupt waits (the CPU takes it when RFLAGS.IF allows).</summary>
    public bool HasPendingMaskableInterrupt => (_pending & PendingMaskable) != 0;

    /// <summary>An NMI waits.</summary>
    public bool HasPendingNmi => (_pending & PendingNmi) != 0;

    /// <summary>The timestamp of the next timer expiry that will raise an interrupt, or long.MaxValue. No lock.</summary>
    public long NextDeadline => Volatile.Read(ref _nextDeadline);

    /// <summary>IA32_APIC_BASE as RDMSR returns it.</summary>
    public ulong ApicBaseMsr
    {
        get
        {
            lock (_sync)
            {
                return _apicBase;
            }
        }
    }

    /// <summary>The register page's guest-physical address (no lock: the CPU may ask on every MMIO access).</summary>
    public ulong BaseAddress => Volatile.Read(ref _apicBase) & ~(PageSize - 1) & ~_apicBaseReserved;

    /// <summary>IA32_APIC_BASE.EN: the APIC exists for the CPU (false: "hardware disabled").</summary>
    public bool HardwareEnabled => (Volatile.Read(ref _apicBase) & ApicBaseEnable) != 0;

    /// <summary>SVR bit 8 with the APIC hardware-enabled.</summary>
    public bool SoftwareEnabled => HardwareEnabled && (_svr & SvrApicEnabled) != 0;

    /// <summary>The task priority register (CR8 reads TPR[7:4]; a CR8 write of v sets TPR to v &lt;&lt; 4).</summary>
    public byte Tpr
    {
        get
        {
            lock (_sync)
            {
                return (byte)_tpr;
            }
        }

        set
        {
            lock (_sync)
            {
                _tpr = value;
                UpdatePending();
            }
        }
    }

    /// <summary>The processor priority register (11.8.3.1).</summary>
    public byte Ppr
    {
        get
        {
            lock (_sync)
            {
                return (byte)ProcessorPriority();
            }
        }
    }

    /// <summary>IA32_TSC_DEADLINE: reads 0 unless the timer is in TSC-deadline mode and armed; writes outside that mode are ignored.</summary>
    public ulong TscDeadline
    {
        get
        {
            lock (_sync)
            {
                PollTimer(_time.GetTimestamp());
                UpdatePending();
                return TimerMode == LvtTimerModeTscDeadline ? _tscDeadline : 0;
            }
        }

        set
        {
            lock (_sync)
            {
                if (TimerMode != LvtTimerModeTscDeadline)
                {
                    return;
                }

                _tscDeadline = value;
                if (value == 0)
                {
                    _timerPending = false;
                }
                else
                {
                    ulong tsc = _readTsc();
                    ulong delta = value > tsc ? value - tsc : 0;
                    long now = _time.GetTimestamp();
                    Int128 ticks = (((Int128)delta * _timestampFrequency) + _tscFrequency - 1) / _tscFrequency;
                    _deadlineTimestamp = ticks >= long.MaxValue - now ? long.MaxValue - 1 : now + (long)ticks;
                    _timerPending = true;
                    PollTimer(now);
                }

                UpdatePending();
            }
        }
    }

    /// <summary>Whether <paramref name="vector"/>'s ISR bit is set.</summary>
    public bool IsInService(int vector)
    {
        lock (_sync)
        {
            return TestBit(_isr, vector);
        }
    }

    /// <summary>Whether <paramref name="vector"/>'s IRR bit is set.</summary>
    public bool IsRequested(int vector)
    {
        lock (_sync)
        {
            return TestBit(_irr, vector);
        }
    }

    /// <summary>Whether <paramref name="vector"/>'s TMR bit is set (it was accepted as level triggered).</summary>
    public bool IsLevelTriggered(int vector)
    {
        lock (_sync)
        {
            return TestBit(_tmr, vector);
        }
    }

    /// <summary>Whether the CPU's access to <paramref name="physicalAddress"/> reaches this LAPIC's register page.</summary>
    public bool ContainsAddress(ulong physicalAddress) => HardwareEnabled && (physicalAddress & ~(PageSize - 1)) == BaseAddress;

    /// <summary>
    /// WRMSR IA32_APIC_BASE. Returns false (the CPU raises #GP) for reserved bits: 0-7, 9, x2APIC enable (10, not
    /// offered) and bits at or above MAXPHYADDR. Clearing EN disables the APIC and returns it to its power-up state.
    /// </summary>
    public bool TryWriteApicBaseMsr(ulong value)
    {
        if ((value & _apicBaseReserved) != 0)
        {
            return false;
        }

        lock (_sync)
        {
            bool wasEnabled = (_apicBase & ApicBaseEnable) != 0;
            Volatile.Write(ref _apicBase, value);
            if (wasEnabled && (value & ApicBaseEnable) == 0)
            {
                ResetRegisters(keepId: false);
            }

            UpdatePending();
            return true;
        }
    }

    /// <summary>
    /// Sets LINT0 to ExtINT and LINT1 to NMI, unmasked — the virtual-wire state PC firmware leaves and what the KVM
    /// machine sets through KVM_SET_LAPIC — without requiring the APIC to be software-enabled.
    /// </summary>
    public void ConfigureVirtualWire()
    {
        lock (_sync)
        {
            _lvt[LvtLint0] = (uint)ApicDeliveryMode.ExtInt << 8;
            _lvt[LvtLint1] = (uint)ApicDeliveryMode.Nmi << 8;
            UpdatePending();
        }
    }

    /// <summary>
    /// The interrupt acknowledge: returns the vector the CPU delivers. ExtINT (LINT0 or an ExtINT message, or the APIC
    /// hardware-disabled) runs the 8259's INTA; otherwise the highest IRR vector above PPR moves to ISR. When nothing is
    /// deliverable any more, returns the spurious vector (SVR[7:0]) and changes nothing (11.9).
    /// </summary>
    public int AcknowledgeInterrupt()
    {
        lock (_sync)
        {
            int vector;
            if (!HardwareEnabled)
            {
                vector = _bus.PicAcknowledge();
            }
            else if (_extIntPending || ExtIntFromLint0())
            {
                _extIntPending = false;
                vector = _bus.PicAcknowledge();
            }
            else
            {
                vector = DeliverableVector();
                if (vector >= 0)
                {
                    ClearBit(_irr, vector);
                    SetBit(_isr, vector);
                }
                else
                {
                    vector = (int)(_svr & 0xFF);
                }
            }

            UpdatePending();
            return vector;
        }
    }

    /// <summary>Takes a pending NMI (true once per NMI).</summary>
    public bool TakeNmi()
    {
        lock (_sync)
        {
            bool taken = _nmiPending;
            _nmiPending = false;
            UpdatePending();
            return taken;
        }
    }

    /// <summary>Takes a pending INIT (recorded for SMP; the CPU resets itself and calls <see cref="InitReset"/>).</summary>
    public bool TakeInit()
    {
        lock (_sync)
        {
            bool taken = _initPending;
            _initPending = false;
            return taken;
        }
    }

    /// <summary>The vector of a start-up IPI received since the last INIT or take, or -1.</summary>
    public int TakeStartupVector()
    {
        lock (_sync)
        {
            int vector = _startupVector;
            _startupVector = -1;
            return vector;
        }
    }

    /// <summary>INIT: every register returns to its power-up value except the APIC ID and IA32_APIC_BASE (11.4.7.3).</summary>
    public void InitReset()
    {
        lock (_sync)
        {
            ResetRegisters(keepId: true);
            UpdatePending();
        }
    }

    /// <summary>Drives the LINT1 pin (the PC's NMI source): a rising edge acts per the LINT1 LVT entry.</summary>
    public void SetLint1(bool level)
    {
        lock (_sync)
        {
            bool rising = level && !_lint1Level;
            _lint1Level = level;
            if (rising && HardwareEnabled)
            {
                SignalLocal(LvtLint1);
                UpdatePending();
            }
        }
    }

    /// <summary>Signals the timer expiries due by <paramref name="nowTimestamp"/> (missed periods coalesce into one).</summary>
    public void Poll(long nowTimestamp)
    {
        lock (_sync)
        {
            PollTimer(nowTimestamp);
            UpdatePending();
        }
    }

    /// <summary>Captures the registers, pending events and the timer (relative to now).</summary>
    public LocalApicState Save()
    {
        lock (_sync)
        {
            long now = _time.GetTimestamp();
            return new LocalApicState(
                _apicBase,
                _id,
                _tpr,
                _ldr,
                _dfr,
                _svr,
                _esr,
                _esrPending,
                _icrLow,
                _icrHigh,
                _divideConfig,
                _initialCount,
                (uint[])_lvt.Clone(),
                (uint[])_isr.Clone(),
                (uint[])_tmr.Clone(),
                (uint[])_irr.Clone(),
                _nmiPending,
                _extIntPending,
                _lint1Level,
                _initPending,
                _startupVector,
                _timerPending,
                _timerPeriodsSignalled,
                TimestampToTimeSpanTicks(now - _timerBase),
                _tscDeadline,
                TimestampToTimeSpanTicks(_deadlineTimestamp - now));
        }
    }

    /// <summary>
    /// Restores a state from <see cref="Save"/>; the timer goes on from where it was (the time between saving and
    /// restoring does not count). Throws <see cref="ArgumentException"/> for arrays of the wrong size or an APIC base
    /// with reserved bits.
    /// </summary>
    public void Restore(LocalApicState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        if (state.Lvt is not { Length: LvtCount } || state.Isr is not { Length: 8 } || state.Tmr is not { Length: 8 } || state.Irr is not { Length: 8 })
        {
            throw new ArgumentException($"A LAPIC state must hold {LvtCount} LVT entries and 8 words each of ISR, TMR and IRR. Restore a state saved by this LAPIC model.", nameof(state));
        }

        if ((state.ApicBase & _apicBaseReserved) != 0)
        {
            throw new ArgumentException($"The saved IA32_APIC_BASE 0x{state.ApicBase:x} has bits this LAPIC reserves. Restore it with the same physical address width.", nameof(state));
        }

        lock (_sync)
        {
            long now = _time.GetTimestamp();
            Volatile.Write(ref _apicBase, state.ApicBase);
            _id = state.Id & 0xFF00_0000;
            _tpr = state.Tpr & 0xFF;
            _ldr = state.Ldr & 0xFF00_0000;
            _dfr = (state.Dfr & 0xF000_0000) | 0x0FFF_FFFF;
            _svr = state.Svr & SvrWritableMask;
            _esr = state.Esr;
            _esrPending = state.EsrPending;
            _icrLow = state.IcrLow & IcrWritableMask;
            _icrHigh = state.IcrHigh & 0xFF00_0000;
            _divideConfig = state.DivideConfig & 0xB;
            _initialCount = state.InitialCount;
            state.Lvt.CopyTo(_lvt, 0);
            state.Isr.CopyTo(_isr, 0);
            state.Tmr.CopyTo(_tmr, 0);
            state.Irr.CopyTo(_irr, 0);
            _nmiPending = state.NmiPending;
            _extIntPending = state.ExtIntPending;
            _lint1Level = state.Lint1Level;
            _initPending = state.InitPending;
            _startupVector = state.StartupVector is >= 0 and <= 0xFF ? state.StartupVector : -1;
            _timerPending = state.TimerPending;
            _timerPeriodsSignalled = Math.Max(0, state.TimerPeriodsSignalled);
            _timerBase = now - TimeSpanTicksToTimestamp(state.TimerStartedTicksAgo);
            _tscDeadline = state.TscDeadline;
            _deadlineTimestamp = now + TimeSpanTicksToTimestamp(state.DeadlineDueInTicks);
            UpdatePending();
        }
    }

    public void Read(ulong offset, Span<byte> data)
    {
        lock (_sync)
        {
            if (!HardwareEnabled || offset >= PageSize)
            {
                data.Fill(IoBus.UnhandledReadValue);
                return;
            }

            int register = (int)offset & ~0xF;
            int at = (int)offset & 0xF;
            uint value = ReadRegister(register);
            for (int i = 0; i < data.Length; i++)
            {
                int byteIndex = at + i;
                data[i] = byteIndex < 4 ? (byte)(value >> (8 * byteIndex)) : (byte)0;
            }

            UpdatePending();
        }
    }

    public void Write(ulong offset, ReadOnlySpan<byte> data)
    {
        if (data.Length != 4 || (offset & 0xF) != 0 || offset >= PageSize)
        {
            return; // the SDM leaves other accesses undefined; KVM drops them, and so do we
        }

        uint value = BinaryPrimitives.ReadUInt32LittleEndian(data);
        lock (_sync)
        {
            if (!HardwareEnabled)
            {
                return;
            }

            WriteRegister((int)offset, value);
            UpdatePending();
        }
    }

    /// <summary>An APIC-bus message arrived for this LAPIC (the bus already matched the destination).</summary>
    internal bool Accept(in ApicMessage message)
    {
        bool accepted;
        switch (message.DeliveryMode)
        {
            case ApicDeliveryMode.Fixed:
            case ApicDeliveryMode.LowestPriority:
                accepted = AcceptFixed(message.Vector, message.LevelTriggered);
                break;
            case ApicDeliveryMode.Nmi:
                _nmiPending = true;
                accepted = true;
                break;
            case ApicDeliveryMode.Init:
                if (message.LevelAsserted)
                {
                    _initPending = true;
                    _startupVector = -1;
                }

                accepted = true;
                break;
            case ApicDeliveryMode.StartUp:
                _startupVector = message.Vector;
                accepted = true;
                break;
            case ApicDeliveryMode.ExtInt:
                _extIntPending = true;
                accepted = true;
                break;
            default:
                accepted = false; // SMI and the reserved mode 3 are not modelled
                break;
        }

        UpdatePending();
        return accepted;
    }

    /// <summary>Whether this LAPIC is addressed by a destination (11.6.2.1 physical, 11.6.2.2 logical flat/cluster).</summary>
    internal bool MatchesDestination(bool logical, byte destination)
    {
        if (!HardwareEnabled)
        {
            return false;
        }

        if (!logical)
        {
            return destination == 0xFF || destination == (byte)(_id >> 24);
        }

        byte logicalId = (byte)(_ldr >> 24);
        if ((_dfr >> 28) == 0xF)
        {
            return (logicalId & destination) != 0; // flat model
        }

        // Cluster model: cluster in bits 7-4 (15 = all clusters), one bit per APIC in bits 3-0.
        int cluster = destination >> 4;
        return (cluster == 0xF || cluster == logicalId >> 4) && (logicalId & destination & 0xF) != 0;
    }

    /// <summary>The arbitration priority (11.6.2.4 / Figure 11-15), used for lowest-priority delivery.</summary>
    internal uint ArbitrationPriority
    {
        get
        {
            uint tprClass = _tpr >> 4;
            uint isrClass = (uint)Math.Max(HighestBit(_isr), 0) >> 4;
            uint irrClass = (uint)Math.Max(HighestBit(_irr), 0) >> 4;
            if (tprClass >= irrClass && tprClass > isrClass)
            {
                return _tpr & 0xFF;
            }

            return Math.Max(tprClass, Math.Max(isrClass, irrClass)) << 4;
        }
    }

    /// <summary>Recomputes the pending summary (the PIC's INTR changed).</summary>
    internal void RefreshPending() => UpdatePending();

    private uint TimerMode => (_lvt[LvtTimer] >> LvtTimerModeShift) & 3;

    private int TimerDivisor
    {
        get
        {
            int index = (int)((_divideConfig & 3) | ((_divideConfig >> 1) & 4));
            return index == 7 ? 1 : 2 << index;
        }
    }

    private uint ReadRegister(int register)
    {
        switch (register)
        {
            case RegisterId:
                return _id;
            case RegisterVersion:
                return VersionRegisterValue;
            case RegisterTpr:
                return _tpr;
            case RegisterApr:
                return ArbitrationPriority;
            case RegisterPpr:
                return ProcessorPriority();
            case RegisterEoi:
            case RegisterRemoteRead:
                return 0;
            case RegisterLdr:
                return _ldr;
            case RegisterDfr:
                return _dfr;
            case RegisterSvr:
                return _svr;
            case RegisterEsr:
                return _esr;
            case RegisterIcrLow:
                return _icrLow;
            case RegisterIcrHigh:
                return _icrHigh;
            case >= RegisterLvtTimer and <= RegisterLvtError:
                return _lvt[(register - RegisterLvtTimer) >> 4];
            case RegisterTimerInitialCount:
                return _initialCount;
            case RegisterTimerCurrentCount:
                return CurrentCount(_time.GetTimestamp());
            case RegisterTimerDivide:
                return _divideConfig;
            case >= RegisterIsr and < RegisterIsr + 0x80:
                return _isr[(register - RegisterIsr) >> 4];
            case >= RegisterTmr and < RegisterTmr + 0x80:
                return _tmr[(register - RegisterTmr) >> 4];
            case >= RegisterIrr and < RegisterIrr + 0x80:
                return _irr[(register - RegisterIrr) >> 4];
            default:
                SignalError(EsrIllegalRegisterAddress);
                return 0;
        }
    }

    private void WriteRegister(int register, uint value)
    {
        switch (register)
        {
            case RegisterId:
                _id = value & 0xFF00_0000;
                break;
            case RegisterTpr:
                _tpr = value & 0xFF;
                break;
            case RegisterEoi:
                EndOfInterrupt();
                break;
            case RegisterLdr:
                _ldr = value & 0xFF00_0000;
                break;
            case RegisterDfr:
                _dfr = (value & 0xF000_0000) | 0x0FFF_FFFF;
                break;
            case RegisterSvr:
                WriteSvr(value);
                break;
            case RegisterEsr:
                _esr = _esrPending;
                _esrPending = 0;
                break;
            case RegisterIcrLow:
                _icrLow = value & IcrWritableMask;
                SendIpi();
                break;
            case RegisterIcrHigh:
                _icrHigh = value & 0xFF00_0000;
                break;
            case >= RegisterLvtTimer and <= RegisterLvtError:
                WriteLvt((register - RegisterLvtTimer) >> 4, value);
                break;
            case RegisterTimerInitialCount:
                WriteInitialCount(value);
                break;
            case RegisterTimerDivide:
                WriteDivide(value);
                break;
            case RegisterVersion:
            case RegisterApr:
            case RegisterPpr:
            case RegisterRemoteRead:
            case RegisterTimerCurrentCount:
            case >= RegisterIsr and < RegisterIrr + 0x80:
                break; // read-only: writes are ignored
            default:
                SignalError(EsrIllegalRegisterAddress);
                break;
        }
    }

    private void WriteSvr(uint value)
    {
        _svr = value & SvrWritableMask;
        if ((_svr & SvrApicEnabled) == 0)
        {
            // Software disable masks every LVT entry (11.4.7.2).
            for (int i = 0; i < LvtCount; i++)
            {
                _lvt[i] |= LvtMasked;
            }
        }
    }

    private void WriteLvt(int index, uint value)
    {
        uint writable = index switch
        {
            LvtTimer => LvtTimerWritable,
            LvtThermal or LvtPerformance => LvtThermalWritable,
            LvtLint0 or LvtLint1 => LvtLintWritable,
            _ => LvtErrorWritable,
        };

        uint entry = value & writable;
        if ((_svr & SvrApicEnabled) == 0)
        {
            entry |= LvtMasked; // cannot be unmasked while software-disabled
        }

        if (index != LvtTimer)
        {
            _lvt[index] = entry;
            return;
        }

        long now = _time.GetTimestamp();
        PollTimer(now);
        uint oldMode = TimerMode;
        bool wasMasked = (_lvt[LvtTimer] & LvtMasked) != 0;
        _lvt[LvtTimer] = entry;
        uint newMode = TimerMode;
        if ((oldMode == LvtTimerModeTscDeadline) != (newMode == LvtTimerModeTscDeadline))
        {
            // Switching to or from TSC-deadline disarms the timer (11.5.4.1), as KVM also clears the initial count.
            _initialCount = 0;
            _tscDeadline = 0;
            _timerPending = false;
            return;
        }

        if (newMode == LvtTimerModeTscDeadline || _initialCount == 0)
        {
            return;
        }

        if (newMode == LvtTimerModePeriodic && oldMode != LvtTimerModePeriodic)
        {
            // A one-shot count continues as periodic: the current period is the one under way.
            _timerPending = true;
            _timerPeriodsSignalled = TimerTicks(now) / _initialCount;
        }
        else if (newMode != LvtTimerModePeriodic && oldMode == LvtTimerModePeriodic && TimerTicks(now) >= _initialCount)
        {
            _timerPending = false; // a periodic count past its first period has nothing left to do as one-shot
        }

        if (wasMasked && (entry & LvtMasked) == 0 && _timerPending)
        {
            // Expiries that passed while masked are not signalled after unmasking.
            SkipMaskedExpiries(now);
        }
    }

    private void WriteInitialCount(uint value)
    {
        if (TimerMode == LvtTimerModeTscDeadline)
        {
            return; // ignored in TSC-deadline mode
        }

        long now = _time.GetTimestamp();
        PollTimer(now);
        _initialCount = value;
        _timerBase = now;
        _timerPeriodsSignalled = 0;
        _timerPending = value != 0;
    }

    private void WriteDivide(uint value)
    {
        long now = _time.GetTimestamp();
        PollTimer(now);
        uint current = CurrentCount(now);
        _divideConfig = value & 0xB;
        if (_initialCount != 0 && TimerMode != LvtTimerModeTscDeadline)
        {
            // Keep counting from the current value at the new rate.
            long elapsedTicks = (long)_initialCount - current;
            _timerBase = now - TicksToTimestamp(elapsedTicks);
            _timerPeriodsSignalled = 0;
        }
    }

    private uint CurrentCount(long now)
    {
        if (_initialCount == 0 || TimerMode == LvtTimerModeTscDeadline)
        {
            return 0;
        }

        long ticks = TimerTicks(now);
        if (TimerMode == LvtTimerModePeriodic)
        {
            return (uint)(_initialCount - (ticks % _initialCount));
        }

        return ticks >= _initialCount ? 0 : (uint)(_initialCount - ticks);
    }

    /// <summary>Timer ticks (after the divide) since <see cref="_timerBase"/>.</summary>
    private long TimerTicks(long now)
    {
        long elapsed = now - _timerBase;
        if (elapsed <= 0)
        {
            return 0;
        }

        Int128 ticks = (Int128)elapsed * _timerFrequency / ((Int128)_timestampFrequency * TimerDivisor);
        return ticks > long.MaxValue ? long.MaxValue : (long)ticks;
    }

    /// <summary>The timestamp span of <paramref name="ticks"/> timer ticks, rounded up.</summary>
    private long TicksToTimestamp(long ticks)
    {
        Int128 denominator = _timerFrequency;
        Int128 span = (((Int128)ticks * TimerDivisor * _timestampFrequency) + denominator - 1) / denominator;
        return span > long.MaxValue / 2 ? long.MaxValue / 2 : (long)span;
    }

    private long TimestampToTimeSpanTicks(long timestampSpan) =>
        (long)((Int128)timestampSpan * TimeSpan.TicksPerSecond / _timestampFrequency);

    private long TimeSpanTicksToTimestamp(long ticks)
    {
        Int128 span = (Int128)ticks * _timestampFrequency / TimeSpan.TicksPerSecond;
        return span > long.MaxValue / 4 ? long.MaxValue / 4 : span < long.MinValue / 4 ? long.MinValue / 4 : (long)span;
    }

    /// <summary>Signals the timer if it expired by <paramref name="now"/>.</summary>
    private void PollTimer(long now)
    {
        if (!_timerPending)
        {
            return;
        }

        switch (TimerMode)
        {
            case LvtTimerModeTscDeadline:
                if (now >= _deadlineTimestamp)
                {
                    _timerPending = false;
                    _tscDeadline = 0;
                    SignalLocal(LvtTimer);
                }

                break;
            case LvtTimerModePeriodic:
                long periods = TimerTicks(now) / _initialCount;
                if (periods > _timerPeriodsSignalled)
                {
                    _timerPeriodsSignalled = periods;
                    SignalLocal(LvtTimer);
                }

                break;
            default:
                if (TimerTicks(now) >= _initialCount)
                {
                    _timerPending = false;
                    SignalLocal(LvtTimer);
                }

                break;
        }
    }

    private void SkipMaskedExpiries(long now)
    {
        switch (TimerMode)
        {
            case LvtTimerModePeriodic:
                _timerPeriodsSignalled = TimerTicks(now) / _initialCount;
                break;
            default:
                if (TimerTicks(now) >= _initialCount)
                {
                    _timerPending = false;
                }

                break;
        }
    }

    private long TimerDeadline()
    {
        if (!_timerPending || (_lvt[LvtTimer] & LvtMasked) != 0)
        {
            return long.MaxValue;
        }

        return TimerMode switch
        {
            LvtTimerModeTscDeadline => _deadlineTimestamp,
            LvtTimerModePeriodic => _timerBase + TicksToTimestamp((_timerPeriodsSignalled + 1) * _initialCount),
            _ => _timerBase + TicksToTimestamp(_initialCount),
        };
    }

    /// <summary>An LVT source fired: deliver per its entry (masked entries deliver nothing).</summary>
    private void SignalLocal(int index)
    {
        uint entry = _lvt[index];
        if ((entry & LvtMasked) != 0)
        {
            return;
        }

        byte vector = (byte)entry;
        var mode = index is LvtTimer or LvtError ? ApicDeliveryMode.Fixed : (ApicDeliveryMode)((entry >> 8) & 7);
        switch (mode)
        {
            case ApicDeliveryMode.Fixed:
                AcceptFixed(vector, levelTriggered: false);
                break;
            case ApicDeliveryMode.Nmi:
                _nmiPending = true;
                break;
            case ApicDeliveryMode.Init:
                _initPending = true;
                break;
            case ApicDeliveryMode.ExtInt:
                _extIntPending = true;
                break;
        }
    }

    private bool AcceptFixed(byte vector, bool levelTriggered)
    {
        if (!SoftwareEnabled)
        {
            return false;
        }

        if (vector < 16)
        {
            SignalError(EsrReceiveIllegalVector);
            return true;
        }

        SetBit(_irr, vector);
        if (levelTriggered)
        {
            SetBit(_tmr, vector);
        }
        else
        {
            ClearBit(_tmr, vector);
        }

        return true;
    }

    private void SignalError(uint bit)
    {
        uint before = _esrPending;
        _esrPending |= bit;
        if (before != _esrPending && (_lvt[LvtError] & LvtMasked) == 0 && (byte)_lvt[LvtError] >= 16 && SoftwareEnabled)
        {
            SetBit(_irr, (byte)_lvt[LvtError]);
            ClearBit(_tmr, (byte)_lvt[LvtError]);
        }
    }

    private void EndOfInterrupt()
    {
        int vector = HighestBit(_isr);
        if (vector < 0)
        {
            return;
        }

        ClearBit(_isr, vector);
        if (TestBit(_tmr, vector))
        {
            _bus.BroadcastEoi((byte)vector);
        }
    }

    private void SendIpi()
    {
        byte vector = (byte)_icrLow;
        var mode = (ApicDeliveryMode)((_icrLow >> 8) & 7);
        if (mode is ApicDeliveryMode.Fixed or ApicDeliveryMode.LowestPriority && vector < 16)
        {
            SignalError(EsrSendIllegalVector);
            return;
        }

        var message = new ApicMessage(
            vector,
            mode,
            (_icrLow & IcrLogicalDestination) != 0,
            (byte)(_icrHigh >> 24),
            (_icrLow & IcrLevelTriggered) != 0,
            (_icrLow & IcrLevelAssert) != 0);
        if (mode == ApicDeliveryMode.Init && !message.LevelAsserted && message.LevelTriggered)
        {
            return; // INIT level de-assert: only synchronizes arbitration IDs
        }

        _bus.Deliver(message, (ApicShorthand)((_icrLow >> IcrShorthandShift) & 3), this);
    }

    private uint ProcessorPriority()
    {
        uint isrClass = (uint)Math.Max(HighestBit(_isr), 0) & 0xF0;
        return (_tpr & 0xF0) >= isrClass ? _tpr & 0xFF : isrClass;
    }

    /// <summary>The highest IRR vector whose class is above PPR's, or -1.</summary>
    private int DeliverableVector()
    {
        if (!SoftwareEnabled)
        {
            return -1;
        }

        int vector = HighestBit(_irr);
        return vector >= 0 && (vector & 0xF0) > (ProcessorPriority() & 0xF0) ? vector : -1;
    }

    private bool ExtIntFromLint0()
    {
        uint lint0 = _lvt[LvtLint0];
        return (lint0 & LvtMasked) == 0 && ((lint0 >> 8) & 7) == (uint)ApicDeliveryMode.ExtInt && _bus.PicOutput;
    }

    private void UpdatePending()
    {
        int pending = 0;
        if (!HardwareEnabled)
        {
            if (_bus.PicOutput)
            {
                pending = PendingMaskable;
            }
        }
        else
        {
            if (_extIntPending || ExtIntFromLint0() || DeliverableVector() >= 0)
            {
                pending = PendingMaskable;
            }

            if (_nmiPending)
            {
                pending |= PendingNmi;
            }
        }

        _pending = pending;
        Volatile.Write(ref _nextDeadline, TimerDeadline());
    }

    private void ResetRegisters(bool keepId)
    {
        if (!keepId)
        {
            _id = (uint)InitialApicId << 24;
        }

        _tpr = 0;
        _ldr = 0;
        _dfr = 0xFFFF_FFFF;
        _svr = 0xFF;
        _esr = 0;
        _esrPending = 0;
        _icrLow = 0;
        _icrHigh = 0;
        _divideConfig = 0;
        _initialCount = 0;
        Array.Clear(_isr);
        Array.Clear(_tmr);
        Array.Clear(_irr);
        Array.Fill(_lvt, PowerUpLvt);
        _timerPending = false;
        _tscDeadline = 0;
        _nmiPending = false;
        _extIntPending = false;
        _initPending = false;
        _startupVector = -1;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool TestBit(uint[] bits, int vector) => (bits[(vector >> 5) & 7] & (1u << vector)) != 0;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void SetBit(uint[] bits, int vector) => bits[(vector >> 5) & 7] |= 1u << vector;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void ClearBit(uint[] bits, int vector) => bits[(vector >> 5) & 7] &= ~(1u << vector);

    private static int HighestBit(uint[] bits)
    {
        for (int word = 7; word >= 0; word--)
        {
            if (bits[word] != 0)
            {
                return (word << 5) | (31 - BitOperations.LeadingZeroCount(bits[word]));
            }
        }

        return -1;
    }
}
