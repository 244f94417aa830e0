namespace KvmSharp.Native.Tests;

public class IoctlEncodingTests
{
    [Fact]
    public void IO_MatchesKernelMacro()
    {
        Assert.Equal(0xAE00u, Ioctl.IO(0xAE, 0x00)); // KVM_GET_API_VERSION
        Assert.Equal(0xAE80u, Ioctl.IO(0xAE, 0x80)); // KVM_RUN
    }

    [Fact]
    public void DirectionAndSize_AreEncodedLikeTheKernel()
    {
        Assert.Equal(0x4020AE46u, Ioctl.IOW(0xAE, 0x46, 32));   // KVM_SET_USER_MEMORY_REGION
        Assert.Equal(0x8090AE81u, Ioctl.IOR(0xAE, 0x81, 144));  // KVM_GET_REGS
        Assert.Equal(0xC008AE05u, Ioctl.IOWR(0xAE, 0x05, 8));   // KVM_GET_SUPPORTED_CPUID
    }

    [Fact]
    public void SizeOver14Bits_IsRejected()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => Ioctl.IOR(0xAE, 1, 1 << 14));
    }
}
