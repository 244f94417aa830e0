using System.Runtime.InteropServices;
using System.Text;

namespace KvmSharp.Native;

/// <summary>
/// A Linux TAP interface opened through /dev/net/tun (Documentation/networking/tuntap.rst) as virtio-net backends
/// use it: IFF_TAP | IFF_NO_PI | IFF_VNET_HDR, a 12-byte virtio_net_hdr_v1 in front of every frame
/// (TUNSETVNETHDRSZ), offloads set from what the guest accepted (TUNSETOFFLOAD), non-blocking.
/// </summary>
public sealed class TapDevice : IDisposable
{
    public const string ControlPath = "/dev/net/tun";

    /// <summary>IFNAMSIZ − 1: the longest interface name.</summary>
    public const int MaxNameLength = 15;

    // include/uapi/linux/if_tun.h
    public const uint OffloadChecksum = 0x01; // TUN_F_CSUM
    public const uint OffloadTso4 = 0x02;     // TUN_F_TSO4
    public const uint OffloadTso6 = 0x04;     // TUN_F_TSO6
    public const uint OffloadTsoEcn = 0x08;   // TUN_F_TSO_ECN

    private const short IFF_TAP = 0x0002;
    private const short IFF_NO_PI = 0x1000;
    private const short IFF_VNET_HDR = 0x4000;
    private const int IfreqSize = 40;

    private static readonly uint TunSetIff = Ioctl.IOW('T', 202, sizeof(int));
    private static readonly uint TunSetOffload = Ioctl.IOW('T', 208, sizeof(uint));
    private static readonly uint TunSetVnetHdrSz = Ioctl.IOW('T', 216, sizeof(int));

    private TapDevice(FileDescriptor descriptor, string name)
    {
        Descriptor = descriptor;
        Name = name;
    }

    /// <summary>The non-blocking queue descriptor: read one frame, write one frame, each with its vnet header.</summary>
    public FileDescriptor Descriptor { get; }

    /// <summary>The interface name the kernel attached to (the one asked for).</summary>
    public string Name { get; }

    /// <summary>Whether <paramref name="name"/> can name an interface: 1-15 bytes, no '/', ':', whitespace or NUL.</summary>
    public static bool IsValidName(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (name.Length is 0 or > MaxNameLength || name is "." or "..")
        {
            return false;
        }

        foreach (char c in name)
        {
            if (c is '/' or ':' or <= ' ' or > '~')
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>
    /// Attaches to (or creates, with CAP_NET_ADMIN) the TAP interface <paramref name="name"/> with a vnet header of
    /// <paramref name="vnetHeaderSize"/> bytes. Throws <see cref="NativeErrorException"/>: EBUSY when another process
    /// holds the interface, EPERM without the right to use or create it, EINVAL when it is not a TAP, ENOENT without /dev/net/tun.
    /// </summary>
    public static unsafe TapDevice Open(string name, int vnetHeaderSize)
    {
        if (!IsValidName(name))
        {
            throw new ArgumentException($"'{name}' is not an interface name (1 to {MaxNameLength} characters, no '/', ':' or spaces).", nameof(name));
        }

        var fd = FileDescriptor.Open(ControlPath, FileOpenFlags.ReadWrite | FileOpenFlags.NonBlocking);
        try
        {
            byte* ifr = stackalloc byte[IfreqSize];
            new Span<byte>(ifr, IfreqSize).Clear();
            Encoding.ASCII.GetBytes(name, new Span<byte>(ifr, MaxNameLength));
            *(short*)(ifr + 16) = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
            // SAFETY: ifr is a zeroed 40-byte struct ifreq on the stack; the kernel reads and rewrites it.
            int result = Ioctl.TryInvoke(fd, TunSetIff, (nint)ifr);
            if (result < 0)
            {
                throw new NativeErrorException($"TUNSETIFF('{name}')", -result);
            }

            int size = vnetHeaderSize;
            // SAFETY: TUNSETVNETHDRSZ reads one int from the pointer.
            Ioctl.Invoke(fd, TunSetVnetHdrSz, (nint)(&size), "TUNSETVNETHDRSZ");
            return new TapDevice(fd, Marshal.PtrToStringAnsi((nint)ifr) ?? name);
        }
        catch
        {
            fd.Dispose();
            throw;
        }
    }

    /// <summary>TUNSETOFFLOAD: which offloaded frames (partial checksum, TSO) the kernel may hand us to pass to the guest.</summary>
    public void SetOffloads(uint flags)
    {
        // TUNSETOFFLOAD takes the flags by value.
        Ioctl.Invoke(Descriptor, TunSetOffload, (nint)flags, "TUNSETOFFLOAD");
    }

    public void Dispose() => Descriptor.Dispose();
}
