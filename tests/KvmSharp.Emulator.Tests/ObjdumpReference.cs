using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;

namespace KvmSharp.Emulator.Tests;

/// <summary>
/// Runs GNU objdump over a flat binary and reports, for given offsets, the length objdump
/// decodes there (prefix-only lines such as an ignored "rex.W" merged into the instruction
/// they precede) and whether it called the bytes "(bad)".
/// </summary>
internal static partial class ObjdumpReference
{
    public const string Path = "/usr/bin/objdump";

    public readonly record struct Line(int Length, string Text)
    {
        public bool IsBad => Text.Contains("(bad)", StringComparison.Ordinal);
    }

    public static bool IsAvailable => File.Exists(Path);

    /// <summary>Disassembles <paramref name="image"/>; the result maps each instruction start to its line.</summary>
    public static Dictionary<int, Line> Disassemble(byte[] image, string machine, string options)
    {
        string file = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"kvmsharp-decoder-{Environment.ProcessId}-{machine}.bin");
        File.WriteAllBytes(file, image);
        try
        {
            var start = new ProcessStartInfo(Path)
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            foreach (string arg in (string[])["-z", "-D", "-b", "binary", "-m", machine, "-M", options, file])
            {
                start.ArgumentList.Add(arg);
            }

            using var process = Process.Start(start)!;
            var stderr = process.StandardError.ReadToEndAsync();
            var lines = Parse(process.StandardOutput);
            process.WaitForExit();
            Assert.True(process.ExitCode == 0, $"objdump failed: {stderr.Result}");
            return lines;
        }
        finally
        {
            File.Delete(file);
        }
    }

    private static Dictionary<int, Line> Parse(StreamReader output)
    {
        var result = new Dictionary<int, Line>();
        int lastAddress = -1;
        string? text;
        while ((text = output.ReadLine()) != null)
        {
            var match = LinePattern().Match(text);
            if (!match.Success)
            {
                continue;
            }

            int address = int.Parse(match.Groups[1].Value, NumberStyles.HexNumber, CultureInfo.InvariantCulture);
            int count = match.Groups[2].Value.Trim().Split(' ', StringSplitOptions.RemoveEmptyEntries).Length;
            if (!match.Groups[3].Success)
            {
                // A continuation line: the bytes of a long instruction wrap after seven.
                if (lastAddress >= 0)
                {
                    var previous = result[lastAddress];
                    result[lastAddress] = previous with { Length = previous.Length + count };
                }

                continue;
            }

            result[address] = new Line(count, match.Groups[3].Value.Trim());
            lastAddress = address;
        }

        return result;
    }

    /// <summary>The instruction at <paramref name="offset"/>, with any leading prefix-only lines merged in.</summary>
    public static Line At(Dictionary<int, Line> lines, int offset)
    {
        if (!lines.TryGetValue(offset, out var line))
        {
            return new Line(0, "(missing)");
        }

        int length = line.Length;
        while (IsPrefixOnly(line.Text) && lines.TryGetValue(offset + length, out var next))
        {
            line = next;
            length += next.Length;
        }

        return line with { Length = length };
    }

    private static bool IsPrefixOnly(string text)
    {
        foreach (string token in text.Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            if (!(token.StartsWith("rex", StringComparison.Ordinal) || token is "data16" or "data32" or "addr16" or "addr32"
                or "cs" or "ds" or "es" or "ss" or "fs" or "gs" or "lock" or "rep" or "repz" or "repnz" or "repe" or "repne"
                or "bnd" or "notrack" or "xacquire" or "xrelease"))
            {
                return false;
            }
        }

        return true;
    }

    [GeneratedRegex(@"^\s*([0-9a-f]+):\t([0-9a-f ]+)(?:\t(.*))?$")]
    private static partial Regex LinePattern();
}
