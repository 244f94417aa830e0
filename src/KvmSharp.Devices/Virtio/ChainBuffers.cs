using KvmSharp.Memory;
using KvmSharp.Native;

namespace KvmSharp.Devices.Virtio;

/// <summary>
/// Byte-stream views of a chain's readable or writable buffers: devices address them by position, ignoring how the
/// driver split them into descriptors (virtio 1.x 2.6.4, "Message Framing"). Every segment was validated by the
/// queue, so the guest-memory calls only fail if that invariant broke; they report false rather than throw.
/// </summary>
internal static class ChainBuffers
{
    private const ulong MaxSpanLength = 1UL << 30;

    /// <summary>Copies <paramref name="destination"/>.Length bytes starting at stream position <paramref name="position"/>.</summary>
    public static bool TryRead(GuestMemory memory, ReadOnlySpan<ChainSegment> segments, ulong position, Span<byte> destination)
    {
        foreach (var segment in segments)
        {
            if (destination.IsEmpty)
            {
                break;
            }

            if (position >= segment.Length)
            {
                position -= segment.Length;
                continue;
            }

            int chunk = (int)Math.Min((ulong)destination.Length, segment.Length - position);
            if (!memory.TryRead(segment.Address + position, destination[..chunk]))
            {
                return false;
            }

            destination = destination[chunk..];
            position = 0;
        }

        return destination.IsEmpty;
    }

    /// <summary>Copies <paramref name="source"/> to stream position <paramref name="position"/>.</summary>
    public static bool TryWrite(GuestMemory memory, ReadOnlySpan<ChainSegment> segments, ulong position, ReadOnlySpan<byte> source)
    {
        foreach (var segment in segments)
        {
            if (source.IsEmpty)
            {
                break;
            }

            if (position >= segment.Length)
            {
                position -= segment.Length;
                continue;
            }

            int chunk = (int)Math.Min((ulong)source.Length, segment.Length - position);
            if (!memory.TryWrite(segment.Address + position, source[..chunk]))
            {
                return false;
            }

            source = source[chunk..];
            position = 0;
        }

        return source.IsEmpty;
    }

    /// <summary>Writes zeroes over [<paramref name="position"/>, +<paramref name="length"/>) of the stream.</summary>
    public static bool TryZero(GuestMemory memory, ReadOnlySpan<ChainSegment> segments, ulong position, ulong length)
    {
        foreach (var segment in segments)
        {
            if (length == 0)
            {
                break;
            }

            if (position >= segment.Length)
            {
                position -= segment.Length;
                continue;
            }

            ulong cursor = segment.Address + position;
            ulong inSegment = Math.Min(length, segment.Length - position);
            length -= inSegment;
            position = 0;
            while (inSegment > 0)
            {
                // A span holds at most int.MaxValue bytes and a segment up to 4 GiB: clear it in pieces.
                int chunk = (int)Math.Min(inSegment, MaxSpanLength);
                if (!memory.TryGetSpan(cursor, chunk, out var span))
                {
                    return false;
                }

                span.Clear();
                memory.MarkDirty(cursor, (ulong)chunk);
                cursor += (ulong)chunk;
                inSegment -= (ulong)chunk;
            }
        }

        return length == 0;
    }

    /// <summary>
    /// Appends host addresses for [<paramref name="position"/>, +<paramref name="length"/>) of the stream to
    /// <paramref name="vectors"/>, for I/O straight into guest RAM. False if the list is too small.
    /// </summary>
    public static bool TryAddVectors(GuestMemory memory, ReadOnlySpan<ChainSegment> segments, ulong position, ulong length, IoVectorList vectors)
    {
        foreach (var segment in segments)
        {
            if (length == 0)
            {
                break;
            }

            if (position >= segment.Length)
            {
                position -= segment.Length;
                continue;
            }

            // SAFETY: TryGetHostAddress proves [host, host+chunk) lies inside one live guest RAM mapping, which outlives
            // the device and so the I/O call the vectors are used for (IoVectorList.TryAdd's contract).
            ulong chunk = Math.Min(length, segment.Length - position);
            if (!memory.TryGetHostAddress(segment.Address + position, chunk, out nint host) || !vectors.TryAdd(host, chunk))
            {
                return false;
            }

            length -= chunk;
            position = 0;
        }

        return length == 0;
    }
}
