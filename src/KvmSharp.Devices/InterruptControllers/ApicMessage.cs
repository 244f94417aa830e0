namespace KvmSharp.Devices.InterruptControllers;

/// <summary>
/// Delivery modes of APIC interrupt messages: the 3-bit field of IOAPIC redirection entries, the LAPIC's ICR and LVT
/// entries, and MSI data (Intel SDM Vol. 3A, 11.6.1 "Interrupt Command Register"; 82093AA datasheet 3.2.4).
/// </summary>
public enum ApicDeliveryMode
{
    Fixed = 0,
    LowestPriority = 1,
    Smi = 2,
    Nmi = 4,
    Init = 5,
    StartUp = 6,
    ExtInt = 7,
}

/// <summary>
/// One interrupt message on the APIC bus (from the IOAPIC, an MSI, or an IPI): what every LAPIC checks against its
/// ID/LDR/DFR to decide whether it is a destination, and what it does when it is.
/// </summary>
/// <param name="Vector">The vector (fixed, lowest priority) or the start-up page (SIPI); ignored by NMI, INIT, ExtINT.</param>
/// <param name="DeliveryMode">What the destination does with it.</param>
/// <param name="LogicalDestination">Logical (flat/cluster, matched against LDR and DFR) rather than physical (APIC ID).</param>
/// <param name="Destination">The APIC ID (physical; 0xFF is broadcast) or the message destination address (logical).</param>
/// <param name="LevelTriggered">Level trigger: the vector's TMR bit is set and its EOI is broadcast to the IOAPICs.</param>
/// <param name="LevelAsserted">The ICR's level bit: false only for an INIT level de-assert.</param>
public readonly record struct ApicMessage(
    byte Vector,
    ApicDeliveryMode DeliveryMode,
    bool LogicalDestination,
    byte Destination,
    bool LevelTriggered,
    bool LevelAsserted = true);

/// <summary>Where an interrupt source sends APIC messages: the <see cref="ApicBus"/>, or a test recorder.</summary>
public interface IApicDelivery
{
    /// <summary>Delivers <paramref name="message"/>; returns how many local APICs accepted it.</summary>
    int Deliver(in ApicMessage message);
}
