using System.Numerics;

namespace KvmSharp.Devices.InterruptControllers;

/// <summary>
/// One 8259A: the register state and priority logic of the Intel 8259A datasheet (231468). Not thread-safe: its
/// owner, <see cref="Pic8259Pair"/>, holds the fabric lock around every call.
/// </summary>
internal sealed class Pic8259
{
    // ICW1 (A0 = 0, D4 = 1).
    public const byte Icw1Select = 0b0001_0000;
    public const byte Icw1NeedIcw4 = 0b0000_0001;
    public const byte Icw1Single = 0b0000_0010;
    public const byte Icw1LevelTriggered = 0b0000_1000;

    // ICW4.
    public const byte Icw4AutoEoi = 0b0000_0010;
    public const byte Icw4SpecialFullyNested = 0b0001_0000;

    // OCW2 (A0 = 0, D4 = D3 = 0): R, SL, EOI in bits 7-5, the level in bits 2-0.
    public const byte Ocw2CommandMask = 0b1110_0000;
    public const byte Ocw2LevelMask = 0b0000_0111;
    public const byte Ocw2RotateAutoEoiClear = 0b0000_0000;
    public const byte Ocw2NonSpecificEoi = 0b0010_0000;
    public const byte Ocw2NoOperation = 0b0100_0000;
    public const byte Ocw2SpecificEoi = 0b0110_0000;
    public const byte Ocw2RotateAutoEoiSet = 0b1000_0000;
    public const byte Ocw2RotateNonSpecificEoi = 0b1010_0000;
    public const byte Ocw2SetPriority = 0b1100_0000;
    public const byte Ocw2RotateSpecificEoi = 0b1110_0000;

    // OCW3 (A0 = 0, D4 = 0, D3 = 1).
    public const byte Ocw3Select = 0b0000_1000;
    public const byte Ocw3SpecialMaskMask = 0b0110_0000;
    public const byte Ocw3SpecialMaskSet = 0b0110_0000;
    public const byte Ocw3SpecialMaskReset = 0b0100_0000;
    public const byte Ocw3Poll = 0b0000_0100;
    public const byte Ocw3ReadRegisterMask = 0b0000_0011;
    public const byte Ocw3ReadIrr = 0b0000_0010;
    public const byte Ocw3ReadIsr = 0b0000_0011;

    /// <summary>Poll word bit 7: an interrupt was pending (the level is in bits 2-0).</summary>
    public const byte PollInterrupt = 0b1000_0000;

    private const int Operational = 0;
    private const int ExpectIcw2 = 2;
    private const int ExpectIcw3 = 3;
    private const int ExpectIcw4 = 4;

    private readonly bool _isMaster;
    private readonly byte _elcrMask;

    private byte _inputs;      // the levels on IR0-IR7
    private byte _highestPriorityLevel; // rotation: 0 after ICW1 (IR0 highest, IR7 lowest); serving L makes it L + 1
    private int _initStep;
    private bool _needIcw4;
    private bool _single;
    private bool _levelTriggeredAll;
    private bool _autoEoi;
    private bool _rotateOnAutoEoi;
    private bool _specialFullyNested;
    private bool _specialMask;
    private bool _readIsr;
    private bool _pollPending;

    public Pic8259(bool isMaster, byte vectorBase, byte elcrMask, byte initialMask)
    {
        _isMaster = isMaster;
        _elcrMask = elcrMask;
        VectorBase = vectorBase;
        Imr = initialMask;
        Icw3 = isMaster ? (byte)(1 << Pic8259Pair.CascadeIrq) : (byte)Pic8259Pair.CascadeIrq;
        Icw4 = 0x01;
    }

    public byte Irr { get; private set; }

    public byte Isr { get; private set; }

    public byte Imr { get; private set; }

    public byte Elcr { get; private set; }

    /// <summary>ICW2's T7-T3: the vector of IR0 (IRn gives VectorBase | n).</summary>
    public byte VectorBase { get; private set; }

    public byte Icw3 { get; private set; }

    public byte Icw4 { get; private set; }

    /// <summary>The INT pin.</summary>
    public bool Output => HighestRequest() >= 0;

    /// <summary>Whether IR <paramref name="irq"/> is level sensitive (its ELCR bit, or ICW1 LTIM for all inputs).</summary>
    public bool IsLevelTriggered(int irq) => _levelTriggeredAll || (Elcr & (1 << irq)) != 0;

