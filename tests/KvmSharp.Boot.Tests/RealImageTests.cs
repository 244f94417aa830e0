using KvmSharp.Boot.Elf;
using KvmSharp.Boot.Linux;
using KvmSharp.Boot.Pvh;

namespace KvmSharp.Boot.Tests;

/// <summary>
/// The loaders on a real distribution kernel: $KVMSHARP_GUEST_DIR/vmlinuz and vmlinux (default
/// ~/.cache/kvmsharp/guest), which scripts/build-guest.sh makes from Debian's linux-image-cloud-amd64.
/// </summary>
public class RealImageTests
{
    private const ulong RamSize = 512UL * 1024 * 1024;
    private const string BuildHint = "run scripts/build-guest.sh to fetch the Debian guest kernel";

    private static string GuestDirectory
        => Environment.GetEnvironmentVariable("KVMSHARP_GUEST_DIR") is { Length: > 0 } dir
            ? dir
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "kvmsharp", "guest");

    [Fact]
    public void BzImage_HeaderHasWhatEveryModernX86_64KernelHas()
    {
        byte[] file = ReadGuestFile("vmlinuz");

        var image = BzImage.Parse(file, "vmlinuz");

        Assert.Equal(KernelFormat.BzImage, KernelImage.Detect(file));
        Assert.True(image.Version >= 0x020F, $"protocol {BzImage.FormatVersion(image.Version)}");
        Assert.True(image.RelocatableKernel);
        Assert.Equal(BzImage.XlfKernel64, image.XLoadFlags & BzImage.XlfKernel64);
        Assert.Equal(BzImage.LoadedHigh, image.LoadFlags & BzImage.LoadedHigh);
        Assert.Equal(0x20_0000u, image.KernelAlignment);
        Assert.True(image.InitSize > (ulong)file.Length, $"init_size 0x{image.InitSize:x}, file 0x{file.Length:x}");
        Assert.True(image.CmdlineSize >= 255);
        Assert.Equal(0UL, image.PrefAddress % image.KernelAlignment);
        Assert.True(image.PrefAddress >= 0x10_0000);

        var payload = image.Payload(file);
        Assert.True(
            payload.StartsWith((ReadOnlySpan<byte>)[0x02, 0x21, 0x4C, 0x18]) // LZ4 legacy
            || payload.StartsWith((ReadOnlySpan<byte>)[0x1F, 0x8B]) // gzip
            || payload.StartsWith((ReadOnlySpan<byte>)[0xFD, 0x37, 0x7A, 0x58, 0x5A, 0x00]) // xz
            || payload.StartsWith((ReadOnlySpan<byte>)[0x28, 0xB5, 0x2F, 0xFD]), // zstd
            $"payload starts {Convert.ToHexString(payload[..4])}");
    }

    [Fact]
    public void BzImage_LoadsIntoHalfAGiB()
    {
        byte[] file = ReadGuestFile("vmlinuz");
        var image = BzImage.Parse(file, "vmlinuz");
        byte[] initrd = ElfBuilder.Pattern(0x12345, 3);
        using var memory = Guest.Ram(RamSize);

        var info = KernelLoader.Load(memory, new KernelLoadRequest("vmlinuz", file, initrd, "initrd.img", "console=ttyS0 panic=-1", RamSize));

        var linux = Assert.IsType<LinuxBootInfo>(info);
        Assert.Equal(image.PrefAddress, linux.KernelLoadAddress);
        Assert.Equal(image.PrefAddress + 0x200, linux.EntryPoint);
        Assert.Equal(image.PrefAddress + image.InitSize, linux.KernelEnd);
        Assert.Equal(0x1FFE_D000UL, linux.InitrdAddress); // 512 MiB - 0x12345, page-aligned down
        Assert.Equal(new BootEntry(BootMode.Long64, image.PrefAddress + 0x200, Rsi: 0x7000), info.Entry);

        Assert.Equal(image.ProtectedModeKernel(file)[..4096].ToArray(), Guest.Bytes(memory, linux.KernelLoadAddress, 4096));
        Assert.Equal(image.ProtectedModeKernel(file)[^4096..].ToArray(), Guest.Bytes(memory, linux.KernelLoadAddress + (ulong)image.KernelSize - 4096, 4096));
        Assert.Equal(initrd, Guest.Bytes(memory, 0x1FFE_D000, initrd.Length));

        Assert.Equal("HdrS"u8.ToArray(), Guest.Bytes(memory, 0x7202, 4));
        Assert.Equal(image.Version, memory.Read<ushort>(0x7206));
        Assert.Equal(0xFF, memory.Read<byte>(0x7210));
        Assert.Equal(0x2_0000u, memory.Read<uint>(0x7228));
        Assert.Equal(0x1FFE_D000u, memory.Read<uint>(0x7218));
        Assert.Equal(0x12345u, memory.Read<uint>(0x721C));
        Assert.Equal(0UL, memory.Read<ulong>(0x7250));
        Assert.Equal(4, memory.Read<byte>(0x71E8));
        Assert.Equal(0x1FF0_0000UL, memory.Read<ulong>(0x72D0 + (3 * 20) + 8));
        Assert.Equal("console=ttyS0 panic=-1\0"u8.ToArray(), Guest.Bytes(memory, 0x2_0000, 23));
    }

    [Fact]
    public void Vmlinux_LoadsThroughItsPvhNote()
    {
        byte[] file = ReadGuestFile("vmlinux");
        var elf = ElfImage.Parse(file, "vmlinux");
        uint? noteEntry = PvhLoader.FindEntryPoint(file, elf, "vmlinux");
        using var memory = Guest.Ram(RamSize);

        var info = KernelLoader.Load(memory, new KernelLoadRequest("vmlinux", file, null, null, "console=ttyS0", RamSize));

        Assert.Equal(KernelFormat.PvhElf, KernelImage.Detect(file));
        var pvh = Assert.IsType<PvhBootInfo>(info);
        Assert.True(elf.Is64Bit);
        Assert.NotNull(noteEntry);
        Assert.Equal(noteEntry.Value, pvh.EntryPoint);
        Assert.True(pvh.EntryPoint >= 0x100_0000, $"entry 0x{pvh.EntryPoint:x}");
        Assert.Equal(new BootEntry(BootMode.Protected32, pvh.EntryPoint, Rbx: 0x6000), info.Entry);
        Assert.True(pvh.KernelEnd <= RamSize);
        Assert.Equal(0x336E_C578u, memory.Read<uint>(0x6000));
        Assert.Equal(4u, memory.Read<uint>(0x6000 + 48));

        var first = elf.Segments.First(s => s.Type == ElfImage.PtLoad);
        Assert.Equal(file.AsSpan((int)first.Offset, 4096).ToArray(), Guest.Bytes(memory, first.PhysicalAddress, 4096));
    }

    private static byte[] ReadGuestFile(string name)
    {
        string path = Path.Combine(GuestDirectory, name);
        Assert.SkipUnless(File.Exists(path), $"{path} is absent: {BuildHint}.");
        return File.ReadAllBytes(path);
    }
}
