using System.Runtime.InteropServices;

namespace KvmSharp.Native;

/// <summary>An mmap'd region; unmapped exactly once on dispose.</summary>
public sealed class MemoryMapping : IDisposable
{
    private nint _address;

    private MemoryMapping(nint address, ulong length)
    {
        _address = address;
        Length = length;
    }

    /// <summary>Start of the mapping; zero after dispose.</summary>
    public nint Address => _address;

    public ulong Length { get; }

    public static int PageSize { get; } = (int)Interop.Libc.Sysconf(Interop.Libc.SC_PAGESIZE);

    /// <summary>Private anonymous read/write memory, zero-filled, not counted against overcommit until touched.</summary>
    public static MemoryMapping Anonymous(ulong length)
    {
        ValidateLength(length);
        nint address = Interop.Libc.Mmap(
            0,
            (nuint)length,
            Interop.Libc.PROT_READ | Interop.Libc.PROT_WRITE,
            Interop.Libc.MAP_PRIVATE | Interop.Libc.MAP_ANONYMOUS | Interop.Libc.MAP_NORESERVE,
            -1,
            0);
        if (address == Interop.Libc.MapFailed)
        {
            int errno = Errno.Last;
            throw new NativeErrorException($"mmap of {length} bytes of anonymous memory", errno);
        }

        return new MemoryMapping(address, length);
    }

    /// <summary>
    /// Read/write/execute anonymous memory in the low 2 GiB (MAP_32BIT), for code that must run in a 32-bit
    /// code segment (the emulator's differential tests of instructions that only exist outside 64-bit mode).
    /// </summary>
    public static MemoryMapping AnonymousLowExecutable(ulong length)
    {
        ValidateLength(length);
        nint address = Interop.Libc.Mmap(
            0,
            (nuint)length,
            Interop.Libc.PROT_READ | Interop.Libc.PROT_WRITE | Interop.Libc.PROT_EXEC,
            Interop.Libc.MAP_PRIVATE | Interop.Libc.MAP_ANONYMOUS | Interop.Libc.MAP_32BIT,
            -1,
            0);
        if (address == Interop.Libc.MapFailed)
        {
            int errno = Errno.Last;
            throw new NativeErrorException($"mmap(MAP_32BIT) of {length} bytes", errno);
        }

        return new MemoryMapping(address, length);
    }

    /// <summary>
    /// A private (copy-on-write) read/write mapping of <paramref name="length"/> bytes of the file <paramref name="fd"/>
    /// from <paramref name="offset"/>: pages are read from the file when first touched and writes stay in this process,
    /// so the file is never changed (a snapshot's memory file restored lazily, as Firecracker does). The file must not be
    /// written while mapped: pages not yet copied would show the new contents.
    /// </summary>
    public static MemoryMapping PrivateFile(SafeHandle fd, ulong length, long offset)
    {
        ArgumentNullException.ThrowIfNull(fd);
        ValidateLength(length);
        nint address = Interop.Libc.Mmap(
            0,
            (nuint)length,
            Interop.Libc.PROT_READ | Interop.Libc.PROT_WRITE,
            Interop.Libc.MAP_PRIVATE | Interop.Libc.MAP_NORESERVE,
            fd,
            offset);
        if (address == Interop.Libc.MapFailed)
        {
            int errno = Errno.Last;
            throw new NativeErrorException($"mmap(MAP_PRIVATE) of {length} bytes of a file at offset {offset}", errno);
        }

        return new MemoryMapping(address, length);
    }

    /// <summary>A shared mapping of <paramref name="fd"/> (the vCPU's kvm_run area, for example).</summary>
    public static MemoryMapping Shared(FileDescriptor fd, ulong length, long offset = 0)
    {
        ValidateLength(length);
        nint address = Interop.Libc.Mmap(
            0,
            (nuint)length,
            Interop.Libc.PROT_READ | Interop.Libc.PROT_WRITE,
            Interop.Libc.MAP_SHARED,
            fd,
            offset);
        if (address == Interop.Libc.MapFailed)
        {
            int errno = Errno.Last;
            throw new NativeErrorException($"mmap of {length} bytes of fd {fd.Number}", errno);
        }

        return new MemoryMapping(address, length);
    }

    /// <summary>Executable copy of <paramref name="code"/> (read + execute, not writable).</summary>
    public static unsafe MemoryMapping Executable(ReadOnlySpan<byte> code)
    {
        ulong length = (ulong)Math.Max(code.Length, 1);
        var mapping = Anonymous(length);
        // SAFETY: the mapping is at least code.Length bytes of fresh read/write memory owned by us.
        code.CopyTo(new Span<byte>((void*)mapping._address, code.Length));
        if (Interop.Libc.Mprotect(mapping._address, (nuint)length, Interop.Libc.PROT_READ | Interop.Libc.PROT_EXEC) != 0)
        {
            int errno = Errno.Last;
            mapping.Dispose();
            throw new NativeErrorException("mprotect(PROT_EXEC)", errno);
        }

        return mapping;
    }

    /// <summary>madvise(2); failures are reported, since advice like DONTFORK matters for correctness.</summary>
    public void Advise(MemoryAdvice advice)
    {
        ObjectDisposedException.ThrowIf(_address == 0, this);
        if (Interop.Libc.Madvise(_address, (nuint)Length, (int)advice) != 0)
        {
            int errno = Errno.Last;
            throw new NativeErrorException($"madvise({advice})", errno);
        }
    }

    /// <summary>Returns the pages in [offset, offset+length) to the kernel; they read back as zero.</summary>
    public void Discard(ulong offset, ulong length)
    {
        ObjectDisposedException.ThrowIf(_address == 0, this);
        if (offset > Length || length > Length - offset)
        {
            throw new ArgumentOutOfRangeException(nameof(length), "The range to discard is outside the mapping.");
        }

        if (Interop.Libc.Madvise(_address + (nint)offset, (nuint)length, Interop.Libc.MADV_DONTNEED) != 0)
        {
            int errno = Errno.Last;
            throw new NativeErrorException("madvise(MADV_DONTNEED)", errno);
        }
    }

    public void Dispose()
    {
        nint address = Interlocked.Exchange(ref _address, 0);
        if (address != 0)
        {
            _ = Interop.Libc.Munmap(address, (nuint)Length);
        }
    }

    private static void ValidateLength(ulong length)
    {
        if (length == 0 || length > long.MaxValue)
        {
            throw new ArgumentOutOfRangeException(nameof(length), length, "A mapping must have a non-zero length.");
        }
    }
}

public enum MemoryAdvice
{
    DontFork = Interop.Libc.MADV_DONTFORK,
    HugePage = Interop.Libc.MADV_HUGEPAGE,
    Mergeable = Interop.Libc.MADV_MERGEABLE,
}
