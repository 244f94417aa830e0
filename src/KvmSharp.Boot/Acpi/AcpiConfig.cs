namespace KvmSharp.Boot.Acpi;

/// <summary>
/// What the ACPI tables describe: the vCPUs, where the PM1a register blocks sit in the port space, the SCI, and how
/// the PIT's IRQ 0 reaches the IOAPIC. The defaults are KvmSharp's PC (docs/machine.md).
/// </summary>
/// <param name="VcpuCount">vCPUs, 1 to <see cref="AcpiConfig.MaxVcpus"/>: vCPU i has ACPI processor UID i and APIC ID i.</param>
public sealed record AcpiConfig(int VcpuCount)
{
    /// <summary>xAPIC IDs are 8 bits and 0xFF is the broadcast ID; LAPIC NMI UID 0xFF means "all processors".</summary>
    public const int MaxVcpus = 255;

    /// <summary>Default PM1a event block: PM1_STS at 0x600, PM1_EN at 0x602 (QEMU's ICH9 uses the same base).</summary>
    public const ushort DefaultPm1aEventPort = 0x600;

    /// <summary>Default PM1a control block: PM1_CNT at 0x604.</summary>
    public const ushort DefaultPm1aControlPort = 0x604;

    /// <summary>The PC's SCI: ISA IRQ 9, identity-mapped to GSI 9, level triggered, active high.</summary>
    public const byte DefaultSciIrq = 9;

    /// <summary>Where the tables go by default: the start of the BIOS area, which the E820 map reserves.</summary>
    public const ulong DefaultTablesAddress = PcMemoryLayout.BiosAreaStart;

    /// <summary>PM1a event block (PM1_STS, PM1_EN: <see cref="AcpiTables.Pm1EventBlockLength"/> ports).</summary>
    public ushort Pm1aEventPort { get; init; } = DefaultPm1aEventPort;

    /// <summary>PM1a control block (PM1_CNT: <see cref="AcpiTables.Pm1ControlBlockLength"/> ports).</summary>
    public ushort Pm1aControlPort { get; init; } = DefaultPm1aControlPort;

    /// <summary>The ISA IRQ of the SCI (FADT SCI_INT); the MADT overrides it to the same GSI, level/active high.</summary>
    public byte SciIrq { get; init; } = DefaultSciIrq;

    /// <summary>
    /// The IOAPIC input (GSI) the PIT's ISA IRQ 0 arrives on: 0 with KVM's default GSI routing (KVM GSI n goes to
    /// IOAPIC pin n, and the in-kernel PIT raises KVM GSI 0), or 2 when the VMM routes KVM GSI 0 to IOAPIC pin 2 as
    /// QEMU does (kvm_pc_setup_irq_routing). The MADT's IRQ 0 override says the same.
    /// </summary>
    public byte TimerGsi { get; init; }

    /// <summary>FADT RESET_REG: a byte port whose write of <see cref="ResetValue"/> resets the machine (the i8042's 0x64), or null for none.</summary>
    public ushort? ResetPort { get; init; } = 0x64;

    /// <summary>What Linux writes to <see cref="ResetPort"/> for reboot=acpi: the i8042's pulse-reset command.</summary>
    public byte ResetValue { get; init; } = 0xFE;

    /// <summary>The PCI host bridge the DSDT describes as \_SB.PCI0, or null for a machine without PCI.</summary>
    public PciRootBridge? PciRootBridge { get; init; }

    /// <summary>Guest-physical address of the RSDP and the tables after it: 16-byte aligned, inside [0xE0000, 0x100000).</summary>
    public ulong TablesAddress { get; init; } = DefaultTablesAddress;
}