    public void SetInput(int irq, bool level)
    {
        byte mask = (byte)(1 << irq);
        if (IsLevelTriggered(irq))
        {
            Irr = level ? (byte)(Irr | mask) : (byte)(Irr & ~mask);
        }
        else if (level && (_inputs & mask) == 0)
        {
            Irr |= mask;
        }

        _inputs = level ? (byte)(_inputs | mask) : (byte)(_inputs & ~mask);
    }

    public void SetElcr(byte value)
    {
        Elcr = (byte)(value & _elcrMask);
        RefreshLevelRequests();
    }

    /// <summary>
    /// The level the chip would interrupt the CPU for, or -1: the highest-priority unmasked request, if it outranks
    /// the highest-priority level in service ("Fully Nested Mode"). In special mask mode masked levels in service do
    /// not block; in special fully nested mode the master's cascade input does not block itself.
    /// </summary>
    public int HighestRequest()
    {
        int request = PriorityOf(Irr & ~Imr);
        if (request == 8)
        {
            return -1;
        }

        int inService = Isr;
        if (_specialMask)
        {
            inService &= ~Imr;
        }

        if (_specialFullyNested && _isMaster)
        {
            inService &= ~(1 << Pic8259Pair.CascadeIrq);
        }

        return request < PriorityOf(inService) ? LevelOf(request) : -1;
    }

    /// <summary>INTA for <paramref name="irq"/>: in service (or automatic EOI), and an edge request is consumed.</summary>
    public void Acknowledge(int irq)
    {
        byte mask = (byte)(1 << irq);
        if (_autoEoi)
        {
            if (_rotateOnAutoEoi)
            {
                _highestPriorityLevel = (byte)((irq + 1) & 7);
            }
        }
        else
        {
            Isr |= mask;
        }

        if (!IsLevelTriggered(irq))
        {
            Irr &= (byte)~mask;
        }
    }

    public byte ReadCommandPort()
    {
        if (_pollPending)
        {
            _pollPending = false;
            int irq = HighestRequest();
            if (irq < 0)
            {
                return 0;
            }

            Acknowledge(irq);
            return (byte)(PollInterrupt | irq);
        }

        return _readIsr ? Isr : Irr;
    }

    public void WriteCommandPort(byte value)
    {
        if ((value & Icw1Select) != 0)
        {
            StartInitialization(value);
        }
        else if ((value & Ocw3Select) != 0)
        {
            WriteOcw3(value);
        }
        else
        {
            WriteOcw2(value);
        }
    }

    public void WriteDataPort(byte value)
    {
        switch (_initStep)
        {
            case ExpectIcw2:
                VectorBase = (byte)(value & 0xF8);
                _initStep = _single ? NextAfterIcw3() : ExpectIcw3;
                break;
            case ExpectIcw3:
                Icw3 = value;
                _initStep = NextAfterIcw3();
                break;
            case ExpectIcw4:
                Icw4 = value;
                _autoEoi = (value & Icw4AutoEoi) != 0;
                _specialFullyNested = (value & Icw4SpecialFullyNested) != 0;
                _initStep = Operational;
                break;
            default:
                Imr = value; // OCW1
                break;
        }
    }

    public Pic8259State Save() => new(
        Irr,
        Isr,
        Imr,
        Elcr,
        _inputs,
        VectorBase,
        Icw3,
        Icw4,
        _highestPriorityLevel,
        _initStep,
        _needIcw4,
        _single,
        _levelTriggeredAll,
        _autoEoi,
        _rotateOnAutoEoi,
        _specialFullyNested,
        _specialMask,
        _readIsr,
        _pollPending);

    public void Restore(Pic8259State state)
    {
        Irr = state.Irr;
        Isr = state.Isr;
        Imr = state.Imr;
        Elcr = (byte)(state.Elcr & _elcrMask);
        _inputs = state.InputLevels;
        VectorBase = (byte)(state.VectorBase & 0xF8);
        Icw3 = state.Icw3;
        Icw4 = state.Icw4;
        _highestPriorityLevel = (byte)(state.HighestPriorityLevel & 7);
        _initStep = state.InitStep is ExpectIcw2 or ExpectIcw3 or ExpectIcw4 ? state.InitStep : Operational;
        _needIcw4 = state.NeedIcw4;
        _single = state.Single;
        _levelTriggeredAll = state.LevelTriggeredAll;
        _autoEoi = state.AutoEoi;
        _rotateOnAutoEoi = state.RotateOnAutoEoi;
        _specialFullyNested = state.SpecialFullyNested;
        _specialMask = state.SpecialMask;
        _readIsr = state.ReadIsr;
        _pollPending = state.PollPending;
    }

