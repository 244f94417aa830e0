using FsCheck;
using FsCheck.Fluent;
using KvmSharp.Emulator.Execution;
using KvmSharp.Emulator.Tests.Execution;

namespace KvmSharp.Emulator.Tests.Integer;

public enum StringOp
{
    Movs,
    Cmps,
    Stos,
    Lods,
    Scas,
}

/// <summary>Where the source and destination runs sit.</summary>
public enum StringLayout
{
    /// <summary>Apart, at random offsets.</summary>
    Apart,

    /// <summary>The destination within three elements of the source, either side (overlapping copies).</summary>
    Overlapping,

    /// <summary>The runs start a few bytes before a page boundary (elements straddle it).</summary>
    PageEdge,
}

/// <summary>
/// One string-instruction case: the encoding choices and a seed for registers and data. <see cref="Rep"/>: 0 none,
/// 1 F3, 2 F2, 3 F2 F3, 4 F3 F2 (with both, the last one decides).
/// </summary>
public sealed record StringCase(StringOp Op, int Size, int Rep, bool Down, bool Address32, int CountKind, StringLayout Layout, int Seed)
{
    /// <summary>Whether the effective prefix is REPNE.</summary>
    public bool Repne => Rep is 2 or 4;

    public override string ToString() =>
        $"{Rep switch { 1 => "rep ", 2 => "repne ", 3 => "F2 F3 ", 4 => "F3 F2 ", _ => "" }}{Op}{Size * 8} {(Down ? "DF=1" : "DF=0")} {(Address32 ? "a32" : "a64")} count#{CountKind} {Layout} seed {Seed}";
}

/// <summary>
/// MOVS, CMPS, STOS, LODS and SCAS of every size, with no prefix, REP/REPE (F3) and REPNE (F2), DF = 0 and 1,
/// 64-bit and 67-prefixed 32-bit addresses (random upper halves in RSI/RDI/RCX), counts 0, 1, small and 5000
/// (more than one batch), runs apart, overlapping or straddling page boundaries; and the 32-bit forms in
/// compatibility mode. Each case runs natively and in the interpreter (<see cref="Differential"/>).
/// </summary>
public sealed class StringDifferentialTests : IDisposable
{
    private const int DataSize = NativeMachine.StackAreaOffset;
    private const int LargeCount = 5000;

    [ThreadStatic]
    private static byte[]? _buffer;

    private readonly Differential _long = new(longMode: true);
    private readonly Lazy<Differential> _compat = new(() => new Differential(longMode: false));

    public static TheoryData<StringOp, int> OpsAndSizes => Matrix([1, 2, 4, 8]);

    public static TheoryData<StringOp, int> LegacyOpsAndSizes => Matrix([1, 2, 4]);

    /// <summary>Every prefix, direction, address size, count class and layout for one instruction.</summary>
    [Theory]
    [MemberData(nameof(OpsAndSizes))]
    public void EveryForm_MatchesTheHost(StringOp op, int size)
    {
        int seed = ((int)op * 10) + size;
        foreach (int rep in new[] { 0, 1, 2 })
        {
            foreach (bool down in new[] { false, true })
            {
                foreach (bool address32 in new[] { false, true })
                {
                    for (int countKind = 0; countKind < 4; countKind++)
                    {
                        foreach (var layout in Enum.GetValues<StringLayout>())
                        {
                            Check(_long, new StringCase(op, size, rep, down, address32, countKind, layout, seed++));
                        }
                    }
                }
            }
        }
    }

    [Theory]
    [MemberData(nameof(LegacyOpsAndSizes))]
    public void CompatibilityMode_EveryForm_MatchesTheHost(StringOp op, int size)
    {
        Assert.SkipUnless(NativeRunner.CompatibilityModeAvailable, "The kernel has no 32-bit user code segment (IA-32 emulation is off).");
        int seed = ((int)op * 10) + size + 1000;
        foreach (int rep in new[] { 0, 1, 2 })
        {
            foreach (bool down in new[] { false, true })
            {
                for (int countKind = 0; countKind < 4; countKind++)
                {
                    foreach (var layout in Enum.GetValues<StringLayout>())
                    {
                        Check(_compat.Value, new StringCase(op, size, rep, down, false, countKind, layout, seed++));
                    }
                }
            }
        }
    }

