namespace KvmSharp.Native;

/// <summary>ioctl(2) with the kernel's request-number encoding (asm-generic/ioctl.h).</summary>
public static class Ioctl
{
    private const int NrBits = 8;
    private const int TypeBits = 8;
    private const int SizeBits = 14;
    private const int NrShift = 0;
    private const int TypeShift = NrShift + NrBits;
    private const int SizeShift = TypeShift + TypeBits;
    private const int DirShift = SizeShift + SizeBits;

    private const uint DirNone = 0;
    private const uint DirWrite = 1;
    private const uint DirRead = 2;

    /// <summary>_IOC(dir, type, nr, size).</summary>
    public static uint Encode(uint direction, uint type, uint number, uint size)
    {
        if (size >= 1u << SizeBits)
        {
            throw new ArgumentOutOfRangeException(nameof(size), size, "An ioctl argument size must fit in 14 bits.");
        }

        return (direction << DirShift) | (type << TypeShift) | (number << NrShift) | (size << SizeShift);
    }

    /// <summary>_IO(type, nr).</summary>
    public static uint IO(uint type, uint number) => Encode(DirNone, type, number, 0);

    /// <summary>_IOR(type, nr, size): the kernel writes <paramref name="size"/> bytes to the argument.</summary>
    public static uint IOR(uint type, uint number, int size) => Encode(DirRead, type, number, (uint)size);

    /// <summary>_IOW(type, nr, size): the kernel reads <paramref name="size"/> bytes from the argument.</summary>
    public static uint IOW(uint type, uint number, int size) => Encode(DirWrite, type, number, (uint)size);

    /// <summary>_IOWR(type, nr, size).</summary>
    public static uint IOWR(uint type, uint number, int size) => Encode(DirRead | DirWrite, type, number, (uint)size);

    /// <summary>Issues the request, retrying on EINTR; returns the non-negative result or -errno.</summary>
    public static int TryInvoke(FileDescriptor fd, uint request, nint argument)
    {
        while (true)
        {
            int result = Interop.Libc.Ioctl(fd, request, argument);
            if (result >= 0)
            {
                return result;
            }

            int errno = Errno.Last;
            if (errno != Errno.EINTR)
            {
                return -errno;
            }
        }
    }

    /// <summary>Issues the request once: EINTR comes back as -EINTR (KVM_RUN needs to see it).</summary>
    public static int TryInvokeOnce(FileDescriptor fd, uint request, nint argument)
    {
        int result = Interop.Libc.Ioctl(fd, request, argument);
        return result >= 0 ? result : -Errno.Last;
    }

    /// <summary>Issues the request, retrying on EINTR; throws <see cref="NativeErrorException"/> naming it on failure.</summary>
    public static int Invoke(FileDescriptor fd, uint request, nint argument, string name)
    {
        int result = TryInvoke(fd, request, argument);
        if (result < 0)
        {
            ThrowFailed(name, -result);
        }

        return result;
    }

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static void ThrowFailed(string name, int errno) => throw new NativeErrorException(name, errno);
}
