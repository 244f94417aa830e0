using System.Buffers.Binary;
using KvmSharp.Hypervisor.Snapshots;
using KvmSharp.Memory;

namespace KvmSharp.Vmm.Migration;

/// <summary>A migration stream that is not ours, of another version, corrupt or for another machine: one line.</summary>
public sealed class MigrationException(string message) : Exception(message);

/// <summary>
/// What a migration stream starts with: the machine description (the snapshot's <c>machine</c> section payload, which
/// the destination builds from) and the RAM layout, which must match the destination's before any page is taken.
/// </summary>
public sealed record MigrationHeader(byte[] Machine, IReadOnlyList<MemoryRange> Ram);

/// <summary>
/// The wire format of a live migration (docs/migration.md). All integers little-endian; a CRC-32C of every byte before
/// it ends the stream:
/// <code>
///   "KVMSMIG1" u16 major u16 minor  u32 machineLength machine  u32 regionCount { u64 start u64 size }*
///   records: 1 pages     u32 region u64 firstPage u32 count, count * 4096 bytes
///            2 zero      u32 region u64 firstPage u32 count   (pages that are all zero)
///            3 round     u32 round                            (the end of one pre-copy round)
///            4 state     u32 length, a snapshot state file    (the vCPU and device sections, after the last round)
///            5 end       u32 crc32c
/// </code>
/// </summary>
public static class MigrationFormat
{
    public const ushort Major = 1;
    public const ushort Minor = 0;
    public const int MaximumMachineLength = 1 << 20;
    public const int MaximumStateLength = 64 << 20;
    public const int MaximumRegions = 64;
    public const int MaximumRun = 256; // pages per record: 1 MiB

    internal const byte Pages = 1;
    internal const byte Zero = 2;
    internal const byte Round = 3;
    internal const byte State = 4;
    internal const byte End = 5;

    internal static ReadOnlySpan<byte> Magic => "KVMSMIG1"u8;
}

/// <summary>Writes a migration stream: the header, pages (runs of dirty pages, all-zero ones as counts), rounds, the state, the end.</summary>
public sealed class MigrationWriter
{
    private readonly Stream _stream;
    private readonly byte[] _record = new byte[17];
    private Crc32CAccumulator _crc = Crc32CAccumulator.Create();

    public MigrationWriter(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        _stream = stream;
    }

    /// <summary>Bytes written so far.</summary>
    public long BytesWritten { get; private set; }

    /// <summary>Pages sent with their contents, and all-zero pages sent as counts.</summary>
    public long PagesSent { get; private set; }

    public long ZeroPagesSent { get; private set; }

