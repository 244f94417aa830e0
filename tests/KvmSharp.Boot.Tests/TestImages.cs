using System.Buffers.Binary;
using System.Text;
using KvmSharp.Memory;

namespace KvmSharp.Boot.Tests;

/// <summary>A minimal bzImage: boot sector + setup sectors with a setup header, then a protected-mode kernel.</summary>
internal sealed class BzImageBuilder
{
    public byte SetupSects { get; set; } = 4;

    public ushort BootFlag { get; set; } = 0xAA55;

    public string Magic { get; set; } = "HdrS";

    public ushort Version { get; set; } = 0x020F;

    /// <summary>The jump's displacement at 0x201: the header ends at 0x202 + this (0x26C for 2.15).</summary>
    public byte JumpDisplacement { get; set; } = 0x6A;

    public byte LoadFlags { get; set; } = 0x01;

    public ushort XLoadFlags { get; set; } = 0x03;

    public bool Relocatable { get; set; } = true;

    public uint KernelAlignment { get; set; } = 0x20_0000;

    public ulong PrefAddress { get; set; } = 0x100_0000;

    public uint InitSize { get; set; } = 0x80_0000;

    public uint CmdlineSize { get; set; } = 0x7FF;

    public uint InitrdAddrMax { get; set; } = 0x7FFF_FFFF;

    public int KernelSize { get; set; } = 0x3000;

    public uint? SysSize { get; set; }

    public uint PayloadOffset { get; set; } = 0x100;

    public uint PayloadLength { get; set; } = 0x200;

    /// <summary>Total file length override (to truncate the file).</summary>
    public int? FileLength { get; set; }

    public int SetupSize => ((SetupSects == 0 ? 4 : SetupSects) + 1) * 512;

    public static byte KernelByte(int i) => (byte)((i * 7) + 3);

    public byte[] Build()
    {
        byte[] file = new byte[SetupSize + KernelSize];
        var f = file.AsSpan();
        // Boot sector and setup code: a recognisable filler the loader must not copy beyond the header.
        for (int i = 0; i < Math.Min(SetupSize, file.Length); i++)
        {
            file[i] = 0x5A;
        }

        f[0x1F1] = SetupSects;
        BinaryPrimitives.WriteUInt32LittleEndian(f[0x1F4..], SysSize ?? (uint)(KernelSize / 16));
        BinaryPrimitives.WriteUInt16LittleEndian(f[0x1FE..], BootFlag);
        f[0x200] = 0xEB;
        f[0x201] = JumpDisplacement;
        Encoding.ASCII.GetBytes(Magic).CopyTo(f[0x202..]);
        BinaryPrimitives.WriteUInt16LittleEndian(f[0x206..], Version);
        f[0x210] = 0x00;
        f[0x211] = LoadFlags;
        BinaryPrimitives.WriteUInt32LittleEndian(f[0x214..], 0x10_0000);
        BinaryPrimitives.WriteUInt32LittleEndian(f[0x218..], 0);
        BinaryPrimitives.WriteUInt32LittleEndian(f[0x21C..], 0);
        BinaryPrimitives.WriteUInt32LittleEndian(f[0x228..], 0);
        BinaryPrimitives.WriteUInt32LittleEndian(f[0x22C..], InitrdAddrMax);
        BinaryPrimitives.WriteUInt32LittleEndian(f[0x230..], KernelAlignment);
        f[0x234] = Relocatable ? (byte)1 : (byte)0;
        f[0x235] = 21;
        BinaryPrimitives.WriteUInt16LittleEndian(f[0x236..], XLoadFlags);
        BinaryPrimitives.WriteUInt32LittleEndian(f[0x238..], CmdlineSize);
        BinaryPrimitives.WriteUInt32LittleEndian(f[0x23C..], 0);
        BinaryPrimitives.WriteUInt32LittleEndian(f[0x248..], PayloadOffset);
        BinaryPrimitives.WriteUInt32LittleEndian(f[0x24C..], PayloadLength);
        BinaryPrimitives.WriteUInt64LittleEndian(f[0x250..], 0xDEAD_BEEF_0000_1000); // setup_data: the loader must clear it
        BinaryPrimitives.WriteUInt64LittleEndian(f[0x258..], PrefAddress);
        BinaryPrimitives.WriteUInt32LittleEndian(f[0x260..], InitSize);
        BinaryPrimitives.WriteUInt32LittleEndian(f[0x264..], 0x190); // handover_offset
        BinaryPrimitives.WriteUInt32LittleEndian(f[0x268..], 0); // kernel_info_offset
        f[0x26C] = 0x77; // past the header: must not reach boot_params

        for (int i = 0; SetupSize + i < file.Length; i++)
        {
            file[SetupSize + i] = KernelByte(i);
        }

        if (FileLength is int length)
        {
            Array.Resize(ref file, length);
        }

        return file;
    }
}

