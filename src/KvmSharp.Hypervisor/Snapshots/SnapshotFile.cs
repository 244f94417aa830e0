using System.Buffers.Binary;
using System.Numerics;
using System.Text;

namespace KvmSharp.Hypervisor.Snapshots;

/// <summary>
/// The machine-state file of a snapshot (docs/snapshots.md): a magic, the format's version, a list of tagged sections
/// (<see cref="SnapshotSection"/>: id, version, length, payload) and a CRC-32C of everything before it. Guest memory
/// is a separate file. All integers are little-endian.
/// <code>
///   "KVMSHARP" u16 major u16 minor u32 sectionCount
///   { u16 idLength, id (UTF-8), u32 version, u32 payloadLength, payload } * sectionCount
///   u32 crc32c
/// </code>
/// A reader takes files of its own major version and any minor version up to its own (a newer minor only adds
/// sections an older reader may ignore); anything else gets one line naming both versions.
/// </summary>
public static class SnapshotFile
{
    public const ushort FormatMajor = 1;
    public const ushort FormatMinor = 0;

    /// <summary>A state file is a few hundred KiB at most (vCPU XSAVE areas, device state); larger is not ours.</summary>
    public const long MaximumSize = 64L << 20;

    private const int MaximumIdLength = 128;
    private static ReadOnlySpan<byte> Magic => "KVMSHARP"u8;

    public static byte[] Serialize(IReadOnlyList<SnapshotSection> sections)
    {
        ArgumentNullException.ThrowIfNull(sections);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        using var buffer = new MemoryStream();
        Span<byte> scratch = stackalloc byte[8];
        buffer.Write(Magic);
        BinaryPrimitives.WriteUInt16LittleEndian(scratch, FormatMajor);
        BinaryPrimitives.WriteUInt16LittleEndian(scratch[2..], FormatMinor);
        BinaryPrimitives.WriteUInt32LittleEndian(scratch[4..], (uint)sections.Count);
        buffer.Write(scratch);
        foreach (var section in sections)
        {
            byte[] id = Encoding.UTF8.GetBytes(section.Id);
            if (id.Length is 0 or > MaximumIdLength || !seen.Add(section.Id))
            {
                throw new ArgumentException($"Section id '{section.Id}' is empty, longer than {MaximumIdLength} bytes or repeated.", nameof(sections));
            }

            BinaryPrimitives.WriteUInt16LittleEndian(scratch, (ushort)id.Length);
            buffer.Write(scratch[..2]);
            buffer.Write(id);
            BinaryPrimitives.WriteUInt32LittleEndian(scratch, (uint)section.Version);
            BinaryPrimitives.WriteUInt32LittleEndian(scratch[4..], (uint)section.Payload.Length);
            buffer.Write(scratch);
            buffer.Write(section.Payload.Span);
        }

        BinaryPrimitives.WriteUInt32LittleEndian(scratch, Crc32C(buffer.GetBuffer().AsSpan(0, (int)buffer.Length)));
        buffer.Write(scratch[..4]);
        return buffer.ToArray();
    }

