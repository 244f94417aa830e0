using System.Buffers.Binary;
using System.Text;
using KvmSharp.Boot.Acpi;
using KvmSharp.Memory;

namespace KvmSharp.Boot.Tests;

public class AcpiTablesTests
{
    private const ulong MiB = Guest.MiB;

    private static byte[] Bytes(GuestMemory memory, ulong address, int length) => Guest.Bytes(memory, address, length);

    private static uint U32(byte[] b, int offset) => BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(offset));

    private static ulong U64(byte[] b, int offset) => BinaryPrimitives.ReadUInt64LittleEndian(b.AsSpan(offset));

    private static ushort U16(byte[] b, int offset) => BinaryPrimitives.ReadUInt16LittleEndian(b.AsSpan(offset));

    private static string Ascii(byte[] b, int offset, int length) => Encoding.ASCII.GetString(b, offset, length);

    private static int Sum(byte[] b, int offset, int length)
    {
        int sum = 0;
        for (int i = 0; i < length; i++)
        {
            sum += b[offset + i];
        }

        return sum & 0xFF;
    }

    /// <summary>Reads a whole table (header length first) and checks the common header and its checksum.</summary>
    private static byte[] ReadTable(GuestMemory memory, ulong address, string signature, int length, byte revision)
    {
        byte[] header = Bytes(memory, address, 36);
        Assert.Equal(signature, Ascii(header, 0, 4));
        Assert.Equal((uint)length, U32(header, 4));
        byte[] table = Bytes(memory, address, length);
        Assert.Equal(revision, table[8]);
        Assert.Equal(0, Sum(table, 0, length));
        Assert.Equal("KVMSHP", Ascii(table, 10, 6));
        Assert.Equal("KVMSHARP", Ascii(table, 16, 8));
        Assert.Equal(1u, U32(table, 24));
        Assert.Equal("KVMS", Ascii(table, 28, 4));
        Assert.Equal(1u, U32(table, 32));
        return table;
    }

    private static GuestMemory RamWithBiosAreaFilled()
    {
        var memory = Guest.Ram(64 * MiB);
        memory.Fill(0xE_0000, 0x2_0000, 0xCC);
        return memory;
    }

    [Fact]
    public void Write_ReturnsTheRsdpAtTheStartOfTheBiosArea()
    {
        using var memory = RamWithBiosAreaFilled();

        ulong rsdp = AcpiTables.Write(memory, new AcpiConfig(1));

        Assert.Equal(0xF_0000UL, rsdp);
    }

    [Theory]
    [InlineData(1, 0xF_029AUL)]
    [InlineData(2, 0xF_02A8UL)]
    [InlineData(255, 0xF_107EUL)]
    public void Build_LaysTheTablesOutAlignedAndInOrder(int vcpus, ulong end)
    {
        var set = AcpiTables.Build(new AcpiConfig(vcpus));

        Assert.Equal(0xF_0000UL, set.Address);
        Assert.Equal(0xF_0000UL, set.RsdpAddress);
        Assert.Equal(0xF_0030UL, set.XsdtAddress);
        Assert.Equal(0xF_0070UL, set.FadtAddress);
        Assert.Equal(0xF_01C0UL, set.FacsAddress);
        Assert.Equal(0xF_0200UL, set.DsdtAddress);
        Assert.Equal(0xF_0240UL, set.MadtAddress);
        Assert.Equal(end, set.End);
        Assert.Equal(0xF_0240UL + 76 + (14UL * (ulong)vcpus), set.End);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(17)]
    [InlineData(255)]
    public void Write_TablesNeverOverlap_StayInTheBiosArea_AndTouchNothingElse(int vcpus)
    {
        using var memory = RamWithBiosAreaFilled();
        var set = AcpiTables.Build(new AcpiConfig(vcpus));
        AcpiTables.Write(memory, new AcpiConfig(vcpus));

        var spans = new List<(ulong Start, ulong End)>
        {
            (set.RsdpAddress, set.RsdpAddress + 36),
            (set.XsdtAddress, set.XsdtAddress + U32(Bytes(memory, set.XsdtAddress, 8), 4)),
            (set.FadtAddress, set.FadtAddress + U32(Bytes(memory, set.FadtAddress, 8), 4)),
            (set.FacsAddress, set.FacsAddress + U32(Bytes(memory, set.FacsAddress, 8), 4)),
            (set.DsdtAddress, set.DsdtAddress + U32(Bytes(memory, set.DsdtAddress, 8), 4)),
            (set.MadtAddress, set.MadtAddress + U32(Bytes(memory, set.MadtAddress, 8), 4)),
        };
        spans.Sort();
        for (int i = 0; i < spans.Count; i++)
        {
            Assert.True(spans[i].Start >= PcMemoryLayout.BiosAreaStart);
            Assert.True(spans[i].End <= PcMemoryLayout.HighMemoryStart);
            Assert.Equal(0UL, spans[i].Start % 16);
            if (i > 0)
            {
                Assert.True(spans[i - 1].End <= spans[i].Start, $"table at 0x{spans[i].Start:x} overlaps the one before");
            }
        }

        Assert.Equal(set.End, spans[^1].End);
        Assert.Equal(set.Bytes, Bytes(memory, set.Address, set.Bytes.Length));
        Assert.All(Bytes(memory, 0xE_0000, 0x1_0000), b => Assert.Equal(0xCC, b));
        Assert.All(Bytes(memory, set.End, (int)(0x10_0000 - set.End)), b => Assert.Equal(0xCC, b));
    }

    [Fact]
    public void Rsdp_IsRevision2_PointsToTheXsdt_WithBothChecksums()
    {
        using var memory = RamWithBiosAreaFilled();
        AcpiTables.Write(memory, new AcpiConfig(1));

        byte[] rsdp = Bytes(memory, 0xF_0000, 36);

        Assert.Equal("RSD PTR ", Ascii(rsdp, 0, 8));
        Assert.Equal(0, Sum(rsdp, 0, 20));
        Assert.Equal(0, Sum(rsdp, 0, 36));
        Assert.Equal("KVMSHP", Ascii(rsdp, 9, 6));
        Assert.Equal(2, rsdp[15]);
        Assert.Equal(0u, U32(rsdp, 16));
        Assert.Equal(36u, U32(rsdp, 20));
        Assert.Equal(0xF_0030UL, U64(rsdp, 24));
        Assert.Equal(new byte[3], rsdp[33..36]);

        // The exact bytes, checksums included (0x06 over the first 20, 0x9d over all 36).
        byte[] expected =
        [
            .. "RSD PTR "u8.ToArray(), 0x06, .. "KVMSHP"u8.ToArray(), 0x02,
            0, 0, 0, 0, 36, 0, 0, 0, 0x30, 0x00, 0x0F, 0, 0, 0, 0, 0, 0x9D, 0, 0, 0,
        ];
        Assert.Equal(expected, rsdp);
    }

    [Fact]
    public void Rsdp_IsFoundByTheLegacyScanOf0xE0000To0xFFFFF()
    {
        using var memory = RamWithBiosAreaFilled();
        memory.Fill(0xE_0000, 0x2_0000, 0);
        AcpiTables.Write(memory, new AcpiConfig(2));

        // Linux's acpi_find_root_pointer / ACPI 6.5 5.2.5.1: 16-byte boundaries, signature and the 20-byte checksum.
        ulong found = 0;
        for (ulong a = 0xE_0000; a < 0x10_0000; a += 16)
        {
            byte[] candidate = Bytes(memory, a, 20);
            if (Ascii(candidate, 0, 8) == "RSD PTR " && Sum(candidate, 0, 20) == 0)
            {
                found = a;
                break;
            }
        }

        Assert.Equal(0xF_0000UL, found);
    }

    [Fact]
    public void Xsdt_ListsTheFadtAndTheMadt()
    {
        using var memory = RamWithBiosAreaFilled();
        AcpiTables.Write(memory, new AcpiConfig(1));

        byte[] xsdt = ReadTable(memory, 0xF_0030, "XSDT", 52, 1);

        Assert.Equal(0xF_0070UL, U64(xsdt, 36));
        Assert.Equal(0xF_0240UL, U64(xsdt, 44));
    }

    [Fact]
    public void Fadt_EveryField()
    {
        using var memory = RamWithBiosAreaFilled();
        AcpiTables.Write(memory, new AcpiConfig(2));

        byte[] f = ReadTable(memory, 0xF_0070, "FACP", 276, 6);

        Assert.Equal(0xF_01C0u, U32(f, 36));            // FIRMWARE_CTRL -> FACS
        Assert.Equal(0xF_0200u, U32(f, 40));            // DSDT
        Assert.Equal(0, f[44]);                         // reserved
        Assert.Equal(0, f[45]);                         // Preferred_PM_Profile: unspecified
        Assert.Equal(9, U16(f, 46));                    // SCI_INT
        Assert.Equal(0u, U32(f, 48));                   // SMI_CMD: none, ACPI always enabled
        Assert.Equal(new byte[4], f[52..56]);           // ACPI_ENABLE, ACPI_DISABLE, S4BIOS_REQ, PSTATE_CNT
        Assert.Equal(0x600u, U32(f, 56));               // PM1a_EVT_BLK
        Assert.Equal(0u, U32(f, 60));                   // PM1b_EVT_BLK
        Assert.Equal(0x604u, U32(f, 64));               // PM1a_CNT_BLK
        Assert.Equal(0u, U32(f, 68));                   // PM1b_CNT_BLK
        Assert.Equal(0u, U32(f, 72));                   // PM2_CNT_BLK
        Assert.Equal(0u, U32(f, 76));                   // PM_TMR_BLK: no PM timer
        Assert.Equal(0u, U32(f, 80));                   // GPE0_BLK
        Assert.Equal(0u, U32(f, 84));                   // GPE1_BLK
        Assert.Equal(new byte[] { 4, 2, 0, 0, 0, 0, 0, 0 }, f[88..96]); // PM1_EVT_LEN .. CST_CNT
        Assert.Equal(101, U16(f, 96));                  // P_LVL2_LAT: C2 not supported
        Assert.Equal(1001, U16(f, 98));                 // P_LVL3_LAT: C3 not supported
        Assert.Equal(new byte[6], f[100..106]);         // FLUSH_SIZE, FLUSH_STRIDE, DUTY_OFFSET, DUTY_WIDTH
        Assert.Equal(new byte[] { 0, 0, 0x32 }, f[106..109]); // DAY_ALRM, MON_ALRM, CENTURY
        Assert.Equal(0x0007, U16(f, 109));              // IAPC_BOOT_ARCH: legacy devices, 8042, no VGA
        Assert.Equal(0, f[111]);
        Assert.Equal(0x0000_0465u, U32(f, 112));        // WBINVD, PROC_C1, SLP_BUTTON, FIX_RTC, RESET_REG_SUP
        Assert.Equal(new byte[] { 1, 8, 0, 1, 0x64, 0, 0, 0, 0, 0, 0, 0 }, f[116..128]); // RESET_REG: I/O 0x64, byte
        Assert.Equal(0xFE, f[128]);                     // RESET_VALUE
        Assert.Equal(0, U16(f, 129));                   // ARM_BOOT_ARCH
        Assert.Equal(5, f[131]);                        // FADT minor version
        Assert.Equal(0UL, U64(f, 132));                 // X_FIRMWARE_CTRL (FIRMWARE_CTRL is used)
        Assert.Equal(0xF_0200UL, U64(f, 140));          // X_DSDT
        Assert.Equal(new byte[] { 1, 32, 0, 2, 0x00, 0x06, 0, 0, 0, 0, 0, 0 }, f[148..160]); // X_PM1a_EVT_BLK
        Assert.Equal(new byte[12], f[160..172]);        // X_PM1b_EVT_BLK
        Assert.Equal(new byte[] { 1, 16, 0, 2, 0x04, 0x06, 0, 0, 0, 0, 0, 0 }, f[172..184]); // X_PM1a_CNT_BLK
        Assert.Equal(new byte[268 - 184], f[184..268]); // X_PM1b_CNT .. SLEEP_STATUS_REG
        Assert.Equal("KvmSharp", Ascii(f, 268, 8));     // hypervisor vendor identity
    }

    [Fact]
    public void Fadt_FollowsTheConfig_PortsSciAndNoResetRegister()
    {
        using var memory = RamWithBiosAreaFilled();
        AcpiTables.Write(memory, new AcpiConfig(1) { Pm1aEventPort = 0xB000, Pm1aControlPort = 0xB004, SciIrq = 11, ResetPort = null });

        byte[] f = ReadTable(memory, 0xF_0070, "FACP", 276, 6);

        Assert.Equal(11, U16(f, 46));
        Assert.Equal(0xB000u, U32(f, 56));
        Assert.Equal(0xB004u, U32(f, 64));
        Assert.Equal(0xB000UL, U64(f, 152));
        Assert.Equal(0xB004UL, U64(f, 176));
        Assert.Equal(0x0000_0065u, U32(f, 112));
        Assert.Equal(new byte[13], f[116..129]);
    }

    [Fact]
    public void Facs_Is64BytesAligned_WithNoWakingVector()
    {
        using var memory = RamWithBiosAreaFilled();
        AcpiTables.Write(memory, new AcpiConfig(1));

        byte[] facs = Bytes(memory, 0xF_01C0, 64);

        Assert.Equal(0UL, 0xF_01C0UL % 64);
        Assert.Equal("FACS", Ascii(facs, 0, 4));
        Assert.Equal(64u, U32(facs, 4));
        Assert.Equal(new byte[24], facs[8..32]);  // hardware signature, waking vectors, global lock, flags
        Assert.Equal(2, facs[32]);                // version
        Assert.Equal(new byte[31], facs[33..64]); // reserved, OSPM flags, reserved
    }

    [Fact]
    public void Dsdt_HoldsTheS5PackageInHandEncodedAml()
    {
        using var memory = RamWithBiosAreaFilled();
        AcpiTables.Write(memory, new AcpiConfig(1));

        byte[] dsdt = ReadTable(memory, 0xF_0200, "DSDT", 50, 2);

        byte[] aml =
        [
            0x08, (byte)'_', (byte)'S', (byte)'5', (byte)'_', // NameOp "_S5_"
            0x12, 0x08, 0x04,                                 // PackageOp, PkgLength 8, 4 elements
            0x0A, 0x05, 0x0A, 0x05, 0x00, 0x00,               // BytePrefix 5, BytePrefix 5, Zero, Zero
        ];
        Assert.Equal(aml, dsdt[36..]);
        Assert.Equal(AcpiTables.S5SleepType, dsdt[45]);
    }

    [Fact]
    public void Dsdt_WithAPciRootBridge_DescribesPci0_InAmlThatIaslDisassemblesBack()
    {
        // The bytes below are what `iasl -d` turned back into the source in Dsdt's remarks (checked with acpica-tools
        // 20200925): \_SB.PCI0, PNP0A03, _UID 0, and a _CRS with buses 0-255, the conf1 ports, the I/O on either side
        // of them and the MMIO window.
        using var memory = RamWithBiosAreaFilled();
        var config = new AcpiConfig(1) { PciRootBridge = new PciRootBridge(0xE000_0000, 0xFE00_0000) };
        AcpiTables.Write(memory, config);
        var set = AcpiTables.Build(config);

        byte[] dsdt = ReadTable(memory, set.DsdtAddress, "DSDT", 176, 2);

        byte[] pci0 =
        [
            0x10, 0x4D, 0x07, 0x5C, 0x5F, 0x53, 0x42, 0x5F,             // ScopeOp, PkgLength 0x74 (two bytes), \_SB_
            0x5B, 0x82, 0x44, 0x07, 0x50, 0x43, 0x49, 0x30,             // DeviceOp, PkgLength 0x74 - 6, PCI0
            0x08, 0x5F, 0x48, 0x49, 0x44, 0x0C, 0x41, 0xD0, 0x0A, 0x03, // Name (_HID, EisaId ("PNP0A03"))
            0x08, 0x5F, 0x55, 0x49, 0x44, 0x00,                         // Name (_UID, Zero)
            0x08, 0x5F, 0x43, 0x52, 0x53, 0x11, 0x48, 0x05, 0x0A, 0x54, // Name (_CRS, Buffer (84) {
            0x88, 0x0D, 0x00, 0x02, 0x0C, 0x00, 0x00, 0x00, 0x00, 0x00, 0xFF, 0x00, 0x00, 0x00, 0x00, 0x01, // WordBusNumber 0-0xFF
            0x47, 0x01, 0xF8, 0x0C, 0xF8, 0x0C, 0x01, 0x08,             // IO (Decode16, 0xCF8, 0xCF8, 1, 8)
            0x88, 0x0D, 0x00, 0x01, 0x0C, 0x03, 0x00, 0x00, 0x00, 0x00, 0xF7, 0x0C, 0x00, 0x00, 0xF8, 0x0C, // WordIO 0-0xCF7
            0x88, 0x0D, 0x00, 0x01, 0x0C, 0x03, 0x00, 0x00, 0x00, 0x0D, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0xF3, // WordIO 0xD00-0xFFFF
            0x87, 0x17, 0x00, 0x00, 0x0C, 0x01, 0x00, 0x00, 0x00, 0x00, // DWordMemory, read/write, non-cacheable
            0x00, 0x00, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFD, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1E, // 0xE0000000-0xFDFFFFFF
            0x79, 0x00,                                                 // End Tag })
        ];
        Assert.Equal(S5Aml, dsdt[36..50]);
        Assert.Equal(pci0, dsdt[50..]);
        Assert.Equal(set.DsdtAddress + 176, set.MadtAddress); // the MADT follows, 16-byte aligned
    }

    [Fact]
    public void Dsdt_PciWindow_IsTheOneConfigured()
    {
        using var memory = RamWithBiosAreaFilled();
        var config = new AcpiConfig(1) { PciRootBridge = new PciRootBridge(0xC000_0000, 0xD000_0000) };
        AcpiTables.Write(memory, config);
        var set = AcpiTables.Build(config);

        byte[] dsdt = ReadTable(memory, set.DsdtAddress, "DSDT", 176, 2);

        Assert.Equal(new byte[] { 0x00, 0x00, 0x00, 0xC0, 0xFF, 0xFF, 0xFF, 0xCF }, dsdt[158..166]); // minimum, maximum
        Assert.Equal(new byte[] { 0x00, 0x00, 0x00, 0x10 }, dsdt[170..174]);                         // length
    }

    [Fact]
    public void Dsdt_InterruptRoutes_BecomeThePci0RoutingTable()
    {
        // iasl -d: Name (_PRT, Package (0x02) { Package (0x04) { 0x0001FFFF, Zero, Zero, 0x0A }, Package (0x04) { 0x0002FFFF, Zero, Zero, 0x0B } })
        using var memory = RamWithBiosAreaFilled();
        var config = new AcpiConfig(1)
        {
            PciRootBridge = new PciRootBridge(0xE000_0000, 0xFE00_0000) { InterruptRoutes = [new(1, 10), new(2, 11)] },
        };
        AcpiTables.Write(memory, config);
        var set = AcpiTables.Build(config);

        byte[] dsdt = ReadTable(memory, set.DsdtAddress, "DSDT", 208, 2);

        byte[] prt =
        [
            0x08, 0x5F, 0x50, 0x52, 0x54, 0x12, 0x1A, 0x02,             // Name (_PRT, Package, PkgLength 26, 2 elements
            0x12, 0x0B, 0x04, 0x0C, 0xFF, 0xFF, 0x01, 0x00, 0x00, 0x00, 0x0A, 0x0A, // { 0x0001FFFF, INTA, Zero, GSI 10 }
            0x12, 0x0B, 0x04, 0x0C, 0xFF, 0xFF, 0x02, 0x00, 0x00, 0x00, 0x0A, 0x0B, // { 0x0002FFFF, INTA, Zero, GSI 11 }
        ];
        Assert.Equal(prt, dsdt[^prt.Length..]);
        Assert.Equal(new byte[] { 0x10, 0x4D, 0x09 }, dsdt[50..53]);       // the scope's PkgLength grew to 0x94
        Assert.Equal(new byte[] { 0x5B, 0x82, 0x44, 0x09 }, dsdt[58..62]); // and the device's to 0x8E
    }

    [Fact]
    public void Dsdt_InterruptRouteOffBus0_IsRefused()
    {
        var config = new AcpiConfig(1) { PciRootBridge = new PciRootBridge(0xE000_0000, 0xFE00_0000) { InterruptRoutes = [new(32, 10)] } };

        var e = Assert.Throws<ArgumentOutOfRangeException>(() => AcpiTables.Build(config));

        Assert.StartsWith("A PCI device number on bus 0 is 0 to 31.", e.Message);
    }

    private static readonly byte[] S5Aml =
    [
        0x08, (byte)'_', (byte)'S', (byte)'5', (byte)'_', 0x12, 0x08, 0x04, 0x0A, 0x05, 0x0A, 0x05, 0x00, 0x00,
    ];

    [Fact]
    public void Madt_OneVcpu_ExactEntries()
    {
        using var memory = RamWithBiosAreaFilled();
        AcpiTables.Write(memory, new AcpiConfig(1));

        byte[] m = ReadTable(memory, 0xF_0240, "APIC", 90, 5);

        Assert.Equal(0xFEE0_0000u, U32(m, 36));
        Assert.Equal(1u, U32(m, 40)); // PCAT_COMPAT
        byte[] entries =
        [
            0, 8, 0, 0, 1, 0, 0, 0,                         // Processor Local APIC: UID 0, APIC ID 0, enabled
            1, 12, 0, 0, 0x00, 0x00, 0xC0, 0xFE, 0, 0, 0, 0, // I/O APIC: ID 0, 0xFEC00000, GSI base 0
            2, 10, 0, 0, 0, 0, 0, 0, 0x00, 0x00,            // ISO: ISA IRQ 0 -> GSI 0, bus-conforming (edge, high)
            2, 10, 0, 9, 9, 0, 0, 0, 0x0D, 0x00,            // ISO: ISA IRQ 9 -> GSI 9, level, active high (SCI)
            4, 6, 0, 0x05, 0x00, 1,                         // LAPIC NMI: UID 0, edge/high, LINT1
        ];
        Assert.Equal(entries, m[44..]);
    }

    [Fact]
    public void Madt_TwoVcpus_OneLapicAndOneNmiEntryEach_TimerOnGsi2WhenRoutedSo()
    {
        using var memory = RamWithBiosAreaFilled();
        AcpiTables.Write(memory, new AcpiConfig(2) { TimerGsi = 2 });

        byte[] m = ReadTable(memory, 0xF_0240, "APIC", 104, 5);

        byte[] entries =
        [
            0, 8, 0, 0, 1, 0, 0, 0,
            0, 8, 1, 1, 1, 0, 0, 0,
            1, 12, 0, 0, 0x00, 0x00, 0xC0, 0xFE, 0, 0, 0, 0,
            2, 10, 0, 0, 2, 0, 0, 0, 0x00, 0x00,
            2, 10, 0, 9, 9, 0, 0, 0, 0x0D, 0x00,
            4, 6, 0, 0x05, 0x00, 1,
            4, 6, 1, 0x05, 0x00, 1,
        ];
        Assert.Equal(entries, m[44..]);
    }

    [Fact]
    public void Madt_ManyVcpus_UidEqualsApicIdEqualsIndex_AndEveryChecksumHolds()
    {
        for (int n = 1; n <= AcpiConfig.MaxVcpus; n++)
        {
            var set = AcpiTables.Build(new AcpiConfig(n));
            byte[] b = set.Bytes;
            int madt = (int)(set.MadtAddress - set.Address);
            int length = (int)U32(b, madt + 4);
            Assert.Equal(76 + (14 * n), length);
            Assert.Equal(0, Sum(b, madt, length));
            Assert.Equal(0, Sum(b, 0, 20));
            Assert.Equal(0, Sum(b, 0, 36));
            foreach (ulong table in new[] { set.XsdtAddress, set.FadtAddress, set.DsdtAddress })
            {
                int at = (int)(table - set.Address);
                Assert.Equal(0, Sum(b, at, (int)U32(b, at + 4)));
            }

            for (int i = 0; i < n; i++)
            {
                int lapic = madt + 44 + (8 * i);
                Assert.Equal(new byte[] { 0, 8, (byte)i, (byte)i, 1, 0, 0, 0 }, b[lapic..(lapic + 8)]);
                int nmi = madt + 44 + (8 * n) + 12 + 20 + (6 * i);
                Assert.Equal(new byte[] { 4, 6, (byte)i, 5, 0, 1 }, b[nmi..(nmi + 6)]);
            }
        }
    }

    [Theory]
    [InlineData(0)]
    [InlineData(256)]
    [InlineData(-1)]
    public void Build_RejectsVcpuCountsTheMadtCannotDescribe(int vcpus)
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => AcpiTables.Build(new AcpiConfig(vcpus)));
        Assert.Contains("Give between 1 and 255 vCPUs", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(0xD_FFF0UL)]
    [InlineData(0xE_0008UL)]
    [InlineData(0x10_0000UL)]
    public void Build_RejectsTableAddressesTheLegacyScanMisses(ulong address) =>
        Assert.Throws<ArgumentOutOfRangeException>(() => AcpiTables.Build(new AcpiConfig(1) { TablesAddress = address }));

    [Fact]
    public void Build_RejectsTablesThatWouldPass1MiB()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => AcpiTables.Build(new AcpiConfig(2) { TablesAddress = 0xF_FF00 }));
        Assert.Contains("would pass 1 MiB", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Build_AtAnotherAddress_MovesEveryPointer()
    {
        var set = AcpiTables.Build(new AcpiConfig(1) { TablesAddress = 0xE_0000 });
        byte[] b = set.Bytes;

        Assert.Equal(0xE_0000UL, set.RsdpAddress);
        Assert.Equal(0xE_0030UL, U64(b, 24));
        Assert.Equal(0xE_0070UL, U64(b, 0x30 + 36));
        Assert.Equal(0xE_0240UL, U64(b, 0x30 + 44));
        Assert.Equal(0xE_01C0u, U32(b, 0x70 + 36));
        Assert.Equal(0xE_0200u, U32(b, 0x70 + 40));
        Assert.Equal(0xE_0200UL, U64(b, 0x70 + 140));
    }

    [Theory]
    [InlineData(0x600, 0x602)]
    [InlineData(0x5FF, 0x600)]
    [InlineData(0, 0x604)]
    [InlineData(0x600, 0xFFFF)]
    public void Build_RejectsUnusableOrOverlappingPmBlocks(int eventPort, int controlPort) =>
        Assert.ThrowsAny<ArgumentException>(() => AcpiTables.Build(new AcpiConfig(1) { Pm1aEventPort = (ushort)eventPort, Pm1aControlPort = (ushort)controlPort }));

    [Theory]
    [InlineData(0, 0)]
    [InlineData(2, 0)]
    [InlineData(16, 0)]
    [InlineData(9, 1)]
    [InlineData(9, 9)]
    public void Build_RejectsABadSciOrTimerGsi(int sci, int timerGsi) =>
        Assert.Throws<ArgumentOutOfRangeException>(() => AcpiTables.Build(new AcpiConfig(1) { SciIrq = (byte)sci, TimerGsi = (byte)timerGsi }));

    [Fact]
    public void Write_WithoutRamBelow1MiB_SaysSo()
    {
        using var memory = GuestMemory.Create([new MemoryRange(0, 0x8_0000), new MemoryRange(0x10_0000, 16 * MiB)]);
        var e = Assert.Throws<ArgumentException>(() => AcpiTables.Write(memory, new AcpiConfig(1)));
        Assert.Contains("are not in guest RAM", e.Message, StringComparison.Ordinal);
    }
}
