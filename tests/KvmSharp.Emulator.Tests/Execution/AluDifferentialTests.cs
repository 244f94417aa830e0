using System.Globalization;
using System.Numerics;
using System.Text;
using KvmSharp.Emulator.Execution;

namespace KvmSharp.Emulator.Tests.Execution;

/// <summary>
/// Runs each ALU instruction natively on the host CPU (via <see cref="NativeRunner"/>) and compares the
/// result registers and all six arithmetic flags with <see cref="Alu"/>, for edge values, every
/// interesting shift count, and seeded random operands, each with the incoming CF both set and clear
/// and the other incoming arithmetic flags random (so "unchanged" flags are checked too).
/// </summary>
public class AluDifferentialTests(ITestOutputHelper output)
{
    private const int RandomPairs = 3000;

    public static TheoryData<HostOp, int> BinaryOps => Matrix(
        [HostOp.Add, HostOp.Adc, HostOp.Sub, HostOp.Sbb, HostOp.Cmp, HostOp.And, HostOp.Or, HostOp.Xor, HostOp.Test], [1, 2, 4, 8]);

    public static TheoryData<HostOp, int> UnaryOps => Matrix(
        [HostOp.Inc, HostOp.Dec, HostOp.Neg, HostOp.Not], [1, 2, 4, 8]);

    public static TheoryData<HostOp, int> ShiftOps => Matrix(
        [HostOp.Rol, HostOp.Ror, HostOp.Rcl, HostOp.Rcr, HostOp.Shl, HostOp.Shr, HostOp.Sal, HostOp.Sar], [1, 2, 4, 8]);

    public static TheoryData<HostOp, int> DoubleShiftOps => Matrix([HostOp.Shld, HostOp.Shrd], [2, 4, 8]);

    public static TheoryData<HostOp, int> MultiplyOps => Matrix([HostOp.Mul, HostOp.Imul], [1, 2, 4, 8]);

    public static TheoryData<HostOp, int> DivideOps => Matrix([HostOp.Div, HostOp.Idiv], [1, 2, 4, 8]);

    public static TheoryData<HostOp, int> WordOps => Matrix(
        [HostOp.Cbw, HostOp.Cwd, HostOp.Imul2, HostOp.Bt, HostOp.Bts, HostOp.Btr, HostOp.Btc, HostOp.Bsf, HostOp.Bsr, HostOp.Tzcnt, HostOp.Lzcnt, HostOp.Popcnt], [2, 4, 8]);

    public static TheoryData<int> Sizes => [1, 2, 4, 8];

    [Fact]
    public void Host_IsReported()
    {
        string model = "unknown";
        string vendor = "unknown";
        foreach (string line in File.ReadLines("/proc/cpuinfo"))
        {
            if (line.StartsWith("model name", StringComparison.Ordinal))
            {
                model = line[(line.IndexOf(':', StringComparison.Ordinal) + 1)..].Trim();
            }
            else if (line.StartsWith("vendor_id", StringComparison.Ordinal))
            {
                vendor = line[(line.IndexOf(':', StringComparison.Ordinal) + 1)..].Trim();
            }

            if (model != "unknown" && vendor != "unknown")
            {
                break;
            }
        }

        output.WriteLine($"ALU differential tests compare with: {vendor} {model}");
        Assert.NotEqual("unknown", vendor);
    }

    [Theory]
    [InlineData(HostOp.Bsf)]
    [InlineData(HostOp.Bsr)]
    public void BitScan32_WithAZeroSource_KeepsTheLowHalf_AndReportsTheUpperHalf(HostOp op)
    {
        // Alu returns dest unchanged; whether a 32-bit destination's upper half is still cleared is the
        // executor's concern, so this reports what the host does rather than asserting it.
        var native = NativeRunner.Run(HostInstruction.Encode(op, 4), new NativeState { Rax = 0xDEAD_BEEF_1234_5678, R8 = 0, FlagsIn = Flags.Reserved1 });
        output.WriteLine($"{op} r32 with source 0: RAX 0xDEADBEEF12345678 became 0x{native.OutRax:X16}");
        Assert.Equal(0x1234_5678UL, native.OutRax & 0xFFFF_FFFF);
        Assert.Equal(0x1234_5678UL, Alu.Bsf(0xDEAD_BEEF_1234_5678, 0, 4, Flags.Reserved1).Value);
    }

