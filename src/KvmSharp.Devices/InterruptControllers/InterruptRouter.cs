using KvmSharp.Hypervisor;

namespace KvmSharp.Devices.InterruptControllers;

/// <summary>
/// The PC's interrupt wiring for the software-CPU backend, as the MADT describes it (src/KvmSharp.Boot/Acpi/Madt.cs):
/// GSI n is IOAPIC pin n (GSI base 0, 24 pins); the ISA IRQs reach the 8259 pair too, ISA IRQ0 (the PIT) at
/// GSI <see cref="TimerGsi"/> per the MADT's interrupt source override and every other ISA IRQ n at GSI n. MSIs are
/// decoded after the Intel SDM Vol. 3A, 11.11 ("Message Signalled Interrupts") and sent to the LAPICs.
/// </summary>
/// <remarks>
/// <para>GSI → inputs: GSI <see cref="TimerGsi"/> drives PIC input 0 and its IOAPIC pin; GSI 1 and 3-15 drive PIC
/// input n and pin n; GSI 2 with the timer at GSI 0 (and GSI 0 with the timer at GSI 2) drives only its pin, since
/// PIC input 2 is the cascade; GSI 16-23 drive only their pin; higher GSIs are ignored and counted. A device raises
/// the GSI the MADT gives its ISA IRQ: the PIT raises <see cref="TimerGsi"/>.</para>
/// <para>Threads: devices call <see cref="SetLevel"/> and <see cref="SignalMsi"/> from any thread (the serial input
/// pump, vCPU threads); the whole fabric — PIC, IOAPIC, APIC bus and LAPICs — runs under one lock (QEMU's big lock,
/// narrowed to the interrupt controllers), and the CPU's per-instruction check reads one volatile field of its LAPIC.
/// Allocation-free.</para>
/// </remarks>
public sealed class InterruptRouter : IInterruptSink
{
    /// <summary>ISA IRQs of the 8259 pair.</summary>
    public const int IsaIrqCount = 16;

    /// <summary>Address bits 31-20 of an MSI: the LAPIC window 0xFEExxxxx.</summary>
    public const ulong MsiAddressBase = 0xFEE0_0000;

    public const int MsiDestinationShift = 12;
    public const ulong MsiRedirectionHint = 1UL << 3;
    public const ulong MsiLogicalDestination = 1UL << 2;
    public const uint MsiDataLevelAssert = 1u << 14;
    public const uint MsiDataLevelTriggered = 1u << 15;

    private readonly Lock _sync;
    private readonly Pic8259Pair _pic;
    private readonly IoApic _ioApic;
    private readonly ApicBus _apicBus;
    private long _ignoredLevels;
    private long _ignoredMsis;

    /// <param name="pic">The 8259 pair (created with the fabric lock).</param>
    /// <param name="ioApic">The IOAPIC (created with the fabric lock, delivering to <paramref name="apicBus"/>).</param>
    /// <param name="apicBus">The APIC bus; the IOAPIC is connected to it for EOI broadcasts.</param>
    /// <param name="timerGsi">The GSI of ISA IRQ0, 0 or 2, as the machine's AcpiConfig.TimerGsi says.</param>
    public InterruptRouter(Pic8259Pair pic, IoApic ioApic, ApicBus apicBus, uint timerGsi = 0)
    {
        ArgumentNullException.ThrowIfNull(pic);
        ArgumentNullException.ThrowIfNull(ioApic);
        ArgumentNullException.ThrowIfNull(apicBus);
        if (timerGsi is not (0 or 2))
        {
            throw new ArgumentOutOfRangeException(nameof(timerGsi), timerGsi, "The PIT's GSI must be 0 or 2, as the MADT's interrupt source override allows.");
        }

        if (pic.Sync != apicBus.Sync || ioApic.Sync != apicBus.Sync)
        {
            throw new ArgumentException("The PIC, the IOAPIC and the APIC bus must share the interrupt fabric's lock. Create them with the same Lock.", nameof(apicBus));
        }

        _sync = apicBus.Sync;
        _pic = pic;
        _ioApic = ioApic;
        _apicBus = apicBus;
        TimerGsi = timerGsi;
        apicBus.ConnectIoApic(ioApic);
    }

    /// <summary>The GSI of ISA IRQ0 (the PIT).</summary>
    public uint TimerGsi { get; }

    /// <summary>SetLevel calls for GSIs that exist nowhere (24 and up).</summary>
    public long IgnoredLevels => Interlocked.Read(ref _ignoredLevels);

    /// <summary>SignalMsi calls whose address is outside 0xFEExxxxx, or whose delivery mode is reserved.</summary>
    public long IgnoredMsis => Interlocked.Read(ref _ignoredMsis);

    /// <summary>The 8259 input a GSI drives, or -1.</summary>
    public int PicInputOf(uint gsi)
    {
        if (gsi == TimerGsi)
        {
            return 0;
        }

        return gsi < IsaIrqCount && gsi is not (0 or 2) ? (int)gsi : -1;
    }

    public void SetLevel(uint gsi, bool level)
    {
        if (gsi >= IoApic.PinCount)
        {
            Interlocked.Increment(ref _ignoredLevels);
            return;
        }

        lock (_sync)
        {
            int picInput = PicInputOf(gsi);
            if (picInput >= 0)
            {
                _pic.SetIrq(picInput, level);
            }

            _ioApic.SetPin((int)gsi, level);
        }
    }

    /// <summary>
    /// Delivers an MSI: address 0xFEE[dest:8][...][RH][DM]xx, data [trigger][level][..][mode:3][vector:8]. A set
    /// redirection hint makes a fixed message lowest priority (as KVM reads it); SMI and reserved modes are dropped.
    /// </summary>
    public void SignalMsi(ulong address, uint data)
    {
        var mode = (ApicDeliveryMode)((data >> 8) & 7);
        if ((address & 0xFFFF_FFFF_FFF0_0000UL) != MsiAddressBase || mode is ApicDeliveryMode.Smi or (ApicDeliveryMode)3)
        {
            Interlocked.Increment(ref _ignoredMsis);
            return;
        }

        if (mode == ApicDeliveryMode.Fixed && (address & MsiRedirectionHint) != 0)
        {
            mode = ApicDeliveryMode.LowestPriority;
        }

        var message = new ApicMessage(
            (byte)data,
            mode,
            (address & MsiLogicalDestination) != 0,
            (byte)(address >> MsiDestinationShift),
            (data & MsiDataLevelTriggered) != 0,
            (data & MsiDataLevelAssert) != 0 || (data & MsiDataLevelTriggered) == 0);
        _apicBus.Deliver(message);
    }
}
