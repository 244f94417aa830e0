using System.Buffers.Binary;

namespace KvmSharp.Boot.Acpi;

/// <summary>
/// Encodes the few AML terms the DSDT needs (ACPI 6.5, 20.2 "AML Grammar Definition"): names, scopes, devices,
/// packages, buffers and integers, each appended to a byte list. Terms that hold others take the inner bytes
/// already encoded and prefix them with their PkgLength.
/// </summary>
internal static class AmlWriter
{
    public const byte ZeroOp = 0x00;
    public const byte OneOp = 0x01;
    public const byte NameOp = 0x08;
    public const byte BytePrefix = 0x0A;
    public const byte WordPrefix = 0x0B;
    public const byte DWordPrefix = 0x0C;
    public const byte QWordPrefix = 0x0E;
    public const byte ScopeOp = 0x10;
    public const byte BufferOp = 0x11;
    public const byte PackageOp = 0x12;
    public const byte ExtOpPrefix = 0x5B;
    public const byte DeviceOp = 0x82;
    public const byte RootChar = 0x5C;

    /// <summary>Name (<paramref name="nameSeg"/>, data): <paramref name="data"/> is one encoded DataRefObject.</summary>
    public static void Name(List<byte> aml, string nameSeg, ReadOnlySpan<byte> data)
    {
        aml.Add(NameOp);
        NameSeg(aml, nameSeg);
        aml.AddRange(data);
    }

    /// <summary>Scope (\<paramref name="rootSeg"/>) { body }.</summary>
    public static void RootScope(List<byte> aml, string rootSeg, ReadOnlySpan<byte> body)
    {
        var inner = new List<byte> { RootChar };
        NameSeg(inner, rootSeg);
        inner.AddRange(body);
        aml.Add(ScopeOp);
        WithPkgLength(aml, inner);
    }

    /// <summary>Device (<paramref name="nameSeg"/>) { body }.</summary>
    public static void Device(List<byte> aml, string nameSeg, ReadOnlySpan<byte> body)
    {
        var inner = new List<byte>();
        NameSeg(inner, nameSeg);
        inner.AddRange(body);
        aml.Add(ExtOpPrefix);
        aml.Add(DeviceOp);
        WithPkgLength(aml, inner);
    }

    /// <summary>Package () { elements }: each element already encoded.</summary>
    public static byte[] Package(params byte[][] elements)
    {
        var inner = new List<byte> { checked((byte)elements.Length) };
        foreach (byte[] element in elements)
        {
            inner.AddRange(element);
        }

        var aml = new List<byte> { PackageOp };
        WithPkgLength(aml, inner);
        return [.. aml];
    }

    /// <summary>Buffer () { bytes }, its size as an integer.</summary>
    public static byte[] Buffer(ReadOnlySpan<byte> bytes)
    {
        var inner = new List<byte>(Integer((ulong)bytes.Length));
        inner.AddRange(bytes);
        var aml = new List<byte> { BufferOp };
        WithPkgLength(aml, inner);
        return [.. aml];
    }

    /// <summary>The shortest encoding of <paramref name="value"/>: ZeroOp, OneOp or a Byte/Word/DWord/QWord constant.</summary>
    public static byte[] Integer(ulong value) => value switch
    {
        0 => [ZeroOp],
        1 => [OneOp],
        <= byte.MaxValue => [BytePrefix, (byte)value],
        <= ushort.MaxValue => [WordPrefix, (byte)value, (byte)(value >> 8)],
        <= uint.MaxValue => [DWordPrefix, (byte)value, (byte)(value >> 8), (byte)(value >> 16), (byte)(value >> 24)],
        _ => QWord(value),
    };

    /// <summary>EISAID ("PNP0A03"): three letters in 5 bits each and four hex digits, big-endian, as a DWord constant.</summary>
    public static byte[] EisaId(string id)
    {
        if (id.Length != 7 || !char.IsAsciiLetterUpper(id[0]) || !char.IsAsciiLetterUpper(id[1]) || !char.IsAsciiLetterUpper(id[2]))
        {
            throw new ArgumentException($"'{id}' is not an EISA ID (three capital letters and four hex digits).", nameof(id));
        }

        uint product = Convert.ToUInt32(id[3..], 16);
        uint vendor = (uint)(((id[0] - '@') << 10) | ((id[1] - '@') << 5) | (id[2] - '@'));
        uint bigEndian = (vendor << 16) | product;
        return [DWordPrefix, (byte)(bigEndian >> 24), (byte)(bigEndian >> 16), (byte)(bigEndian >> 8), (byte)bigEndian];
    }

    private static byte[] QWord(ulong value)
    {
        byte[] bytes = new byte[9];
        bytes[0] = QWordPrefix;
        BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(1), value);
        return bytes;
    }

    private static void NameSeg(List<byte> aml, string nameSeg)
    {
        if (nameSeg.Length != 4)
        {
            throw new ArgumentException($"'{nameSeg}' is not a NameSeg (four characters, '_'-padded).", nameof(nameSeg));
        }

        foreach (char c in nameSeg)
        {
            aml.Add((byte)c);
        }
    }

    /// <summary>
    /// PkgLength then <paramref name="inner"/>. The length counts itself: one byte (6 bits) up to 63, else a lead
    /// byte with the count of following bytes in bits 7-6 and the low nibble, then 8 bits per byte (20.2.4).
    /// </summary>
    private static void WithPkgLength(List<byte> aml, List<byte> inner)
    {
        int length = inner.Count + 1;
        if (length <= 0x3F)
        {
            aml.Add((byte)length);
        }
        else
        {
            int extra = (length + 1) <= 0xFFF ? 1 : (length + 2) <= 0xF_FFFF ? 2 : 3;
            length = inner.Count + 1 + extra;
            aml.Add((byte)((extra << 6) | (length & 0xF)));
            for (int i = 0; i < extra; i++)
            {
                aml.Add((byte)(length >> (4 + (8 * i))));
            }
        }

        aml.AddRange(inner);
    }
}