    [Theory]
    [MemberData(nameof(BinaryOps))]
    [MemberData(nameof(UnaryOps))]
    [MemberData(nameof(MultiplyOps))]
    [MemberData(nameof(WordOps))]
    public void TwoOperands_MatchTheHost(HostOp op, int size)
    {
        var random = new Random(Seed(op, size, 17));
        var values = EdgeValues(size);
        int cases = 0;
        var failures = new Failures(op, size);
        foreach (ulong a in values)
        {
            foreach (ulong b in values)
            {
                cases += RunBothCarries(op, size, 0, a, b, 0, 0, random, failures);
            }
        }

        for (int i = 0; i < RandomPairs; i++)
        {
            cases += RunBothCarries(op, size, 0, RandomValue(random), RandomValue(random), 0, 0, random, failures);
        }

        Report(failures, cases);
    }

    [Theory]
    [MemberData(nameof(ShiftOps))]
    [MemberData(nameof(DoubleShiftOps))]
    public void ShiftsAndRotates_MatchTheHost_ForEveryCount(HostOp op, int size)
    {
        var random = new Random(Seed(op, size, 23));
        var values = EdgeValues(size);
        var counts = new List<ulong>();
        for (ulong c = 0; c <= (ulong)(size * 8) + 2; c++)
        {
            counts.Add(c);
        }

        counts.AddRange([17, 18, 27, 31, 32, 33, 34, 63, 64, 65, 127, 255, 0x1_00, 0x1_01]);
        int cases = 0;
        var failures = new Failures(op, size);
        foreach (ulong count in counts)
        {
            foreach (ulong a in values)
            {
                cases += RunBothCarries(op, size, 0, a, RandomValue(random), count, 0, random, failures);
            }

            for (int i = 0; i < 60; i++)
            {
                cases += RunBothCarries(op, size, 0, RandomValue(random), RandomValue(random), count, 0, random, failures);
            }
        }

        Report(failures, cases);
    }

    [Theory]
    [MemberData(nameof(DivideOps))]
    public void Division_MatchesTheHost_AndDetectsDivideErrorsByTheRule(HostOp op, int size)
    {
        var random = new Random(Seed(op, size, 29));
        var values = EdgeValues(size);
        int cases = 0;
        int faults = 0;
        var failures = new Failures(op, size);
        foreach (ulong high in values)
        {
            foreach (ulong low in values)
            {
                foreach (ulong divisor in values)
                {
                    Divide(high, low, divisor);
                }
            }
        }

        for (int i = 0; i < RandomPairs * 4; i++)
        {
            // Small high halves make most random quotients fit, so most cases reach the host.
            ulong high = random.Next(4) switch { 0 => RandomValue(random), 1 => 0, 2 => Alu.SizeMask(size), _ => RandomValue(random) >> random.Next(64) };
            Divide(high, RandomValue(random), RandomValue(random));
        }

        output.WriteLine($"{op} size {size}: {faults} inputs raise #DE by the rule (not run natively).");
        Report(failures, cases);
        Assert.True(faults > 0, "The inputs must include divide errors.");

        void Divide(ulong high, ulong low, ulong divisor)
        {
            // The native stub divides RDX:RAX (AX for bytes); build those registers first and derive
            // the rule's inputs from them, so the rule sees exactly what the host would divide.
            var input = new NativeState { Rax = low, R8 = divisor, Rdx = high };
            if (size == 1)
            {
                input.Rax = (low & 0xFF) | ((high & 0xFF) << 8) | (low & ~0xFFFFUL);
            }

            (high, low) = Dividend(input, size);
            if (ReferenceDivideFaults(op == HostOp.Idiv, high, low, divisor, size))
            {
                faults++;
                var emulated = op == HostOp.Div
                    ? Alu.Div(high, low, divisor, size, 0x2)
                    : Alu.Idiv(high, low, divisor, size, 0x2);
                if (!emulated.DivideError)
                {
                    failures.Add($"high={high:X} low={low:X} divisor={divisor:X}: #DE expected, Alu computed {emulated}");
                }

                return;
            }

            cases += RunBothCarries(op, size, 0, input.Rax, divisor, 0, input.Rdx, random, failures);
        }
    }

