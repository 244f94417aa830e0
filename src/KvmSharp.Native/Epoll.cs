namespace KvmSharp.Native;

/// <summary>An epoll(7) instance for the device event loop.</summary>
public sealed class Epoll : IDisposable
{
    public const uint Readable = 0x001;
    public const uint Writable = 0x004;
    public const uint Error = 0x008;
    public const uint HangUp = 0x010;
    public const uint EdgeTriggered = 1u << 31;

    public Epoll()
    {
        int fd = Interop.Libc.EpollCreate1(Interop.Libc.EPOLL_CLOEXEC);
        if (fd < 0)
        {
            int errno = Errno.Last;
            throw new NativeErrorException("epoll_create1", errno);
        }

        Descriptor = new FileDescriptor(fd);
    }

    public FileDescriptor Descriptor { get; }

    public void Add(FileDescriptor fd, uint events, ulong token) => Control(Interop.Libc.EPOLL_CTL_ADD, fd, events, token, "EPOLL_CTL_ADD");

    public void Modify(FileDescriptor fd, uint events, ulong token) => Control(Interop.Libc.EPOLL_CTL_MOD, fd, events, token, "EPOLL_CTL_MOD");

    public void Remove(FileDescriptor fd) => Control(Interop.Libc.EPOLL_CTL_DEL, fd, 0, 0, "EPOLL_CTL_DEL");

    /// <summary>Waits up to <paramref name="timeoutMs"/> (-1: forever); fills <paramref name="ready"/>; returns the count (0 on timeout or EINTR).</summary>
    public unsafe int Wait(Span<EpollEvent> ready, int timeoutMs)
    {
        if (ready.IsEmpty)
        {
            throw new ArgumentException("Need room for at least one event.", nameof(ready));
        }

        const int MaxBatch = 64;
        Interop.Libc.epoll_event* raw = stackalloc Interop.Libc.epoll_event[MaxBatch];
        int max = Math.Min(ready.Length, MaxBatch);
        // SAFETY: raw has MaxBatch entries and the kernel writes at most max of them.
        int n = Interop.Libc.EpollWait(Descriptor, raw, max, timeoutMs);
        if (n < 0)
        {
            int errno = Errno.Last;
            if (errno == Errno.EINTR)
            {
                return 0;
            }

            throw new NativeErrorException("epoll_wait", errno);
        }

        for (int i = 0; i < n; i++)
        {
            ready[i] = new EpollEvent(raw[i].events, raw[i].data);
        }

        return n;
    }

    public void Dispose() => Descriptor.Dispose();

    private unsafe void Control(int op, FileDescriptor fd, uint events, ulong token, string name)
    {
        var ev = new Interop.Libc.epoll_event { events = events, data = token };
        // SAFETY: ev lives on the stack for the duration of the call; the kernel only reads it.
        if (Interop.Libc.EpollCtl(Descriptor, op, fd, &ev) != 0)
        {
            int errno = Errno.Last;
            throw new NativeErrorException($"epoll_ctl({name}, fd {fd.Number})", errno);
        }
    }
}

public readonly record struct EpollEvent(uint Events, ulong Token);
