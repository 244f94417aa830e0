using System.Text;
using KvmSharp.Memory;

namespace KvmSharp.Boot;

/// <summary>
/// What every loader shares: the guest's RAM and layout, the file names for error messages, and writes
/// that turn a <see cref="GuestMemoryException"/> into a <see cref="BootImageException"/>. Loaders validate
/// every range against the layout before writing, so the conversion is a second line of defence.
/// </summary>
internal sealed class BootTarget
{
    public const string CorruptAdvice = "The file is corrupt or truncated; rebuild or re-download the kernel.";
    public const string MoreMemoryAdvice = "Give the guest more memory.";
    public const string FormatAdvice = "Pass a bzImage, an ELF vmlinux with a PVH note, or a multiboot kernel.";

    private BootTarget(GuestMemory memory, KernelLoadRequest request)
    {
        Memory = memory;
        Request = request;
        RamSize = request.RamSize;
        LowRamEnd = PcMemoryLayout.LowRamEnd(request.RamSize);
        Ram = PcMemoryLayout.RamRanges(request.RamSize);
        E820 = PcMemoryLayout.E820Map(request.RamSize);
    }

    public GuestMemory Memory { get; }

    public KernelLoadRequest Request { get; }

    public string FileName => Request.FileName;

    public string InitrdName => Request.InitrdName ?? "initrd";

    public ulong RamSize { get; }

    /// <summary>End of RAM below the MMIO hole.</summary>
    public ulong LowRamEnd { get; }

    public IReadOnlyList<MemoryRange> Ram { get; }

    public IReadOnlyList<E820Entry> E820 { get; }

    /// <summary>Validates the request and checks that <paramref name="memory"/> backs every RAM range of its layout.</summary>
    public static BootTarget Create(GuestMemory memory, KernelLoadRequest request)
    {
        ArgumentNullException.ThrowIfNull(memory);
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(request.FileName);
        ArgumentNullException.ThrowIfNull(request.Kernel);
        ArgumentNullException.ThrowIfNull(request.CommandLine);
        PcMemoryLayout.ValidateRamSize(request.RamSize);
        foreach (var range in PcMemoryLayout.RamRanges(request.RamSize))
        {
            if (!memory.IsValidRange(range.Start, range.Size))
            {
                throw new ArgumentException(
                    $"Guest memory does not back RAM range 0x{range.Start:x}+0x{range.Size:x} of a {PcMemoryLayout.FormatSize(request.RamSize)} guest. Create it from PcMemoryLayout.RamRanges.",
                    nameof(memory));
            }
        }

        return new BootTarget(memory, request);
    }

    public BootImageException Error(string problem, string advice) => new(FileName, problem, advice);

    public BootImageException Corrupt(string problem) => new(FileName, problem, CorruptAdvice);

    public BootImageException OutsideRam(string what, ulong address, ulong size)
        => new(FileName, $"{what} at 0x{address:x} +0x{size:x} is outside guest RAM ({PcMemoryLayout.FormatSize(RamSize)})", MoreMemoryAdvice);

