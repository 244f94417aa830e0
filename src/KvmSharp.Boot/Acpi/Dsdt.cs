namespace KvmSharp.Boot.Acpi;

/// <summary>
/// The Differentiated System Description Table: a header and AML. It always holds the S5 (soft off) sleep package
/// OSPM reads before it powers off (ACPI 6.5, 7.4.2 "\_Sx (System States)"):
/// <code>
/// Name (_S5_, Package () { 5, 5, 0, 0 })     // SLP_TYPa, SLP_TYPb, reserved, reserved
/// </code>
/// hand-encoded as (ACPI 6.5, 20.2 "AML Grammar Definition"):
/// <code>
/// 08                 DefName := NameOp NameString DataRefObject
/// 5F 53 35 5F        NameString "_S5_" (a NameSeg: four characters, '_'-padded)
/// 12                 DefPackage := PackageOp PkgLength NumElements PackageElementList
/// 08                 PkgLength: one byte (bits 7-6 = 0), value 8 = itself + NumElements + 6 element bytes
/// 04                 NumElements
/// 0A 05              BytePrefix 5   SLP_TYPa (the value <see cref="AcpiTables.S5SleepType"/> the PM1_CNT device acts on)
/// 0A 05              BytePrefix 5   SLP_TYPb (no PM1b block; OSPM writes it nowhere)
/// 00                 ZeroOp
/// 00                 ZeroOp
/// </code>
/// <para>With a <see cref="PciRootBridge"/>, a PNP0A03 root bridge follows (what <c>iasl -d</c> prints for it):</para>
/// <code>
/// Scope (\_SB) {
///   Device (PCI0) {
///     Name (_HID, EisaId ("PNP0A03"))
///     Name (_UID, Zero)
///     Name (_CRS, ResourceTemplate () {
///       WordBusNumber (ResourceProducer, MinFixed, MaxFixed, PosDecode, 0, 0x00, 0xFF, 0, 0x100)
///       IO (Decode16, 0x0CF8, 0x0CF8, 0x01, 0x08)
///       WordIO (ResourceProducer, MinFixed, MaxFixed, PosDecode, EntireRange, 0, 0x0000, 0x0CF7, 0, 0x0CF8)
///       WordIO (ResourceProducer, MinFixed, MaxFixed, PosDecode, EntireRange, 0, 0x0D00, 0xFFFF, 0, 0xF300)
///       DWordMemory (ResourceProducer, PosDecode, MinFixed, MaxFixed, NonCacheable, ReadWrite,
///                    0, window start, window end - 1, 0, window length)
///     })
///   }
/// }
/// </code>
/// <para>With interrupt routes, <c>Name (_PRT, Package () { Package () { 0x0001FFFF, Zero, Zero, 10 }, ... })</c>
/// follows _CRS: each device's INTA pin straight to a GSI (no link devices). Linux then programs that IOAPIC input
/// level-triggered, active-low, the PCI default; our IOAPICs (and KVM's) take the line's logical level, so the
/// polarity bit does not invert it.</para>
/// </summary>
internal static class Dsdt
{
    /// <summary>Revision 2: AML integers are 64 bits wide.</summary>
    public const byte Revision = 2;

    public static ReadOnlySpan<byte> S5Aml =>
    [
        AmlWriter.NameOp, (byte)'_', (byte)'S', (byte)'5', (byte)'_',
        AmlWriter.PackageOp, 0x08, 0x04,
        AmlWriter.BytePrefix, AcpiTables.S5SleepType,
        AmlWriter.BytePrefix, AcpiTables.S5SleepType,
        AmlWriter.ZeroOp,
        AmlWriter.ZeroOp,
    ];

