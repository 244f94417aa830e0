using System.Runtime.InteropServices;

namespace KvmSharp.Native;

internal static partial class Interop
{
    internal static partial class Libc
    {
        internal const int PROT_NONE = 0x0;
        internal const int PROT_READ = 0x1;
        internal const int PROT_WRITE = 0x2;
        internal const int PROT_EXEC = 0x4;

        internal const int MAP_SHARED = 0x01;
        internal const int MAP_PRIVATE = 0x02;
        internal const int MAP_ANONYMOUS = 0x20;
        internal const int MAP_NORESERVE = 0x4000;
        internal const int MAP_32BIT = 0x40;

        internal static readonly nint MapFailed = -1;

        internal const int MADV_DONTNEED = 4;
        internal const int MADV_DONTFORK = 10;
        internal const int MADV_HUGEPAGE = 14;
        internal const int MADV_MERGEABLE = 12;

        [LibraryImport(LibraryName, EntryPoint = "mmap", SetLastError = true)]
        internal static partial nint Mmap(nint address, nuint length, int protection, int flags, int fd, long offset);

        [LibraryImport(LibraryName, EntryPoint = "mmap", SetLastError = true)]
        internal static partial nint Mmap(nint address, nuint length, int protection, int flags, SafeHandle fd, long offset);

        [LibraryImport(LibraryName, EntryPoint = "munmap", SetLastError = true)]
        internal static partial int Munmap(nint address, nuint length);

        [LibraryImport(LibraryName, EntryPoint = "madvise", SetLastError = true)]
        internal static partial int Madvise(nint address, nuint length, int advice);

        [LibraryImport(LibraryName, EntryPoint = "mprotect", SetLastError = true)]
        internal static partial int Mprotect(nint address, nuint length, int protection);
    }
}
