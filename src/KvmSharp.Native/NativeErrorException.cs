using System.Runtime.InteropServices;

namespace KvmSharp.Native;

/// <summary>A libc call failed; carries the call and errno.</summary>
public class NativeErrorException : IOException
{
    public NativeErrorException(string operation, int errno)
        : base($"{operation} failed: {KvmSharp.Native.Errno.Describe(errno)}")
    {
        Operation = operation;
        Errno = errno;
        HResult = errno;
    }

    public NativeErrorException(string operation, int errno, string message)
        : base(message)
    {
        Operation = operation;
        Errno = errno;
        HResult = errno;
    }

    public string Operation { get; }

    public int Errno { get; }
}

/// <summary>errno names and text, for messages people can act on.</summary>
public static class Errno
{
    public const int EINTR = Interop.Libc.EINTR;
    public const int EAGAIN = Interop.Libc.EAGAIN;
    public const int ENOENT = Interop.Libc.ENOENT;
    public const int EACCES = Interop.Libc.EACCES;
    public const int EPERM = Interop.Libc.EPERM;
    public const int EBUSY = Interop.Libc.EBUSY;
    public const int EEXIST = Interop.Libc.EEXIST;
    public const int EINVAL = Interop.Libc.EINVAL;
    public const int ENXIO = Interop.Libc.ENXIO;
    public const int ENODEV = Interop.Libc.ENODEV;
    public const int ENOTTY = Interop.Libc.ENOTTY;
    public const int ENOMEM = Interop.Libc.ENOMEM;
    public const int EFAULT = Interop.Libc.EFAULT;
    public const int E2BIG = Interop.Libc.E2BIG;
    public const int ENOSPC = Interop.Libc.ENOSPC;
    public const int EOPNOTSUPP = Interop.Libc.EOPNOTSUPP;
    public const int EIO = Interop.Libc.EIO;
    public const int EISDIR = Interop.Libc.EISDIR;
    public const int EROFS = Interop.Libc.EROFS;
    public const int ENOLCK = Interop.Libc.ENOLCK;
    public const int ENOSYS = Interop.Libc.ENOSYS;
    public const int EPIPE = Interop.Libc.EPIPE;
    public const int ECONNRESET = Interop.Libc.ECONNRESET;
    public const int EMSGSIZE = Interop.Libc.EMSGSIZE;
    public const int EBADF = Interop.Libc.EBADF;
    public const int EBADFD = Interop.Libc.EBADFD;

    /// <summary>The errno left by the last libc call on this thread (call right after it).</summary>
    public static int Last => Marshal.GetLastPInvokeError();

    public static string Name(int errno) => errno switch
    {
        EPERM => "EPERM",
        ENOENT => "ENOENT",
        EINTR => "EINTR",
        ENXIO => "ENXIO",
        E2BIG => "E2BIG",
        EAGAIN => "EAGAIN",
        ENOMEM => "ENOMEM",
        EACCES => "EACCES",
        EFAULT => "EFAULT",
        EBUSY => "EBUSY",
        EEXIST => "EEXIST",
        ENODEV => "ENODEV",
        EINVAL => "EINVAL",
        ENOTTY => "ENOTTY",
        ENOSPC => "ENOSPC",
        EOPNOTSUPP => "EOPNOTSUPP",
        EIO => "EIO",
        EISDIR => "EISDIR",
        EROFS => "EROFS",
        ENOLCK => "ENOLCK",
        ENOSYS => "ENOSYS",
        EPIPE => "EPIPE",
        ECONNRESET => "ECONNRESET",
        EMSGSIZE => "EMSGSIZE",
        EBADF => "EBADF",
        EBADFD => "EBADFD",
        _ => "errno " + errno.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };

    /// <summary>"Permission denied (EACCES)".</summary>
    public static string Describe(int errno)
    {
        var text = Marshal.PtrToStringUTF8(Interop.Libc.StrError(errno)) ?? "Unknown error";
        return $"{text} ({Name(errno)})";
    }
}