    [Theory]
    [InlineData(2)]
    [InlineData(4)]
    [InlineData(8)]
    public void ThreeOperandImul_MatchesTheHost_ForEachImmediate(int size)
    {
        var random = new Random(31 + size);
        var values = EdgeValues(size);
        int cases = 0;
        var failures = new Failures(HostOp.Imul3, size);
        foreach (byte immediate in new byte[] { 0x00, 0x01, 0x02, 0x03, 0x07, 0x10, 0x7F, 0x80, 0x81, 0xFE, 0xFF })
        {
            foreach (ulong a in values)
            {
                cases += RunBothCarries(HostOp.Imul3, size, immediate, 0, a, 0, 0, random, failures);
            }

            for (int i = 0; i < 300; i++)
            {
                cases += RunBothCarries(HostOp.Imul3, size, immediate, 0, RandomValue(random), 0, 0, random, failures);
            }
        }

        Report(failures, cases);
    }

    [Theory]
    [InlineData(2)] // undefined by the SDM; checks the 0 Alu returns
    [InlineData(4)]
    [InlineData(8)]
    public void Bswap_MatchesTheHost(int size)
    {
        var random = new Random(37 + size);
        int cases = 0;
        var failures = new Failures(HostOp.Bswap, size);
        foreach (ulong a in EdgeValues(size))
        {
            cases += RunBothCarries(HostOp.Bswap, size, 0, a, 0, 0, 0, random, failures);
        }

        for (int i = 0; i < RandomPairs; i++)
        {
            cases += RunBothCarries(HostOp.Bswap, size, 0, RandomValue(random), 0, 0, 0, random, failures);
        }

        Report(failures, cases);
    }

    [Theory]
    [InlineData(HostOp.Daa)]
    [InlineData(HostOp.Das)]
    [InlineData(HostOp.Aaa)]
    [InlineData(HostOp.Aas)]
    public void BcdAdjust_MatchesTheHost_ForEveryAlAndAdjustFlags(HostOp op)
    {
        Assert.SkipUnless(NativeRunner.CompatibilityModeAvailable, "The kernel has no 32-bit user code segment (IA-32 emulation is off).");
        var random = new Random(41 + (int)op);
        int cases = 0;
        var failures = new Failures(op, 1);
        foreach (ulong ah in new ulong[] { 0x00, 0x01, 0x7F, 0xFF })
        {
            for (ulong al = 0; al < 256; al++)
            {
                foreach (ulong af in new[] { 0UL, Flags.AF })
                {
                    cases += RunBothCarries(op, 1, 0, (ah << 8) | al, 0, 0, 0, random, failures, af);
                }
            }
        }

        Report(failures, cases);
    }

