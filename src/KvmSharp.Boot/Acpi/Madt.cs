using System.Buffers.Binary;

namespace KvmSharp.Boot.Acpi;

/// <summary>
/// The Multiple APIC Description Table (signature "APIC"; ACPI 6.5, 5.2.12): the LAPIC base, PCAT_COMPAT (there is
/// an 8259 pair), then one Processor Local APIC per vCPU, the IOAPIC, the interrupt source overrides for the PIT and
/// the SCI, and one Local APIC NMI per vCPU on LINT1.
/// </summary>
internal static class Madt
{
    public const byte Revision = 5;
    public const uint LocalApicAddress = 0xFEE0_0000;
    public const uint IoApicAddress = 0xFEC0_0000;

    /// <summary>The IOAPIC's ID: 0, what KVM's in-kernel IOAPIC ID register holds after reset (QEMU says 0 too).</summary>
    public const byte IoApicId = 0;

    public const uint FlagPcatCompat = 1;

    public const byte TypeLocalApic = 0;
    public const byte TypeIoApic = 1;
    public const byte TypeInterruptSourceOverride = 2;
    public const byte TypeLocalApicNmi = 4;

    public const int LocalApicLength = 8;
    public const int IoApicLength = 12;
    public const int InterruptSourceOverrideLength = 10;
    public const int LocalApicNmiLength = 6;

    /// <summary>Processor Local APIC flags bit 0: enabled (online capable, bit 1, must then be 0).</summary>
    public const uint LocalApicEnabled = 1;

    /// <summary>MPS INTI flags (Table 5.26): polarity bits 1-0 (01 high, 11 low), trigger bits 3-2 (01 edge, 11 level); 0 = bus default.</summary>
    public const ushort IntiConforming = 0x0000;
    public const ushort IntiActiveHighEdge = 0x0005;
    public const ushort IntiActiveHighLevel = 0x000D;

    /// <summary>The LAPIC input the NMI arrives on, as on every PC (LINT1).</summary>
    public const byte NmiLint = 1;

    private const int FixedLength = AcpiEncoding.HeaderLength + 8;

    public static int LengthFor(int vcpus)
        => FixedLength + (vcpus * LocalApicLength) + IoApicLength + (2 * InterruptSourceOverrideLength) + (vcpus * LocalApicNmiLength);

    public static void Write(Span<byte> table, AcpiConfig config)
    {
        AcpiEncoding.WriteHeader(table, "APIC"u8, Revision);
        BinaryPrimitives.WriteUInt32LittleEndian(table[36..], LocalApicAddress);
        BinaryPrimitives.WriteUInt32LittleEndian(table[40..], FlagPcatCompat);

        int at = FixedLength;
        for (int i = 0; i < config.VcpuCount; i++)
        {
            var e = table.Slice(at, LocalApicLength);
            e[0] = TypeLocalApic;
            e[1] = LocalApicLength;
            e[2] = (byte)i; // ACPI processor UID
            e[3] = (byte)i; // APIC ID
            BinaryPrimitives.WriteUInt32LittleEndian(e[4..], LocalApicEnabled);
            at += LocalApicLength;
        }

        var ioApic = table.Slice(at, IoApicLength);
        ioApic[0] = TypeIoApic;
        ioApic[1] = IoApicLength;
        ioApic[2] = IoApicId;
        ioApic[3] = 0;
        BinaryPrimitives.WriteUInt32LittleEndian(ioApic[4..], IoApicAddress);
        BinaryPrimitives.WriteUInt32LittleEndian(ioApic[8..], 0); // GSI base: pin n is GSI n
        at += IoApicLength;

        // ISA IRQ 0 (the PIT) arrives where the VMM's GSI routing sends it; ISA's own polarity/trigger (edge, high).
        WriteOverride(table.Slice(at, InterruptSourceOverrideLength), 0, config.TimerGsi, IntiConforming);
        at += InterruptSourceOverrideLength;

        // The SCI is shared-capable and level triggered, active high (ACPI 6.5, 5.2.12.5: SCI_INT's override).
        WriteOverride(table.Slice(at, InterruptSourceOverrideLength), config.SciIrq, config.SciIrq, IntiActiveHighLevel);
        at += InterruptSourceOverrideLength;

        for (int i = 0; i < config.VcpuCount; i++)
        {
            var e = table.Slice(at, LocalApicNmiLength);
            e[0] = TypeLocalApicNmi;
            e[1] = LocalApicNmiLength;
            e[2] = (byte)i; // ACPI processor UID
            BinaryPrimitives.WriteUInt16LittleEndian(e[3..], IntiActiveHighEdge);
            e[5] = NmiLint;
            at += LocalApicNmiLength;
        }

        AcpiEncoding.SetChecksum(table, AcpiEncoding.ChecksumOffset);
    }

    private static void WriteOverride(Span<byte> e, byte isaIrq, uint gsi, ushort flags)
    {
        e[0] = TypeInterruptSourceOverride;
        e[1] = InterruptSourceOverrideLength;
        e[2] = 0; // bus: ISA
        e[3] = isaIrq;
        BinaryPrimitives.WriteUInt32LittleEndian(e[4..], gsi);
        BinaryPrimitives.WriteUInt16LittleEndian(e[8..], flags);
    }
}
