using System.Buffers.Binary;

namespace KvmSharp.Boot.Acpi;

/// <summary>
/// The Fixed ACPI Description Table, revision 6 (ACPI 6.5, 5.2.9, Table 5.9), for a PC that is not hardware-reduced:
/// the PM1a event and control blocks in the port space, the SCI on ISA IRQ 9, no SMI command port (ACPI is always
/// enabled: PM1_CNT.SCI_EN reads 1), no PM timer, no GPE block, reset through the i8042.
/// </summary>
internal static class Fadt
{
    public const int Length = 276;
    public const byte Revision = 6;

    /// <summary>FADT Minor Version (offset 131): this layout is ACPI 6.4/6.5's.</summary>
    public const byte MinorVersion = 5;

    // Field offsets (Table 5.9).
    public const int FirmwareCtrlOffset = 36;
    public const int DsdtOffset = 40;
    public const int PreferredPmProfileOffset = 45;
    public const int SciIntOffset = 46;
    public const int SmiCmdOffset = 48;
    public const int Pm1aEventBlockOffset = 56;
    public const int Pm1aControlBlockOffset = 64;
    public const int PmTimerBlockOffset = 76;
    public const int Pm1EventLengthOffset = 88;
    public const int Pm1ControlLengthOffset = 89;
    public const int PmTimerLengthOffset = 91;
    public const int PLevel2LatencyOffset = 96;
    public const int PLevel3LatencyOffset = 98;
    public const int CenturyOffset = 108;
    public const int IapcBootArchOffset = 109;
    public const int FlagsOffset = 112;
    public const int ResetRegisterOffset = 116;
    public const int ResetValueOffset = 128;
    public const int MinorVersionOffset = 131;
    public const int XFirmwareCtrlOffset = 132;
    public const int XDsdtOffset = 140;
    public const int XPm1aEventBlockOffset = 148;
    public const int XPm1aControlBlockOffset = 172;
    public const int XPmTimerBlockOffset = 208;
    public const int HypervisorVendorOffset = 268;

    // Flags (Table 5.10).
    public const uint FlagWbinvd = 1u << 0;        // WBINVD works (required of every ACPI 1.0+ platform)
    public const uint FlagProcC1 = 1u << 2;        // C1 (HLT) works on every processor
    public const uint FlagPowerButton = 1u << 4;   // set = no fixed-feature power button; ours is fixed (PM1 PWRBTN_STS/EN)
    public const uint FlagSleepButton = 1u << 5;   // set = no fixed-feature sleep button; we have none
    public const uint FlagFixRtc = 1u << 6;        // RTC wake status is not in PM1 (no RTC_STS)
    public const uint FlagResetRegSup = 1u << 10;  // RESET_REG/RESET_VALUE are valid
    public const uint Flags = FlagWbinvd | FlagProcC1 | FlagSleepButton | FlagFixRtc;

    // IA-PC boot architecture flags (Table 5.11).
    public const ushort BootArchLegacyDevices = 1 << 0; // ISA devices (UART, RTC) the OS finds without enumeration
    public const ushort BootArch8042 = 1 << 1;          // an i8042 at 0x60/0x64: Linux probes it directly
    public const ushort BootArchVgaNotPresent = 1 << 2; // no VGA: do not poke 0x3C0-0x3DF or 0xA0000
    public const ushort IapcBootArch = BootArchLegacyDevices | BootArch8042 | BootArchVgaNotPresent;

    /// <summary>P_LVL2_LAT above 100 µs and P_LVL3_LAT above 1000 µs say C2 and C3 are not supported.</summary>
    public const ushort PLevel2LatencyNotSupported = 101;
    public const ushort PLevel3LatencyNotSupported = 1001;

    /// <summary>The CMOS RTC index of the century byte (the PC/AT convention, which our CmosRtc keeps).</summary>
    public const byte CenturyCmosIndex = 0x32;

    public static ReadOnlySpan<byte> HypervisorVendor => "KvmSharp"u8;

    public static void Write(Span<byte> table, AcpiConfig config, ulong dsdtAddress, ulong facsAddress)
    {
        AcpiEncoding.WriteHeader(table, "FACP"u8, Revision);
        table[AcpiEncoding.HeaderLength..].Clear();

        // FACS by its 32-bit pointer only (ACPI: when FIRMWARE_CTRL is used, X_FIRMWARE_CTRL is zero); the DSDT by
        // both pointers, equal, so an ACPI 1.0 reader and a 64-bit one agree.
        BinaryPrimitives.WriteUInt32LittleEndian(table[FirmwareCtrlOffset..], checked((uint)facsAddress));
        BinaryPrimitives.WriteUInt32LittleEndian(table[DsdtOffset..], checked((uint)dsdtAddress));
        table[PreferredPmProfileOffset] = 0; // unspecified
        BinaryPrimitives.WriteUInt16LittleEndian(table[SciIntOffset..], config.SciIrq);
        BinaryPrimitives.WriteUInt32LittleEndian(table[SmiCmdOffset..], 0); // no SMI: ACPI_ENABLE/DISABLE stay 0
        BinaryPrimitives.WriteUInt32LittleEndian(table[Pm1aEventBlockOffset..], config.Pm1aEventPort);
        BinaryPrimitives.WriteUInt32LittleEndian(table[Pm1aControlBlockOffset..], config.Pm1aControlPort);
        table[Pm1EventLengthOffset] = AcpiTables.Pm1EventBlockLength;
        table[Pm1ControlLengthOffset] = AcpiTables.Pm1ControlBlockLength;
        BinaryPrimitives.WriteUInt16LittleEndian(table[PLevel2LatencyOffset..], PLevel2LatencyNotSupported);
        BinaryPrimitives.WriteUInt16LittleEndian(table[PLevel3LatencyOffset..], PLevel3LatencyNotSupported);
        table[CenturyOffset] = CenturyCmosIndex;
        BinaryPrimitives.WriteUInt16LittleEndian(table[IapcBootArchOffset..], IapcBootArch);

        uint flags = Flags;
        if (config.ResetPort is ushort resetPort)
        {
            flags |= FlagResetRegSup;
            AcpiEncoding.WriteGas(table[ResetRegisterOffset..], AcpiEncoding.SpaceSystemIo, 8, AcpiEncoding.AccessByte, resetPort);
            table[ResetValueOffset] = config.ResetValue;
        }

        BinaryPrimitives.WriteUInt32LittleEndian(table[FlagsOffset..], flags);
        table[MinorVersionOffset] = MinorVersion;
        BinaryPrimitives.WriteUInt64LittleEndian(table[XDsdtOffset..], dsdtAddress);
        AcpiEncoding.WriteGas(
            table[XPm1aEventBlockOffset..], AcpiEncoding.SpaceSystemIo, AcpiTables.Pm1EventBlockLength * 8, AcpiEncoding.AccessWord, config.Pm1aEventPort);
        AcpiEncoding.WriteGas(
            table[XPm1aControlBlockOffset..], AcpiEncoding.SpaceSystemIo, AcpiTables.Pm1ControlBlockLength * 8, AcpiEncoding.AccessWord, config.Pm1aControlPort);
        HypervisorVendor.CopyTo(table[HypervisorVendorOffset..]);
        AcpiEncoding.SetChecksum(table, AcpiEncoding.ChecksumOffset);
    }
}
