using System.Globalization;

namespace KvmSharp.Compare;

/// <summary>
/// A VMM process's memory from /proc: its peak RSS (VmHWM) and the resident part of its guest RAM, found as the
/// mappings whose size is the guest's memory size (up to 8 MiB more, for alignment and guard pages).
/// </summary>
internal readonly record struct MemorySample(long PeakRssKiB, long GuestResidentKiB)
{
    /// <summary>What the VMM itself costs: peak RSS minus the guest memory it has touched.</summary>
    public double OverheadMiB => (PeakRssKiB - GuestResidentKiB) / 1024.0;

    public static MemorySample Read(int pid, long guestBytes)
    {
        long hwm = 0;
        foreach (string line in File.ReadLines($"/proc/{pid}/status"))
        {
            if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
            {
                hwm = ParseKiB(line);
            }
        }

        long guestKiB = guestBytes / 1024;
        long guestResident = 0;
        bool inGuestRam = false;
        foreach (string line in File.ReadLines($"/proc/{pid}/smaps"))
        {
            if (line.StartsWith("Size:", StringComparison.Ordinal))
            {
                long size = ParseKiB(line);
                inGuestRam = size >= guestKiB && size <= guestKiB + (8 * 1024);
            }
            else if (inGuestRam && line.StartsWith("Rss:", StringComparison.Ordinal))
            {
                guestResident += ParseKiB(line);
            }
        }

        if (hwm == 0)
        {
            throw new BenchException($"no VmHWM in /proc/{pid}/status");
        }

        return new MemorySample(hwm, guestResident);
    }

    private static long ParseKiB(string line)
    {
        // "Rss:                 1234 kB"
        string[] parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        return long.Parse(parts[1], CultureInfo.InvariantCulture);
    }
}
