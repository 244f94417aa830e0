namespace KvmSharp.Native;

/// <summary>The host kernel's random number generator (getrandom(2), the urandom source).</summary>
public static class HostRandom
{
    /// <summary>
    /// Fills <paramref name="destination"/> with random bytes, retrying EINTR and partial fills. Returns 0, or errno.
    /// Blocks only while the host's pool is uninitialised, early in the host's boot.
    /// </summary>
    public static unsafe int Fill(Span<byte> destination)
    {
        int done = 0;
        while (done < destination.Length)
        {
            nint n;
            fixed (byte* start = destination)
            {
                // SAFETY: [start+done, start+Length) lies inside the pinned span; the kernel writes at most that many bytes.
                n = Interop.Libc.GetRandom(start + done, (nuint)(destination.Length - done), 0);
            }

            if (n < 0)
            {
                int errno = Errno.Last;
                if (errno == Errno.EINTR)
                {
                    continue;
                }

                return errno;
            }

            done += (int)n;
        }

        return 0;
    }
}
