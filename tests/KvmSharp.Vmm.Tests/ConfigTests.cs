using KvmSharp.Vmm.Config;

namespace KvmSharp.Vmm.Tests;

public class ConfigTests
{
    [Theory]
    [InlineData("512M", 512UL * 1024 * 1024)]
    [InlineData("512m", 512UL * 1024 * 1024)]
    [InlineData("2G", 2UL * 1024 * 1024 * 1024)]
    [InlineData("65536K", 64UL * 1024 * 1024)]
    [InlineData("1T", 1024UL * 1024 * 1024 * 1024)]
    [InlineData("256", 256UL * 1024 * 1024)]
    public void SizeParser_AcceptsQemuStyleSizes(string text, ulong expected)
    {
        Assert.True(SizeParser.TryParse(text, out ulong bytes));
        Assert.Equal(expected, bytes);
    }

    [Theory]
    [InlineData("")]
    [InlineData("M")]
    [InlineData("-1G")]
    [InlineData("0M")]
    [InlineData("1.5G")]
    [InlineData("12X")]
    [InlineData("4GiB")]
    [InlineData("99999999999999999999T")]
    [InlineData("18446744073709551615T")]
    public void SizeParser_RejectsNonsense(string text)
    {
        Assert.False(SizeParser.TryParse(text, out _));
    }

    [Fact]
    public void Validate_MissingKernel_NamesTheFile()
    {
        var e = Assert.Throws<VmConfigException>(() => VmConfigValidator.Validate(new VmConfig { KernelPath = "/nonexistent/vmlinuz" }, 0));

        Assert.Equal("Kernel file '/nonexistent/vmlinuz' not found. Pass the path of a Linux bzImage, an ELF vmlinux with a PVH note, or a multiboot kernel.", e.Message);
    }

    [Fact]
    public void Validate_DirectoryAndEmptyFiles_AreRejected()
    {
        var dir = Directory.CreateTempSubdirectory();
        try
        {
            string empty = Path.Combine(dir.FullName, "empty");
            File.WriteAllBytes(empty, []);
            string kernel = Path.Combine(dir.FullName, "kernel");
            File.WriteAllBytes(kernel, [1]);

            var asDir = Assert.Throws<VmConfigException>(() => VmConfigValidator.Validate(new VmConfig { KernelPath = dir.FullName }, 0));
            var asEmpty = Assert.Throws<VmConfigException>(() => VmConfigValidator.Validate(new VmConfig { KernelPath = kernel, InitrdPath = empty }, 0));

            Assert.Equal($"Kernel '{dir.FullName}' is a directory, not a file. Pass the path of a Linux bzImage, an ELF vmlinux with a PVH note, or a multiboot kernel.", asDir.Message);
            Assert.Equal($"Initrd file '{empty}' is empty. Pass the path of an initramfs (cpio archive, optionally compressed).", asEmpty.Message);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public void Validate_MemoryAndCpuLimits()
    {
        var dir = Directory.CreateTempSubdirectory();
        try
        {
            string kernel = Path.Combine(dir.FullName, "kernel");
            File.WriteAllBytes(kernel, [1]);
            var ok = new VmConfig { KernelPath = kernel };

            var tooSmall = Assert.Throws<VmConfigException>(() => VmConfigValidator.Validate(ok with { MemoryBytes = 8UL << 20 }, 0));
            var tooBig = Assert.Throws<VmConfigException>(() => VmConfigValidator.Validate(ok with { MemoryBytes = 64UL << 30 }, 24UL << 30));
            var unaligned = Assert.Throws<VmConfigException>(() => VmConfigValidator.Validate(ok with { MemoryBytes = (32UL << 20) + 1 }, 0));
            var cpus = Assert.Throws<VmConfigException>(() => VmConfigValidator.Validate(ok with { Cpus = 0 }, 0));
            VmConfigValidator.Validate(ok, 24UL << 30);

            Assert.Equal("Memory size 8 MiB is out of range: use 16M to 1T (for example --memory 512M).", tooSmall.Message);
            Assert.Equal("Memory size 64 GiB is more than this host has (24 GiB). Use a smaller --memory.", tooBig.Message);
            Assert.Equal("Memory size 33554433 bytes is not a multiple of 4 KiB.", unaligned.Message);
            Assert.Equal("--cpus 0 is out of range: use 1 to 255.", cpus.Message);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Theory]
    [InlineData("disk.img", "disk.img", false, null)]
    [InlineData("disk.img,readonly", "disk.img", true, null)]
    [InlineData("/a/b.raw,ro,serial=KVMSHARP-1", "/a/b.raw", true, "KVMSHARP-1")]
    [InlineData("x,serial=ABCDEFGHIJKLMNOPQRST", "x", false, "ABCDEFGHIJKLMNOPQRST")]
    public void DiskConfig_ParsesPathAndOptions(string text, string path, bool readOnly, string? serial)
    {
        Assert.Equal(new DiskConfig(path, readOnly, serial), DiskConfig.Parse(text));
    }

    [Theory]
    [InlineData(",readonly", "--disk ',readonly' has no path. Use --disk PATH[,readonly][,serial=ID].")]
    [InlineData("d.img,cache=none", "--disk option 'cache=none' is unknown. Use --disk PATH[,readonly][,serial=ID] (a path cannot contain commas).")]
    [InlineData("d.img,serial=ABCDEFGHIJKLMNOPQRSTU", "--disk serial 'ABCDEFGHIJKLMNOPQRSTU' is not 1 to 20 printable ASCII characters.")]
    [InlineData("d.img,serial=", "--disk serial '' is not 1 to 20 printable ASCII characters.")]
    public void DiskConfig_RejectsBadOptions_WithOneLine(string text, string message)
    {
        Assert.Equal(message, Assert.Throws<VmConfigException>(() => DiskConfig.Parse(text)).Message);
    }

    [Fact]
    public void Validate_DiskImages_MissingDirectoryOrNotWholeSectors_AreRejected()
    {
        var dir = Directory.CreateTempSubdirectory();
        try
        {
            string kernel = Path.Combine(dir.FullName, "kernel");
            File.WriteAllBytes(kernel, [1]);
            string odd = Path.Combine(dir.FullName, "odd.img");
            File.WriteAllBytes(odd, new byte[1000]);
            string good = Path.Combine(dir.FullName, "good.img");
            File.WriteAllBytes(good, new byte[1024]);
            string missing = Path.Combine(dir.FullName, "missing.img");

            string Message(string path) => Assert.Throws<VmConfigException>(
                () => VmConfigValidator.Validate(new VmConfig { KernelPath = kernel, Disks = [new DiskConfig(good), new DiskConfig(path)] }, 0)).Message;

            Assert.Equal($"Disk image '{missing}' not found. Pass a raw image file, for example one made with 'truncate -s 256M disk.img'.", Message(missing));
            Assert.Equal($"Disk '{dir.FullName}' is a directory, not an image file. Pass a raw image file, for example one made with 'truncate -s 256M disk.img'.", Message(dir.FullName));
            Assert.Equal($"Disk image '{odd}' is 1000 bytes, not a non-zero multiple of 512. Resize it, for example with 'truncate -s 256M {odd}'.", Message(odd));
            VmConfigValidator.Validate(new VmConfig { KernelPath = kernel, Disks = [new DiskConfig(good, ReadOnly: true)] }, 0);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }
}