    [Theory]
    [InlineData(HostOp.Aam)]
    [InlineData(HostOp.Aad)]
    public void AamAad_MatchTheHost_ForEveryAxAndImmediates(HostOp op)
    {
        Assert.SkipUnless(NativeRunner.CompatibilityModeAvailable, "The kernel has no 32-bit user code segment (IA-32 emulation is off).");
        var random = new Random(43 + (int)op);
        int cases = 0;
        var failures = new Failures(op, 1);
        foreach (byte immediate in new byte[] { 10, 1, 2, 7, 16, 0x7F, 0x80, 0xFF })
        {
            for (int i = 0; i < 4096; i++)
            {
                ulong ax = op == HostOp.Aam ? (ulong)i & 0xFF | (ulong)random.Next(256) << 8 : (ulong)random.Next(65536);
                cases += RunOnce(op, 1, immediate, ax, 0, 0, 0, RandomFlags(random), failures);
            }
        }

        Report(failures, cases);
        Assert.True(Alu.Aam(0x1234, 0, 0x2, out bool divideError).Value == 0x1234 && divideError, "AAM 0 must raise #DE.");
    }

    private static int Seed(HostOp op, int size, int salt) => ((int)op * 100) + (size * 10) + salt;

    /// <summary>The (high, low) halves of the dividend DIV/IDIV read: AH:AL for bytes, RDX:RAX otherwise.</summary>
    private static (ulong High, ulong Low) Dividend(NativeState s, int size) =>
        size == 1 ? ((s.Rax >> 8) & 0xFF, s.Rax & 0xFF) : (s.Rdx, s.Rax);

    private static TheoryData<HostOp, int> Matrix(HostOp[] ops, int[] sizes)
    {
        var data = new TheoryData<HostOp, int>();
        foreach (var op in ops)
        {
            foreach (int size in sizes)
            {
                data.Add(op, size);
            }
        }

        return data;
    }

    private static int RunBothCarries(HostOp op, int size, byte immediate, ulong a, ulong b, ulong count, ulong rdx, Random random, Failures failures, ulong? auxiliaryCarry = null)
    {
        ulong flags = RandomFlags(random);
        if (auxiliaryCarry is ulong af)
        {
            flags = (flags & ~Flags.AF) | af;
        }

        return RunOnce(op, size, immediate, a, b, count, rdx, flags | Flags.CF, failures)
            + RunOnce(op, size, immediate, a, b, count, rdx, flags & ~Flags.CF, failures);
    }

    private static ulong RandomFlags(Random random) => ((ulong)random.NextInt64() & Flags.Arithmetic) | Flags.Reserved1;

    private static int RunOnce(HostOp op, int size, byte immediate, ulong a, ulong b, ulong count, ulong rdx, ulong flagsIn, Failures failures)
    {
        var input = new NativeState { Rax = a, R8 = b, Rcx = count, Rdx = rdx, FlagsIn = flagsIn };
        // A #DE would kill the test process (SIGFPE): never hand the host a faulting division.
        var (high, low) = Dividend(input, size);
        Assert.False(op is HostOp.Div or HostOp.Idiv && ReferenceDivideFaults(op == HostOp.Idiv, high, low, b, size), "Refusing to run a faulting division natively.");
        Assert.False(op == HostOp.Aam && immediate == 0, "Refusing to run AAM 0 natively.");
        byte[] instruction = HostInstruction.Encode(op, size, immediate);
        var native = HostInstruction.IsCompatibilityMode(op)
            ? NativeRunner.RunCompatibilityMode(instruction, input)
            : NativeRunner.Run(instruction, input);
        var expected = Emulate(op, size, immediate, input);

        ulong raxMask = expected.RaxMask;
        ulong comparedFlags = Flags.Arithmetic & ~VendorUndefinedFlags(op, size, count);
        if (!HostCpu.IsIntel && op is HostOp.Shld or HostOp.Shrd && size == 2 && (count & 31) > 16)
        {
            raxMask = 0; // SDM and APM: a 16-bit double shift by more than 16 leaves the result and flags undefined
            comparedFlags = 0;
        }

        bool same = ((native.OutRax ^ expected.Rax) & raxMask) == 0
            && ((native.OutRdx ^ expected.Rdx) & expected.RdxMask) == 0
            && ((native.FlagsOut ^ expected.Flags) & comparedFlags) == 0;
        if (!same)
        {
            failures.Add(string.Create(CultureInfo.InvariantCulture,
                $"rax={a:X} r8={b:X} cl={count} rdx={rdx:X} imm={immediate:X} flags={Describe(flagsIn)}: host rax={native.OutRax & raxMask:X} rdx={native.OutRdx & expected.RdxMask:X} {Describe(native.FlagsOut)}; Alu rax={expected.Rax & raxMask:X} rdx={expected.Rdx & expected.RdxMask:X} {Describe(expected.Flags)}"));
        }

        return 1;
    }

