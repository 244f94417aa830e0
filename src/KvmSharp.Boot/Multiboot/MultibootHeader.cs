using System.Buffers.Binary;

namespace KvmSharp.Boot.Multiboot;

/// <summary>
/// The multiboot v1 header (GNU Multiboot Specification 0.6.96, section 3.1 "OS image format"):
/// 4-byte aligned within the first 8192 bytes of the image; magic, flags, checksum, then the a.out kludge
/// address fields when flag 16 is set.
/// </summary>
public sealed class MultibootHeader
{
    public const uint Magic = 0x1BAD_B002;

    /// <summary>The header lies within this many bytes from the start of the file.</summary>
    public const int SearchLimit = 8192;

    /// <summary>Flag 0: align modules on 4 KiB pages.</summary>
    public const uint FlagPageAlignModules = 1u << 0;

    /// <summary>Flag 1: pass memory information (mem_*, mmap_*).</summary>
    public const uint FlagMemoryInfo = 1u << 1;

    /// <summary>Flag 2: pass video mode information; a request a loader may ignore.</summary>
    public const uint FlagVideoMode = 1u << 2;

    /// <summary>Flag 16: the address fields at offsets 12-28 are valid (the "a.out kludge").</summary>
    public const uint FlagAoutKludge = 1u << 16;

    /// <summary>Bits 0-15 are requirements: a loader that does not know one must refuse the image.</summary>
    public const uint RequiredMask = 0x0000_FFFF;

    public const uint SupportedRequired = FlagPageAlignModules | FlagMemoryInfo | FlagVideoMode;

    private MultibootHeader(int offset, uint flags, uint headerAddr, uint loadAddr, uint loadEndAddr, uint bssEndAddr, uint entryAddr)
    {
        Offset = offset;
        Flags = flags;
        HeaderAddr = headerAddr;
        LoadAddr = loadAddr;
        LoadEndAddr = loadEndAddr;
        BssEndAddr = bssEndAddr;
        EntryAddr = entryAddr;
    }

    /// <summary>File offset of the magic.</summary>
    public int Offset { get; }

    public uint Flags { get; }

    public bool HasAoutKludge => (Flags & FlagAoutKludge) != 0;

    public uint HeaderAddr { get; }

    public uint LoadAddr { get; }

    public uint LoadEndAddr { get; }

    public uint BssEndAddr { get; }

    public uint EntryAddr { get; }

    /// <summary>The offset of the first 4-byte aligned magic in the first 8192 bytes, or -1.</summary>
    public static int FindMagic(ReadOnlySpan<byte> file)
    {
        int limit = Math.Min(file.Length, SearchLimit);
        for (int at = 0; at + 4 <= limit; at += 4)
        {
            if (BinaryPrimitives.ReadUInt32LittleEndian(file[at..]) == Magic)
            {
                return at;
            }
        }

        return -1;
    }

    /// <summary>
    /// The first header in the file whose checksum is right; otherwise throws <see cref="BootImageException"/>
    /// about the first candidate (or the absence of any). Also rejects required flags it does not know.
    /// </summary>
    public static MultibootHeader Parse(ReadOnlySpan<byte> file, string fileName)
    {
        int limit = Math.Min(file.Length, SearchLimit);
        string? firstProblem = null;
        for (int at = 0; at + 4 <= limit; at += 4)
        {
            if (BinaryPrimitives.ReadUInt32LittleEndian(file[at..]) != Magic)
            {
                continue;
            }

            if (file.Length - at < 12)
            {
                firstProblem ??= $"the multiboot header at offset 0x{at:x} is cut off by the end of the file";
                continue;
            }

            uint flags = BinaryPrimitives.ReadUInt32LittleEndian(file[(at + 4)..]);
            uint checksum = BinaryPrimitives.ReadUInt32LittleEndian(file[(at + 8)..]);
            uint sum = unchecked(Magic + flags + checksum);
            if (sum != 0)
            {
                firstProblem ??= $"the multiboot header at offset 0x{at:x} has a bad checksum (magic + flags + checksum = 0x{sum:x8}, not 0)";
                continue;
            }

            uint unknown = flags & RequiredMask & ~SupportedRequired;
            if (unknown != 0)
            {
                throw new BootImageException(
                    fileName,
                    $"the multiboot header requires features KvmSharp does not support (flags 0x{flags:x8}, unknown required bits 0x{unknown:x})",
                    "Rebuild the kernel without them, or boot it with GRUB.");
            }

            if ((flags & FlagAoutKludge) == 0)
            {
                return new MultibootHeader(at, flags, 0, 0, 0, 0, 0);
            }

            if (file.Length - at < 32)
            {
                throw new BootImageException(fileName, $"the multiboot header at offset 0x{at:x} is cut off by the end of the file before its address fields", BootTarget.CorruptAdvice);
            }

            return new MultibootHeader(
                at,
                flags,
                BinaryPrimitives.ReadUInt32LittleEndian(file[(at + 12)..]),
                BinaryPrimitives.ReadUInt32LittleEndian(file[(at + 16)..]),
                BinaryPrimitives.ReadUInt32LittleEndian(file[(at + 20)..]),
                BinaryPrimitives.ReadUInt32LittleEndian(file[(at + 24)..]),
                BinaryPrimitives.ReadUInt32LittleEndian(file[(at + 28)..]));
        }

        throw new BootImageException(
            fileName,
            firstProblem ?? "no multiboot header (magic 0x1BADB002) in the first 8192 bytes",
            firstProblem is null ? BootTarget.FormatAdvice : BootTarget.CorruptAdvice);
    }
}
