using System.Runtime.InteropServices;

namespace KvmSharp.Native;

internal static partial class Interop
{
    internal static partial class Libc
    {
        // ioctl is variadic in C; every request we make passes at most one integer or pointer, which
        // the x86-64 SysV ABI passes in the same register as a fixed third argument.
        [LibraryImport(LibraryName, EntryPoint = "ioctl", SetLastError = true)]
        internal static partial int Ioctl(SafeHandle fd, nuint request, nint arg);
    }
}