/// <summary>One program header for <see cref="ElfBuilder"/>; overrides let a test lie in any field.</summary>
internal sealed record ElfSegmentSpec(uint Type, ulong PhysicalAddress, byte[] Data, ulong MemorySize, ulong Alignment = 0x1000)
{
    public ulong? OffsetOverride { get; init; }

    public ulong? FileSizeOverride { get; init; }
}

/// <summary>A minimal little-endian x86 ELF executable: header, program headers, then each segment's data.</summary>
internal sealed class ElfBuilder
{
    public bool Is64 { get; set; } = true;

    public ushort? Machine { get; set; }

    public ushort Type { get; set; } = 2;

    public ulong Entry { get; set; }

    public ushort? PhentsizeOverride { get; set; }

    public ushort? PhnumOverride { get; set; }

    public ulong? PhoffOverride { get; set; }

    public List<ElfSegmentSpec> Segments { get; } = [];

    public int HeaderSize => Is64 ? 64 : 52;

    public int PhentSize => Is64 ? 56 : 32;

    /// <summary>File offset where segment <paramref name="index"/>'s data starts.</summary>
    public int DataOffset(int index)
    {
        int offset = HeaderSize + (Segments.Count * PhentSize);
        for (int i = 0; i < index; i++)
        {
            offset += Segments[i].Data.Length;
        }

        return offset;
    }

    public byte[] Build()
    {
        int total = DataOffset(Segments.Count);
        byte[] file = new byte[total];
        var f = file.AsSpan();
        f[0] = 0x7F;
        f[1] = (byte)'E';
        f[2] = (byte)'L';
        f[3] = (byte)'F';
        f[4] = Is64 ? (byte)2 : (byte)1;
        f[5] = 1;
        f[6] = 1;
        BinaryPrimitives.WriteUInt16LittleEndian(f[16..], Type);
        BinaryPrimitives.WriteUInt16LittleEndian(f[18..], Machine ?? (Is64 ? (ushort)62 : (ushort)3));
        BinaryPrimitives.WriteUInt32LittleEndian(f[20..], 1);
        ulong phoff = PhoffOverride ?? (ulong)HeaderSize;
        ushort phentsize = PhentsizeOverride ?? (ushort)PhentSize;
        ushort phnum = PhnumOverride ?? (ushort)Segments.Count;
        if (Is64)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(f[24..], Entry);
            BinaryPrimitives.WriteUInt64LittleEndian(f[32..], phoff);
            BinaryPrimitives.WriteUInt16LittleEndian(f[52..], 64);
            BinaryPrimitives.WriteUInt16LittleEndian(f[54..], phentsize);
            BinaryPrimitives.WriteUInt16LittleEndian(f[56..], phnum);
        }
        else
        {
            BinaryPrimitives.WriteUInt32LittleEndian(f[24..], (uint)Entry);
            BinaryPrimitives.WriteUInt32LittleEndian(f[28..], (uint)phoff);
            BinaryPrimitives.WriteUInt16LittleEndian(f[40..], 52);
            BinaryPrimitives.WriteUInt16LittleEndian(f[42..], phentsize);
            BinaryPrimitives.WriteUInt16LittleEndian(f[44..], phnum);
        }

        for (int i = 0; i < Segments.Count; i++)
        {
            var s = Segments[i];
            ulong offset = s.OffsetOverride ?? (ulong)DataOffset(i);
            ulong filesz = s.FileSizeOverride ?? (ulong)s.Data.Length;
            var ph = f.Slice(HeaderSize + (i * PhentSize), PhentSize);
            if (Is64)
            {
                BinaryPrimitives.WriteUInt32LittleEndian(ph, s.Type);
                BinaryPrimitives.WriteUInt32LittleEndian(ph[4..], 7);
                BinaryPrimitives.WriteUInt64LittleEndian(ph[8..], offset);
                BinaryPrimitives.WriteUInt64LittleEndian(ph[16..], s.PhysicalAddress | 0xFFFF_FFFF_8000_0000);
                BinaryPrimitives.WriteUInt64LittleEndian(ph[24..], s.PhysicalAddress);
                BinaryPrimitives.WriteUInt64LittleEndian(ph[32..], filesz);
                BinaryPrimitives.WriteUInt64LittleEndian(ph[40..], s.MemorySize);
                BinaryPrimitives.WriteUInt64LittleEndian(ph[48..], s.Alignment);
            }
            else
            {
                BinaryPrimitives.WriteUInt32LittleEndian(ph, s.Type);
                BinaryPrimitives.WriteUInt32LittleEndian(ph[4..], (uint)offset);
                BinaryPrimitives.WriteUInt32LittleEndian(ph[8..], (uint)s.PhysicalAddress);
                BinaryPrimitives.WriteUInt32LittleEndian(ph[12..], (uint)s.PhysicalAddress);
                BinaryPrimitives.WriteUInt32LittleEndian(ph[16..], (uint)filesz);
                BinaryPrimitives.WriteUInt32LittleEndian(ph[20..], (uint)s.MemorySize);
                BinaryPrimitives.WriteUInt32LittleEndian(ph[24..], 7);
                BinaryPrimitives.WriteUInt32LittleEndian(ph[28..], (uint)s.Alignment);
            }

            s.Data.CopyTo(f[DataOffset(i)..]);
        }

