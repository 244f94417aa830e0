using System.Runtime.InteropServices;

namespace KvmSharp.Native;

internal static partial class Interop
{
    internal static partial class Libc
    {
        // include/linux/socket.h, include/uapi/asm-generic/fcntl.h
        internal const int AF_UNIX = 1;
        internal const int SOCK_STREAM = 1;
        internal const int SOCK_NONBLOCK = 0x800;
        internal const int SOCK_CLOEXEC = 0x80000;

        internal const int F_GETFD = 1;
        internal const int F_SETFD = 2;
        internal const int F_GETFL = 3;
        internal const int F_SETFL = 4;
        internal const int FD_CLOEXEC = 1;

        [LibraryImport(LibraryName, EntryPoint = "socketpair", SetLastError = true)]
        internal static unsafe partial int SocketPair(int domain, int type, int protocol, int* fds);

        internal const int SOL_SOCKET = 1;
        internal const int SO_SNDBUF = 7;
        internal const int SO_RCVBUF = 8;

        [LibraryImport(LibraryName, EntryPoint = "setsockopt", SetLastError = true)]
        internal static unsafe partial int SetSockOpt(SafeHandle fd, int level, int name, int* value, uint length);

        [LibraryImport(LibraryName, EntryPoint = "fcntl", SetLastError = true)]
        internal static partial int FcntlInt(SafeHandle fd, int command, int argument);

        [LibraryImport(LibraryName, EntryPoint = "writev", SetLastError = true)]
        internal static unsafe partial nint Writev(SafeHandle fd, iovec_t* iov, int iovcnt);

        [LibraryImport(LibraryName, EntryPoint = "readv", SetLastError = true)]
        internal static unsafe partial nint Readv(SafeHandle fd, iovec_t* iov, int iovcnt);
    }
}