    private int NextAfterIcw3() => _needIcw4 ? ExpectIcw4 : Operational;

    /// <summary>
    /// ICW1 (datasheet "Initialization Command Words"): the edge sense circuit is reset (an input already high must
    /// fall and rise again), IMR is cleared, IR7 gets the lowest priority, special mask mode is cleared, status read
    /// selects IRR, and without IC4 every ICW4 function is zero. The in-service register is cleared too, as QEMU and
    /// KVM do: nothing the CPU acknowledged before a re-initialization will be EOIed afterwards.
    /// </summary>
    private void StartInitialization(byte icw1)
    {
        _needIcw4 = (icw1 & Icw1NeedIcw4) != 0;
        _single = (icw1 & Icw1Single) != 0;
        _levelTriggeredAll = (icw1 & Icw1LevelTriggered) != 0;
        Imr = 0;
        Isr = 0;
        Irr = 0;
        RefreshLevelRequests();
        _highestPriorityLevel = 0;
        _specialMask = false;
        _readIsr = false;
        _pollPending = false;
        _rotateOnAutoEoi = false;
        if (!_needIcw4)
        {
            Icw4 = 0;
            _autoEoi = false;
            _specialFullyNested = false;
        }

        _initStep = ExpectIcw2;
    }

    private void RefreshLevelRequests()
    {
        for (int irq = 0; irq < 8; irq++)
        {
            if (IsLevelTriggered(irq))
            {
                byte mask = (byte)(1 << irq);
                Irr = (_inputs & mask) != 0 ? (byte)(Irr | mask) : (byte)(Irr & ~mask);
            }
        }
    }

    private void WriteOcw2(byte value)
    {
        int level = value & Ocw2LevelMask;
        switch (value & Ocw2CommandMask)
        {
            case Ocw2NonSpecificEoi:
                EndHighestInService(rotate: false);
                break;
            case Ocw2RotateNonSpecificEoi:
                EndHighestInService(rotate: true);
                break;
            case Ocw2SpecificEoi:
                Isr &= (byte)~(1 << level);
                break;
            case Ocw2RotateSpecificEoi:
                Isr &= (byte)~(1 << level);
                _highestPriorityLevel = (byte)((level + 1) & 7);
                break;
            case Ocw2SetPriority:
                _highestPriorityLevel = (byte)((level + 1) & 7);
                break;
            case Ocw2RotateAutoEoiSet:
                _rotateOnAutoEoi = true;
                break;
            case Ocw2RotateAutoEoiClear:
                _rotateOnAutoEoi = false;
                break;
            default: // Ocw2NoOperation
                break;
        }
    }

    /// <summary>Non-specific EOI: clears the highest-priority in-service bit (the one being served, in nested mode).</summary>
    private void EndHighestInService(bool rotate)
    {
        int priority = PriorityOf(Isr);
        if (priority == 8)
        {
            return;
        }

        int irq = LevelOf(priority);
        Isr &= (byte)~(1 << irq);
        if (rotate)
        {
            _highestPriorityLevel = (byte)((irq + 1) & 7);
        }
    }

    private void WriteOcw3(byte value)
    {
        switch (value & Ocw3SpecialMaskMask)
        {
            case Ocw3SpecialMaskSet:
                _specialMask = true;
                break;
            case Ocw3SpecialMaskReset:
                _specialMask = false;
                break;
        }

        if ((value & Ocw3Poll) != 0)
        {
            _pollPending = true;
        }

        switch (value & Ocw3ReadRegisterMask)
        {
            case Ocw3ReadIrr:
                _readIsr = false;
                break;
            case Ocw3ReadIsr:
                _readIsr = true;
                break;
        }
    }

    /// <summary>Priority rank (0 = highest) of the best level set in <paramref name="levels"/>, or 8 when none is.</summary>
    private int PriorityOf(int levels)
    {
        if ((levels & 0xFF) == 0)
        {
            return 8;
        }

        // Rotate so the highest-priority level lands in bit 0; the lowest set bit is then the best rank.
        int rotated = ((levels >> _highestPriorityLevel) | (levels << (8 - _highestPriorityLevel))) & 0xFF;
        return BitOperations.TrailingZeroCount(rotated);
    }

    private int LevelOf(int priority) => (priority + _highestPriorityLevel) & 7;
}
