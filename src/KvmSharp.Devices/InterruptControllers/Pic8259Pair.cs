using KvmSharp.Devices.Bus;

namespace KvmSharp.Devices.InterruptControllers;

/// <summary>
/// The PC/AT pair of Intel 8259A programmable interrupt controllers: the master at ports 0x20/0x21 serving IRQ 0-7,
/// the slave at 0xA0/0xA1 serving IRQ 8-15 and cascaded into the master's IR2, and the PIIX edge/level control
/// registers (ELCR) at 0x4D0/0x4D1. Command words and behaviour follow the Intel 8259A datasheet (order no. 231468,
/// "Programming the 8259A": ICW1-ICW4, OCW1-OCW3, "Priority Modes", "Poll Command", "Cascade Mode"); the ELCR follows
/// the Intel 82371AB (PIIX4) datasheet, 4.1.10 ("ELCR1/ELCR2").
/// </summary>
/// <remarks>
/// <para>The CPU side is <see cref="InterruptOutput"/> (the master's INT pin) and <see cref="Acknowledge"/> (the two
/// INTA pulses: the master resolves, the slave answers for IR2, and a request that vanished answers with IR7's vector
/// as the datasheet's "default IR7"). The 8086 mode is assumed (µPM is stored, not used); the slave is wired to the
/// master's IR2 as on every PC, whatever ICW3 says (QEMU and KVM do the same).</para>
/// <para>Edge-triggered requests are latched: a rising edge sets the IRR bit, which stays set until INTA even if the
/// line falls again (QEMU and KVM do the same; the datasheet wants the line held high until INTA, but a polled timer
/// may leave its OUT low by then). Level-triggered inputs (ELCR bit set, or ICW1 LTIM for the whole chip) have IRR
/// follow the line. The cascade input is an ordinary edge input of the master, so a slave request that vanishes after
/// the master latched it is answered as the slave's spurious IRQ15 with the master's IR2 in service, as on a PC.</para>
/// <para>Power-on state is what PC firmware leaves (SeaBIOS's pic_setup): master vectors 0x08, slave vectors 0x70,
/// everything masked but the cascade, fully nested, normal EOI, reading IRR. All members take the interrupt fabric's
/// lock given at construction; port accesses allocate nothing.</para>
/// </remarks>
public sealed class Pic8259Pair
{
    /// <summary>The master's command port (A0 = 0); the data port (A0 = 1) follows it.</summary>
    public const ushort MasterPort = 0x20;

    /// <summary>The slave's command port; the data port follows it.</summary>
    public const ushort SlavePort = 0xA0;

    /// <summary>ELCR1 (IRQ 0-7); ELCR2 (IRQ 8-15) follows it.</summary>
    public const ushort ElcrPort = 0x4D0;

    /// <summary>Ports each chip (and the ELCR pair) decodes.</summary>
    public const int PortCount = 2;

    /// <summary>The master input the slave's INT pin drives.</summary>
    public const int CascadeIrq = 2;

    /// <summary>ELCR1 bits that exist: IRQ 0, 1 and 2 are always edge (PIIX4 4.1.10).</summary>
    public const byte MasterElcrMask = 0xF8;

    /// <summary>ELCR2 bits that exist: IRQ 8 and IRQ 13 are always edge (PIIX4 4.1.10).</summary>
    public const byte SlaveElcrMask = 0xDE;

    /// <summary>Vector base the firmware leaves in the master (BIOS INT 08h-0Fh).</summary>
    public const byte FirmwareMasterVectorBase = 0x08;

    /// <summary>Vector base the firmware leaves in the slave (BIOS INT 70h-77h).</summary>
    public const byte FirmwareSlaveVectorBase = 0x70;

    private readonly Lock _sync;
    private readonly Pic8259 _master;
    private readonly Pic8259 _slave;
    private bool _lastOutput;

    /// <summary>A pair with a lock of its own (for use without the rest of the interrupt fabric).</summary>
    public Pic8259Pair()
        : this(new Lock())
    {
    }

