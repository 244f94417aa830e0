using System.Runtime.InteropServices;

namespace KvmSharp.Native;

internal static partial class Interop
{
    internal static partial class Libc
    {
        [LibraryImport(LibraryName, EntryPoint = "read", SetLastError = true)]
        internal static unsafe partial nint Read(SafeHandle fd, void* buffer, nuint count);

        [LibraryImport(LibraryName, EntryPoint = "write", SetLastError = true)]
        internal static unsafe partial nint Write(SafeHandle fd, void* buffer, nuint count);
    }
}