    /// <summary>The table for <paramref name="config"/>: header, \_S5, and \_SB.PCI0 when it has a PCI root bridge.</summary>
    public static byte[] Build(AcpiConfig config)
    {
        var aml = new List<byte>(S5Aml.ToArray());
        if (config.PciRootBridge is { } pci)
        {
            var device = new List<byte>();
            AmlWriter.Name(device, "_HID", AmlWriter.EisaId("PNP0A03"));
            AmlWriter.Name(device, "_UID", AmlWriter.Integer(0));
            AmlWriter.Name(device, "_CRS", AmlWriter.Buffer(PciResources(pci)));
            if (pci.InterruptRoutes.Count > 0)
            {
                // _PRT (ACPI 6.5, 6.2.13): { address 0xDDDDFFFF (device, any function), pin 0 = INTA, source Zero = a GSI, the GSI }.
                var routes = new byte[pci.InterruptRoutes.Count][];
                for (int i = 0; i < routes.Length; i++)
                {
                    var route = pci.InterruptRoutes[i];
                    if (route.Device is < 0 or > 31)
                    {
                        throw new ArgumentOutOfRangeException(nameof(config), route.Device, "A PCI device number on bus 0 is 0 to 31.");
                    }

                    routes[i] = AmlWriter.Package(
                        AmlWriter.Integer(((ulong)route.Device << 16) | 0xFFFF),
                        AmlWriter.Integer(0),
                        AmlWriter.Integer(0),
                        AmlWriter.Integer(route.Gsi));
                }

                AmlWriter.Name(device, "_PRT", AmlWriter.Package(routes));
            }
            var scope = new List<byte>();
            AmlWriter.Device(scope, "PCI0", device.ToArray());
            AmlWriter.RootScope(aml, "_SB_", scope.ToArray());
        }

        byte[] table = new byte[AcpiEncoding.HeaderLength + aml.Count];
        AcpiEncoding.WriteHeader(table, "DSDT"u8, Revision);
        aml.CopyTo(table, AcpiEncoding.HeaderLength);
        AcpiEncoding.SetChecksum(table, AcpiEncoding.ChecksumOffset);
        return table;
    }

    /// <summary>The root bridge's _CRS resource template (ACPI 6.5, 6.4 "Resource Data Types for ACPI").</summary>
    private static byte[] PciResources(PciRootBridge pci)
    {
        const byte producerMinMaxFixed = 0x0C; // general flags: _MIF and _MAF set; bit 0 clear = produces; bit 1 clear = positive decode
        var r = new List<byte>();

        // Word Address Space descriptor (6.4.3.5.3), type 2: bus numbers 0-255.
        WordAddress(r, 2, producerMinMaxFixed, 0, 0x0000, 0x00FF, 0x0100);

        // I/O port descriptor (6.4.2.5): 16-bit decode, 0xCF8, alignment 1, 8 ports (CONFIG_ADDRESS, CONFIG_DATA).
        r.AddRange([0x47, 0x01, 0xF8, 0x0C, 0xF8, 0x0C, 0x01, 0x08]);

        // The I/O space on either side of the configuration ports (type 1, type-specific 3 = entire ISA range).
        WordAddress(r, 1, producerMinMaxFixed, 0x03, 0x0000, 0x0CF7, 0x0CF8);
        WordAddress(r, 1, producerMinMaxFixed, 0x03, 0x0D00, 0xFFFF, 0xF300);

        // DWord Address Space descriptor (6.4.3.5.2), type 0 (memory), type-specific 1 = read/write, non-cacheable.
        uint start = checked((uint)pci.MmioWindowStart);
        uint length = checked((uint)(pci.MmioWindowEnd - pci.MmioWindowStart));
        r.AddRange([0x87, 0x17, 0x00, 0x00, producerMinMaxFixed, 0x01]);
        foreach (uint field in new[] { 0u, start, start + length - 1, 0u, length })
        {
            r.AddRange([(byte)field, (byte)(field >> 8), (byte)(field >> 16), (byte)(field >> 24)]);
        }

        r.AddRange([0x79, 0x00]); // End Tag, checksum 0 ("treated as correct", 6.4.2.9)
        return [.. r];
    }

    private static void WordAddress(List<byte> r, byte type, byte flags, byte typeFlags, ushort min, ushort max, ushort length)
    {
        r.AddRange([0x88, 0x0D, 0x00, type, flags, typeFlags]);
        foreach (ushort field in new ushort[] { 0, min, max, 0, length })
        {
            r.AddRange([(byte)field, (byte)(field >> 8)]);
        }
    }
}
