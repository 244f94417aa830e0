using System.Diagnostics;
using System.Globalization;
using KvmSharp.Devices.Virtio;

namespace KvmSharp.Devices.Tests.Virtio;

/// <summary>
/// Opening disk images: size and mode, the one-line message for every bad image, and the lock that keeps two VMs
/// off one image, naming the holder's pid whether it is this process, another KvmSharp, or another program.
/// </summary>
[Collection(VirtioTestCollection.Name)]
public sealed class BlockImageTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("kvmsharp-block-image-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public void Open_ReportsSizeAndCapacity()
    {
        string path = NewImage(64 * 1024);

        using var image = BlockImage.Open(path);

        Assert.Equal(path, image.Path);
        Assert.Equal(65536UL, image.Size);
        Assert.Equal(128UL, image.SectorCount);
        Assert.False(image.IsReadOnly);
    }

    [Theory]
    [InlineData(true, 0)]  // O_RDONLY
    [InlineData(false, 2)] // O_RDWR
    public void Open_UsesTheAccessModeAsked(bool readOnly, int accessMode)
    {
        using var image = BlockImage.Open(NewImage(4096), readOnly);

        Assert.Equal(readOnly, image.IsReadOnly);
        Assert.Equal(accessMode, OpenFlags(image) & 3);
    }

    [Fact]
    public void MissingFile_SaysNotFoundAndHowToCreateOne()
    {
        string path = Path.Combine(_directory, "nope.img");

        var e = Assert.Throws<BlockImageException>(() => BlockImage.Open(path));

        Assert.Equal(BlockImageProblem.NotFound, e.Problem);
        Assert.Equal($"Disk image '{path}' not found. Check the path, or create the image first, for example: truncate -s 1G '{path}'.", e.Message);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Directory_IsRefused(bool readOnly)
    {
        var e = Assert.Throws<BlockImageException>(() => BlockImage.Open(_directory, readOnly));

        Assert.Equal(BlockImageProblem.IsDirectory, e.Problem);
        Assert.Equal($"Disk image '{_directory}' is a directory. Give the path of a raw image file or a block device.", e.Message);
    }

    [Fact]
    public void CharacterDevice_IsRefused()
    {
        var e = Assert.Throws<BlockImageException>(() => BlockImage.Open("/dev/null", readOnly: true));

        Assert.Equal(BlockImageProblem.NotFileOrBlockDevice, e.Problem);
        Assert.Equal("Disk image '/dev/null' is not a regular file or a block device. Give the path of a raw image file or a block device.", e.Message);
    }

    [Fact]
    public void SizeNotAMultipleOf512_SaysTheSizeAndTheFix()
    {
        string path = NewImage(1000);

        var e = Assert.Throws<BlockImageException>(() => BlockImage.Open(path));

        Assert.Equal(BlockImageProblem.NotSectorMultiple, e.Problem);
        Assert.Equal($"Disk image '{path}' is 1000 bytes, not a whole number of 512-byte sectors. Resize it to a multiple of 512, for example: truncate -s 1024 '{path}'.", e.Message);
    }

    [Fact]
    public void EmptyFile_IsRefused()
    {
        string path = NewImage(0);

        var e = Assert.Throws<BlockImageException>(() => BlockImage.Open(path));

        Assert.Equal(BlockImageProblem.Empty, e.Problem);
        Assert.Equal($"Disk image '{path}' is empty (0 bytes). Give it a size first, for example: truncate -s 1G '{path}'.", e.Message);
    }

    [Fact]
    public void NoWritePermission_SaysSoAndSuggestsReadOnly()
    {
        Assert.SkipWhen(Environment.IsPrivilegedProcess, "root opens any file for writing; run as a normal user to check EACCES");
        string path = NewImage(4096);
        File.SetUnixFileMode(path, UnixFileMode.UserRead);

        var e = Assert.Throws<BlockImageException>(() => BlockImage.Open(path));
        using var readOnly = BlockImage.Open(path, readOnly: true);

        Assert.Equal(BlockImageProblem.PermissionDenied, e.Problem);
        Assert.Equal($"Permission denied opening disk image '{path}' for writing. Make it writable by this user, or attach it read-only.", e.Message);
    }

    // ---- Locking. ----

    [Fact]
    public void SecondReadWriteOpen_IsRefused_NamingThisProcess()
    {
        string path = NewImage(4096);
        using var first = BlockImage.Open(path);

        var e = Assert.Throws<BlockImageException>(() => BlockImage.Open(path));

        int pid = Environment.ProcessId;
        Assert.Equal(BlockImageProblem.Locked, e.Problem);
        Assert.Equal(pid, e.HolderPid);
        Assert.Equal(
            string.Create(CultureInfo.InvariantCulture, $"Disk image '{path}' is in use by process {pid} (this process), which holds a write lock on it. Stop that VM or program first, or give this VM its own copy of the image."),
            e.Message);
    }

    [Fact]
    public void RepeatedRefusals_StillNameThePid()
    {
        // Closing the refused descriptor drops this process's process locks on the file (POSIX semantics), so the
        // second refusal finds the holder through /proc instead.
        string path = NewImage(4096);
        using var first = BlockImage.Open(path);

        var e1 = Assert.Throws<BlockImageException>(() => BlockImage.Open(path));
        var e2 = Assert.Throws<BlockImageException>(() => BlockImage.Open(path, readOnly: true));

        Assert.Equal(Environment.ProcessId, e1.HolderPid);
        Assert.Equal(Environment.ProcessId, e2.HolderPid);
        Assert.Contains("which holds a write lock on it", e2.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ReadOnlyOpens_ShareAnImage()
    {
        string path = NewImage(4096);

        using var first = BlockImage.Open(path, readOnly: true);
        using var second = BlockImage.Open(path, readOnly: true);

        Assert.True(first.IsReadOnly && second.IsReadOnly);
    }

    [Fact]
    public void WriterAfterAReader_IsRefused_WithTheReadOnlyAdvice()
    {
        string path = NewImage(4096);
        using var reader = BlockImage.Open(path, readOnly: true);

        var e = Assert.Throws<BlockImageException>(() => BlockImage.Open(path));

        Assert.Equal(
            string.Create(CultureInfo.InvariantCulture, $"Disk image '{path}' is in use by process {Environment.ProcessId} (this process), which holds a read lock on it. Stop it first, or attach the image read-only here too."),
            e.Message);
    }

    [Fact]
    public void ReaderAfterAWriter_IsRefused()
    {
        string path = NewImage(4096);
        using var writer = BlockImage.Open(path);

        var e = Assert.Throws<BlockImageException>(() => BlockImage.Open(path, readOnly: true));

        Assert.Equal(BlockImageProblem.Locked, e.Problem);
        Assert.Contains("which holds a write lock on it", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Dispose_ReleasesTheLock()
    {
        string path = NewImage(4096);
        BlockImage.Open(path).Dispose();

        using var again = BlockImage.Open(path);

        Assert.False(again.IsReadOnly);
    }

    [Theory]
    [InlineData("ofd")]   // what QEMU and KvmSharp take: found through /proc/PID/fdinfo
    [InlineData("posix")] // lockf(3): F_OFD_GETLK reports the pid directly
    public void ImageLockedByAnotherProcess_IsRefused_NamingItsPid(string kind)
    {
        string path = NewImage(4096);
        using var holder = LockHolder.Start(path, kind);

        var e = Assert.Throws<BlockImageException>(() => BlockImage.Open(path));

        Assert.Equal(BlockImageProblem.Locked, e.Problem);
        Assert.Equal(holder.Pid, e.HolderPid);
        Assert.Equal(
            string.Create(CultureInfo.InvariantCulture, $"Disk image '{path}' is in use by process {holder.Pid}, which holds a write lock on it. Stop that VM or program first, or give this VM its own copy of the image."),
            e.Message);
    }

    private static int OpenFlags(BlockImage image)
    {
        string info = File.ReadAllText($"/proc/self/fdinfo/{image.Descriptor.Number}");
        string line = info.Split('\n').Single(l => l.StartsWith("flags:", StringComparison.Ordinal));
        return Convert.ToInt32(line["flags:".Length..].Trim(), 8);
    }

    private string NewImage(int length)
    {
        string path = Path.Combine(_directory, $"disk-{Guid.NewGuid():N}.img");
        File.WriteAllBytes(path, new byte[length]);
        return path;
    }

    /// <summary>A python3 child that write-locks a file until its stdin closes.</summary>
    private sealed class LockHolder : IDisposable
    {
        private const string Script = """
            import fcntl, os, struct, sys
            fd = os.open(sys.argv[1], os.O_RDWR)
            if sys.argv[2] == 'ofd':
                fcntl.fcntl(fd, fcntl.F_OFD_SETLK, struct.pack('hhqqi4x', fcntl.F_WRLCK, 0, 0, 0, 0))
            else:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            print('locked', flush=True)
            sys.stdin.read()
            """;

        private readonly Process _process;

        private LockHolder(Process process) => _process = process;

        public int Pid => _process.Id;

        public static LockHolder Start(string path, string kind)
        {
            var start = new ProcessStartInfo("python3")
            {
                RedirectStandardInput = true,
                RedirectStandardOutput = true,
                UseShellExecute = false,
            };
            start.ArgumentList.Add("-c");
            start.ArgumentList.Add(Script);
            start.ArgumentList.Add(path);
            start.ArgumentList.Add(kind);
            Process process;
            try
            {
                process = Process.Start(start)!;
            }
            catch (System.ComponentModel.Win32Exception)
            {
                Assert.Skip("python3 is needed to hold a lock from another process");
                throw;
            }

            var holder = new LockHolder(process);
            if (process.StandardOutput.ReadLine() != "locked")
            {
                holder.Dispose();
                Assert.Fail("The python3 lock holder did not take its lock.");
            }

            return holder;
        }

        public void Dispose()
        {
            _process.StandardInput.Close();
            if (!_process.WaitForExit(10_000))
            {
                _process.Kill();
            }

            _process.Dispose();
        }
    }
}
