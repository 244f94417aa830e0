namespace KvmSharp.Native;

/// <summary>
/// Positioned file I/O for disk images: vectored reads and writes straight into caller memory, fdatasync and
/// fallocate. The hot-path calls return errno instead of throwing (a failed disk request is answered to the guest,
/// not raised) and allocate nothing; the open-time queries throw <see cref="NativeErrorException"/>.
/// </summary>
public static class FileIo
{
    /// <summary>
    /// Reads from <paramref name="fd"/> at <paramref name="offset"/> into <paramref name="vectors"/> until they are
    /// full, the file ends, or an error. Retries EINTR and short reads. Returns the bytes read (below
    /// <see cref="IoVectorList.TotalLength"/> only at end of file) or -errno. The list is consumed: its vectors are
    /// advanced past the bytes moved.
    /// </summary>
    public static long ReadVectored(FileDescriptor fd, IoVectorList vectors, long offset) => Transfer(fd, vectors, offset, write: false);

    /// <summary>
    /// Writes <paramref name="vectors"/> to <paramref name="fd"/> at <paramref name="offset"/>; retries EINTR and
    /// short writes. Returns the bytes written (below the total only when the kernel accepted nothing more) or
    /// -errno. The list is consumed.
    /// </summary>
    public static long WriteVectored(FileDescriptor fd, IoVectorList vectors, long offset) => Transfer(fd, vectors, offset, write: true);

    /// <summary>fdatasync(2), retrying EINTR; returns 0 or errno.</summary>
    public static int DataSync(FileDescriptor fd)
    {
        ArgumentNullException.ThrowIfNull(fd);
        while (Interop.Libc.Fdatasync(fd) != 0)
        {
            int errno = Errno.Last;
            if (errno != Errno.EINTR)
            {
                return errno;
            }
        }

        return 0;
    }

    /// <summary>fallocate(2), retrying EINTR; returns 0 or errno (EOPNOTSUPP when the file system cannot do <paramref name="mode"/>).</summary>
    public static int Allocate(FileDescriptor fd, FallocateMode mode, long offset, long length)
    {
        ArgumentNullException.ThrowIfNull(fd);
        while (Interop.Libc.Fallocate(fd, (int)mode, offset, length) != 0)
        {
            int errno = Errno.Last;
            if (errno != Errno.EINTR)
            {
                return errno;
            }
        }

        return 0;
    }

    /// <summary>Type, size and identity of an open file (statx(2) with AT_EMPTY_PATH); throws <see cref="NativeErrorException"/>.</summary>
    public static unsafe FileStatus GetStatus(FileDescriptor fd)
    {
        ArgumentNullException.ThrowIfNull(fd);
        Interop.Libc.statx_t buffer = default;
        byte emptyPath = 0;
        uint mask = Interop.Libc.STATX_TYPE | Interop.Libc.STATX_MODE | Interop.Libc.STATX_INO | Interop.Libc.STATX_SIZE;
        // SAFETY: emptyPath is a NUL-terminated empty string and buffer a stack statx the kernel fills; both live for the call.
        if (Interop.Libc.Statx(fd, &emptyPath, Interop.Libc.AT_EMPTY_PATH, mask, &buffer) != 0)
        {
            int errno = Errno.Last;
            throw new NativeErrorException($"statx(fd {fd.Number})", errno);
        }

        var type = (buffer.stx_mode & Interop.Libc.ModeTypeMask) switch
        {
            Interop.Libc.ModeRegular => FileKind.Regular,
            Interop.Libc.ModeDirectory => FileKind.Directory,
            Interop.Libc.ModeBlockDevice => FileKind.BlockDevice,
            _ => FileKind.Other,
        };
        return new FileStatus(type, buffer.stx_size, buffer.stx_dev_major, buffer.stx_dev_minor, buffer.stx_ino);
    }

    /// <summary>The offset of the end of the file (lseek SEEK_END): the size of a regular file or a block device.</summary>
    public static long GetEndOffset(FileDescriptor fd)
    {
        ArgumentNullException.ThrowIfNull(fd);
        long end = Interop.Libc.Lseek(fd, 0, Interop.Libc.SEEK_END);
        if (end < 0)
        {
            int errno = Errno.Last;
            throw new NativeErrorException($"lseek(fd {fd.Number}, SEEK_END)", errno);
        }

        return end;
    }

    private static unsafe long Transfer(FileDescriptor fd, IoVectorList list, long offset, bool write)
    {
        ArgumentNullException.ThrowIfNull(fd);
        ArgumentNullException.ThrowIfNull(list);
        var vectors = list.Vectors;
        int count = list.Count;
        int first = 0;
        long done = 0;
        while (first < count)
        {
            int batch = Math.Min(count - first, Interop.Libc.IOV_MAX);
            nint moved;
            fixed (Interop.Libc.iovec_t* batchStart = &vectors[first])
            {
                // SAFETY: the array is pinned and holds count vectors; batch of them from first are in bounds. Each
                // vector's range is live memory by IoVectorList.TryAdd's contract; the kernel checks the rest (EFAULT).
                moved = write
                    ? Interop.Libc.Pwritev(fd, batchStart, batch, offset + done)
                    : Interop.Libc.Preadv(fd, batchStart, batch, offset + done);
            }

            if (moved < 0)
            {
                int errno = Errno.Last;
                if (errno == Errno.EINTR)
                {
                    continue;
                }

                return -errno;
            }

            if (moved == 0)
            {
                // End of file on a read; on a write the kernel took nothing, which retrying will not change.
                break;
            }

            done += moved;
            ulong left = (ulong)moved;
            while (left > 0)
            {
                ulong length = vectors[first].iov_len;
                if (left >= length)
                {
                    left -= length;
                    first++;
                }
                else
                {
                    vectors[first].iov_base = (byte*)vectors[first].iov_base + left;
                    vectors[first].iov_len = (nuint)(length - left);
                    left = 0;
                }
            }
        }

        return done;
    }
}

/// <summary>fallocate(2) modes (include/uapi/linux/falloc.h).</summary>
[Flags]
public enum FallocateMode
{
    Allocate = 0,
    KeepSize = Interop.Libc.FALLOC_FL_KEEP_SIZE,
    PunchHole = Interop.Libc.FALLOC_FL_PUNCH_HOLE,
    ZeroRange = Interop.Libc.FALLOC_FL_ZERO_RANGE,
}

public enum FileKind
{
    Regular,
    Directory,
    BlockDevice,
    Other,
}

/// <summary>What statx(2) says about an open file. <see cref="Size"/> is 0 for block devices (use <see cref="FileIo.GetEndOffset"/>).</summary>
public readonly record struct FileStatus(FileKind Kind, ulong Size, uint DeviceMajor, uint DeviceMinor, ulong Inode);
