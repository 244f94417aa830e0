namespace KvmSharp.Boot.Acpi;

/// <summary>
/// The Differentiated System Description Table: a header and AML. Ours holds one object, the S5 (soft off) sleep
/// package OSPM reads before it powers off (ACPI 6.5, 7.4.2 "\_Sx (System States)"):
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
/// </summary>
internal static class Dsdt
{
    /// <summary>Revision 2: AML integers are 64 bits wide.</summary>
    public const byte Revision = 2;

    public const byte NameOp = 0x08;
    public const byte PackageOp = 0x12;
    public const byte BytePrefix = 0x0A;
    public const byte ZeroOp = 0x00;

    public static int Length => AcpiEncoding.HeaderLength + Aml.Length;

    public static ReadOnlySpan<byte> Aml =>
    [
        NameOp, (byte)'_', (byte)'S', (byte)'5', (byte)'_',
        PackageOp, 0x08, 0x04,
        BytePrefix, AcpiTables.S5SleepType,
        BytePrefix, AcpiTables.S5SleepType,
        ZeroOp,
        ZeroOp,
    ];

    public static void Write(Span<byte> table)
    {
        AcpiEncoding.WriteHeader(table, "DSDT"u8, Revision);
        Aml.CopyTo(table[AcpiEncoding.HeaderLength..]);
        AcpiEncoding.SetChecksum(table, AcpiEncoding.ChecksumOffset);
    }
}