    public void WriteHeader(MigrationHeader header)
    {
        ArgumentNullException.ThrowIfNull(header);
        if (header.Machine.Length > MigrationFormat.MaximumMachineLength || header.Ram.Count > MigrationFormat.MaximumRegions)
        {
            throw new ArgumentException("The machine description or the RAM layout is too large for a migration header.", nameof(header));
        }

        Span<byte> scratch = stackalloc byte[16];
        Write(MigrationFormat.Magic);
        BinaryPrimitives.WriteUInt16LittleEndian(scratch, MigrationFormat.Major);
        BinaryPrimitives.WriteUInt16LittleEndian(scratch[2..], MigrationFormat.Minor);
        BinaryPrimitives.WriteUInt32LittleEndian(scratch[4..], (uint)header.Machine.Length);
        Write(scratch[..8]);
        Write(header.Machine);
        BinaryPrimitives.WriteUInt32LittleEndian(scratch, (uint)header.Ram.Count);
        Write(scratch[..4]);
        foreach (var range in header.Ram)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(scratch, range.Start);
            BinaryPrimitives.WriteUInt64LittleEndian(scratch[8..], range.Size);
            Write(scratch);
        }
    }

    /// <summary>
    /// Sends every page marked in <paramref name="dirty"/> (one bitmap per region of <paramref name="memory"/>), read
    /// from guest RAM now: runs of consecutive pages in one record, all-zero pages as counts. Returns the pages sent.
    /// </summary>
    public long WritePages(GuestMemory memory, IReadOnlyList<DirtyPageBitmap> dirty)
    {
        ArgumentNullException.ThrowIfNull(memory);
        ArgumentNullException.ThrowIfNull(dirty);
        long sent = 0;
        for (int region = 0; region < dirty.Count; region++)
        {
            var bitmap = dirty[region];
            ulong page = 0;
            while (page < bitmap.PageCount)
            {
                if (!bitmap.IsDirty(page))
                {
                    page++;
                    continue;
                }

                // A run of dirty pages of one kind (all zero, or not), at most MaximumRun long.
                bool zero = IsZero(memory, bitmap.BaseAddress + (page * GuestMemory.PageSize));
                ulong first = page;
                page++;
                while (page < bitmap.PageCount && page - first < MigrationFormat.MaximumRun && bitmap.IsDirty(page)
                    && IsZero(memory, bitmap.BaseAddress + (page * GuestMemory.PageSize)) == zero)
                {
                    page++;
                }

                WriteRun(memory, region, bitmap.BaseAddress, first, (uint)(page - first), zero);
                sent += (long)(page - first);
            }
        }

        return sent;
    }

    public void WriteRoundEnd(int round)
    {
        _record[0] = MigrationFormat.Round;
        BinaryPrimitives.WriteUInt32LittleEndian(_record.AsSpan(1), (uint)round);
        Write(_record.AsSpan(0, 5));
    }

    /// <summary>The vCPU and device state (a snapshot state file's bytes), after the last round.</summary>
    public void WriteState(ReadOnlySpan<byte> stateFile)
    {
        if (stateFile.Length > MigrationFormat.MaximumStateLength)
        {
            throw new ArgumentException("The state is larger than a migration carries.", nameof(stateFile));
        }

        _record[0] = MigrationFormat.State;
        BinaryPrimitives.WriteUInt32LittleEndian(_record.AsSpan(1), (uint)stateFile.Length);
        Write(_record.AsSpan(0, 5));
        Write(stateFile);
    }

    /// <summary>The end record with the checksum; flushes the stream.</summary>
    public void WriteEnd()
    {
        _record[0] = MigrationFormat.End;
        Write(_record.AsSpan(0, 1));
        BinaryPrimitives.WriteUInt32LittleEndian(_record, _crc.Value);
        _stream.Write(_record, 0, 4);
        BytesWritten += 4;
        _stream.Flush();
    }

    private void WriteRun(GuestMemory memory, int region, ulong regionBase, ulong firstPage, uint count, bool zero)
    {
        _record[0] = zero ? MigrationFormat.Zero : MigrationFormat.Pages;
        BinaryPrimitives.WriteUInt32LittleEndian(_record.AsSpan(1), (uint)region);
        BinaryPrimitives.WriteUInt64LittleEndian(_record.AsSpan(5), firstPage);
        BinaryPrimitives.WriteUInt32LittleEndian(_record.AsSpan(13), count);
        Write(_record);
        if (zero)
        {
            ZeroPagesSent += count;
            return;
        }

        ulong address = regionBase + (firstPage * GuestMemory.PageSize);
        int length = (int)(count * GuestMemory.PageSize);
        if (!memory.TryGetSpan(address, length, out var pages))
        {
            throw new InvalidOperationException($"Pages at 0x{address:x} are not guest RAM.");
        }

        Write(pages);
        PagesSent += count;
    }

    private static bool IsZero(GuestMemory memory, ulong address) =>
        memory.TryGetSpan(address, (int)GuestMemory.PageSize, out var page) && !page.ContainsAnyExcept((byte)0);

    private void Write(ReadOnlySpan<byte> bytes)
    {
        _crc.Add(bytes);
        _stream.Write(bytes);
        BytesWritten += bytes.Length;
    }
}

/// <summary>
/// Reads a migration stream into the destination's guest RAM. The source is another process, maybe another host: every
/// value is checked (magic, version, lengths, the RAM layout against the destination's, each run inside its region)
/// and anything wrong is one <see cref="MigrationException"/> line; nothing outside RAM is ever written.
/// </summary>
public sealed class MigrationReader
{
    private readonly Stream _stream;
    private readonly byte[] _record = new byte[16];
    private Crc32CAccumulator _crc = Crc32CAccumulator.Create();
    private IReadOnlyList<MemoryRange>? _ram;

    public MigrationReader(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        _stream = stream;
    }

    /// <summary>Pre-copy rounds whose end was read.</summary>
    public int Rounds { get; private set; }

    public MigrationHeader ReadHeader()
    {
        Span<byte> scratch = stackalloc byte[16];
        ReadExactly(scratch[..8]);
        if (!scratch[..8].SequenceEqual(MigrationFormat.Magic))
        {
            throw new MigrationException("The incoming connection is not a KvmSharp migration stream.");
        }

        ReadExactly(scratch[..8]);
        ushort major = BinaryPrimitives.ReadUInt16LittleEndian(scratch);
        ushort minor = BinaryPrimitives.ReadUInt16LittleEndian(scratch[2..]);
        if (major != MigrationFormat.Major || minor > MigrationFormat.Minor)
        {
            throw new MigrationException($"The source sends migration format {major}.{minor}; this KvmSharp takes {MigrationFormat.Major}.0 to {MigrationFormat.Major}.{MigrationFormat.Minor}. Use the same KvmSharp version on both sides.");
        }

        uint machineLength = BinaryPrimitives.ReadUInt32LittleEndian(scratch[4..]);
        if (machineLength > MigrationFormat.MaximumMachineLength)
        {
            throw new MigrationException($"The migration stream is corrupt: a machine description of {machineLength} bytes.");
        }

        byte[] machine = new byte[machineLength];
        ReadExactly(machine);
        ReadExactly(scratch[..4]);
        uint regions = BinaryPrimitives.ReadUInt32LittleEndian(scratch);
        if (regions is 0 or > MigrationFormat.MaximumRegions)
        {
            throw new MigrationException($"The migration stream is corrupt: {regions} RAM regions.");
        }

        var ram = new MemoryRange[regions];
        for (int i = 0; i < ram.Length; i++)
        {
            ReadExactly(scratch);
            ram[i] = new MemoryRange(BinaryPrimitives.ReadUInt64LittleEndian(scratch), BinaryPrimitives.ReadUInt64LittleEndian(scratch[8..]));
        }

        _ram = ram;
        return new MigrationHeader(machine, ram);
    }

