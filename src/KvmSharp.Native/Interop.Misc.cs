using System.Runtime.InteropServices;

namespace KvmSharp.Native;

internal static partial class Interop
{
    internal static partial class Libc
    {
        [LibraryImport(LibraryName, EntryPoint = "strerror")]
        internal static partial nint StrError(int errnum);

        [LibraryImport(LibraryName, EntryPoint = "sysconf")]
        internal static partial long Sysconf(int name);

        internal const int SC_PAGESIZE = 30;
    }
}
