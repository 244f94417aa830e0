using System.Runtime.InteropServices;

namespace KvmSharp.Native;

internal static partial class Interop
{
    internal static partial class Libc
    {
        // include/uapi/asm-generic/fcntl.h
        internal const int F_GETLK = 5;
        internal const int F_SETLK = 6;
        internal const int F_OFD_GETLK = 36;
        internal const int F_OFD_SETLK = 37;

        internal const short F_RDLCK = 0;
        internal const short F_WRLCK = 1;
        internal const short F_UNLCK = 2;

        /// <summary><c>struct flock</c> on 64-bit Linux (off_t is 64-bit): 32 bytes with the padding after l_whence and l_pid.</summary>
        [StructLayout(LayoutKind.Sequential)]
        internal struct flock_t
        {
            public short l_type;
            public short l_whence;
            public long l_start;
            public long l_len;
            public int l_pid;
        }

        /// <summary>fcntl(2) with a <c>struct flock_t*</c> argument (F_GETLK, F_SETLK, F_OFD_GETLK, F_OFD_SETLK).</summary>
        [LibraryImport(LibraryName, EntryPoint = "fcntl", SetLastError = true)]
        internal static unsafe partial int FcntlLock(SafeHandle fd, int command, flock_t* argument);
    }
}