    /// <summary>True when [address, address+size) lies inside one RAM range (overflow-safe).</summary>
    public bool IsInRam(ulong address, ulong size)
    {
        foreach (var r in Ram)
        {
            ulong offset = address - r.Start;
            if (address >= r.Start && offset < r.Size && size <= r.Size - offset)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>
    /// Checks that a range the image asks for lies in RAM at or above 1 MiB (below it sits the boot data).
    /// </summary>
    public void RequireLoadable(string what, ulong address, ulong size)
    {
        if (!IsInRam(address, size))
        {
            throw OutsideRam(what, address, size);
        }

        if (address < PcMemoryLayout.HighMemoryStart)
        {
            throw Error(
                $"{what} at 0x{address:x} +0x{size:x} overlaps the boot data below 1 MiB",
                "Link the kernel at 1 MiB (0x100000) or above.");
        }
    }

    /// <summary>
    /// As <see cref="RequireLoadable(string, ulong, ulong)"/>, but a range may also sit in conventional memory below
    /// the EBDA (0x9FC00) as long as it stays clear of <paramref name="lowBootData"/>, the boot data the loader writes
    /// there (multiboot: QEMU and GRUB load such kernels too).
    /// </summary>
    public void RequireLoadable(string what, ulong address, ulong size, ReadOnlySpan<BootDataRange> lowBootData)
    {
        if (address >= PcMemoryLayout.HighMemoryStart)
        {
            RequireLoadable(what, address, size);
            return;
        }

        if (size > PcMemoryLayout.EbdaStart || address > PcMemoryLayout.EbdaStart - size)
        {
            throw Error(
                $"{what} at 0x{address:x} +0x{size:x} runs into 0x{PcMemoryLayout.EbdaStart:x}-0x{PcMemoryLayout.HighMemoryStart - 1:x} (EBDA, VGA and BIOS area), which is not RAM",
                $"Link the kernel below 0x{PcMemoryLayout.EbdaStart:x} or at 1 MiB (0x100000) or above.");
        }

        foreach (var data in lowBootData)
        {
            if (address < data.End && data.Start < address + size)
            {
                string all = string.Join(", ", lowBootData.ToArray().Select(d => $"0x{d.Start:x}-0x{d.End - 1:x}"));
                throw Error(
                    $"{what} at 0x{address:x} +0x{size:x} overlaps the {data.What} KvmSharp writes at 0x{data.Start:x}-0x{data.End - 1:x}",
                    $"Link the kernel clear of KvmSharp's boot data below 1 MiB ({all}), or at 1 MiB (0x100000) or above.");
            }
        }
    }

    public void Write(ulong address, ReadOnlySpan<byte> data, string what)
    {
        try
        {
            Memory.Write(address, data);
        }
        catch (GuestMemoryException)
        {
            throw OutsideRam(what, address, (ulong)data.Length);
        }
    }

    public void Write<T>(ulong address, T value)
        where T : unmanaged
    {
        try
        {
            Memory.Write(address, value);
        }
        catch (GuestMemoryException)
        {
            throw OutsideRam("boot data", address, (ulong)System.Runtime.CompilerServices.Unsafe.SizeOf<T>());
        }
    }

    public void Zero(ulong address, ulong size, string what)
    {
        try
        {
            Memory.Fill(address, size, 0);
        }
        catch (GuestMemoryException)
        {
            throw OutsideRam(what, address, size);
        }
    }

    /// <summary>
    /// The command line as NUL-terminated bytes, at most <paramref name="maxLength"/> bytes before the NUL
    /// (and never more than <see cref="PcMemoryLayout.CommandLineMaxSize"/> with it).
    /// </summary>
    public byte[] EncodeCommandLine(ulong maxLength, string limitName) => EncodeCommandLine(Request.CommandLine, maxLength, limitName);

    /// <summary>As <see cref="EncodeCommandLine(ulong, string)"/> for a command line the loader composed.</summary>
    public byte[] EncodeCommandLine(string cmdline, ulong maxLength, string limitName)
    {
        if (cmdline.Contains('\0', StringComparison.Ordinal))
        {
            throw Error("the command line contains a NUL character", "Remove it from the command line.");
        }

        ulong ours = PcMemoryLayout.CommandLineMaxSize - 1;
        byte[] bytes = new byte[Encoding.UTF8.GetByteCount(cmdline) + 1];
        Encoding.UTF8.GetBytes(cmdline, bytes);
        ulong length = (ulong)bytes.Length - 1;
        if (length > maxLength && maxLength < ours)
        {
            throw Error($"the command line is {length} bytes, longer than the kernel's limit of {maxLength} bytes ({limitName})", "Shorten the command line.");
        }

        if (length > ours)
        {
            throw Error($"the command line is {length} bytes, longer than KvmSharp's limit of {ours} bytes", "Shorten the command line.");
        }

        return bytes;
    }

    /// <summary>
    /// Places the initrd page-aligned as high as possible below <paramref name="ceiling"/> and at or above
    /// <paramref name="floor"/> (the end of what the kernel occupies).
    /// </summary>
    public ulong PlaceInitrd(ulong size, ulong floor, ulong ceiling)
    {
        ulong alignedFloor = AlignUp(floor, GuestMemory.PageSize);
        if (size > ceiling || AlignDown(ceiling - size, GuestMemory.PageSize) < alignedFloor)
        {
            throw new BootImageException(
                InitrdName,
                $"the initrd (0x{size:x} bytes) does not fit in guest RAM between the kernel's end at 0x{alignedFloor:x} and 0x{ceiling:x} ({PcMemoryLayout.FormatSize(RamSize)} of RAM)",
                "Give the guest more memory or use a smaller initrd.");
        }

        return AlignDown(ceiling - size, GuestMemory.PageSize);
    }

    /// <summary>The initrd's bytes, or null when there is none; an empty initrd is an error.</summary>
    public byte[]? InitrdOrNull()
    {
        byte[]? initrd = Request.Initrd;
        if (initrd is null)
        {
            return null;
        }

        if (initrd.Length == 0)
        {
            throw new BootImageException(InitrdName, "the initrd is empty", "Pass a cpio archive (optionally compressed) or leave the initrd out.");
        }

        return initrd;
    }

    /// <summary>Rounds up to a power-of-two alignment; saturates to the largest aligned value instead of wrapping.</summary>
    public static ulong AlignUp(ulong value, ulong alignment)
    {
        ulong mask = alignment - 1;
        return value > ulong.MaxValue - mask ? ulong.MaxValue & ~mask : (value + mask) & ~mask;
    }

    public static ulong AlignDown(ulong value, ulong alignment) => value & ~(alignment - 1);

    /// <summary>a + b, or ulong.MaxValue when it overflows (callers then fail the range check).</summary>
    public static ulong SaturatingAdd(ulong a, ulong b) => a > ulong.MaxValue - b ? ulong.MaxValue : a + b;
}

/// <summary>A range of boot data a loader writes below 1 MiB, [<paramref name="Start"/>, <paramref name="End"/>).</summary>
internal readonly record struct BootDataRange(ulong Start, ulong End, string What);

