using System.Buffers.Binary;
using System.Text;
using FsCheck;
using FsCheck.Fluent;
using KvmSharp.Emulator.Cpu;
using KvmSharp.Emulator.Execution;

namespace KvmSharp.Emulator.Tests.Simd;

/// <summary>
/// Runs instructions natively and in the interpreter from the same <see cref="SimdMachineState"/> and compares
/// everything the instruction could change: the FXSAVE image (x87 control/status/tags/opcode/pointers, MXCSR,
/// the eight ST/MMX registers with their sign/exponent words, the sixteen XMM registers), the GPRs except RSP,
/// the six arithmetic flags and the 1 KiB data area.
/// </summary>
internal static class SimdDifferential
{
    /// <summary>Checks <paramref name="cases"/> random cases of <paramref name="form"/> (register and memory forms as it has them).</summary>
    public static void Check(SimdForm form, int cases, Gen<uint>? mxcsr = null, bool catchSimdFault = false)
    {
        using var runner = new SimdInterpreterRunner();
        // RCP*/RSQRT* tables are the vendor's: off Intel, both results must only lie within the architectural bound.
        bool approximate = !HostCpu.IsIntel && (form.Name.StartsWith("RCP", StringComparison.Ordinal) || form.Name.StartsWith("RSQRT", StringComparison.Ordinal));
        var gprKind = form.Values is ValueKind.Int32 or ValueKind.Int64 ? form.Values : ValueKind.Int64;
        var states = SimdValues.State(form.Values, mxcsr ?? SimdValues.MaskedMxcsr, gprKind);
        var operands = Gen.Choose(0, 15).Four().Zip(Gen.Choose(0, 255), static (r, i) => (Reg: r.Item1, Rm: r.Item2, Memory: r.Item3, Immediate: (byte)i, Displacement: r.Item4));
        var gen = states.Zip(operands, static (s, o) => (State: s, Operands: o));
        Prop.ForAll(gen.ToArbitrary(), c =>
        {
            var (state, o) = c;
            bool memory = form.Forms switch
            {
                RmForms.MemoryOnly => true,
                RmForms.RegisterOnly => false,
                _ => (o.Memory & 1) != 0,
            };
            int reg = Register(form.Reg, o.Reg);
            int rm = Register(form.Rm, o.Rm);
            sbyte displacement = (sbyte)(form.Aligned ? (o.Displacement & 7) * 16 : o.Displacement * 8 + (o.Immediate & 7));
            // REX.W means nothing to most of these encodings: set it on some runs to check that it is ignored.
            var encoding = (o.Reg & 2) != 0 && !IsRexWSensitive(form) ? form with { RexW = true } : form;
            byte[] code = encoding.Encode(reg, rm, memory, displacement, o.Immediate);
            CompareRun(runner, code, state, catchSimdFault, approximate);
        }).Check(Config.QuickThrowOnFailure.WithMaxTest(cases));
    }

    /// <summary>Encodings where REX.W selects a 64-bit GPR or memory operand.</summary>
    private static bool IsRexWSensitive(SimdForm form) =>
        form.Opcode is 0x6E or 0x7E or 0xC3 or 0x50 or 0xC4 or 0xC5 or 0xD7
        || (form.Opcode is 0x2A or 0x2C or 0x2D && form.Prefix is 0xF3 or 0xF2);

    /// <summary>A register number for a field of <paramref name="kind"/>: GPR fields avoid RSP, RSI and RDI (the stub's and the memory operands').</summary>
    private static int Register(OperandKind kind, int choice) => kind switch
    {
        OperandKind.Gpr => choice is 4 or 6 or 7 ? choice + 4 : choice,
        _ => choice,
    };

    /// <summary>Runs <paramref name="code"/> both ways from <paramref name="state"/> and fails with every difference listed.</summary>
    /// <param name="storedFxImage">Where in the data area the instruction stores an FXSAVE image, or -1: off Intel its FOP/FIP/FDP and MXCSR_MASK are vendor-specific (HostCpu) and not compared.</param>
    public static void CompareRun(SimdInterpreterRunner runner, byte[] code, SimdMachineState state, bool catchSimdFault = false, bool approximate = false, int storedFxImage = -1)
    {
        var native = SimdNativeRunner.Run(code, state, catchSimdFault);
        var emulated = runner.Run(code, state);
        var report = new StringBuilder();
        if (native.Faulted)
        {
            if (emulated.Step.Status != StepStatus.Exception || emulated.Step.Exception.Vector != ExceptionVector.SimdFloatingPoint)
            {
                report.AppendLine($"host raised #XM, interpreter: {emulated.Step.Status} {emulated.Step.Exception}");
            }

            // The kernel reports MXCSR as the fault left it; the stub's FXSAVE may see it after the signal frame was restored.
            BinaryPrimitives.WriteUInt32LittleEndian(native.State.FxImage.AsSpan(24), native.FaultMxcsr);
        }
        else if (emulated.Step.Status != StepStatus.Executed)
        {
            report.AppendLine($"host executed it, interpreter: {emulated.Step.Status} {emulated.Step.Exception}");
        }

        if (!HostCpu.IsIntel && storedFxImage >= 0)
        {
            foreach (var data in (byte[][])[native.State.Data, emulated.State.Data])
            {
                data.AsSpan(storedFxImage + 6, 18).Clear();
                data.AsSpan(storedFxImage + 28, 4).Clear();
            }
        }

        Differences(native.State, emulated.State, report, approximate);
        if (report.Length != 0)
        {
            Assert.Fail($"{Convert.ToHexString(code)} from{Environment.NewLine}{Describe(state)}differs (host vs interpreter):{Environment.NewLine}{report}");
        }
    }