    /// <summary>Flags not compared on a non-Intel host (<see cref="HostCpu"/>): the ones both manuals leave undefined.</summary>
    private static ulong VendorUndefinedFlags(HostOp op, int size, ulong count)
    {
        string mnemonic = op switch
        {
            HostOp.Imul2 or HostOp.Imul3 => "imul",
            _ => op.ToString().ToLowerInvariant(),
        };
        ulong masked = count & (size == 8 ? 63UL : 31UL);
        ulong undefined = HostCpu.UndefinedFlags(mnemonic, masked);
        if (!HostCpu.IsIntel && op is HostOp.Shl or HostOp.Sal or HostOp.Shr or HostOp.Sar && masked >= (ulong)size * 8)
        {
            undefined |= Flags.CF; // SDM: CF is undefined when the count is at least the operand width
        }

        return undefined;
    }

    private readonly record struct Expected(ulong Rax, ulong RaxMask, ulong Rdx, ulong RdxMask, ulong Flags);

    private static Expected Emulate(HostOp op, int size, byte immediate, NativeState s)
    {
        ulong mask = Alu.SizeMask(size);
        ulong f = s.FlagsIn;
        switch (op)
        {
            case HostOp.Add: return Value(Alu.Add(s.Rax, s.R8, size, f));
            case HostOp.Adc: return Value(Alu.Adc(s.Rax, s.R8, size, f));
            case HostOp.Sub: return Value(Alu.Sub(s.Rax, s.R8, size, f));
            case HostOp.Sbb: return Value(Alu.Sbb(s.Rax, s.R8, size, f));
            case HostOp.Cmp: return new(s.Rax, mask, 0, 0, Alu.Cmp(s.Rax, s.R8, size, f));
            case HostOp.And: return Value(Alu.And(s.Rax, s.R8, size, f));
            case HostOp.Or: return Value(Alu.Or(s.Rax, s.R8, size, f));
            case HostOp.Xor: return Value(Alu.Xor(s.Rax, s.R8, size, f));
            case HostOp.Test: return new(s.Rax, mask, 0, 0, Alu.Test(s.Rax, s.R8, size, f));
            case HostOp.Inc: return Value(Alu.Inc(s.Rax, size, f));
            case HostOp.Dec: return Value(Alu.Dec(s.Rax, size, f));
            case HostOp.Neg: return Value(Alu.Neg(s.Rax, size, f));
            case HostOp.Not: return new(Alu.Not(s.Rax, size), mask, 0, 0, f);
            case HostOp.Rol: return Value(Alu.Rol(s.Rax, s.Rcx, size, f));
            case HostOp.Ror: return Value(Alu.Ror(s.Rax, s.Rcx, size, f));
            case HostOp.Rcl: return Value(Alu.Rcl(s.Rax, s.Rcx, size, f));
            case HostOp.Rcr: return Value(Alu.Rcr(s.Rax, s.Rcx, size, f));
            case HostOp.Shl: return Value(Alu.Shl(s.Rax, s.Rcx, size, f));
            case HostOp.Shr: return Value(Alu.Shr(s.Rax, s.Rcx, size, f));
            case HostOp.Sal: return Value(Alu.Sal(s.Rax, s.Rcx, size, f));
            case HostOp.Sar: return Value(Alu.Sar(s.Rax, s.Rcx, size, f));
            case HostOp.Shld: return Value(Alu.Shld(s.Rax, s.R8, s.Rcx, size, f));
            case HostOp.Shrd: return Value(Alu.Shrd(s.Rax, s.R8, s.Rcx, size, f));
            case HostOp.Mul:
            case HostOp.Imul:
            {
                var product = op == HostOp.Mul ? Alu.Mul(s.Rax, s.R8, size, f) : Alu.Imul(s.Rax, s.R8, size, f);
                return size == 1
                    ? new((product.High << 8) | product.Low, 0xFFFF, 0, 0, product.RFlags)
                    : new(product.Low, mask, product.High, mask, product.RFlags);
            }

            case HostOp.Div:
            case HostOp.Idiv:
            {
                var (high, _) = Dividend(s, size);
                var quotient = op == HostOp.Div ? Alu.Div(high, s.Rax, s.R8, size, f) : Alu.Idiv(high, s.Rax, s.R8, size, f);
                Assert.False(quotient.DivideError);
                return size == 1
                    ? new((quotient.Remainder << 8) | quotient.Quotient, 0xFFFF, 0, 0, quotient.RFlags)
                    : new(quotient.Quotient, mask, quotient.Remainder, mask, quotient.RFlags);
            }

            case HostOp.Imul2: return Value(Alu.ImulTruncated(s.Rax, s.R8, size, f));
            case HostOp.Imul3: return Value(Alu.ImulTruncated(s.R8, (ulong)(sbyte)immediate, size, f));
            case HostOp.Bt: return new(s.Rax, mask, 0, 0, Alu.Bt(s.Rax, s.R8, size, f));
            case HostOp.Bts: return Value(Alu.Bts(s.Rax, s.R8, size, f));
            case HostOp.Btr: return Value(Alu.Btr(s.Rax, s.R8, size, f));
            case HostOp.Btc: return Value(Alu.Btc(s.Rax, s.R8, size, f));
            case HostOp.Bsf: return Value(Alu.Bsf(s.Rax, s.R8, size, f));
            case HostOp.Bsr: return Value(Alu.Bsr(s.Rax, s.R8, size, f));
            case HostOp.Tzcnt: return Value(Alu.Tzcnt(s.R8, size, f));
            case HostOp.Lzcnt: return Value(Alu.Lzcnt(s.R8, size, f));
            case HostOp.Popcnt: return Value(Alu.Popcnt(s.R8, size, f));
            case HostOp.Bswap: return new(Alu.Bswap(s.Rax, size), mask, 0, 0, f);
            case HostOp.Cbw: return new(Alu.SignExtendAccumulator(s.Rax, size), mask, 0, 0, f);
            case HostOp.Cwd: return new(s.Rax, mask, Alu.SignOfAccumulator(s.Rax, size), mask, f);
            case HostOp.Daa: return Byte(Alu.Daa(s.Rax, f), s.Rax);
            case HostOp.Das: return Byte(Alu.Das(s.Rax, f), s.Rax);
            case HostOp.Aaa: return new(Alu.Aaa(s.Rax, f).Value, 0xFFFF, 0, 0, Alu.Aaa(s.Rax, f).RFlags);
            case HostOp.Aas: return new(Alu.Aas(s.Rax, f).Value, 0xFFFF, 0, 0, Alu.Aas(s.Rax, f).RFlags);
            case HostOp.Aam:
            {
                var adjusted = Alu.Aam(s.Rax, immediate, f, out bool divideError);
                Assert.False(divideError);
                return new(adjusted.Value, 0xFFFF, 0, 0, adjusted.RFlags);
            }

            case HostOp.Aad: return new(Alu.Aad(s.Rax, immediate, f).Value, 0xFFFF, 0, 0, Alu.Aad(s.Rax, immediate, f).RFlags);
            default: throw new ArgumentOutOfRangeException(nameof(op), op, "Not emulated.");
        }

        Expected Value(AluResult result) => new(result.Value, mask, 0, 0, result.RFlags);

        static Expected Byte(AluResult result, ulong ax) => new((ax & 0xFF00) | result.Value, 0xFFFF, 0, 0, result.RFlags);
    }

