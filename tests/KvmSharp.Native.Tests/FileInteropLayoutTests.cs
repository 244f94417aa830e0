using System.Runtime.CompilerServices;

namespace KvmSharp.Native.Tests;

/// <summary>The file-I/O structs keep the kernel's sizes and field offsets (x86-64 Linux headers).</summary>
public class FileInteropLayoutTests
{
    [Fact]
    public void Iovec_Is16Bytes() => Assert.Equal(16, Unsafe.SizeOf<Interop.Libc.iovec_t>());

    [Fact]
    public unsafe void Flock_Is32Bytes_WithTheKernelsOffsets()
    {
        Assert.Equal(32, sizeof(Interop.Libc.flock_t));
        var f = default(Interop.Libc.flock_t);
        byte* b = (byte*)&f;
        Assert.Equal(0, (byte*)&f.l_type - b);
        Assert.Equal(2, (byte*)&f.l_whence - b);
        Assert.Equal(8, (byte*)&f.l_start - b);
        Assert.Equal(16, (byte*)&f.l_len - b);
        Assert.Equal(24, (byte*)&f.l_pid - b);
    }

    [Fact]
    public unsafe void Statx_Is256Bytes_WithTheKernelsOffsets()
    {
        Assert.Equal(256, sizeof(Interop.Libc.statx_t));
        var s = default(Interop.Libc.statx_t);
        byte* b = (byte*)&s;
        Assert.Equal(0x1C, (byte*)&s.stx_mode - b);
        Assert.Equal(0x20, (byte*)&s.stx_ino - b);
        Assert.Equal(0x28, (byte*)&s.stx_size - b);
        Assert.Equal(0x40, (byte*)&s.stx_atime - b);
        Assert.Equal(0x80, (byte*)&s.stx_rdev_major - b);
        Assert.Equal(0x88, (byte*)&s.stx_dev_major - b);
    }
}
