using System.Globalization;
using KvmSharp.Native;

namespace KvmSharp.Devices.Virtio;

/// <summary>
/// A raw disk image (a regular file or a block device) opened for a virtio block device: validated, and locked
/// against other VMs for as long as it is open.
/// </summary>
/// <remarks>
/// <para>Locking. The image's whole byte range is locked with an open file description lock (F_OFD_SETLK): a write
/// lock for a read-write attach, a read lock for a read-only one, so any number of readers share an image and a
/// writer excludes everyone, whether the other opener is in this process or another. OFD locks are the kind QEMU
/// takes on the bytes 100-299 of an image, so QEMU and KvmSharp also see each other's locks. The kernel does not
/// name the holder of an OFD lock (F_OFD_GETLK reports pid -1), so to name it the image also gets a process lock
/// (F_SETLK) on one byte past the OFD range, which F_OFD_GETLK reports with its pid. A process lock is dropped when
/// its process closes any descriptor of the file, so as a fallback this reads /proc/*/fdinfo for a process holding
/// a lock on the same device and inode (visible for processes of the same user).</para>
/// <para>Read-only images are opened O_RDONLY. The size must be a non-zero multiple of 512 bytes.</para>
/// </remarks>
public sealed class BlockImage : IDisposable
{
    /// <summary>The virtio block sector: capacity, request offsets and data lengths are in these units.</summary>
    public const int SectorSize = 512;

    /// <summary>Length of the OFD lock from offset 0: every byte an image can have, and QEMU's lock bytes.</summary>
    internal const long ContentLockLength = 1L << 62;

    /// <summary>The byte (beyond any image's end) that carries the process lock naming the holder's pid.</summary>
    internal const long OwnerLockOffset = ContentLockLength;

    private readonly FileDescriptor _fd;

    private BlockImage(string path, FileDescriptor fd, bool readOnly, ulong size)
    {
        Path = path;
        _fd = fd;
        IsReadOnly = readOnly;
        Size = size;
    }

    public string Path { get; }

    public bool IsReadOnly { get; }

    /// <summary>Size in bytes (a multiple of <see cref="SectorSize"/>).</summary>
    public ulong Size { get; }

    /// <summary>Capacity in 512-byte sectors.</summary>
    public ulong SectorCount => Size / SectorSize;

    internal FileDescriptor Descriptor => _fd;

    /// <summary>
    /// Opens and locks the raw image at <paramref name="path"/>. Throws <see cref="BlockImageException"/> with a
    /// one-line message when the file is missing, a directory, not a whole number of sectors, not accessible, or
    /// locked by another VM.
    /// </summary>
    public static BlockImage Open(string path, bool readOnly = false)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        FileDescriptor fd;
        try
        {
            fd = FileDescriptor.Open(path, readOnly ? FileOpenFlags.ReadOnly : FileOpenFlags.ReadWrite);
        }
        catch (NativeErrorException e)
        {
            throw OpenFailure(path, readOnly, e.Errno);
        }

