namespace KvmSharp.Native.Tests;

/// <summary>Vectored positioned I/O, fallocate, statx, record locks and getrandom against real files.</summary>
public sealed class FileIoTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("kvmsharp-fileio-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public unsafe void ReadVectored_MoreVectorsThanIovMax_ReadsInOrder()
    {
        byte[] content = Pattern(3 * 1500);
        using var fd = FileDescriptor.Open(NewFile(content), FileOpenFlags.ReadOnly);
        byte[] target = GC.AllocateArray<byte>(content.Length, pinned: true);
        var vectors = new IoVectorList(1500);
        fixed (byte* start = target)
        {
            for (int i = 0; i < 1500; i++)
            {
                Assert.True(vectors.TryAdd((nint)(start + (3 * i)), 3));
            }

            long read = FileIo.ReadVectored(fd, vectors, 0);

            Assert.Equal(content.Length, read);
        }

        Assert.Equal(content, target);
    }

    [Fact]
    public unsafe void ReadVectored_PastTheEnd_ReturnsTheShortCount()
    {
        byte[] content = Pattern(1000);
        using var fd = FileDescriptor.Open(NewFile(content), FileOpenFlags.ReadOnly);
        byte[] target = GC.AllocateArray<byte>(1024, pinned: true);
        var vectors = new IoVectorList(2);
        fixed (byte* start = target)
        {
            vectors.TryAdd((nint)start, 512);
            vectors.TryAdd((nint)(start + 512), 512);

            long read = FileIo.ReadVectored(fd, vectors, 100);

            Assert.Equal(900, read);
        }

        Assert.Equal(content[100..], target[..900]);
    }

    [Fact]
    public unsafe void WriteVectored_GathersEveryVector_AtTheOffset()
    {
        string path = NewFile(new byte[8192]);
        using var fd = FileDescriptor.Open(path, FileOpenFlags.ReadWrite);
        byte[] source = GC.AllocateArray<byte>(5 * 1100, pinned: true);
        Pattern(source.Length).CopyTo(source, 0);
        var vectors = new IoVectorList(1100);
        fixed (byte* start = source)
        {
            for (int i = 0; i < 1100; i++)
            {
                vectors.TryAdd((nint)(start + (5 * i)), 5);
            }

            Assert.Equal(5500, FileIo.WriteVectored(fd, vectors, 1000));
        }

        byte[] file = File.ReadAllBytes(path);
        Assert.Equal(source, file[1000..6500]);
        Assert.Equal(new byte[1000], file[..1000]);
        Assert.Equal(8192, file.Length);
    }

    [Fact]
    public void IoVectorList_SkipsEmptyRanges_AndRefusesWhenFull()
    {
        var vectors = new IoVectorList(1);

        Assert.True(vectors.TryAdd(0x1000, 0));
        Assert.True(vectors.TryAdd(0x1000, 7));
        Assert.False(vectors.TryAdd(0x2000, 1));
        Assert.Equal(1, vectors.Count);
        Assert.Equal(7UL, vectors.TotalLength);
    }

    [Fact]
    public void WriteVectored_OnAReadOnlyDescriptor_ReturnsMinusEbadf()
    {
        using var fd = FileDescriptor.Open(NewFile(new byte[512]), FileOpenFlags.ReadOnly);
        var vectors = new IoVectorList(1);
        vectors.TryAdd(0x1000, 1); // never touched: the kernel checks the descriptor first

        Assert.Equal(-9, FileIo.WriteVectored(fd, vectors, 0)); // EBADF
    }

    [Fact]
    public void PunchHole_KeepSize_ZeroesTheRange()
    {
        string path = NewFile(Pattern(16384));
        using var fd = FileDescriptor.Open(path, FileOpenFlags.ReadWrite);

        Assert.Equal(0, FileIo.Allocate(fd, FallocateMode.PunchHole | FallocateMode.KeepSize, 4096, 4096));
        Assert.Equal(0, FileIo.DataSync(fd));

        byte[] file = File.ReadAllBytes(path);
        Assert.Equal(16384, file.Length);
        Assert.Equal(new byte[4096], file[4096..8192]);
        Assert.Equal(Pattern(16384)[8192..], file[8192..]);
    }

    [Fact]
    public void GetStatus_TellsFilesDirectoriesAndDevicesApart()
    {
        using var file = FileDescriptor.Open(NewFile(new byte[1536]), FileOpenFlags.ReadOnly);
        using var directory = FileDescriptor.Open(_directory, FileOpenFlags.ReadOnly);
        using var device = FileDescriptor.Open("/dev/null", FileOpenFlags.ReadOnly);

        var status = FileIo.GetStatus(file);

        Assert.Equal(FileKind.Regular, status.Kind);
        Assert.Equal(1536UL, status.Size);
        Assert.Equal(1536, FileIo.GetEndOffset(file));
        Assert.NotEqual(0UL, status.Inode);
        Assert.Equal(FileKind.Directory, FileIo.GetStatus(directory).Kind);
        Assert.Equal(FileKind.Other, FileIo.GetStatus(device).Kind);
    }

    [Fact]
    public void OfdLocks_ConflictBetweenTwoOpensOfOneProcess_AndHideThePid()
    {
        string path = NewFile(new byte[512]);
        using var first = FileDescriptor.Open(path, FileOpenFlags.ReadWrite);
        using var second = FileDescriptor.Open(path, FileOpenFlags.ReadWrite);

        Assert.Equal(0, FileLocks.TryLockOpenFileDescription(first, FileLockType.Write, 0, 0));
        int errno = FileLocks.TryLockOpenFileDescription(second, FileLockType.Read, 0, 100);
        var conflict = FileLocks.FindConflict(second, FileLockType.Read, 0, 100);

        Assert.Equal(Errno.EAGAIN, errno);
        Assert.Equal(new FileLockConflict(FileLockType.Write, -1, 0, 0), conflict);
    }

    [Fact]
    public void ProcessLock_IsReportedWithThisPid_ToAnOfdQuery()
    {
        string path = NewFile(new byte[512]);
        using var holder = FileDescriptor.Open(path, FileOpenFlags.ReadWrite);
        using var asker = FileDescriptor.Open(path, FileOpenFlags.ReadWrite);

        Assert.Equal(0, FileLocks.TryLockProcess(holder, FileLockType.Read, 1000, 1));

        Assert.Equal(new FileLockConflict(FileLockType.Read, Environment.ProcessId, 1000, 1), FileLocks.FindConflict(asker, FileLockType.Write, 0, 0));
        Assert.Null(FileLocks.FindConflict(asker, FileLockType.Read, 0, 0));
    }

    [Fact]
    public void HostRandom_FillsLargeBuffers()
    {
        byte[] a = new byte[1 << 20];
        byte[] b = new byte[1 << 20];

        Assert.Equal(0, HostRandom.Fill(a));
        Assert.Equal(0, HostRandom.Fill(b));

        Assert.NotEqual(a, b);
        Assert.True(a.Count(static x => x == 0) < 8192); // about 4096 zeros expected in 1 MiB
    }

    private string NewFile(byte[] content)
    {
        string path = Path.Combine(_directory, Guid.NewGuid().ToString("N"));
        File.WriteAllBytes(path, content);
        return path;
    }

    private static byte[] Pattern(int length)
    {
        var bytes = new byte[length];
        for (int i = 0; i < length; i++)
        {
            bytes[i] = (byte)((i * 31) + (i >> 8));
        }

        return bytes;
    }
}
