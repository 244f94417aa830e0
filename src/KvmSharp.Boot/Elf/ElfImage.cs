using System.Buffers.Binary;

namespace KvmSharp.Boot.Elf;

/// <summary>One program header of an ELF file (Elf32_Phdr or Elf64_Phdr widened to 64 bits).</summary>
public readonly record struct ElfSegment(int Index, uint Type, ulong Offset, ulong PhysicalAddress, ulong FileSize, ulong MemorySize, ulong Alignment);

/// <summary>
/// The parts of a little-endian x86 ELF executable a loader needs: the entry point and the program headers,
/// every field checked against the file's length (System V ABI, "ELF Header" and "Program Header").
/// </summary>
public sealed class ElfImage
{
    public const uint PtLoad = 1;
    public const uint PtNote = 4;
    public const ushort EmI386 = 3;
    public const ushort EmX8664 = 62;

    private const ushort EtExec = 2;
    private const int Elf32HeaderSize = 52;
    private const int Elf64HeaderSize = 64;
    private const int Elf32PhdrSize = 32;
    private const int Elf64PhdrSize = 56;

    /// <summary>More program headers than any kernel has (vmlinux has about 5); bounds the work a hostile file causes.</summary>
    private const int MaxProgramHeaders = 64;

    private ElfImage(bool is64Bit, ushort machine, ulong entry, ElfSegment[] segments)
    {
        Is64Bit = is64Bit;
        Machine = machine;
        Entry = entry;
        Segments = segments;
    }

    public bool Is64Bit { get; }

    public ushort Machine { get; }

    /// <summary>e_entry as the file states it.</summary>
    public ulong Entry { get; }

    public IReadOnlyList<ElfSegment> Segments { get; }

    public static bool HasElfMagic(ReadOnlySpan<byte> file)
        => file.Length >= 4 && file[0] == 0x7F && file[1] == (byte)'E' && file[2] == (byte)'L' && file[3] == (byte)'F';

    /// <summary>Parses the ELF and program headers; throws <see cref="BootImageException"/> naming the first bad field.</summary>
    public static ElfImage Parse(ReadOnlySpan<byte> file, string fileName)
    {
        var image = TryParse(file, out string? problem);
        return image ?? throw new BootImageException(fileName, problem!, BootTarget.CorruptAdvice);
    }

