using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace KvmSharp.Devices.Virtio.Net;

/// <summary>The 16-bit one's-complement sum of RFC 1071, as a device completes VIRTIO_NET_HDR_F_NEEDS_CSUM.</summary>
public static class InternetChecksum
{
    /// <summary>
    /// Completes a partial checksum as Linux's skb_checksum_help does: sums <paramref name="data"/> (which includes the
    /// checksum field holding the driver's pseudo-header sum) and returns the value to store there little-endian (see
    /// <see cref="Sum"/>): the folded complement, with 0 sent as 0xFFFF.
    /// </summary>
    public static ushort Complete(ReadOnlySpan<byte> data)
    {
        ushort folded = Fold(Sum(data));
        ushort result = (ushort)~folded;
        return result == 0 ? (ushort)0xFFFF : result;
    }

    /// <summary>
    /// The one's-complement sum of <paramref name="data"/> taken as 16-bit words in memory order: summing little-endian
    /// words gives the byte-swapped sum of the network-order words (RFC 1071, 2.B), so writing the result back
    /// little-endian puts the right bytes in place. Returns an unfolded 64-bit accumulator.
    /// </summary>
    public static ulong Sum(ReadOnlySpan<byte> data)
    {
        ulong sum = 0;
        var words = MemoryMarshal.Cast<byte, uint>(data);
        foreach (uint word in words)
        {
            sum += word;
        }

        int tail = words.Length * sizeof(uint);
        if (data.Length - tail >= 2)
        {
            sum += BinaryPrimitives.ReadUInt16LittleEndian(data[tail..]);
            tail += 2;
        }

        if (tail < data.Length)
        {
            sum += data[tail];
        }

        return sum;
    }

    /// <summary>Folds a 64-bit accumulator to 16 bits with end-around carry.</summary>
    public static ushort Fold(ulong sum)
    {
        sum = (sum & 0xFFFF_FFFF) + (sum >> 32);
        sum = (sum & 0xFFFF_FFFF) + (sum >> 32);
        sum = (sum & 0xFFFF) + (sum >> 16);
        sum = (sum & 0xFFFF) + (sum >> 16);
        sum = (sum & 0xFFFF) + (sum >> 16);
        return (ushort)sum;
    }
}
