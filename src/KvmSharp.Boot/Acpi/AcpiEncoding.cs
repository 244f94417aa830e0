using System.Buffers.Binary;

namespace KvmSharp.Boot.Acpi;

/// <summary>
/// The pieces every ACPI table shares (ACPI 6.5, 5.2.6 "System Description Table Header" and 5.2.3.2 "Generic
/// Address Structure"), and the 8-bit checksum that makes a table's bytes sum to zero.
/// </summary>
internal static class AcpiEncoding
{
    public const int HeaderLength = 36;
    public const int LengthOffset = 4;
    public const int RevisionOffset = 8;
    public const int ChecksumOffset = 9;
    public const int OemIdOffset = 10;
    public const int OemTableIdOffset = 16;
    public const int OemRevisionOffset = 24;
    public const int CreatorIdOffset = 28;
    public const int CreatorRevisionOffset = 32;

    /// <summary>Generic Address Structure: space id, bit width, bit offset, access size, 64-bit address.</summary>
    public const int GasLength = 12;

    /// <summary>GAS Address Space ID 1: System I/O (Table 5.1).</summary>
    public const byte SpaceSystemIo = 1;

    /// <summary>GAS Access Size (Table 5.1): 1 byte, 2 word.</summary>
    public const byte AccessByte = 1;
    public const byte AccessWord = 2;

    public const uint OemRevision = 1;
    public const uint CreatorRevision = 1;

    public static ReadOnlySpan<byte> OemId => "KVMSHP"u8;

    public static ReadOnlySpan<byte> OemTableId => "KVMSHARP"u8;

    public static ReadOnlySpan<byte> CreatorId => "KVMS"u8;

    /// <summary>Writes the header of a table of <c>table.Length</c> bytes; the checksum is left 0 for <see cref="SetChecksum"/>.</summary>
    public static void WriteHeader(Span<byte> table, ReadOnlySpan<byte> signature, byte revision)
    {
        signature.CopyTo(table);
        BinaryPrimitives.WriteUInt32LittleEndian(table[LengthOffset..], (uint)table.Length);
        table[RevisionOffset] = revision;
        table[ChecksumOffset] = 0;
        OemId.CopyTo(table[OemIdOffset..]);
        OemTableId.CopyTo(table[OemTableIdOffset..]);
        BinaryPrimitives.WriteUInt32LittleEndian(table[OemRevisionOffset..], OemRevision);
        CreatorId.CopyTo(table[CreatorIdOffset..]);
        BinaryPrimitives.WriteUInt32LittleEndian(table[CreatorRevisionOffset..], CreatorRevision);
    }

    /// <summary>Sets the byte at <paramref name="checksumOffset"/> so that all of <paramref name="bytes"/> sums to 0 (mod 256).</summary>
    public static void SetChecksum(Span<byte> bytes, int checksumOffset)
    {
        bytes[checksumOffset] = 0;
        bytes[checksumOffset] = unchecked((byte)(0 - Sum(bytes)));
    }

    public static byte Sum(ReadOnlySpan<byte> bytes)
    {
        byte sum = 0;
        foreach (byte b in bytes)
        {
            sum = unchecked((byte)(sum + b));
        }

        return sum;
    }

    public static void WriteGas(Span<byte> gas, byte space, byte bitWidth, byte accessSize, ulong address)
    {
        gas[0] = space;
        gas[1] = bitWidth;
        gas[2] = 0; // bit offset
        gas[3] = accessSize;
        BinaryPrimitives.WriteUInt64LittleEndian(gas[4..], address);
    }
}
