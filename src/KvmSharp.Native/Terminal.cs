namespace KvmSharp.Native;

/// <summary>
/// The controlling terminal of a standard stream: raw mode for an interactive guest console, restored
/// exactly on <see cref="Dispose"/> (call it on every exit path).
/// </summary>
public sealed unsafe class Terminal : IDisposable
{
    private readonly int _fd;
    private Interop.Libc.termios_t _saved;
    private bool _raw;

    private Terminal(int fd)
    {
        _fd = fd;
    }

    public static bool IsTerminal(int fd) => Interop.Libc.IsATty(fd) == 1;

    /// <summary>Puts <paramref name="fd"/> (a TTY) into raw mode: bytes pass through unprocessed, no echo, no signals.</summary>
    public static Terminal EnterRawMode(int fd)
    {
        var terminal = new Terminal(fd);
        Interop.Libc.termios_t saved;
        // SAFETY: the kernel fills a stack local of glibc's termios_t layout.
        if (Interop.Libc.TcGetAttr(fd, &saved) != 0)
        {
            int errno = Errno.Last;
            throw new NativeErrorException($"tcgetattr(fd {fd})", errno);
        }

        terminal._saved = saved;
        var raw = saved;
        Interop.Libc.CfMakeRaw(&raw);
        // Keep output post-processing (\n -> \r\n) so the VMM's own messages stay readable; the guest's
        // serial console output is already \r\n.
        raw.c_oflag = saved.c_oflag;
        if (Interop.Libc.TcSetAttr(fd, Interop.Libc.TCSANOW, &raw) != 0)
        {
            int errno = Errno.Last;
            throw new NativeErrorException($"tcsetattr(fd {fd})", errno);
        }

        terminal._raw = true;
        return terminal;
    }

    public void Dispose()
    {
        if (!_raw)
        {
            return;
        }

        _raw = false;
        var saved = _saved;
        // SAFETY: restores the attributes read at entry from a stack local.
        _ = Interop.Libc.TcSetAttr(_fd, Interop.Libc.TCSANOW, &saved);
    }
}

/// <summary>Blocking reads from a raw fd (stdin) with a timeout, for the console input thread.</summary>
public static unsafe class RawInput
{
    /// <summary>
    /// Waits up to <paramref name="timeoutMs"/> for input on <paramref name="fd"/> and reads what is there.
    /// Returns the byte count, 0 on timeout, or -1 at end of input (EOF, hang-up, or a closed descriptor).
    /// </summary>
    public static int Read(int fd, Span<byte> buffer, int timeoutMs)
    {
        var poll = new Interop.Libc.pollfd_t { fd = fd, events = Interop.Libc.POLLIN };
        // SAFETY: one pollfd_t on the stack.
        int ready = Interop.Libc.Poll(&poll, 1, timeoutMs);
        if (ready < 0)
        {
            int errno = Errno.Last;
            return errno == Errno.EINTR ? 0 : throw new NativeErrorException("poll(stdin)", errno);
        }

        if (ready == 0)
        {
            return 0;
        }

        fixed (byte* p = buffer)
        {
            // SAFETY: reads at most buffer.Length bytes into the pinned buffer.
            nint n = Interop.Libc.ReadRaw(fd, p, (nuint)buffer.Length);
            if (n > 0)
            {
                return (int)n;
            }

            if (n == 0)
            {
                return -1;
            }

            int errno = Errno.Last;
            return errno is Errno.EINTR or Errno.EAGAIN ? 0 : -1;
        }
    }
}
