using System.Buffers.Binary;
using KvmSharp.Memory;

namespace KvmSharp.Boot.Acpi;

/// <summary>
/// Builds the ACPI tables of KvmSharp's PC and writes them into guest memory, so that Linux finds its CPUs and
/// interrupt controllers (MADT) and can power the machine off (FADT PM1a blocks, DSDT \_S5_).
/// <para>
/// Layout from <see cref="AcpiConfig.TablesAddress"/> (0xF0000 by default, inside the BIOS area the E820 map
/// reserves), every table 16-byte aligned and the FACS 64-byte aligned; with the defaults and n vCPUs:
/// <code>
/// 0xF0000  RSDP  36 bytes, revision 2 (ACPI 2.0+ form): RsdtAddress 0, XsdtAddress, both checksums
/// 0xF0030  XSDT  52 bytes: FADT, MADT
/// 0xF0070  FADT  276 bytes, revision 6 ("FACP"), not hardware-reduced
/// 0xF01C0  FACS  64 bytes
/// 0xF0200  DSDT  50 bytes: Name(_S5_, Package(){5, 5, 0, 0})
/// 0xF0240  MADT  76 + 14n bytes ("APIC")
/// </code>
/// The RSDP sits on a 16-byte boundary in 0xE0000-0xFFFFF, where Linux's legacy scan (and the ACPI spec's) looks
/// when the boot protocol gives no address; the loaders also pass it (boot_params.acpi_rsdp_addr, PVH rsdp_paddr).
/// </para>
/// </summary>
public static class AcpiTables
{
    /// <summary>Ports of the PM1a event block: PM1_STS (2 bytes) then PM1_EN (2 bytes).</summary>
    public const byte Pm1EventBlockLength = 4;

    /// <summary>Ports of the PM1a control block: PM1_CNT (2 bytes).</summary>
    public const byte Pm1ControlBlockLength = 2;

    /// <summary>SLP_TYP of S5 (soft off) in our DSDT: a PM1_CNT write with SLP_EN and this SLP_TYP powers off.</summary>
    public const byte S5SleepType = 5;

    /// <summary>Where the legacy RSDP scan starts and ends (ACPI 6.5, 5.2.5.1: the BIOS read-only area).</summary>
    public const ulong RsdpScanStart = 0xE_0000;

    public const ulong RsdpScanEnd = 0x10_0000;

    public const int RsdpLength = 36;
    public const byte RsdpRevision = 2;
    public const byte XsdtRevision = 1;

    private const int TableAlignment = 16;

    /// <summary>Writes the tables for <paramref name="config"/> into <paramref name="memory"/>; returns the RSDP's address.</summary>
    public static ulong Write(GuestMemory memory, AcpiConfig config)
    {
        ArgumentNullException.ThrowIfNull(memory);
        var tables = Build(config);
        if (!memory.IsValidRange(tables.Address, (ulong)tables.Bytes.Length))
        {
            throw new ArgumentException(
                $"The ACPI tables at 0x{tables.Address:x}-0x{tables.End - 1:x} are not in guest RAM. Give the machine RAM below 1 MiB.",
                nameof(memory));
        }

        memory.Write(tables.Address, tables.Bytes);
        return tables.RsdpAddress;
    }

    /// <summary>Builds the tables for <paramref name="config"/> without writing them anywhere.</summary>
    public static AcpiTableSet Build(AcpiConfig config)
    {
        Validate(config);
        ulong baseAddress = config.TablesAddress;
        int rsdp = 0;
        int xsdt = Align(rsdp + RsdpLength, TableAlignment);
        const int xsdtEntries = 2;
        int xsdtLength = AcpiEncoding.HeaderLength + (xsdtEntries * sizeof(ulong));
        int fadt = Align(xsdt + xsdtLength, TableAlignment);
        int facs = Align(fadt + Fadt.Length, Facs.Alignment);
        int dsdt = Align(facs + Facs.Length, TableAlignment);
        byte[] dsdtTable = Dsdt.Build(config);
        int madt = Align(dsdt + dsdtTable.Length, TableAlignment);
        int madtLength = Madt.LengthFor(config.VcpuCount);
        int end = madt + madtLength;
        if (baseAddress + (ulong)end > RsdpScanEnd)
        {
            throw new ArgumentOutOfRangeException(
                nameof(config),
                $"ACPI tables of {end} bytes at 0x{baseAddress:x} would pass 1 MiB. Put them lower (TablesAddress) or give fewer vCPUs.");
        }

        byte[] bytes = new byte[end];
        var span = bytes.AsSpan();
        dsdtTable.CopyTo(span[dsdt..]);
        Facs.Write(span.Slice(facs, Facs.Length));
        Fadt.Write(span.Slice(fadt, Fadt.Length), config, baseAddress + (ulong)dsdt, baseAddress + (ulong)facs);
        Madt.Write(span.Slice(madt, madtLength), config);
        WriteXsdt(span.Slice(xsdt, xsdtLength), [baseAddress + (ulong)fadt, baseAddress + (ulong)madt]);
        WriteRsdp(span.Slice(rsdp, RsdpLength), baseAddress + (ulong)xsdt);

        return new AcpiTableSet(
            baseAddress,
            bytes,
            baseAddress + (ulong)rsdp,
            baseAddress + (ulong)xsdt,
            baseAddress + (ulong)fadt,
            baseAddress + (ulong)facs,
            baseAddress + (ulong)dsdt,
            baseAddress + (ulong)madt);
    }