    /// <summary>The #DE rule, computed independently of Alu with BigInteger.</summary>
    private static bool ReferenceDivideFaults(bool signed, ulong high, ulong low, ulong divisor, int size)
    {
        int bits = size * 8;
        var mask = (BigInteger.One << bits) - 1;
        var dividend = ((high & mask) << bits) | (low & mask);
        var d = new BigInteger(divisor) & mask;
        if (signed)
        {
            if (dividend >= BigInteger.One << (2 * bits - 1))
            {
                dividend -= BigInteger.One << (2 * bits);
            }

            if (d >= BigInteger.One << (bits - 1))
            {
                d -= BigInteger.One << bits;
            }
        }

        if (d.IsZero)
        {
            return true;
        }

        var quotient = BigInteger.Divide(dividend, d);
        return signed
            ? quotient >= BigInteger.One << (bits - 1) || quotient < -(BigInteger.One << (bits - 1))
            : quotient > mask;
    }

    private static List<ulong> EdgeValues(int size)
    {
        var values = new List<ulong> { 0, 1, 2, 3, 6, 9, 0x0A, 0x0F, 0x10, 0x55, 0x99, 0xAA };
        ulong mask = Alu.SizeMask(size);
        ulong sign = Alu.SignMask(size);
        values.AddRange([sign - 1, sign, sign + 1, mask, mask - 1, mask >> 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF]);
        var distinct = new List<ulong>();
        foreach (ulong value in values)
        {
            if (!distinct.Contains(value & mask))
            {
                distinct.Add(value & mask);
            }
        }

        // Upper garbage must be ignored: add the values with the bits above the operand set.
        if (size < 8)
        {
            distinct.Add(0xDEAD_BEEF_0000_0000UL | 1);
        }

        return distinct;
    }

