using System.Globalization;

namespace KvmSharp.Vmm.Config;

/// <summary>Parses sizes like QEMU's -m: "512M", "2G", "1048576K", plain numbers in MiB.</summary>
public static class SizeParser
{
    public static bool TryParse(string? text, out ulong bytes)
    {
        bytes = 0;
        if (string.IsNullOrWhiteSpace(text))
        {
            return false;
        }

        var s = text.Trim();
        ulong unit = 1024 * 1024; // a bare number is MiB, as in QEMU
        char last = char.ToUpperInvariant(s[^1]);
        if (char.IsLetter(last))
        {
            unit = last switch
            {
                'K' => 1024UL,
                'M' => 1024UL * 1024,
                'G' => 1024UL * 1024 * 1024,
                'T' => 1024UL * 1024 * 1024 * 1024,
                _ => 0,
            };
            if (unit == 0)
            {
                return false;
            }

            s = s[..^1];
            if (s.EndsWith("i", StringComparison.OrdinalIgnoreCase))
            {
                return false;
            }
        }

        if (!ulong.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out ulong value) || value == 0)
        {
            return false;
        }

        if (value > ulong.MaxValue / unit)
        {
            return false;
        }

        bytes = value * unit;
        return true;
    }

    /// <summary>"512 MiB", "2 GiB", "1.5 GiB".</summary>
    public static string Format(ulong bytes)
    {
        const double GiB = 1024.0 * 1024 * 1024;
        const double MiB = 1024.0 * 1024;
        return bytes >= 1024UL * 1024 * 1024
            ? (bytes / GiB).ToString("0.##", CultureInfo.InvariantCulture) + " GiB"
            : (bytes / MiB).ToString("0.##", CultureInfo.InvariantCulture) + " MiB";
    }
}
