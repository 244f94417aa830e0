using System.Buffers.Binary;

namespace KvmSharp.Boot.Acpi;

/// <summary>
/// The Firmware ACPI Control Structure (ACPI 6.5, 5.2.10, Table 5.14), which a platform that is not hardware-reduced
/// must have: 64 bytes, 64-byte aligned, no checksum. Ours has no waking vector (no S3) and an unused global lock.
/// </summary>
internal static class Facs
{
    public const int Length = 64;
    public const int Alignment = 64;
    public const int VersionOffset = 32;
    public const byte Version = 2;

    public static void Write(Span<byte> facs)
    {
        facs[..Length].Clear();
        "FACS"u8.CopyTo(facs);
        BinaryPrimitives.WriteUInt32LittleEndian(facs[4..], Length);
        facs[VersionOffset] = Version;
    }
}
