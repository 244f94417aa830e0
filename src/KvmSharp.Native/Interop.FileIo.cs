using System.Runtime.InteropServices;

namespace KvmSharp.Native;

internal static partial class Interop
{
    internal static partial class Libc
    {
        /// <summary>Most vectors one preadv/pwritev call takes (UIO_MAXIOV in include/uapi/linux/uio.h).</summary>
        internal const int IOV_MAX = 1024;

        internal const int SEEK_SET = 0;
        internal const int SEEK_END = 2;

        // include/uapi/linux/falloc.h
        internal const int FALLOC_FL_KEEP_SIZE = 0x01;
        internal const int FALLOC_FL_PUNCH_HOLE = 0x02;
        internal const int FALLOC_FL_ZERO_RANGE = 0x10;

        // include/uapi/linux/fcntl.h and stat.h
        internal const int AT_EMPTY_PATH = 0x1000;
        internal const uint STATX_TYPE = 0x001;
        internal const uint STATX_MODE = 0x002;
        internal const uint STATX_INO = 0x100;
        internal const uint STATX_SIZE = 0x200;
        internal const ushort ModeTypeMask = 0xF000;    // S_IFMT
        internal const ushort ModeDirectory = 0x4000;   // S_IFDIR
        internal const ushort ModeBlockDevice = 0x6000; // S_IFBLK
        internal const ushort ModeRegular = 0x8000;     // S_IFREG

        /// <summary><c>struct iovec_t</c> (include/uapi/linux/uio.h): 16 bytes on 64-bit Linux.</summary>
        [StructLayout(LayoutKind.Sequential)]
        internal unsafe struct iovec_t
        {
            public void* iov_base;
            public nuint iov_len;
        }

        /// <summary><c>struct statx_timestamp</c>: 16 bytes.</summary>
        [StructLayout(LayoutKind.Sequential)]
        internal struct statx_timestamp
        {
            public long tv_sec;
            public uint tv_nsec;
            public int __reserved;
        }

        /// <summary><c>struct statx</c> (include/uapi/linux/stat.h): 256 bytes, the same on every architecture.</summary>
        [StructLayout(LayoutKind.Sequential)]
        internal unsafe struct statx_t
        {
            public uint stx_mask;
            public uint stx_blksize;
            public ulong stx_attributes;
            public uint stx_nlink;
            public uint stx_uid;
            public uint stx_gid;
            public ushort stx_mode;
            public ushort __spare0;
            public ulong stx_ino;
            public ulong stx_size;
            public ulong stx_blocks;
            public ulong stx_attributes_mask;
            public statx_timestamp stx_atime;
            public statx_timestamp stx_btime;
            public statx_timestamp stx_ctime;
            public statx_timestamp stx_mtime;
            public uint stx_rdev_major;
            public uint stx_rdev_minor;
            public uint stx_dev_major;
            public uint stx_dev_minor;
            public fixed ulong __spare2[14];
        }

        [LibraryImport(LibraryName, EntryPoint = "preadv", SetLastError = true)]
        internal static unsafe partial nint Preadv(SafeHandle fd, iovec_t* iov, int iovcnt, long offset);

        [LibraryImport(LibraryName, EntryPoint = "pwritev", SetLastError = true)]
        internal static unsafe partial nint Pwritev(SafeHandle fd, iovec_t* iov, int iovcnt, long offset);

        [LibraryImport(LibraryName, EntryPoint = "fdatasync", SetLastError = true)]
        internal static partial int Fdatasync(SafeHandle fd);

        [LibraryImport(LibraryName, EntryPoint = "fallocate", SetLastError = true)]
        internal static partial int Fallocate(SafeHandle fd, int mode, long offset, long length);

        [LibraryImport(LibraryName, EntryPoint = "lseek", SetLastError = true)]
        internal static partial long Lseek(SafeHandle fd, long offset, int whence);

        [LibraryImport(LibraryName, EntryPoint = "statx", SetLastError = true)]
        internal static unsafe partial int Statx(SafeHandle dirfd, byte* path, int flags, uint mask, statx_t* buffer);
    }
}