    /// <summary>CMPS and SCAS with both F2 and F3: the last prefix decides between REPE and REPNE.</summary>
    [Fact]
    public void BothRepeatPrefixes_TheLastOneDecides()
    {
        int seed = 5000;
        foreach (var op in new[] { StringOp.Cmps, StringOp.Scas })
        {
            foreach (int size in new[] { 1, 8 })
            {
                foreach (int rep in new[] { 3, 4 })
                {
                    foreach (bool down in new[] { false, true })
                    {
                        for (int countKind = 2; countKind < 4; countKind++)
                        {
                            Check(_long, new StringCase(op, size, rep, down, false, countKind, StringLayout.Apart, seed++));
                        }
                    }
                }
            }
        }
    }

    /// <summary>FsCheck picks the form and the seed; 300 random cases on top of the exhaustive matrix.</summary>
    [Fact]
    public void RandomCases_MatchTheHost()
    {
        var cases =
            from op in Gen.Elements(Enum.GetValues<StringOp>())
            from size in Gen.Elements(1, 2, 4, 8)
            from rep in Gen.Choose(0, 2)
            from down in Gen.Elements(false, true)
            from address32 in Gen.Elements(false, true)
            from countKind in Gen.Choose(0, 3)
            from layout in Gen.Elements(Enum.GetValues<StringLayout>())
            from seed in Gen.Choose(0, int.MaxValue)
            select new StringCase(op, size, rep, down, address32, countKind, layout, seed);
        Prop.ForAll(cases.ToArbitrary(), c => Check(_long, c)).Check(Config.QuickThrowOnFailure.WithMaxTest(300));
    }

    private static byte[] Buffer => _buffer ??= Differential.NewWindow();

    public void Dispose()
    {
        _long.Dispose();
        if (_compat.IsValueCreated)
        {
            _compat.Value.Dispose();
        }
    }

    private static TheoryData<StringOp, int> Matrix(int[] sizes)
    {
        var data = new TheoryData<StringOp, int>();
        foreach (var op in Enum.GetValues<StringOp>())
        {
            foreach (int size in sizes)
            {
                data.Add(op, size);
            }
        }

        return data;
    }

    internal static byte[] Encode(StringCase c, bool longMode)
    {
        var code = new List<byte>(6);
        if (c.Address32 && longMode)
        {
            code.Add(0x67);
        }

        switch (c.Rep)
        {
            case 1:
                code.Add(0xF3);
                break;
            case 2:
                code.Add(0xF2);
                break;
            case 3:
                code.AddRange([0xF2, 0xF3]);
                break;
            case 4:
                code.AddRange([0xF3, 0xF2]);
                break;
        }

        if (c.Size == 2)
        {
            code.Add(0x66);
        }

        if (c.Size == 8)
        {
            code.Add(0x48);
        }

        byte opcode = c.Op switch
        {
            StringOp.Movs => 0xA4,
            StringOp.Cmps => 0xA6,
            StringOp.Stos => 0xAA,
            StringOp.Lods => 0xAC,
            _ => 0xAE,
        };
        code.Add(c.Size == 1 ? opcode : (byte)(opcode + 1));
        return [.. code];
    }

