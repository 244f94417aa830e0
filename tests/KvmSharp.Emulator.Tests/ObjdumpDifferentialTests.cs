using System.Globalization;
using System.Text;
using KvmSharp.Emulator.Decoding;

namespace KvmSharp.Emulator.Tests;

/// <summary>
/// Decodes tens of thousands of random, structurally plausible instructions and compares every
/// length with GNU objdump's. Where the two disagree on validity, the difference must be one of
/// the documented ones in <see cref="ObjdumpDifferences"/>.
/// </summary>
public class ObjdumpDifferentialTests(ITestOutputHelper output)
{
    private const int SlotSize = 32;
    private const int MaterialSize = InstructionDecoder.MaxInstructionLength;

    private static readonly byte[] LegacyPrefixes = [0x66, 0x66, 0x66, 0x67, 0x67, 0xF2, 0xF3, 0xF3, 0xF0, 0x2E, 0x3E, 0x26, 0x36, 0x64, 0x65];

    [Theory]
    [InlineData(CpuMode.Long64, "i386:x86-64", "intel,intel64", 24_000, 64)]
    [InlineData(CpuMode.Protected32, "i386", "intel", 12_000, 32)]
    [InlineData(CpuMode.Real16, "i8086", "intel", 8_000, 16)]
    public void RandomInstructions_HaveObjdumpsLength_OrADocumentedDifference(CpuMode mode, string machine, string options, int count, int seed)
    {
        Assert.SkipUnless(ObjdumpReference.IsAvailable || Environment.GetEnvironmentVariable("CI") == "true",
            "objdump is absent: install binutils to run the differential test.");
        Assert.True(ObjdumpReference.IsAvailable, "objdump is absent: CI must install binutils (apt-get install -y binutils).");

        var random = new Random(seed);
        var image = new byte[count * SlotSize];
        var decoded = new DecodedInstruction[count];
        for (int i = 0; i < count; i++)
        {
            var slot = image.AsSpan(i * SlotSize, SlotSize);
            Generate(random, mode, slot[..MaterialSize]);
            InstructionDecoder.Decode(slot[..MaterialSize], mode, ref decoded[i]);

            // Bytes after our instruction become NOPs, so objdump resynchronises well before the next slot.
            int end = decoded[i].Status == DecodeStatus.Ok ? decoded[i].Length : MaterialSize;
            slot[end..].Fill(0x90);
        }

        var lines = ObjdumpReference.Disassemble(image, machine, options);
        int compared = 0, agreedInvalid = 0;
        var documented = new Dictionary<string, int>();
        var unexplained = new Dictionary<string, (int Count, string Example)>();
        for (int i = 0; i < count; i++)
        {
            var bytes = image.AsSpan(i * SlotSize, MaterialSize);
            var line = ObjdumpReference.At(lines, i * SlotSize);
            ref var insn = ref decoded[i];
            bool oursValid = insn.Status == DecodeStatus.Ok && insn.Op != Mnemonic.Unknown;
            bool structural = insn.Status == DecodeStatus.Ok && insn.Op == Mnemonic.Unknown;
            string? problem = null;
            if (insn.Status == DecodeStatus.TooLong)
            {
                if (!line.IsBad && line.Length <= MaterialSize)
                {
                    problem = "too long for us, not for objdump";
                }
                else
                {
                    agreedInvalid++;
                }
            }
            else if ((oursValid || structural) && !line.IsBad)
            {
                compared++;
                if (line.Length != insn.Length)
                {
                    problem = $"length {insn.Length} vs objdump {line.Length}";
                }
            }
            else if (oursValid && line.IsBad)
            {
                problem = "valid for us, (bad) for objdump";
            }
            else if (!oursValid && !line.IsBad)
            {
                problem = "invalid for us, valid for objdump";
            }
            else
            {
                agreedInvalid++;
            }

            if (problem == null)
            {
                continue;
            }

            string? reason = ObjdumpDifferences.Explain(mode, bytes, insn, line.Text, line.Length, line.IsBad);
            if (reason != null)
            {
                documented[reason] = documented.GetValueOrDefault(reason) + 1;
                continue;
            }

            string key = $"{problem} | {insn.Map} {insn.Opcode:X2} /{(bytes.Length > 0 ? "?" : "")} | {FirstWord(line.Text)}";
            string example = $"{Hex(bytes, insn.Status == DecodeStatus.Ok ? Math.Max(insn.Length, line.Length) : MaterialSize)} => ours {insn.Status} {insn.Op} len {insn.Length}; objdump '{line.Text}' len {line.Length}";
            unexplained[key] = unexplained.TryGetValue(key, out var seen) ? (seen.Count + 1, seen.Example) : (1, example);
        }

        output.WriteLine($"{mode}: {count} instructions; {compared} lengths compared, {agreedInvalid} invalid for both.");
        foreach (var (reason, n) in documented.OrderByDescending(static p => p.Value))
        {
            output.WriteLine($"  documented: {n,6}  {reason}");
        }

        int totalUnexplained = 0;
        foreach (var (key, value) in unexplained.OrderByDescending(static p => p.Value.Count).Take(80))
        {
            output.WriteLine($"  UNEXPLAINED {value.Count,5}  {key}  e.g. {value.Example}");
        }

        foreach (var value in unexplained.Values)
        {
            totalUnexplained += value.Count;
        }

        Assert.True(compared > count / 2, $"Only {compared} of {count} instructions were compared.");
        Assert.True(totalUnexplained == 0, $"{totalUnexplained} unexplained differences from objdump (see the test output).");
    }

