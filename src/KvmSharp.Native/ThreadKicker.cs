namespace KvmSharp.Native;

/// <summary>
/// Interrupts a thread blocked in a system call (KVM_RUN) by sending it SIGUSR1. The handler is a single
/// <c>ret</c> instruction in an executable page: it does nothing, but its existence makes the signal
/// interrupt the call with EINTR instead of killing the process, and no managed code runs in signal context.
/// SA_RESTART keeps the thread's other system calls transparent to a kick; KVM_RUN still returns EINTR.
/// </summary>
public static class ThreadKicker
{
    private static readonly Lock InstallLock = new();
    private static MemoryMapping? _handlerPage;

    public const int Signal = Interop.Libc.SIGUSR1;

    /// <summary>Installs the no-op handler once per process.</summary>
    public static unsafe void EnsureInstalled()
    {
        lock (InstallLock)
        {
            if (_handlerPage is not null)
            {
                return;
            }

            ReadOnlySpan<byte> ret = [0xC3];
            var page = MemoryMapping.Executable(ret);
            var action = new Interop.Libc.sigaction_t { sa_handler = page.Address, sa_flags = Interop.Libc.SA_RESTART };
            Interop.Libc.sigaction_t old;
            // SAFETY: both structs are stack locals of glibc's layout; the handler page stays mapped for the process's life.
            if (Interop.Libc.SigAction(Signal, &action, &old) != 0)
            {
                int errno = Errno.Last;
                page.Dispose();
                throw new NativeErrorException("sigaction(SIGUSR1)", errno);
            }

            _handlerPage = page;
        }
    }

    /// <summary>The calling thread's pthread id, to pass to <see cref="Kick"/> from another thread.</summary>
    public static nuint CurrentThread() => Interop.Libc.PthreadSelf();

    /// <summary>The calling thread's kernel thread id (what top -H shows).</summary>
    public static int CurrentThreadId() => Interop.Libc.GetTid();

    /// <summary>Sends the kick signal to <paramref name="thread"/>; returns false if the thread has gone.</summary>
    public static bool Kick(nuint thread)
    {
        int rc = Interop.Libc.PthreadKill(thread, Signal);
        return rc == 0;
    }
}