    /// <summary>Writes the file whole or not at all: to a temporary name beside it, flushed, then renamed over it.</summary>
    public static void Write(string path, IReadOnlyList<SnapshotSection> sections)
    {
        ArgumentNullException.ThrowIfNull(path);
        byte[] bytes = Serialize(sections);
        string temporary = path + ".tmp";
        using (var file = new FileStream(temporary, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            file.Write(bytes);
            file.Flush(flushToDisk: true);
        }

        File.Move(temporary, path, overwrite: true);
    }

    /// <summary>Reads a state file; throws <see cref="SnapshotStateException"/> with one line if it is not one this build reads.</summary>
    public static IReadOnlyList<SnapshotSection> Read(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        byte[] bytes;
        try
        {
            var info = new FileInfo(path);
            if (!info.Exists)
            {
                throw new SnapshotStateException($"The snapshot file '{path}' does not exist.");
            }

            if (info.Length > MaximumSize)
            {
                throw new SnapshotStateException($"'{path}' is {info.Length} bytes, larger than any KvmSharp snapshot state file ({MaximumSize} bytes at most); is it the memory file?");
            }

            bytes = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new SnapshotStateException($"Cannot read the snapshot file '{path}': {e.Message}");
        }

        return Parse(bytes, path);
    }

    public static IReadOnlyList<SnapshotSection> Parse(ReadOnlyMemory<byte> file, string name)
    {
        var span = file.Span;
        if (span.Length < Magic.Length + 8 + 4 || !span[..Magic.Length].SequenceEqual(Magic))
        {
            throw new SnapshotStateException($"'{name}' is not a KvmSharp snapshot state file (no KVMSHARP magic).");
        }

        ushort major = BinaryPrimitives.ReadUInt16LittleEndian(span[8..]);
        ushort minor = BinaryPrimitives.ReadUInt16LittleEndian(span[10..]);
        if (major != FormatMajor || minor > FormatMinor)
        {
            throw new SnapshotStateException(
                $"'{name}' is snapshot format {major}.{minor}; this build of KvmSharp reads format {FormatMajor}.0 to {FormatMajor}.{FormatMinor}.");
        }

        uint stored = BinaryPrimitives.ReadUInt32LittleEndian(span[^4..]);
        uint computed = Crc32C(span[..^4]);
        if (stored != computed)
        {
            throw new SnapshotStateException($"'{name}' is corrupt: its checksum is 0x{stored:x8}, its contents give 0x{computed:x8}.");
        }

        uint count = BinaryPrimitives.ReadUInt32LittleEndian(span[12..]);
        var sections = new List<SnapshotSection>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        int offset = 16;
        int end = span.Length - 4;
        for (uint i = 0; i < count; i++)
        {
            if (end - offset < 2)
            {
                throw Truncated(name, i);
            }

            int idLength = BinaryPrimitives.ReadUInt16LittleEndian(span[offset..]);
            offset += 2;
            if (idLength is 0 or > MaximumIdLength || end - offset < idLength + 8)
            {
                throw Truncated(name, i);
            }

            string id = Encoding.UTF8.GetString(span.Slice(offset, idLength));
            offset += idLength;
            uint version = BinaryPrimitives.ReadUInt32LittleEndian(span[offset..]);
            uint length = BinaryPrimitives.ReadUInt32LittleEndian(span[(offset + 4)..]);
            offset += 8;
            if (length > (uint)(end - offset) || version > int.MaxValue)
            {
                throw Truncated(name, i);
            }

            if (!seen.Add(id))
            {
                throw new SnapshotStateException($"'{name}' is corrupt: section '{id}' appears twice.");
            }

            sections.Add(new SnapshotSection(id, (int)version, file.Slice(offset, (int)length)));
            offset += (int)length;
        }

        if (offset != end)
        {
            throw new SnapshotStateException($"'{name}' is corrupt: {end - offset} bytes follow its last section.");
        }

        return sections;
    }

    /// <summary>CRC-32C (Castagnoli), the polynomial SSE4.2's CRC32 instruction computes; <see cref="BitOperations.Crc32C(uint, ulong)"/> uses it.</summary>
    public static uint Crc32C(ReadOnlySpan<byte> data)
    {
        var crc = Crc32CAccumulator.Create();
        crc.Add(data);
        return crc.Value;
    }

    private static SnapshotStateException Truncated(string name, uint index) =>
        new($"'{name}' is corrupt: section {index} runs past the end of the file.");
}

/// <summary>Finds sections by id and says which one is missing.</summary>
public sealed class SnapshotSections
{
    private readonly Dictionary<string, SnapshotSection> _byId;

    public SnapshotSections(IReadOnlyList<SnapshotSection> sections)
    {
        ArgumentNullException.ThrowIfNull(sections);
        _byId = new Dictionary<string, SnapshotSection>(StringComparer.Ordinal);
        foreach (var s in sections)
        {
            _byId[s.Id] = s;
        }

        All = sections;
    }

    public IReadOnlyList<SnapshotSection> All { get; }

    public bool Contains(string id) => _byId.ContainsKey(id);

    public SnapshotSection Get(string id) =>
        _byId.TryGetValue(id, out var s) ? s : throw new SnapshotStateException($"The snapshot has no '{id}' state: it was taken of a different machine.");

    public T Get<T>(string id, int version)
        where T : class => SnapshotStateJson.FromSection<T>(Get(id), version);
}