        try
        {
            var status = FileIo.GetStatus(fd);
            if (status.Kind == FileKind.Directory)
            {
                throw new BlockImageException(path, BlockImageProblem.IsDirectory, $"Disk image '{path}' is a directory. Give the path of a raw image file or a block device.");
            }

            if (status.Kind == FileKind.Other)
            {
                throw new BlockImageException(path, BlockImageProblem.NotFileOrBlockDevice, $"Disk image '{path}' is not a regular file or a block device. Give the path of a raw image file or a block device.");
            }

            long size = FileIo.GetEndOffset(fd);
            if (size == 0)
            {
                throw new BlockImageException(path, BlockImageProblem.Empty, $"Disk image '{path}' is empty (0 bytes). Give it a size first, for example: truncate -s 1G '{path}'.");
            }

            if (size % SectorSize != 0)
            {
                long roundedUp = ((size / SectorSize) + 1) * SectorSize;
                throw new BlockImageException(
                    path,
                    BlockImageProblem.NotSectorMultiple,
                    string.Create(CultureInfo.InvariantCulture, $"Disk image '{path}' is {size} bytes, not a whole number of 512-byte sectors. Resize it to a multiple of 512, for example: truncate -s {roundedUp} '{path}'."));
            }

            Lock(path, fd, readOnly, status);
            return new BlockImage(path, fd, readOnly, (ulong)size);
        }
        catch (NativeErrorException e)
        {
            fd.Dispose();
            throw new BlockImageException(path, BlockImageProblem.OpenFailed, $"Cannot use disk image '{path}': {e.Operation} failed with {Errno.Describe(e.Errno)}. Check that it is a readable raw image.", e.Errno);
        }
        catch
        {
            fd.Dispose();
            throw;
        }
    }

    public void Dispose() => _fd.Dispose();

    private static BlockImageException OpenFailure(string path, bool readOnly, int errno) => errno switch
    {
        Errno.ENOENT => new(path, BlockImageProblem.NotFound, $"Disk image '{path}' not found. Check the path, or create the image first, for example: truncate -s 1G '{path}'.", errno),
        Errno.EISDIR => new(path, BlockImageProblem.IsDirectory, $"Disk image '{path}' is a directory. Give the path of a raw image file or a block device.", errno),
        Errno.EACCES or Errno.EPERM => readOnly
            ? new(path, BlockImageProblem.PermissionDenied, $"Permission denied reading disk image '{path}'. Make it readable by this user.", errno)
            : new(path, BlockImageProblem.PermissionDenied, $"Permission denied opening disk image '{path}' for writing. Make it writable by this user, or attach it read-only.", errno),
        Errno.EROFS => new(path, BlockImageProblem.ReadOnlyFileSystem, $"Disk image '{path}' is on a read-only file system. Attach it read-only.", errno),
        _ => new(path, BlockImageProblem.OpenFailed, $"Cannot open disk image '{path}': {Errno.Describe(errno)}. Check the path and its permissions.", errno),
    };

    private static void Lock(string path, FileDescriptor fd, bool readOnly, FileStatus status)
    {
        var type = readOnly ? FileLockType.Read : FileLockType.Write;
        int errno = FileLocks.TryLockOpenFileDescription(fd, type, 0, ContentLockLength);
        if (errno == Errno.EAGAIN || errno == Errno.EACCES)
        {
            throw LockedFailure(path, fd, type, status);
        }

        if (errno != 0)
        {
            throw new BlockImageException(path, BlockImageProblem.LockingUnsupported, $"Disk image '{path}' cannot be locked against other VMs ({Errno.Describe(errno)}). Move it to a local file system that supports record locks.", errno);
        }

        // Informational only: lets another opener learn this pid. Failure (another process's lock on the byte, say)
        // changes nothing about the protection, which the OFD lock gives.
        _ = FileLocks.TryLockProcess(fd, type, OwnerLockOffset, 1);
    }

    private static BlockImageException LockedFailure(string path, FileDescriptor fd, FileLockType wanted, FileStatus status)
    {
        FileLockType holderType = FileLockType.Write;
        int? pid = null;
        try
        {
            // A process lock on the content range (another program's lockf, say) names its holder directly.
            if (FileLocks.FindConflict(fd, wanted, 0, ContentLockLength) is { } content)
            {
                holderType = content.Type;
                if (content.Pid > 0)
                {
                    pid = content.Pid;
                }
            }

            // An OFD holder does not say who it is; a KvmSharp holder's process lock on the owner byte does.
            if (pid is null && FileLocks.FindConflict(fd, FileLockType.Write, OwnerLockOffset, 1) is { Pid: > 0 } owner)
            {
                pid = owner.Pid;
            }
        }
        catch (NativeErrorException)
        {
            // The query is a courtesy for the message; the lock failure itself stands.
        }

        pid ??= FindLockHolderInProc(status);
        string kind = holderType == FileLockType.Write ? "write" : "read";
        string advice = wanted == FileLockType.Write && holderType == FileLockType.Read
            ? "Stop it first, or attach the image read-only here too."
            : "Stop that VM or program first, or give this VM its own copy of the image.";
        string message = pid is { } holder
            ? string.Create(CultureInfo.InvariantCulture, $"Disk image '{path}' is in use by process {holder}{(holder == Environment.ProcessId ? " (this process)" : string.Empty)}, which holds a {kind} lock on it. {advice}")
            : $"Disk image '{path}' is in use by another process, which holds a {kind} lock on it (its pid is not visible to this user). {advice}";
        return new BlockImageException(path, BlockImageProblem.Locked, message, Errno.EAGAIN, pid);
    }

    /// <summary>
    /// The pid of a process whose /proc/PID/fdinfo shows an OFD or POSIX lock on the image's device and inode
    /// (fs/locks.c prints "lock:\t1: OFDLCK ADVISORY  WRITE -1 fe:00:1234 0 EOF"), or null. Cold path.
    /// </summary>
    private static int? FindLockHolderInProc(FileStatus status)
    {
        string identity = string.Create(CultureInfo.InvariantCulture, $" {status.DeviceMajor:x2}:{status.DeviceMinor:x2}:{status.Inode} ");
        try
        {
            foreach (string processDirectory in Directory.EnumerateDirectories("/proc"))
            {
                if (!int.TryParse(System.IO.Path.GetFileName(processDirectory), NumberStyles.None, CultureInfo.InvariantCulture, out int pid))
                {
                    continue;
                }

                if (ProcessHoldsLock(processDirectory, identity))
                {
                    return pid;
                }
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // No /proc, or it cannot be listed: the pid stays unknown.
        }

        return null;
    }

    private static bool ProcessHoldsLock(string processDirectory, string identity)
    {
        try
        {
            foreach (string fdInfo in Directory.EnumerateFiles(processDirectory + "/fdinfo"))
            {
                string text;
                try
                {
                    text = File.ReadAllText(fdInfo);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    continue; // The descriptor closed meanwhile, or belongs to another user.
                }

                foreach (var line in text.AsSpan().EnumerateLines())
                {
                    if (line.StartsWith("lock:", StringComparison.Ordinal)
                        && (line.Contains("OFDLCK", StringComparison.Ordinal) || line.Contains("POSIX", StringComparison.Ordinal))
                        && line.Contains(identity, StringComparison.Ordinal))
                    {
                        return true;
                    }
                }
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // The process exited, or its fdinfo is not ours to read.
        }

        return false;
    }
}
