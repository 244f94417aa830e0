namespace KvmSharp.Native;

/// <summary>
/// Non-positional I/O on sockets, TAP devices and pipes for the device event loop: one system call each, EINTR
/// retried, every other failure (EAGAIN included) returned as -errno so the caller decides without an exception.
/// </summary>
public static class StreamIo
{
    /// <summary>
    /// Creates a connected AF_UNIX stream pair. Both ends are close-on-exec unless <paramref name="inheritSecond"/>,
    /// which leaves the second end inheritable (to hand it to a child process, which sees the same number).
    /// </summary>
    public static unsafe (FileDescriptor First, FileDescriptor Second) CreateSocketPair(bool inheritSecond)
    {
        int* fds = stackalloc int[2];
        // SAFETY: fds has room for the two descriptors socketpair writes.
        if (Interop.Libc.SocketPair(Interop.Libc.AF_UNIX, Interop.Libc.SOCK_STREAM | Interop.Libc.SOCK_CLOEXEC, 0, fds) != 0)
        {
            int errno = Errno.Last;
            throw new NativeErrorException("socketpair(AF_UNIX, SOCK_STREAM)", errno);
        }

        var first = new FileDescriptor(fds[0]);
        var second = new FileDescriptor(fds[1]);
        if (inheritSecond && Interop.Libc.FcntlInt(second, Interop.Libc.F_SETFD, 0) != 0)
        {
            int errno = Errno.Last;
            first.Dispose();
            second.Dispose();
            throw new NativeErrorException("fcntl(F_SETFD)", errno);
        }

        return (first, second);
    }

    /// <summary>
    /// Asks for socket buffers of <paramref name="bytes"/> each way (SO_SNDBUF, SO_RCVBUF; the kernel doubles the
    /// value and caps it at net.core.wmem_max/rmem_max). Returns 0 or -errno.
    /// </summary>
    public static unsafe int SetSocketBuffers(FileDescriptor fd, int bytes)
    {
        ArgumentNullException.ThrowIfNull(fd);
        int value = bytes;
        // SAFETY: setsockopt reads one int from the pointer.
        if (Interop.Libc.SetSockOpt(fd, Interop.Libc.SOL_SOCKET, Interop.Libc.SO_SNDBUF, &value, sizeof(int)) != 0
            || Interop.Libc.SetSockOpt(fd, Interop.Libc.SOL_SOCKET, Interop.Libc.SO_RCVBUF, &value, sizeof(int)) != 0)
        {
            return -Errno.Last;
        }

        return 0;
    }

    /// <summary>Sets O_NONBLOCK on <paramref name="fd"/>.</summary>
    public static void SetNonBlocking(FileDescriptor fd)
    {
        ArgumentNullException.ThrowIfNull(fd);
        int flags = Interop.Libc.FcntlInt(fd, Interop.Libc.F_GETFL, 0);
        if (flags < 0 || Interop.Libc.FcntlInt(fd, Interop.Libc.F_SETFL, flags | Interop.Libc.O_NONBLOCK) != 0)
        {
            int errno = Errno.Last;
            throw new NativeErrorException("fcntl(F_SETFL, O_NONBLOCK)", errno);
        }
    }

    /// <summary>read(2) into <paramref name="buffer"/>: the byte count (0 at end of stream), or -errno.</summary>
    public static unsafe long Read(FileDescriptor fd, Span<byte> buffer)
    {
        fixed (byte* p = buffer)
        {
            while (true)
            {
                // SAFETY: p points at buffer.Length writable bytes pinned for the call.
                nint n = Interop.Libc.Read(fd, p, (nuint)buffer.Length);
                if (n >= 0)
                {
                    return n;
                }

                int errno = Errno.Last;
                if (errno != Errno.EINTR)
                {
                    return -errno;
                }
            }
        }
    }

    /// <summary>write(2) of <paramref name="buffer"/>: the byte count taken (possibly fewer), or -errno.</summary>
    public static unsafe long Write(FileDescriptor fd, ReadOnlySpan<byte> buffer)
    {
        fixed (byte* p = buffer)
        {
            while (true)
            {
                // SAFETY: p points at buffer.Length readable bytes pinned for the call.
                nint n = Interop.Libc.Write(fd, p, (nuint)buffer.Length);
                if (n >= 0)
                {
                    return n;
                }

                int errno = Errno.Last;
                if (errno != Errno.EINTR)
                {
                    return -errno;
                }
            }
        }
    }

    /// <summary>
    /// One writev(2) of the list's vectors (at most IOV_MAX): the byte count taken, or -errno. A stream socket may
    /// take fewer bytes than offered; a TAP device takes a whole frame or fails.
    /// </summary>
    public static long WriteVectored(FileDescriptor fd, IoVectorList vectors) => Vectored(fd, vectors, write: true);

    /// <summary>One readv(2) into the list's vectors (at most IOV_MAX): the byte count, 0 at end of stream, or -errno.</summary>
    public static long ReadVectored(FileDescriptor fd, IoVectorList vectors) => Vectored(fd, vectors, write: false);

    private static unsafe long Vectored(FileDescriptor fd, IoVectorList vectors, bool write)
    {
        ArgumentNullException.ThrowIfNull(fd);
        ArgumentNullException.ThrowIfNull(vectors);
        if (vectors.Count > Interop.Libc.IOV_MAX)
        {
            return -Errno.EINVAL;
        }

        fixed (Interop.Libc.iovec_t* first = vectors.Vectors)
        {
            while (true)
            {
                // SAFETY: the pinned array holds Count vectors, each a live range (writable, for a read) by
                // IoVectorList.TryAdd's contract.
                nint n = write ? Interop.Libc.Writev(fd, first, vectors.Count) : Interop.Libc.Readv(fd, first, vectors.Count);
                if (n >= 0)
                {
                    return n;
                }

                int errno = Errno.Last;
                if (errno != Errno.EINTR)
                {
                    return -errno;
                }
            }
        }
    }
}
