namespace KvmSharp.Devices.InterruptControllers;

/// <summary>
/// The system bus between the APICs: knows every <see cref="LocalApic"/>, routes messages from the IOAPIC, MSIs and
/// IPIs to the LAPICs they address (Intel SDM Vol. 3A, 11.6.2 "Determining IPI Destination"), carries EOI broadcasts
/// from the LAPICs back to the IOAPICs, and carries the 8259's INTR to every LAPIC's LINT0 (as a PC wires it).
/// </summary>
/// <remarks>
/// Lowest-priority delivery picks, among the addressed software-enabled LAPICs, the one with the lowest arbitration
/// priority (APR), and the lowest APIC ID among equals (no focus processor, no rotation). Every member runs under the
/// interrupt fabric's lock; nothing allocates after the machine is wired.
/// </remarks>
public sealed class ApicBus : IApicDelivery
{
    private readonly Lock _sync;
    private readonly Pic8259Pair? _pic;
    private LocalApic[] _localApics = [];
    private IoApic[] _ioApics = [];

    /// <param name="sync">The interrupt fabric's lock; the PIC, IOAPIC and LAPICs must share it.</param>
    /// <param name="pic">The 8259 pair whose INTR drives every LAPIC's LINT0, or null for a machine without one.</param>
    public ApicBus(Lock sync, Pic8259Pair? pic = null)
    {
        _sync = sync ?? throw new ArgumentNullException(nameof(sync));
        if (pic is not null)
        {
            if (pic.Sync != sync)
            {
                throw new ArgumentException("The PIC must be created with the interrupt fabric's lock. Pass the same Lock to both.", nameof(pic));
            }

            _pic = pic;
            pic.OutputChanged = RefreshAll;
        }
    }

    /// <summary>The fabric lock.</summary>
    public Lock Sync => _sync;

    /// <summary>The 8259 pair on LINT0, if any.</summary>
    public Pic8259Pair? Pic => _pic;

    /// <summary>The LAPICs in creation order.</summary>
    public ReadOnlySpan<LocalApic> LocalApics => Volatile.Read(ref _localApics);

    /// <summary>Adds an IOAPIC to the receivers of EOI broadcasts.</summary>
    public void ConnectIoApic(IoApic ioApic)
    {
        ArgumentNullException.ThrowIfNull(ioApic);
        lock (_sync)
        {
            _ioApics = [.. _ioApics, ioApic];
        }
    }

    /// <summary>Delivers a message from the IOAPIC or an MSI (no shorthand, no sender).</summary>
    public int Deliver(in ApicMessage message)
    {
        lock (_sync)
        {
            return Deliver(message, ApicShorthand.None, source: null);
        }
    }

    internal void Add(LocalApic localApic)
    {
        lock (_sync)
        {
            foreach (var existing in _localApics)
            {
                if (existing.InitialApicId == localApic.InitialApicId)
                {
                    throw new ArgumentException($"APIC ID {localApic.InitialApicId} is already on this bus. Give each vCPU its own APIC ID.", nameof(localApic));
                }
            }

            Volatile.Write(ref _localApics, [.. _localApics, localApic]);
        }
    }

    /// <summary>Routes a message; <paramref name="source"/> is the sending LAPIC for IPIs (shorthands need it).</summary>
    internal int Deliver(in ApicMessage message, ApicShorthand shorthand, LocalApic? source)
    {
        var apics = _localApics;
        if (message.DeliveryMode == ApicDeliveryMode.LowestPriority)
        {
            LocalApic? chosen = null;
            foreach (var apic in apics)
            {
                if (IsTarget(apic, message, shorthand, source) && apic.SoftwareEnabled
                    && (chosen is null || apic.ArbitrationPriority < chosen.ArbitrationPriority))
                {
                    chosen = apic;
                }
            }

            return chosen is not null && chosen.Accept(message) ? 1 : 0;
        }

        int accepted = 0;
        foreach (var apic in apics)
        {
            if (IsTarget(apic, message, shorthand, source) && apic.Accept(message))
            {
                accepted++;
            }
        }

        return accepted;
    }

    /// <summary>A LAPIC EOIed a level-triggered vector: every IOAPIC hears it (directed EOI is not offered).</summary>
    internal void BroadcastEoi(byte vector)
    {
        foreach (var ioApic in _ioApics)
        {
            ioApic.EndOfInterrupt(vector);
        }
    }

    /// <summary>The 8259's INTR pin (false without a PIC).</summary>
    internal bool PicOutput => _pic is not null && _pic.InterruptOutput;

    /// <summary>INTA to the 8259 (with no PIC the data bus floats: 0xFF).</summary>
    internal int PicAcknowledge() => _pic?.Acknowledge() ?? 0xFF;

    private static bool IsTarget(LocalApic apic, in ApicMessage message, ApicShorthand shorthand, LocalApic? source) => shorthand switch
    {
        ApicShorthand.Self => ReferenceEquals(apic, source),
        ApicShorthand.AllIncludingSelf => apic.HardwareEnabled,
        ApicShorthand.AllExcludingSelf => apic.HardwareEnabled && !ReferenceEquals(apic, source),
        _ => apic.MatchesDestination(message.LogicalDestination, message.Destination),
    };

    private void RefreshAll()
    {
        foreach (var apic in _localApics)
        {
            apic.RefreshPending();
        }
    }
}

/// <summary>The ICR's destination shorthand (bits 19-18).</summary>
internal enum ApicShorthand
{
    None = 0,
    Self = 1,
    AllIncludingSelf = 2,
    AllExcludingSelf = 3,
}
