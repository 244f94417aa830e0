using System.Buffers.Binary;
using System.Text;
using FsCheck;
using FsCheck.Fluent;
using KvmSharp.Emulator.Cpu;
using KvmSharp.Emulator.Execution;
using KvmSharp.Emulator.Execution.X87;
using KvmSharp.Emulator.Tests.Cpu;

namespace KvmSharp.Emulator.Tests.X87;

/// <summary>
/// Runs one x87 instruction on the host and in the interpreter from the same <see cref="X87Input"/> and compares
/// FCW, FSW (condition codes, flags, TOP, ES/B), the tags, FOP, FIP and FDP (as "this instruction"/"this operand"
/// or unchanged), all eight registers, the 128-byte memory area, RAX and the arithmetic flags.
/// </summary>
internal sealed class X87Differential : IDisposable
{
    private readonly X87NativeRunner _native = new();
    private readonly CpuFixture _fixture = new([0xF4]);
    private readonly byte[] _hostFx = new byte[512];
    private readonly byte[] _guestFx = new byte[512];
    private readonly byte[] _hostMemory = new byte[X87NativeRunner.MemorySize];
    private readonly byte[] _guestMemory = new byte[X87NativeRunner.MemorySize];

    /// <summary>
    /// Registers may differ by this many units in the last place (transcendentals); C1 (the rounding direction of
    /// an approximation) is then not compared.
    /// </summary>
    public int UlpTolerance { get; init; }

    /// <summary>Compares one case; null when host and interpreter agree, else a description.</summary>
    public string? Compare(byte[] instruction, X87Input input)
    {
        input.Memory.CopyTo(_hostMemory, 0);
        ulong hostInstruction = _native.Run(instruction, input.Fx, _hostFx, _hostMemory, input.Rax, input.Flags, out ulong hostRax, out ulong hostFlags);

        var state = _fixture.State;
        _fixture.Memory.Write(CpuFixture.CodeBase, (ReadOnlySpan<byte>)instruction);
        _fixture.Memory.Write(CpuFixture.DataBase, (ReadOnlySpan<byte>)input.Memory);
        state.Rip = CpuFixture.CodeBase;
        state.Rsi = CpuFixture.DataBase;
        state.Rax = input.Rax;
        state.RFlags = input.Flags;
        if (!state.Fx.TryRestore(input.Fx))
        {
            return "the input image does not restore";
        }

        var step = _fixture.Interpreter.Step();
        if (step.Status != StepStatus.Executed)
        {
            return $"interpreter: {step.Status} {step.Exception}";
        }

        state.Fx.Save(_guestFx);
        _fixture.Memory.Read(CpuFixture.DataBase, _guestMemory);

        var report = new StringBuilder();
        Field(report, "FCW", Read16(_hostFx, 0), Read16(_guestFx, 0));
        ushort hostFsw = Read16(_hostFx, 2);
        ushort guestFsw = Read16(_guestFx, 2);
        for (int i = 0; i < 8; i++)
        {
            var host = Register(_hostFx, i);
            var guest = Register(_guestFx, i);
            if (host != guest)
            {
                if (UlpDistance(host, guest) > (ulong)UlpTolerance)
                {
                    report.Append($" ST{i}: host {host} interpreter {guest};");
                }
            }
        }

        if (!HostCpu.IsIntel && UlpTolerance != 0 && ((hostFsw | guestFsw) & X87Bits.UE) != 0)
        {
            // Tininess of transcendental results is detected differently by AMD (HostCpu); such cases are not compared.
            return null;
        }

        if (!HostCpu.IsIntel && instruction is [0xD9, 0xFD] && (hostFsw & ~guestFsw & X87Bits.UE) != 0)
        {
            // FSCALE by a scale that truncates to 0 on a denormal with UE unmasked: AMD signals underflow and returns
            // the result biased by 2^24576; Intel, whose behaviour the interpreter follows, returns the operand
            // unchanged without an exception (HostCpu). Such cases are not compared on AMD hosts.
            return null;
        }

        int fswMask = UlpTolerance == 0 ? 0xFFFF : 0xFFFF & ~X87Bits.C1;
        Field(report, "FSW", (ushort)(hostFsw & fswMask), (ushort)(guestFsw & fswMask));
        Field(report, "FTW", _hostFx[4], _guestFx[4]);
        if (HostCpu.IsIntel)
        {
            Field(report, "FOP", Read16(_hostFx, 6), Read16(_guestFx, 6));
            string hostFip = Pointer(Read64(_hostFx, 8), hostInstruction, 16);
            string guestFip = Pointer(Read64(_guestFx, 8), CpuFixture.CodeBase, 16);
            if (hostFip != guestFip)
            {
                report.Append($" FIP: host {hostFip} interpreter {guestFip};");
            }

            string hostFdp = Pointer(Read64(_hostFx, 16), _native.MemoryAddress, X87NativeRunner.MemorySize);
            string guestFdp = Pointer(Read64(_guestFx, 16), CpuFixture.DataBase, X87NativeRunner.MemorySize);
            if (hostFdp != guestFdp)
            {
                report.Append($" FDP: host {hostFdp} interpreter {guestFdp};");
            }
        }

        if (!HostCpu.IsIntel && StoredPointerBytes(instruction) is (int start, int length))
        {
            // FNSTENV/FNSAVE: the instruction and operand pointers in the image are vendor-specific (HostCpu).
            _hostMemory.AsSpan(start, length).Clear();
            _guestMemory.AsSpan(start, length).Clear();
        }

        if (!_hostMemory.AsSpan().SequenceEqual(_guestMemory))
        {
            int first = _hostMemory.AsSpan().CommonPrefixLength(_guestMemory);
            report.Append($" memory from +{first}: host {Convert.ToHexString(_hostMemory, first, Math.Min(16, _hostMemory.Length - first))} interpreter {Convert.ToHexString(_guestMemory, first, Math.Min(16, _guestMemory.Length - first))};");
        }

        if (hostRax != state.Rax)
        {
            report.Append($" RAX: host {hostRax:X} interpreter {state.Rax:X};");
        }

        if (((hostFlags ^ state.RFlags) & Flags.Arithmetic) != 0)
        {
            report.Append($" RFLAGS: host {hostFlags & Flags.Arithmetic:X} interpreter {state.RFlags & Flags.Arithmetic:X};");
        }

        return report.Length == 0 ? null : $"{Convert.ToHexString(instruction)}:{report} | input {Describe(input)}";
    }

