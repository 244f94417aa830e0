namespace KvmSharp.Native;

/// <summary>All calls into libc live in the partial class <c>Interop.Libc</c>, one file per call family.</summary>
internal static partial class Interop
{
    internal static partial class Libc
    {
        internal const string LibraryName = "libc.so.6";

        internal const int EINTR = 4;
        internal const int EAGAIN = 11;
        internal const int ENOENT = 2;
        internal const int EACCES = 13;
        internal const int EPERM = 1;
        internal const int EBUSY = 16;
        internal const int EEXIST = 17;
        internal const int EINVAL = 22;
        internal const int ENXIO = 6;
        internal const int ENODEV = 19;
        internal const int ENOTTY = 25;
        internal const int ENOMEM = 12;
        internal const int EFAULT = 14;
        internal const int E2BIG = 7;
        internal const int ENOSPC = 28;
        internal const int EOPNOTSUPP = 95;
        internal const int EIO = 5;
        internal const int EISDIR = 21;
        internal const int EROFS = 30;
        internal const int ENOLCK = 37;
        internal const int ENOSYS = 38;
        internal const int EPIPE = 32;
        internal const int ECONNRESET = 104;
        internal const int EMSGSIZE = 90;
        internal const int EBADF = 9;
        internal const int EBADFD = 77;
    }
}