    private static void Check(Differential machine, StringCase c)
    {
        var random = new Random(c.Seed);
        var registers = Differential.RandomRegisters(random, machine.LongMode);
        var window = Differential.RandomWindow(random, Buffer);
        int size = c.Size;
        int count = c.Rep == 0 ? 1 : c.CountKind switch
        {
            0 => 0,
            1 => 1,
            2 => random.Next(2, 64),
            _ => LargeCount,
        };
        int elements = Math.Max(count, 1);
        int run = elements * size;

        // The runs: [low, low + run) on each side; the index registers point at the first element.
        int sourceLow;
        int destinationLow;
        switch (c.Layout)
        {
            case StringLayout.Overlapping:
                sourceLow = random.Next(4 * size, DataSize - run - (4 * size));
                destinationLow = sourceLow + random.Next(-3 * size, (3 * size) + 1);
                break;
            case StringLayout.PageEdge:
                sourceLow = (random.Next(1, (DataSize - run) / 4096 - 1) * 4096) - random.Next(1, 8);
                destinationLow = Math.Min((random.Next(1, (DataSize - run) / 4096 - 1) * 4096) - random.Next(1, 8), DataSize - run - 8);
                break;
            default:
                sourceLow = random.Next(0, DataSize - run);
                destinationLow = random.Next(0, DataSize - run);
                break;
        }

        int sourceFirst = c.Down ? sourceLow + run - size : sourceLow;
        int destinationFirst = c.Down ? destinationLow + run - size : destinationLow;
        ShapeData(c, random, window, registers, sourceLow, destinationLow, elements);

        // With a 67 prefix in 64-bit mode only ESI/EDI/ECX count: give the upper halves garbage.
        bool garbage = machine.LongMode && c.Address32;
        registers.Gpr[6] = Upper(random, garbage) | (Differential.Window + (ulong)sourceFirst);
        registers.Gpr[7] = Upper(random, garbage) | (Differential.Window + (ulong)destinationFirst);
        registers.Gpr[1] = Upper(random, garbage) | (uint)count;

        registers.Flags = (registers.Flags & ~Flags.DF) | (c.Down ? Flags.DF : 0);
        // A zero count with 32-bit addresses: Intel writes ECX/ESI/EDI (clearing their upper halves), AMD leaves the
        // registers alone; the 32-bit values agree either way.
        int upperHalves = HostCpu.IsIntel || !garbage || count != 0 || c.Rep == 0 ? 0 : (1 << 1) | (1 << 6) | (1 << 7);
        string? failure = machine.Compare(Encode(c, machine.LongMode), registers, window, vendorIgnoredUpperHalves: upperHalves);
        Assert.True(failure == null, $"{c}: {failure}");
    }

    private static ulong Upper(Random random, bool garbage) => garbage ? (ulong)random.NextInt64() << 32 : 0;

    /// <summary>Makes CMPS and SCAS runs mostly equal (REPE) or mostly different (REPNE), with the stop at a random element.</summary>
    private static void ShapeData(StringCase c, Random random, byte[] window, RegisterFile registers, int sourceLow, int destinationLow, int elements)
    {
        int size = c.Size;
        int stop = random.Next(0, elements + (elements / 4) + 1); // may lie beyond the count: the count ends the run
        if (c.Op == StringOp.Cmps)
        {
            for (int i = 0; i < elements * size; i++)
            {
                byte b = window[sourceLow + i];
                window[destinationLow + i] = c.Repne ? (byte)~b : b;
            }

            if (stop < elements)
            {
                int at = (c.Down ? elements - 1 - stop : stop) * size;
                window[destinationLow + at] = c.Repne ? window[sourceLow + at] : (byte)~window[sourceLow + at];
            }
        }
        else if (c.Op == StringOp.Scas)
        {
            ulong pattern = registers.Gpr[0];
            for (int e = 0; e < elements; e++)
            {
                for (int b = 0; b < size; b++)
                {
                    byte value = (byte)(pattern >> (8 * b));
                    window[destinationLow + (e * size) + b] = c.Repne ? (byte)~value : value;
                }
            }

            if (stop < elements)
            {
                int at = (c.Down ? elements - 1 - stop : stop) * size;
                byte value = (byte)pattern;
                window[destinationLow + at] = c.Repne ? value : (byte)~value;
            }
        }
    }
}
