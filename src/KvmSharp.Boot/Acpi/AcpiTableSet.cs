namespace KvmSharp.Boot.Acpi;

/// <summary>
/// The ACPI tables as one block of bytes for guest-physical <see cref="Address"/>, and where each table sits in it
/// (guest-physical addresses). <see cref="AcpiTables.Write"/> copies <see cref="Bytes"/> to <see cref="Address"/>.
/// </summary>
public sealed record AcpiTableSet(
    ulong Address,
    byte[] Bytes,
    ulong RsdpAddress,
    ulong XsdtAddress,
    ulong FadtAddress,
    ulong FacsAddress,
    ulong DsdtAddress,
    ulong MadtAddress)
{
    /// <summary>The first address after the tables.</summary>
    public ulong End => Address + (ulong)Bytes.Length;
}
