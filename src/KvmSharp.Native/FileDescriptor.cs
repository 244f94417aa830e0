using System.Runtime.InteropServices;

namespace KvmSharp.Native;

/// <summary>Owns one file descriptor; closes it exactly once.</summary>
public sealed class FileDescriptor : SafeHandle
{
    public FileDescriptor()
        : base(-1, ownsHandle: true)
    {
    }

    public FileDescriptor(int fd, bool ownsHandle = true)
        : base(-1, ownsHandle)
    {
        SetHandle(fd);
    }

    public override bool IsInvalid => handle < 0;

    /// <summary>The raw descriptor number, for logs and for kernel structs that carry fds (irqfd, ioeventfd).</summary>
    public int Number => (int)handle;

    protected override bool ReleaseHandle() => Interop.Libc.Close((int)handle) == 0;

    /// <summary>Opens <paramref name="path"/> with O_CLOEXEC added; throws <see cref="NativeErrorException"/> with errno.</summary>
    public static FileDescriptor Open(string path, FileOpenFlags flags)
    {
        int raw = (int)flags | Interop.Libc.O_CLOEXEC;
        int fd;
        do
        {
            fd = Interop.Libc.Open(path, raw, 0);
        }
        while (fd < 0 && Errno.Last == Errno.EINTR);
        if (fd < 0)
        {
            int errno = Errno.Last;
            throw new NativeErrorException($"open('{path}')", errno);
        }

        return new FileDescriptor(fd);
    }

    /// <summary>Takes ownership of a raw fd returned by a kernel call (KVM_CREATE_VM, KVM_CREATE_VCPU, ...).</summary>
    public static FileDescriptor FromRaw(int fd) => new(fd);
}

[Flags]
public enum FileOpenFlags
{
    ReadOnly = Interop.Libc.O_RDONLY,
    WriteOnly = Interop.Libc.O_WRONLY,
    ReadWrite = Interop.Libc.O_RDWR,
    NonBlocking = Interop.Libc.O_NONBLOCK,
}