    /// <summary>Parses the ELF and program headers; null with the problem when they are malformed.</summary>
    public static ElfImage? TryParse(ReadOnlySpan<byte> file, out string? problem)
    {
        if (!HasElfMagic(file))
        {
            problem = "not an ELF file (no 0x7F 'ELF' magic at offset 0)";
            return null;
        }

        if (file.Length < 6 || (file[4] != 1 && file[4] != 2))
        {
            problem = $"unknown ELF class {(file.Length > 4 ? file[4] : 0)} (expected 1 for ELF32 or 2 for ELF64)";
            return null;
        }

        bool is64 = file[4] == 2;
        if (file[5] != 1)
        {
            problem = $"ELF data encoding {file[5]} is not little-endian (1)";
            return null;
        }

        int headerSize = is64 ? Elf64HeaderSize : Elf32HeaderSize;
        if (file.Length < headerSize)
        {
            problem = $"the file is {file.Length} bytes, too short for an ELF{(is64 ? 64 : 32)} header ({headerSize} bytes)";
            return null;
        }

        ushort type = BinaryPrimitives.ReadUInt16LittleEndian(file[16..]);
        ushort machine = BinaryPrimitives.ReadUInt16LittleEndian(file[18..]);
        ushort expectedMachine = is64 ? EmX8664 : EmI386;
        if (type != EtExec)
        {
            problem = $"ELF type {type} is not an executable (ET_EXEC, 2)";
            return null;
        }

        if (machine != expectedMachine)
        {
            problem = $"ELF machine {machine} is not {(is64 ? "x86-64 (62)" : "i386 (3)")}";
            return null;
        }

        ulong entry, phoff;
        ushort phentsize, phnum;
        if (is64)
        {
            entry = BinaryPrimitives.ReadUInt64LittleEndian(file[24..]);
            phoff = BinaryPrimitives.ReadUInt64LittleEndian(file[32..]);
            phentsize = BinaryPrimitives.ReadUInt16LittleEndian(file[54..]);
            phnum = BinaryPrimitives.ReadUInt16LittleEndian(file[56..]);
        }
        else
        {
            entry = BinaryPrimitives.ReadUInt32LittleEndian(file[24..]);
            phoff = BinaryPrimitives.ReadUInt32LittleEndian(file[28..]);
            phentsize = BinaryPrimitives.ReadUInt16LittleEndian(file[42..]);
            phnum = BinaryPrimitives.ReadUInt16LittleEndian(file[44..]);
        }

        int expectedPhentsize = is64 ? Elf64PhdrSize : Elf32PhdrSize;
        if (phentsize != expectedPhentsize)
        {
            problem = $"e_phentsize is {phentsize}, not {expectedPhentsize}";
            return null;
        }

        if (phnum == 0 || phnum > MaxProgramHeaders)
        {
            problem = $"e_phnum is {phnum} (expected 1 to {MaxProgramHeaders} program headers)";
            return null;
        }

        ulong tableSize = (ulong)phnum * phentsize;
        if (phoff > (ulong)file.Length || tableSize > (ulong)file.Length - phoff)
        {
            problem = $"the program header table at offset 0x{phoff:x} +0x{tableSize:x} is beyond the end of the file (0x{file.Length:x} bytes)";
            return null;
        }

        var segments = new ElfSegment[phnum];
        for (int i = 0; i < phnum; i++)
        {
            var ph = file.Slice((int)phoff + (i * phentsize), phentsize);
            segments[i] = is64
                ? new ElfSegment(
                    i,
                    BinaryPrimitives.ReadUInt32LittleEndian(ph),
                    BinaryPrimitives.ReadUInt64LittleEndian(ph[8..]),
                    BinaryPrimitives.ReadUInt64LittleEndian(ph[24..]),
                    BinaryPrimitives.ReadUInt64LittleEndian(ph[32..]),
                    BinaryPrimitives.ReadUInt64LittleEndian(ph[40..]),
                    BinaryPrimitives.ReadUInt64LittleEndian(ph[48..]))
                : new ElfSegment(
                    i,
                    BinaryPrimitives.ReadUInt32LittleEndian(ph),
                    BinaryPrimitives.ReadUInt32LittleEndian(ph[4..]),
                    BinaryPrimitives.ReadUInt32LittleEndian(ph[12..]),
                    BinaryPrimitives.ReadUInt32LittleEndian(ph[16..]),
                    BinaryPrimitives.ReadUInt32LittleEndian(ph[20..]),
                    BinaryPrimitives.ReadUInt32LittleEndian(ph[28..]));
            var s = segments[i];
            if ((s.Type == PtLoad || s.Type == PtNote) && (s.Offset > (ulong)file.Length || s.FileSize > (ulong)file.Length - s.Offset))
            {
                problem = $"program header {i}: file data at offset 0x{s.Offset:x} +0x{s.FileSize:x} is beyond the end of the file (0x{file.Length:x} bytes)";
                return null;
            }

            if (s.Type == PtLoad && s.FileSize > s.MemorySize)
            {
                problem = $"program header {i}: p_filesz 0x{s.FileSize:x} is larger than p_memsz 0x{s.MemorySize:x}";
                return null;
            }
        }

        problem = null;
        return new ElfImage(is64, machine, entry, segments);
    }

    /// <summary>
    /// The descriptor of the first note named <paramref name="name"/> with type <paramref name="type"/> in a
    /// PT_NOTE segment, or null. Notes are Elf_Nhdr {namesz, descsz, type}, name and descriptor each padded
    /// to the segment's alignment (4, or 8 for segments aligned to 8). A malformed note ends the search of
    /// its segment.
    /// </summary>
    public byte[]? FindNote(ReadOnlySpan<byte> file, string name, uint type)
    {
        foreach (var s in Segments)
        {
            if (s.Type != PtNote)
            {
                continue;
            }

            ulong align = s.Alignment == 8 ? 8UL : 4UL;
            var notes = file.Slice((int)s.Offset, (int)s.FileSize);
            int pos = 0;
            while (notes.Length - pos >= 12)
            {
                uint namesz = BinaryPrimitives.ReadUInt32LittleEndian(notes[pos..]);
                uint descsz = BinaryPrimitives.ReadUInt32LittleEndian(notes[(pos + 4)..]);
                uint noteType = BinaryPrimitives.ReadUInt32LittleEndian(notes[(pos + 8)..]);
                ulong nameStart = (ulong)pos + 12;
                ulong descStart = BootTarget.AlignUp(nameStart + namesz, align);
                ulong next = BootTarget.AlignUp(descStart + descsz, align);
                if (descStart > (ulong)notes.Length || descsz > (ulong)notes.Length - descStart)
                {
                    break;
                }

                if (noteType == type && namesz == name.Length + 1 && NameMatches(notes.Slice((int)nameStart, (int)namesz), name))
                {
                    return notes.Slice((int)descStart, (int)descsz).ToArray();
                }

                if (next >= (ulong)notes.Length)
                {
                    break;
                }

                pos = (int)next;
            }
        }

        return null;
    }

    private static bool NameMatches(ReadOnlySpan<byte> stored, string name)
    {
        for (int i = 0; i < name.Length; i++)
        {
            if (stored[i] != name[i])
            {
                return false;
            }
        }

        return stored[name.Length] == 0;
    }
}
