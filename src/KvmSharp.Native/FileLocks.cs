namespace KvmSharp.Native;

/// <summary>
/// fcntl(2) record locks. Open file description (OFD) locks belong to one open of the file: they conflict with every
/// other open, in this process or another, and survive closing other descriptors of the same file. Process
/// ("classic" POSIX) locks belong to the process: the kernel names the holder's pid when one conflicts, but they
/// never conflict within the process and vanish when the process closes any descriptor of the file.
/// </summary>
public static class FileLocks
{
    /// <summary>Takes an OFD lock without waiting (F_OFD_SETLK). Returns 0, or errno: EAGAIN or EACCES when another lock conflicts.</summary>
    public static int TryLockOpenFileDescription(FileDescriptor fd, FileLockType type, long start, long length) =>
        SetLock(fd, Interop.Libc.F_OFD_SETLK, type, start, length);

    /// <summary>Takes a process lock without waiting (F_SETLK). Returns 0, or errno: EAGAIN or EACCES when another lock conflicts.</summary>
    public static int TryLockProcess(FileDescriptor fd, FileLockType type, long start, long length) =>
        SetLock(fd, Interop.Libc.F_SETLK, type, start, length);

    /// <summary>
    /// The first lock that would block an OFD lock of <paramref name="type"/> on the range through
    /// <paramref name="fd"/> (F_OFD_GETLK), or null. Process locks of this very process count as conflicts here, so
    /// their pid is reported; an OFD lock's holder is reported as pid -1 (the kernel does not say).
    /// </summary>
    public static unsafe FileLockConflict? FindConflict(FileDescriptor fd, FileLockType type, long start, long length)
    {
        ArgumentNullException.ThrowIfNull(fd);
        var query = new Interop.Libc.flock_t
        {
            l_type = type == FileLockType.Write ? Interop.Libc.F_WRLCK : Interop.Libc.F_RDLCK,
            l_whence = Interop.Libc.SEEK_SET,
            l_start = start,
            l_len = length,
        };
        // SAFETY: query is a stack flock that lives for the call; the kernel reads and rewrites it.
        if (Interop.Libc.FcntlLock(fd, Interop.Libc.F_OFD_GETLK, &query) != 0)
        {
            int errno = Errno.Last;
            throw new NativeErrorException($"fcntl(fd {fd.Number}, F_OFD_GETLK)", errno);
        }

        if (query.l_type == Interop.Libc.F_UNLCK)
        {
            return null;
        }

        return new FileLockConflict(
            query.l_type == Interop.Libc.F_WRLCK ? FileLockType.Write : FileLockType.Read,
            query.l_pid,
            query.l_start,
            query.l_len);
    }

    private static unsafe int SetLock(FileDescriptor fd, int command, FileLockType type, long start, long length)
    {
        ArgumentNullException.ThrowIfNull(fd);
        var request = new Interop.Libc.flock_t
        {
            l_type = type == FileLockType.Write ? Interop.Libc.F_WRLCK : Interop.Libc.F_RDLCK,
            l_whence = Interop.Libc.SEEK_SET,
            l_start = start,
            l_len = length,
            l_pid = 0, // OFD locks require 0 here.
        };
        while (true)
        {
            // SAFETY: request is a stack flock that lives for the call; the kernel only reads it.
            if (Interop.Libc.FcntlLock(fd, command, &request) == 0)
            {
                return 0;
            }

            int errno = Errno.Last;
            if (errno != Errno.EINTR)
            {
                return errno;
            }
        }
    }
}

public enum FileLockType
{
    Read,
    Write,
}

/// <summary>A lock that conflicts with a requested one: its type, holder pid (-1 for an OFD lock) and byte range (length 0: to the end of the file and beyond).</summary>
public readonly record struct FileLockConflict(FileLockType Type, int Pid, long Start, long Length);