    private static ulong RandomValue(Random random) => random.Next(6) switch
    {
        0 => (ulong)random.Next(256),
        1 => (ulong)random.NextInt64() & (ulong)random.NextInt64(),
        2 => (ulong)random.NextInt64() | (ulong)random.NextInt64() << 1,
        3 => 1UL << random.Next(64),
        4 => ~(1UL << random.Next(64)),
        _ => (ulong)random.NextInt64() ^ (ulong)random.NextInt64() << 7,
    };

    private static string Describe(ulong flags)
    {
        var text = new StringBuilder(20);
        text.Append((flags & Flags.OF) != 0 ? "O" : "o");
        text.Append((flags & Flags.SF) != 0 ? "S" : "s");
        text.Append((flags & Flags.ZF) != 0 ? "Z" : "z");
        text.Append((flags & Flags.AF) != 0 ? "A" : "a");
        text.Append((flags & Flags.PF) != 0 ? "P" : "p");
        text.Append((flags & Flags.CF) != 0 ? "C" : "c");
        return text.ToString();
    }

    private void Report(Failures failures, int cases)
    {
        output.WriteLine($"{failures.Op} size {failures.Size}: {cases} cases, {failures.Count} mismatches.");
        if (failures.Count != 0)
        {
            Assert.Fail($"{failures.Op} size {failures.Size}: {failures.Count} of {cases} cases differ from the host, e.g.\n{failures.Examples}");
        }
    }

    private sealed class Failures(HostOp op, int size)
    {
        private readonly StringBuilder _examples = new();

        public HostOp Op { get; } = op;

        public int Size { get; } = size;

        public int Count { get; private set; }

        public string Examples => _examples.ToString();

        public void Add(string message)
        {
            if (Count++ < 12)
            {
                _examples.AppendLine(message);
            }
        }
    }
}
