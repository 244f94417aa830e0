using System.Runtime.InteropServices;

namespace KvmSharp.Native;

internal static partial class Interop
{
    internal static partial class Libc
    {
        internal const int EPOLL_CLOEXEC = 0x80000;
        internal const int EPOLL_CTL_ADD = 1;
        internal const int EPOLL_CTL_DEL = 2;
        internal const int EPOLL_CTL_MOD = 3;

        /// <summary><c>struct epoll_event</c>: packed on x86-64 (12 bytes).</summary>
        [StructLayout(LayoutKind.Sequential, Pack = 4)]
        internal struct epoll_event
        {
            public uint events;
            public ulong data;
        }

        [LibraryImport(LibraryName, EntryPoint = "epoll_create1", SetLastError = true)]
        internal static partial int EpollCreate1(int flags);

        [LibraryImport(LibraryName, EntryPoint = "epoll_ctl", SetLastError = true)]
        internal static unsafe partial int EpollCtl(SafeHandle epfd, int op, SafeHandle fd, epoll_event* ev);

        [LibraryImport(LibraryName, EntryPoint = "epoll_wait", SetLastError = true)]
        internal static unsafe partial int EpollWait(SafeHandle epfd, epoll_event* events, int maxEvents, int timeoutMs);
    }
}
