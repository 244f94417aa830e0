using System.Runtime.InteropServices;

namespace KvmSharp.Native;

internal static partial class Interop
{
    internal static partial class Libc
    {
        internal const int TCSANOW = 0;

        /// <summary>glibc's struct termios on x86-64 (60 bytes); only ever copied whole and passed back.</summary>
        [StructLayout(LayoutKind.Sequential)]
        internal unsafe struct termios_t
        {
            public uint c_iflag;
            public uint c_oflag;
            public uint c_cflag;
            public uint c_lflag;
            public byte c_line;
            public fixed byte c_cc[32];
            public uint c_ispeed;
            public uint c_ospeed;
        }

        [LibraryImport(LibraryName, EntryPoint = "isatty")]
        internal static partial int IsATty(int fd);

        [LibraryImport(LibraryName, EntryPoint = "tcgetattr", SetLastError = true)]
        internal static unsafe partial int TcGetAttr(int fd, termios_t* attributes);

        [LibraryImport(LibraryName, EntryPoint = "tcsetattr", SetLastError = true)]
        internal static unsafe partial int TcSetAttr(int fd, int optionalActions, termios_t* attributes);

        [LibraryImport(LibraryName, EntryPoint = "cfmakeraw")]
        internal static unsafe partial void CfMakeRaw(termios_t* attributes);

        [LibraryImport(LibraryName, EntryPoint = "read", SetLastError = true)]
        internal static unsafe partial nint ReadRaw(int fd, void* buffer, nuint count);

        [LibraryImport(LibraryName, EntryPoint = "poll", SetLastError = true)]
        internal static unsafe partial int Poll(pollfd_t* fds, nuint count, int timeoutMs);

        [StructLayout(LayoutKind.Sequential)]
        internal struct pollfd_t
        {
            public int fd;
            public short events;
            public short revents;
        }

        internal const short POLLIN = 0x001;
        internal const short POLLHUP = 0x010;
        internal const short POLLERR = 0x008;
    }
}