        return file;
    }

    /// <summary>An Elf_Nhdr note with its name and descriptor padded to 4 bytes.</summary>
    public static byte[] Note(string name, uint type, byte[] desc)
    {
        int nameSize = name.Length + 1;
        int namePadded = (nameSize + 3) & ~3;
        int descPadded = (desc.Length + 3) & ~3;
        byte[] note = new byte[12 + namePadded + descPadded];
        BinaryPrimitives.WriteUInt32LittleEndian(note, (uint)nameSize);
        BinaryPrimitives.WriteUInt32LittleEndian(note.AsSpan(4), (uint)desc.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(note.AsSpan(8), type);
        Encoding.ASCII.GetBytes(name).CopyTo(note, 12);
        desc.CopyTo(note, 12 + namePadded);
        return note;
    }

    public static byte[] Pattern(int length, byte seed)
    {
        byte[] data = new byte[length];
        for (int i = 0; i < length; i++)
        {
            data[i] = (byte)(seed + (i * 13));
        }

        return data;
    }
}

/// <summary>A multiboot v1 header; 12 bytes, or 32 (48 with video fields) with the a.out kludge fields.</summary>
internal static class MultibootImages
{
    public const uint Magic = 0x1BAD_B002;

    public static byte[] Header(uint flags, uint? checksum = null, uint headerAddr = 0, uint loadAddr = 0, uint loadEndAddr = 0, uint bssEndAddr = 0, uint entryAddr = 0)
    {
        byte[] h = new byte[48];
        BinaryPrimitives.WriteUInt32LittleEndian(h, Magic);
        BinaryPrimitives.WriteUInt32LittleEndian(h.AsSpan(4), flags);
        BinaryPrimitives.WriteUInt32LittleEndian(h.AsSpan(8), checksum ?? unchecked(0u - Magic - flags));
        BinaryPrimitives.WriteUInt32LittleEndian(h.AsSpan(12), headerAddr);
        BinaryPrimitives.WriteUInt32LittleEndian(h.AsSpan(16), loadAddr);
        BinaryPrimitives.WriteUInt32LittleEndian(h.AsSpan(20), loadEndAddr);
        BinaryPrimitives.WriteUInt32LittleEndian(h.AsSpan(24), bssEndAddr);
        BinaryPrimitives.WriteUInt32LittleEndian(h.AsSpan(28), entryAddr);
        return h;
    }

    /// <summary>
    /// An a.out-kludge image: <paramref name="length"/> bytes of pattern with the header at file offset 0x40,
    /// meant to load at 0x100000 (so header_addr = 0x100040).
    /// </summary>
    public static byte[] Aout(int length, uint loadEndAddr, uint bssEndAddr, uint entryAddr, uint loadAddr = 0x10_0000, uint headerAddr = 0x10_0040, uint flags = 0x0001_0003)
    {
        byte[] file = ElfBuilder.Pattern(length, 0x11);
        Header(flags, null, headerAddr, loadAddr, loadEndAddr, bssEndAddr, entryAddr).AsSpan(0, 32).CopyTo(file.AsSpan(0x40));
        return file;
    }
}

internal static class Guest
{
    public const ulong MiB = 1024 * 1024;

    /// <summary>RAM laid out as the PC machine has it, with the boot-data area pre-filled with 0xCC to catch fields a loader forgets.</summary>
    public static GuestMemory Ram(ulong size)
    {
        var memory = GuestMemory.Create(PcMemoryLayout.RamRanges(size));
        memory.Fill(0, 0x3_0000, 0xCC);
        return memory;
    }

    public static byte[] Bytes(GuestMemory memory, ulong address, int length)
    {
        byte[] data = new byte[length];
        memory.Read(address, data);
        return data;
    }

    public static KernelLoadRequest Request(byte[] kernel, ulong ramSize = 64 * MiB, byte[]? initrd = null, string cmdline = "console=ttyS0", string fileName = "vmlinuz", string? initrdName = "initrd.img")
        => new(fileName, kernel, initrd, initrd is null ? null : initrdName, cmdline, ramSize);
}