    /// <summary>Fills <paramref name="material"/> with prefixes, an opcode from a random map and random operand bytes.</summary>
    private static void Generate(Random random, CpuMode mode, Span<byte> material)
    {
        random.NextBytes(material);
        int n = 0;
        int roll = random.Next(8);
        int prefixCount = roll < 4 ? 0 : roll < 7 ? 1 : random.Next(2, 6);
        for (int p = 0; p < prefixCount; p++)
        {
            byte prefix = LegacyPrefixes[random.Next(LegacyPrefixes.Length)];
            if (prefix == 0xF0 && random.Next(3) != 0)
            {
                prefix = 0x66; // keep LOCK rare: most instructions reject it
            }

            material[n++] = prefix;
        }

        if (mode == CpuMode.Long64 && random.Next(2) == 0)
        {
            material[n++] = (byte)(0x40 | random.Next(16));
        }

        int map = random.Next(100);
        if (map < 45)
        {
            byte opcode;
            do
            {
                opcode = (byte)random.Next(256);
            }
            while (IsPrefixOrEscape(opcode, mode));
            material[n] = opcode;
        }
        else if (map < 80)
        {
            material[n++] = 0x0F;
            if (material[n] is 0x38 or 0x3A)
            {
                material[n] = 0x0F;
            }
        }
        else
        {
            material[n++] = 0x0F;
            material[n] = map < 90 ? (byte)0x38 : (byte)0x3A;
        }
    }

    private static bool IsPrefixOrEscape(byte b, CpuMode mode) =>
        b is 0x0F or 0x26 or 0x2E or 0x36 or 0x3E or 0x64 or 0x65 or 0x66 or 0x67 or 0xF0 or 0xF2 or 0xF3
        || (mode == CpuMode.Long64 && (b & 0xF0) == 0x40);

    private static string FirstWord(string text)
    {
        foreach (string token in text.Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            if (token is not ("data16" or "addr32" or "addr16" or "data32" or "cs" or "ds" or "es" or "ss" or "fs" or "gs" or "lock" or "rep" or "repz" or "repnz")
                && !token.StartsWith("rex", StringComparison.Ordinal))
            {
                return token;
            }
        }

        return text;
    }

    private static string Hex(ReadOnlySpan<byte> bytes, int length)
    {
        var builder = new StringBuilder();
        for (int i = 0; i < Math.Min(length, bytes.Length); i++)
        {
            builder.Append(bytes[i].ToString("x2", CultureInfo.InvariantCulture)).Append(' ');
        }

        return builder.ToString().TrimEnd();
    }
}