    /// <summary>RSDP (ACPI 6.5, 5.2.5.3): checksum over the first 20 bytes, extended checksum over all 36.</summary>
    private static void WriteRsdp(Span<byte> rsdp, ulong xsdtAddress)
    {
        "RSD PTR "u8.CopyTo(rsdp);
        AcpiEncoding.OemId.CopyTo(rsdp[9..]);
        rsdp[15] = RsdpRevision;
        BinaryPrimitives.WriteUInt32LittleEndian(rsdp[16..], 0); // no RSDT: OSPMs of ACPI 2.0+ use the XSDT
        BinaryPrimitives.WriteUInt32LittleEndian(rsdp[20..], RsdpLength);
        BinaryPrimitives.WriteUInt64LittleEndian(rsdp[24..], xsdtAddress);
        AcpiEncoding.SetChecksum(rsdp[..20], 8);
        AcpiEncoding.SetChecksum(rsdp, 32);
    }

    /// <summary>XSDT (ACPI 6.5, 5.2.8): the header and 64-bit pointers to every table but the DSDT and FACS.</summary>
    private static void WriteXsdt(Span<byte> xsdt, ReadOnlySpan<ulong> entries)
    {
        AcpiEncoding.WriteHeader(xsdt, "XSDT"u8, XsdtRevision);
        for (int i = 0; i < entries.Length; i++)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(xsdt[(AcpiEncoding.HeaderLength + (i * sizeof(ulong)))..], entries[i]);
        }

        AcpiEncoding.SetChecksum(xsdt, AcpiEncoding.ChecksumOffset);
    }

    private static int Align(int value, int alignment) => (value + alignment - 1) & -alignment;

    private static void Validate(AcpiConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (config.VcpuCount is < 1 or > AcpiConfig.MaxVcpus)
        {
            throw new ArgumentOutOfRangeException(
                nameof(config),
                config.VcpuCount,
                $"The MADT describes 1 to {AcpiConfig.MaxVcpus} vCPUs (8-bit xAPIC IDs). Give between 1 and {AcpiConfig.MaxVcpus} vCPUs.");
        }

        if (config.TablesAddress < RsdpScanStart || config.TablesAddress >= RsdpScanEnd || config.TablesAddress % TableAlignment != 0)
        {
            throw new ArgumentOutOfRangeException(
                nameof(config),
                config.TablesAddress,
                $"ACPI tables at 0x{config.TablesAddress:x} would put the RSDP where the legacy scan does not look. Use a 16-byte aligned address in 0x{RsdpScanStart:x}-0x{RsdpScanEnd - 1:x}.");
        }

        CheckPortBlock(config.Pm1aEventPort, Pm1EventBlockLength, "PM1a event");
        CheckPortBlock(config.Pm1aControlPort, Pm1ControlBlockLength, "PM1a control");
        if (config.Pm1aEventPort < config.Pm1aControlPort + Pm1ControlBlockLength
            && config.Pm1aControlPort < config.Pm1aEventPort + Pm1EventBlockLength)
        {
            throw new ArgumentException(
                $"The PM1a event block at 0x{config.Pm1aEventPort:x} overlaps the PM1a control block at 0x{config.Pm1aControlPort:x}. Give them separate ports.",
                nameof(config));
        }

        if (config.SciIrq is 0 or 2 or > 15)
        {
            throw new ArgumentOutOfRangeException(
                nameof(config),
                config.SciIrq,
                "The SCI must be an ISA IRQ other than 0 (the PIT) and 2 (the PIC cascade). Use IRQ 9, as PCs do.");
        }

        if (config.TimerGsi is not (0 or 2))
        {
            throw new ArgumentOutOfRangeException(
                nameof(config),
                config.TimerGsi,
                "The PIT's IRQ 0 reaches IOAPIC pin 0 (KVM's default routing) or pin 2 (QEMU-style routing). Use 0 or 2.");
        }
    }

    private static void CheckPortBlock(ushort port, int length, string name)
    {
        if (port == 0 || port > IoPortLast + 1 - length)
        {
            throw new ArgumentOutOfRangeException(
                nameof(port),
                port,
                $"The {name} block at port 0x{port:x} ({length} ports) is not a usable port range. Use a non-zero port with room below 0x10000.");
        }
    }

    private const int IoPortLast = 0xFFFF;
}