    /// <summary>Where FNSTENV/FNSAVE [rsi] put FIP, FCS/FOP, FDP and FDS: 6..13 in the 16-bit image, 12..27 in the 32-bit one.</summary>
    private static (int Start, int Length)? StoredPointerBytes(byte[] instruction)
    {
        bool operand16 = instruction[0] == 0x66;
        int i = 0;
        while (instruction[i] is 0x66 or 0x48)
        {
            i++;
        }

        if (instruction.Length < i + 2 || instruction[i] is not (0xD9 or 0xDD) || (instruction[i + 1] & 0xF8) != 0x30)
        {
            return null;
        }

        return operand16 ? (6, 8) : (12, 16);
    }

    /// <summary>
    /// Runs <paramref name="count"/> FsCheck-generated inputs plus <paramref name="extra"/> and fails with the first
    /// few differences (every case runs, so one report shows the pattern).
    /// </summary>
    public void Check(byte[] instruction, Gen<X87Input> inputs, int count, IEnumerable<X87Input>? extra = null)
    {
        var failures = new List<string>();
        int total = 0;
        void Run(X87Input input)
        {
            total++;
            string? failure = Compare(instruction, input);
            if (failure != null)
            {
                failures.Add(failure);
            }
        }

        if (extra != null)
        {
            foreach (var input in extra)
            {
                Run(input);
            }
        }

        Prop.ForAll(inputs.ToArbitrary(), input =>
        {
            Run(input);
            return true;
        }).Check(Config.Quick.WithMaxTest(count).WithQuietOnSuccess(true));
        Assert.True(failures.Count == 0, $"{failures.Count} of {total} cases differ:\n{string.Join("\n", failures.Take(8))}");
    }

    /// <summary>Distance between two values in representable steps (the encodings ordered as integers).</summary>
    public static ulong UlpDistance(Float80 a, Float80 b)
    {
        if (a.Sign != b.Sign)
        {
            return a.IsZero && b.IsZero ? 0 : ulong.MaxValue;
        }

        // The integer bit dropped: consecutive normal encodings then differ by one, across binades too.
        static Int128 Key(Float80 v) => ((Int128)(v.SignExponent & 0x7FFF) << 63) + (Int128)(v.Significand & 0x7FFF_FFFF_FFFF_FFFF);
        var difference = Key(a) - Key(b);
        if (difference < 0)
        {
            difference = -difference;
        }

        return difference > ulong.MaxValue ? ulong.MaxValue : (ulong)difference;
    }

    private static Float80 Register(byte[] fx, int i) =>
        new(BinaryPrimitives.ReadUInt64LittleEndian(fx.AsSpan(32 + (16 * i))), BinaryPrimitives.ReadUInt16LittleEndian(fx.AsSpan(40 + (16 * i))));

    private static string Pointer(ulong value, ulong expectedBase, int range) =>
        value >= expectedBase && value < expectedBase + (ulong)range ? $"this+{value - expectedBase}" : $"{value:X}";

    private static void Field(StringBuilder report, string name, int host, int guest)
    {
        if (host != guest)
        {
            report.Append($" {name}: host {host:X4} interpreter {guest:X4};");
        }
    }

    private static ushort Read16(byte[] bytes, int offset) => BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(offset));

    private static ulong Read64(byte[] bytes, int offset) => BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(offset));

    public static string Describe(X87Input input)
    {
        var fx = input.Fx;
        var text = new StringBuilder();
        text.Append($"FCW {Read16(fx, 0):X4} FSW {Read16(fx, 2):X4} tags {fx[4]:X2}");
        int top = (Read16(fx, 2) >> 11) & 7;
        for (int i = 0; i < 8; i++)
        {
            bool empty = ((fx[4] >> ((top + i) & 7)) & 1) == 0;
            text.Append($" ST{i}={(empty ? "empty:" : "")}{Register(fx, i)}");
        }

        text.Append($" mem {Convert.ToHexString(input.Memory, 0, 16)} rax {input.Rax:X} flags {input.Flags:X}");
        return text.ToString();
    }

    public void Dispose()
    {
        _native.Dispose();
        _fixture.Dispose();
    }
}
