namespace KvmSharp.Boot.Acpi;

/// <summary>
/// The PCI host bridge the DSDT describes as <c>\_SB.PCI0</c> (a PNP0A03 root bridge): bus numbers 0-255 decoded by
/// configuration mechanism #1 at 0xCF8-0xCFF, the I/O space around those ports, and one 32-bit MMIO window for BARs.
/// With it, Linux finds the bus through ACPI as on any PC and needs no <c>pci=noacpi</c>.
/// </summary>
/// <param name="MmioWindowStart">First address of the BAR window.</param>
/// <param name="MmioWindowEnd">The window's end (exclusive); at most 4 GiB.</param>
public sealed record PciRootBridge(ulong MmioWindowStart, ulong MmioWindowEnd)
{
    /// <summary>Where each device's INTA pin goes: the DSDT's _PRT (empty: no _PRT).</summary>
    public IReadOnlyList<PciInterruptRoute> InterruptRoutes { get; init; } = [];
}

/// <summary>PCI device <paramref name="Device"/> (1-31 on bus 0) drives GSI <paramref name="Gsi"/> with its INTA pin.</summary>
public readonly record struct PciInterruptRoute(int Device, uint Gsi);