    /// <summary>
    /// Reads pages and round ends into <paramref name="memory"/> (laid out as the header says: checked here) until the
    /// state record, and returns the state file's bytes; then <see cref="ReadEnd"/>.
    /// </summary>
    public byte[] ReadPagesUntilState(GuestMemory memory)
    {
        ArgumentNullException.ThrowIfNull(memory);
        var ram = _ram ?? throw new InvalidOperationException("Read the header first.");
        CheckLayout(memory, ram);
        Span<byte> type = stackalloc byte[1];
        while (true)
        {
            ReadExactly(type);
            switch (type[0])
            {
                case MigrationFormat.Pages:
                case MigrationFormat.Zero:
                    ReadRun(memory, ram, zero: type[0] == MigrationFormat.Zero);
                    break;
                case MigrationFormat.Round:
                    ReadExactly(_record.AsSpan(0, 4));
                    Rounds++;
                    break;
                case MigrationFormat.State:
                    ReadExactly(_record.AsSpan(0, 4));
                    uint length = BinaryPrimitives.ReadUInt32LittleEndian(_record);
                    if (length > MigrationFormat.MaximumStateLength)
                    {
                        throw new MigrationException($"The migration stream is corrupt: a state of {length} bytes.");
                    }

                    byte[] state = new byte[length];
                    ReadExactly(state);
                    return state;
                default:
                    throw new MigrationException($"The migration stream is corrupt: record type {type[0]}.");
            }
        }
    }

    /// <summary>Reads the end record and checks the checksum of everything before it.</summary>
    public void ReadEnd()
    {
        Span<byte> type = stackalloc byte[1];
        ReadExactly(type);
        if (type[0] != MigrationFormat.End)
        {
            throw new MigrationException($"The migration stream is corrupt: record type {type[0]} where its end should be.");
        }

        uint computed = _crc.Value;
        Span<byte> sum = stackalloc byte[4];
        _stream.ReadExactly(sum);
        uint sent = BinaryPrimitives.ReadUInt32LittleEndian(sum);
        if (sent != computed)
        {
            throw new MigrationException($"The migration stream is corrupt: checksum 0x{sent:x8}, computed 0x{computed:x8}. The destination's machine is not used.");
        }
    }

    private static void CheckLayout(GuestMemory memory, IReadOnlyList<MemoryRange> ram)
    {
        bool same = memory.Regions.Count == ram.Count;
        for (int i = 0; same && i < ram.Count; i++)
        {
            same = memory.Regions[i].GuestPhysicalAddress == ram[i].Start && memory.Regions[i].Size == ram[i].Size;
        }

        if (!same)
        {
            throw new MigrationException(
                $"The source's RAM layout ({Describe(ram)}) differs from this machine's ({Describe(memory.Regions.Select(r => new MemoryRange(r.GuestPhysicalAddress, r.Size)).ToList())}). Start the destination with the same memory size.");
        }

        static string Describe(IReadOnlyList<MemoryRange> ranges) => string.Join(", ", ranges.Select(r => $"0x{r.Start:x}+{r.Size >> 20} MiB"));
    }

    private void ReadRun(GuestMemory memory, IReadOnlyList<MemoryRange> ram, bool zero)
    {
        ReadExactly(_record.AsSpan(0, 16));
        uint region = BinaryPrimitives.ReadUInt32LittleEndian(_record);
        ulong firstPage = BinaryPrimitives.ReadUInt64LittleEndian(_record.AsSpan(4));
        uint count = BinaryPrimitives.ReadUInt32LittleEndian(_record.AsSpan(12));
        ulong pages = region < ram.Count ? ram[(int)region].Size / GuestMemory.PageSize : 0;
        if (region >= ram.Count || count is 0 or > MigrationFormat.MaximumRun || firstPage >= pages || count > pages - firstPage)
        {
            throw new MigrationException($"The migration stream is corrupt: {count} pages from page {firstPage} of RAM region {region}, outside its RAM.");
        }

        ulong address = ram[(int)region].Start + (firstPage * GuestMemory.PageSize);
        int length = (int)(count * GuestMemory.PageSize);
        if (!memory.TryGetSpan(address, length, out var target))
        {
            throw new MigrationException($"The migration stream is corrupt: pages at 0x{address:x} are not this machine's RAM.");
        }

        if (zero)
        {
            target.Clear();
        }
        else
        {
            ReadExactly(target);
        }
    }

    private void ReadExactly(Span<byte> buffer)
    {
        try
        {
            _stream.ReadExactly(buffer);
        }
        catch (EndOfStreamException)
        {
            throw new MigrationException("The migration stream ended early: the source stopped sending (see its output).");
        }

        _crc.Add(buffer);
    }
}
