namespace KvmSharp.Devices.InterruptControllers;

/// <summary>The saved state of one 8259A of a <see cref="Pic8259Pair"/>: its registers, input levels and modes.</summary>
public sealed record Pic8259State(
    byte Irr,
    byte Isr,
    byte Imr,
    byte Elcr,
    byte InputLevels,
    byte VectorBase,
    byte Icw3,
    byte Icw4,
    byte HighestPriorityLevel,
    int InitStep,
    bool NeedIcw4,
    bool Single,
    bool LevelTriggeredAll,
    bool AutoEoi,
    bool RotateOnAutoEoi,
    bool SpecialFullyNested,
    bool SpecialMask,
    bool ReadIsr,
    bool PollPending);

/// <summary>The saved state of a <see cref="Pic8259Pair"/>.</summary>
public sealed record Pic8259PairState(Pic8259State Master, Pic8259State Slave);

/// <summary>The saved state of an <see cref="IoApic"/>: ID, IOREGSEL, the 24 redirection entries and the pin levels.</summary>
public sealed record IoApicState(uint Id, byte RegisterSelect, ulong[] RedirectionEntries, uint PinLevels);

/// <summary>
/// The saved state of one 8254 counter. Clock fields are in PIT clocks on the saving PIT's time line; the owning
/// <see cref="Pit8254State"/> carries the clock at saving so a restore can shift them onto its own time line.
/// </summary>
public sealed record Pit8254ChannelState(
    int ModeBits,
    int Access,
    bool Bcd,
    int CountRegister,
    bool CountWritten,
    bool WriteHighNext,
    byte PendingLow,
    bool ReadHighNext,
    int LatchedCount,
    bool LatchedHighNext,
    int LatchedStatus,
    bool NullCount,
    bool Gate,
    bool Armed,
    bool Counting,
    int Initial,
    long LoadClock,
    long FrozenElapsed,
    bool ReloadPending,
    long ReloadClock,
    long EdgesDelivered,
    bool EdgeOwed);

/// <summary>The saved state of a <see cref="Pit8254"/>: its three counters, port B, IRQ0's level and the PIT clock at saving.</summary>
public sealed record Pit8254State(Pit8254ChannelState[] Channels, byte PortB, bool Irq0Level, long Clock);

/// <summary>
/// The saved state of a <see cref="LocalApic"/>: registers and 256-bit arrays as the guest sees them, pending NMI,
/// ExtINT, INIT and SIPI, and the timer. Times are relative to the moment of saving, in 100 ns ticks: the timer's
/// count started <see cref="TimerStartedTicksAgo"/> before, and a TSC deadline is due <see cref="DeadlineDueInTicks"/>
/// after.
/// </summary>
public sealed record LocalApicState(
    ulong ApicBase,
    uint Id,
    uint Tpr,
    uint Ldr,
    uint Dfr,
    uint Svr,
    uint Esr,
    uint EsrPending,
    uint IcrLow,
    uint IcrHigh,
    uint DivideConfig,
    uint InitialCount,
    uint[] Lvt,
    uint[] Isr,
    uint[] Tmr,
    uint[] Irr,
    bool NmiPending,
    bool ExtIntPending,
    bool Lint1Level,
    bool InitPending,
    int StartupVector,
    bool TimerPending,
    long TimerPeriodsSignalled,
    long TimerStartedTicksAgo,
    ulong TscDeadline,
    long DeadlineDueInTicks);
