using System.Runtime.InteropServices;

namespace KvmSharp.Native;

internal static partial class Interop
{
    internal static partial class Libc
    {
        [LibraryImport(LibraryName, EntryPoint = "getrandom", SetLastError = true)]
        internal static unsafe partial nint GetRandom(void* buffer, nuint length, uint flags);
    }
}