    /// <param name="sync">The interrupt fabric's lock, shared with the APICs and the router.</param>
    public Pic8259Pair(Lock sync)
    {
        _sync = sync ?? throw new ArgumentNullException(nameof(sync));
        _master = new Pic8259(isMaster: true, FirmwareMasterVectorBase, MasterElcrMask, initialMask: 0xFB);
        _slave = new Pic8259(isMaster: false, FirmwareSlaveVectorBase, SlaveElcrMask, initialMask: 0xFF);
        Master = new ChipPorts(this, _master);
        Slave = new ChipPorts(this, _slave);
        Elcr = new ElcrPorts(this);
    }

    /// <summary>The master's two ports: register at <see cref="MasterPort"/> with <see cref="PortCount"/> ports.</summary>
    public IBusDevice Master { get; }

    /// <summary>The slave's two ports: register at <see cref="SlavePort"/> with <see cref="PortCount"/> ports.</summary>
    public IBusDevice Slave { get; }

    /// <summary>ELCR1/ELCR2: register at <see cref="ElcrPort"/> with <see cref="PortCount"/> ports.</summary>
    public IBusDevice Elcr { get; }

    /// <summary>
    /// Called, under the fabric lock, whenever <see cref="InterruptOutput"/> may have changed (the APIC bus uses it
    /// to re-evaluate LINT0). Set once while wiring the machine.
    /// </summary>
    public Action? OutputChanged { get; set; }

    /// <summary>The fabric lock this pair takes.</summary>
    internal Lock Sync => _sync;

    /// <summary>The master's INT pin: an unmasked request outranks everything in service.</summary>
    public bool InterruptOutput
    {
        get
        {
            lock (_sync)
            {
                return _master.Output;
            }
        }
    }

    /// <summary>Edge/level bits of both ELCRs (bit n = IRQ n is level triggered).</summary>
    public ushort EdgeLevelControl
    {
        get
        {
            lock (_sync)
            {
                return (ushort)(_master.Elcr | (_slave.Elcr << 8));
            }
        }
    }

    /// <summary>
    /// The interrupt acknowledge cycle: returns the vector the pair puts on the bus and moves the request to in-service
    /// (unless in automatic EOI mode). With nothing to answer, the master gives its IR7 vector and sets no ISR bit; when
    /// the master picks the cascade and the slave has nothing, the slave gives its IR7 vector (IRQ15) and only the
    /// master's IR2 goes in service.
    /// </summary>
    public int Acknowledge()
    {
        lock (_sync)
        {
            int vector;
            int irq = _master.HighestRequest();
            if (irq < 0)
            {
                vector = _master.VectorBase | 7;
            }
            else if (irq == CascadeIrq)
            {
                int slaveIrq = _slave.HighestRequest();
                if (slaveIrq < 0)
                {
                    slaveIrq = 7;
                }
                else
                {
                    _slave.Acknowledge(slaveIrq);
                }

                vector = _slave.VectorBase | slaveIrq;
                _master.Acknowledge(irq);
            }
            else
            {
                _master.Acknowledge(irq);
                vector = _master.VectorBase | irq;
            }

            Update();
            return vector;
        }
    }

    /// <summary>Drives input <paramref name="irq"/> (0-15) high or low; out-of-range inputs are ignored.</summary>
    public void SetIrq(int irq, bool level)
    {
        lock (_sync)
        {
            SetIrqLocked(irq, level);
        }
    }

    /// <summary>The interrupt request register: master in bits 0-7, slave in bits 8-15.</summary>
    public ushort RequestRegister
    {
        get
        {
            lock (_sync)
            {
                return (ushort)(_master.Irr | (_slave.Irr << 8));
            }
        }
    }

    /// <summary>The in-service register: master in bits 0-7, slave in bits 8-15.</summary>
    public ushort InServiceRegister
    {
        get
        {
            lock (_sync)
            {
                return (ushort)(_master.Isr | (_slave.Isr << 8));
            }
        }
    }