    /// <summary>
    /// Every single-precision lane equal, or both normal, of one sign and within 2 × 1.5 × 2^-12 of each other
    /// relatively: two approximations that each meet the SDM's bound for RCPPS/RSQRTPS.
    /// </summary>
    private static bool SseApproximationsAgree(ReadOnlySpan<byte> host, ReadOnlySpan<byte> interpreter)
    {
        for (int lane = 0; lane < 16; lane += 4)
        {
            uint x = BinaryPrimitives.ReadUInt32LittleEndian(host[lane..]);
            uint y = BinaryPrimitives.ReadUInt32LittleEndian(interpreter[lane..]);
            if (x == y)
            {
                continue;
            }

            float fx = BitConverter.UInt32BitsToSingle(x);
            float fy = BitConverter.UInt32BitsToSingle(y);
            if (!float.IsNormal(fx) || !float.IsNormal(fy) || (x >> 31) != (y >> 31)
                || Math.Abs((double)fx - fy) > 3.0 / 4096 * Math.Abs((double)fx))
            {
                return false;
            }
        }

        return true;
    }

    public static void Differences(SimdMachineState host, SimdMachineState interpreter, StringBuilder report, bool approximate = false)
    {
        var a = host.FxImage;
        var b = interpreter.FxImage;
        CompareField(report, "FCW", a, b, 0, 2);
        CompareField(report, "FSW", a, b, 2, 2);
        CompareField(report, "FTW(abridged)", a, b, 4, 1);
        if (HostCpu.IsIntel)
        {
            CompareField(report, "FOP", a, b, 6, 2);
            CompareField(report, "FIP", a, b, 8, 8);
            CompareField(report, "FDP", a, b, 16, 8);
        }

        if (host.Mxcsr != interpreter.Mxcsr)
        {
            report.AppendLine($"  MXCSR {host.Mxcsr:X8} vs {interpreter.Mxcsr:X8} (flags {host.Mxcsr & 0x3F:X2} vs {interpreter.Mxcsr & 0x3F:X2})");
        }

        if (HostCpu.IsIntel)
        {
            CompareField(report, "MXCSR_MASK", a, b, 28, 4);
        }

        for (int i = 0; i < 8; i++)
        {
            CompareField(report, $"ST{i}", a, b, 32 + (16 * i), 16);
        }

        for (int i = 0; i < 16; i++)
        {
            if (!approximate || !SseApproximationsAgree(a.AsSpan(160 + (16 * i), 16), b.AsSpan(160 + (16 * i), 16)))
            {
                CompareField(report, $"XMM{i}", a, b, 160 + (16 * i), 16);
            }
        }

        for (int r = 0; r < 16; r++)
        {
            if (r != 4 && host.Gpr[r] != interpreter.Gpr[r])
            {
                report.AppendLine($"  GPR{r} {host.Gpr[r]:X16} vs {interpreter.Gpr[r]:X16}");
            }
        }

        if (((host.Flags ^ interpreter.Flags) & Flags.Arithmetic) != 0)
        {
            report.AppendLine($"  RFLAGS {host.Flags:X} vs {interpreter.Flags:X}");
        }

        for (int i = 0; i < SimdMachineState.DataSize; i += 16)
        {
            if (!host.Data.AsSpan(i, 16).SequenceEqual(interpreter.Data.AsSpan(i, 16)))
            {
                report.AppendLine($"  data[{i}] {Convert.ToHexString(host.Data, i, 16)} vs {Convert.ToHexString(interpreter.Data, i, 16)}");
            }
        }
    }

    private static void CompareField(StringBuilder report, string name, byte[] a, byte[] b, int offset, int length)
    {
        if (!a.AsSpan(offset, length).SequenceEqual(b.AsSpan(offset, length)))
        {
            report.AppendLine($"  {name} {Hex(a, offset, length)} vs {Hex(b, offset, length)}");
        }
    }

    /// <summary>Little-endian bytes shown most significant first, in 32-bit groups.</summary>
    private static string Hex(byte[] bytes, int offset, int length)
    {
        var text = new StringBuilder();
        for (int i = offset + length - 1; i >= offset; i--)
        {
            text.Append(bytes[i].ToString("X2", System.Globalization.CultureInfo.InvariantCulture));
            if (i != offset && (i - offset) % 4 == 0)
            {
                text.Append('_');
            }
        }

        return text.ToString();
    }

    public static string Describe(SimdMachineState s)
    {
        var text = new StringBuilder();
        text.AppendLine($"  MXCSR {s.Mxcsr:X8} FSW {s.Fsw:X4} FTW {s.FxImage[4]:X2} RFLAGS {s.Flags:X}");
        for (int i = 0; i < 16; i++)
        {
            text.AppendLine($"  XMM{i} {Hex(s.FxImage, 160 + (16 * i), 16)}");
        }

        for (int i = 0; i < 8; i++)
        {
            text.AppendLine($"  ST{i} {Hex(s.FxImage, 32 + (16 * i), 10)}");
        }

        for (int r = 0; r < 16; r++)
        {
            text.Append($"  R{r}={s.Gpr[r]:X}");
        }

        text.AppendLine();
        text.AppendLine($"  data[256..384] {Convert.ToHexString(s.Data, 256, 128)}");
        return text.ToString();
    }
}
