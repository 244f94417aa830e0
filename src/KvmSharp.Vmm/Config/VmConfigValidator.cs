using System.Globalization;

namespace KvmSharp.Vmm.Config;

/// <summary>Checks a <see cref="VmConfig"/> before anything is created: files, sizes, counts.</summary>
public static class VmConfigValidator
{
    public const ulong MinimumMemory = 16UL * 1024 * 1024;
    public const ulong MaximumMemory = 1024UL * 1024 * 1024 * 1024;
    public const int MaximumCpus = 255;

    /// <summary>Throws <see cref="VmConfigException"/> with one line naming the problem.</summary>
    public static void Validate(VmConfig config, ulong hostMemoryBytes)
    {
        ArgumentNullException.ThrowIfNull(config);
        CheckReadableFile(config.KernelPath, "Kernel", "Pass the path of a Linux bzImage, an ELF vmlinux with a PVH note, or a multiboot kernel.");
        if (config.InitrdPath is not null)
        {
            CheckReadableFile(config.InitrdPath, "Initrd", "Pass the path of an initramfs (cpio archive, optionally compressed).");
        }

        if (config.MemoryBytes < MinimumMemory || config.MemoryBytes > MaximumMemory)
        {
            throw new VmConfigException($"Memory size {SizeParser.Format(config.MemoryBytes)} is out of range: use 16M to 1T (for example --memory 512M).");
        }

        if (config.MemoryBytes % 4096 != 0)
        {
            throw new VmConfigException($"Memory size {config.MemoryBytes.ToString(CultureInfo.InvariantCulture)} bytes is not a multiple of 4 KiB.");
        }

        if (hostMemoryBytes > 0 && config.MemoryBytes > hostMemoryBytes)
        {
            throw new VmConfigException($"Memory size {SizeParser.Format(config.MemoryBytes)} is more than this host has ({SizeParser.Format(hostMemoryBytes)}). Use a smaller --memory.");
        }

        if (config.Cpus < 1 || config.Cpus > MaximumCpus)
        {
            throw new VmConfigException($"--cpus {config.Cpus.ToString(CultureInfo.InvariantCulture)} is out of range: use 1 to {MaximumCpus.ToString(CultureInfo.InvariantCulture)}.");
        }

        if (config.CommandLine.Contains('\0', StringComparison.Ordinal))
        {
            throw new VmConfigException("The kernel command line contains a NUL character.");
        }

        foreach (var disk in config.Disks)
        {
            CheckDiskImage(disk);
        }

        if (config.Console == ConsoleKind.File)
        {
            var path = config.ConsolePath;
            if (string.IsNullOrEmpty(path))
            {
                throw new VmConfigException("--console file: needs a path, for example --console file:guest.log.");
            }

            var directory = Path.GetDirectoryName(Path.GetFullPath(path));
            if (directory is not null && !Directory.Exists(directory))
            {
                throw new VmConfigException($"Console file '{path}': the directory '{directory}' does not exist.");
            }

            if (Directory.Exists(path))
            {
                throw new VmConfigException($"Console file '{path}' is a directory. Pass a file path.");
            }
        }
    }

    /// <summary>MemTotal from /proc/meminfo, or 0 if unknown.</summary>
    public static ulong HostMemoryBytes()
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/meminfo"))
            {
                if (line.StartsWith("MemTotal:", StringComparison.Ordinal))
                {
                    var parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                    return ulong.Parse(parts[1], CultureInfo.InvariantCulture) * 1024;
                }
            }
        }
        catch (IOException)
        {
        }

        return 0;
    }

    /// <summary>
    /// What can be said before opening: the image exists, is a regular file, and its size is a whole number of
    /// 512-byte sectors. Permission and locks are checked when the device opens it.
    /// </summary>
    private static void CheckDiskImage(DiskConfig disk)
    {
        const string Hint = "Pass a raw image file, for example one made with 'truncate -s 256M disk.img'.";
        if (Directory.Exists(disk.Path))
        {
            throw new VmConfigException($"Disk '{disk.Path}' is a directory, not an image file. {Hint}");
        }

        if (!File.Exists(disk.Path))
        {
            throw new VmConfigException($"Disk image '{disk.Path}' not found. {Hint}");
        }

        long length = new FileInfo(disk.Path).Length;
        if (length == 0 || length % 512 != 0)
        {
            throw new VmConfigException($"Disk image '{disk.Path}' is {length.ToString(CultureInfo.InvariantCulture)} bytes, not a non-zero multiple of 512. Resize it, for example with 'truncate -s 256M {disk.Path}'.");
        }
    }

    private static void CheckReadableFile(string path, string what, string hint)
    {
        if (string.IsNullOrEmpty(path))
        {
            throw new VmConfigException($"{what} path is empty. {hint}");
        }

        if (Directory.Exists(path))
        {
            throw new VmConfigException($"{what} '{path}' is a directory, not a file. {hint}");
        }

        if (!File.Exists(path))
        {
            throw new VmConfigException($"{what} file '{path}' not found. {hint}");
        }

        try
        {
            using var stream = File.OpenRead(path);
            if (stream.Length == 0)
            {
                throw new VmConfigException($"{what} file '{path}' is empty. {hint}");
            }
        }
        catch (UnauthorizedAccessException)
        {
            throw new VmConfigException($"{what} file '{path}' is not readable (permission denied). Check its permissions.");
        }
    }
}