    /// <summary>The interrupt mask register: master in bits 0-7, slave in bits 8-15.</summary>
    public ushort MaskRegister
    {
        get
        {
            lock (_sync)
            {
                return (ushort)(_master.Imr | (_slave.Imr << 8));
            }
        }
    }

    /// <summary>The vector bases programmed by ICW2 (master, slave).</summary>
    public (byte Master, byte Slave) VectorBases
    {
        get
        {
            lock (_sync)
            {
                return (_master.VectorBase, _slave.VectorBase);
            }
        }
    }

    /// <summary>Captures both chips' state.</summary>
    public Pic8259PairState Save()
    {
        lock (_sync)
        {
            return new Pic8259PairState(_master.Save(), _slave.Save());
        }
    }

    /// <summary>Restores a state from <see cref="Save"/>, then reports the INT pin to <see cref="OutputChanged"/>.</summary>
    public void Restore(Pic8259PairState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        lock (_sync)
        {
            _master.Restore(state.Master);
            _slave.Restore(state.Slave);
            _lastOutput = _master.Output;
            OutputChanged?.Invoke();
        }
    }

    internal void SetIrqLocked(int irq, bool level)
    {
        if ((uint)irq >= 16)
        {
            return;
        }

        if (irq < 8)
        {
            _master.SetInput(irq, level);
        }
        else
        {
            _slave.SetInput(irq - 8, level);
        }

        Update();
    }

    /// <summary>Feeds the slave's INT pin to the master's IR2 and reports the master's INT pin.</summary>
    private void Update()
    {
        _master.SetInput(CascadeIrq, _slave.Output);
        bool output = _master.Output;
        if (output != _lastOutput)
        {
            _lastOutput = output;
            OutputChanged?.Invoke();
        }
    }

    private byte ReadChip(Pic8259 chip, ulong port)
    {
        byte value = port == 0 ? chip.ReadCommandPort() : chip.Imr;
        Update();
        return value;
    }

    private void WriteChip(Pic8259 chip, ulong port, byte value)
    {
        if (port == 0)
        {
            chip.WriteCommandPort(value);
        }
        else
        {
            chip.WriteDataPort(value);
        }

        Update();
    }

    /// <summary>The two ports of one chip; each byte of a wider access is its own port access.</summary>
    private sealed class ChipPorts(Pic8259Pair pair, Pic8259 chip) : IBusDevice
    {
        public void Read(ulong offset, Span<byte> data)
        {
            lock (pair._sync)
            {
                for (int i = 0; i < data.Length; i++)
                {
                    ulong port = offset + (ulong)i;
                    data[i] = port < PortCount ? pair.ReadChip(chip, port) : IoBus.UnhandledReadValue;
                }
            }
        }

        public void Write(ulong offset, ReadOnlySpan<byte> data)
        {
            lock (pair._sync)
            {
                for (int i = 0; i < data.Length; i++)
                {
                    ulong port = offset + (ulong)i;
                    if (port < PortCount)
                    {
                        pair.WriteChip(chip, port, data[i]);
                    }
                }
            }
        }
    }

    private sealed class ElcrPorts(Pic8259Pair pair) : IBusDevice
    {
        public void Read(ulong offset, Span<byte> data)
        {
            lock (pair._sync)
            {
                for (int i = 0; i < data.Length; i++)
                {
                    data[i] = (offset + (ulong)i) switch
                    {
                        0 => pair._master.Elcr,
                        1 => pair._slave.Elcr,
                        _ => IoBus.UnhandledReadValue,
                    };
                }
            }
        }

        public void Write(ulong offset, ReadOnlySpan<byte> data)
        {
            lock (pair._sync)
            {
                for (int i = 0; i < data.Length; i++)
                {
                    ulong port = offset + (ulong)i;
                    if (port == 0)
                    {
                        pair._master.SetElcr(data[i]);
                    }
                    else if (port == 1)
                    {
                        pair._slave.SetElcr(data[i]);
                    }
                }

                pair.Update();
            }
        }
    }
}
