namespace KvmSharp.Native;

/// <summary>An eventfd(2) counter: the kernel's cheapest doorbell (irqfd, ioeventfd, loop wake-ups).</summary>
public sealed class EventFd : IDisposable
{
    public EventFd(bool nonBlocking = true)
    {
        int flags = Interop.Libc.EFD_CLOEXEC | (nonBlocking ? Interop.Libc.EFD_NONBLOCK : 0);
        int fd = Interop.Libc.EventFd(0, flags);
        if (fd < 0)
        {
            int errno = Errno.Last;
            throw new NativeErrorException("eventfd", errno);
        }

        Descriptor = new FileDescriptor(fd);
    }

    public FileDescriptor Descriptor { get; }

    /// <summary>Adds <paramref name="value"/> to the counter.</summary>
    public unsafe void Signal(ulong value = 1)
    {
        while (true)
        {
            // SAFETY: an eventfd write takes exactly 8 bytes from a live stack local.
            nint n = Interop.Libc.Write(Descriptor, &value, sizeof(ulong));
            if (n == sizeof(ulong))
            {
                return;
            }

            int errno = Errno.Last;
            if (errno != Errno.EINTR)
            {
                throw new NativeErrorException("eventfd write", errno);
            }
        }
    }

    /// <summary>Reads and resets the counter; returns 0 when it was zero (non-blocking mode).</summary>
    public unsafe ulong Consume()
    {
        while (true)
        {
            ulong value;
            // SAFETY: an eventfd read writes exactly 8 bytes into a live stack local.
            nint n = Interop.Libc.Read(Descriptor, &value, sizeof(ulong));
            if (n == sizeof(ulong))
            {
                return value;
            }

            int errno = Errno.Last;
            if (errno == Errno.EAGAIN)
            {
                return 0;
            }

            if (errno != Errno.EINTR)
            {
                throw new NativeErrorException("eventfd read", errno);
            }
        }
    }

    public void Dispose() => Descriptor.Dispose();
}
