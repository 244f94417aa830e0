using KvmSharp.Emulator.Cpu;
using KvmSharp.Emulator.Execution;
using KvmSharp.Emulator.Tests.Execution;

namespace KvmSharp.Emulator.Tests.Cpu;

/// <summary>
/// Runs the same small programs natively (through <see cref="NativeRunner"/>, so they may only touch
/// RAX, RCX, RDX, R8 and RFLAGS) and in the interpreter, from the same random inputs, and compares
/// those registers and the six arithmetic flags (including the ones the SDM leaves undefined; see Alu.cs).
/// </summary>
public sealed class InterpreterDifferentialTests
{
    //  0: mov ecx, 13          b9 0d 00 00 00
    //  5: imul rax, rax, 31    48 6b c0 1f
    //  9: add rax, r8          4c 01 c0
    //  c: rol rax, 5           48 c1 c0 05
    // 10: xor rdx, rax         48 31 c2
    // 13: adc r8, rdx          49 11 d0
    // 16: shr edx, 3           c1 ea 03
    // 19: sbb ax, cx           66 19 c8
    // 1c: neg r8               49 f7 d8
    // 1f: cmp al, dl           38 d0
    // 21: setg dl              0f 9f c2
    // 24: cmova rax, rdx       48 0f 47 c2
    // 28: dec ecx              ff c9
    // 2a: jne 0x5              75 d9
    // 2c: bswap eax            0f c8
    // 2e: not cl               f6 d1
    // 30: sar r8, cl           49 d3 f8
    private static readonly byte[] HashLoop = [0xB9, 0x0D, 0x00, 0x00, 0x00, 0x48, 0x6B, 0xC0, 0x1F, 0x4C, 0x01, 0xC0, 0x48, 0xC1, 0xC0, 0x05, 0x48, 0x31, 0xC2, 0x49, 0x11, 0xD0, 0xC1, 0xEA, 0x03, 0x66, 0x19, 0xC8, 0x49, 0xF7, 0xD8, 0x38, 0xD0, 0x0F, 0x9F, 0xC2, 0x48, 0x0F, 0x47, 0xC2, 0xFF, 0xC9, 0x75, 0xD9, 0x0F, 0xC8, 0xF6, 0xD1, 0x49, 0xD3, 0xF8];

    //  0: xor edx, edx         31 d2
    //  2: or r8, 1             49 83 c8 01
    //  6: div r8               49 f7 f0
    //  9: xchg rdx, rax        48 92
    //  b: lea rax, [rax+rdx*8+0x77]  48 8d 44 d0 77
    // 10: mul r8               49 f7 e0
    // 13: add ah, dl           00 d4
    // 15: sub dh, al           28 c6
    // 17: movzx ecx, cx        0f b7 c9
    // 1a: test al, 0x5a        a8 5a
    // 1c: cmovs r8, rax        4c 0f 48 c0
    // 20: inc r8b              41 fe c0
    // 23: bt rax, rcx          48 0f a3 c8
    // 27: rcl rdx, 1           48 d1 d2
    // 2a: ror r8d, cl          41 d3 c8
    // 2d: imul r8, rdx         4c 0f af c2
    // 31: cwde                 98
    // 32: sete cl              0f 94 c1
    // 35: adc ch, 0x13         80 d5 13
    // 38: and cl, 0xf          80 e1 0f
    // 3b: dec ch               fe cd
    // 3d: movsx edx, ch        0f be d5
    // 40: sbb rax, -5          48 83 d8 fb
    // 44: jne 0x49             75 03
    // 46: or eax, 3            83 c8 03
    // 49: not dl               f6 d2
    private static readonly byte[] MixedWidths = [0x31, 0xD2, 0x49, 0x83, 0xC8, 0x01, 0x49, 0xF7, 0xF0, 0x48, 0x92, 0x48, 0x8D, 0x44, 0xD0, 0x77, 0x49, 0xF7, 0xE0, 0x00, 0xD4, 0x28, 0xC6, 0x0F, 0xB7, 0xC9, 0xA8, 0x5A, 0x4C, 0x0F, 0x48, 0xC0, 0x41, 0xFE, 0xC0, 0x48, 0x0F, 0xA3, 0xC8, 0x48, 0xD1, 0xD2, 0x41, 0xD3, 0xC8, 0x4C, 0x0F, 0xAF, 0xC2, 0x98, 0x0F, 0x94, 0xC1, 0x80, 0xD5, 0x13, 0x80, 0xE1, 0x0F, 0xFE, 0xCD, 0x0F, 0xBE, 0xD5, 0x48, 0x83, 0xD8, 0xFB, 0x75, 0x03, 0x83, 0xC8, 0x03, 0xF6, 0xD2];

    public static TheoryData<string> Programs => new() { nameof(HashLoop), nameof(MixedWidths) };

    [Theory]
    [MemberData(nameof(Programs))]
    public void Program_MatchesTheHost_OnRandomInputs(string name)
    {
        byte[] code = name == nameof(HashLoop) ? HashLoop : MixedWidths;
        Assert.SkipWhen(
            !HostCpu.IsIntel && code == MixedWidths,
            $"MixedWidths reads ZF after IMUL (SETE), which both manuals leave undefined; this {HostCpu.Vendor} host differs from the Intel model (HostCpu).");

        // HashLoop ends with SAR r8, cl: its AF (and OF for counts over 1) are undefined.
        ulong comparedFlags = Flags.Arithmetic & ~(code == HashLoop ? HostCpu.UndefinedFlags("sar") : 0);
        var random = new Random(name.Length * 7919);
        using var f = new CpuFixture(code);
        for (int trial = 0; trial < 300; trial++)
        {
            var input = new NativeState
            {
                Rax = (ulong)random.NextInt64(),
                Rcx = (ulong)random.NextInt64(),
                Rdx = (ulong)random.NextInt64(),
                R8 = (ulong)random.NextInt64() << random.Next(2),
                FlagsIn = ((ulong)random.NextInt64() & Flags.Arithmetic) | Flags.Reserved1,
            };
            var native = NativeRunner.Run(code, input);

            f.State.Rip = CpuFixture.CodeBase;
            f.State.Rax = input.Rax;
            f.State.Rcx = input.Rcx;
            f.State.Rdx = input.Rdx;
            f.State[Gpr.R8] = input.R8;
            f.State.RFlags = input.FlagsIn;
            int steps = 0;
            while (f.State.Rip != CpuFixture.CodeBase + (ulong)code.Length)
            {
                var step = f.Interpreter.Step();
                Assert.Equal(StepStatus.Executed, step.Status);
                Assert.True(++steps < 1000, "The program did not finish.");
            }

            string context = $"trial {trial}: rax={input.Rax:X} rcx={input.Rcx:X} rdx={input.Rdx:X} r8={input.R8:X} flags={input.FlagsIn:X}";
            Assert.True(native.OutRax == f.State.Rax, $"{context}: rax host {native.OutRax:X} interpreter {f.State.Rax:X}");
            Assert.True(native.OutRcx == f.State.Rcx, $"{context}: rcx host {native.OutRcx:X} interpreter {f.State.Rcx:X}");
            Assert.True(native.OutRdx == f.State.Rdx, $"{context}: rdx host {native.OutRdx:X} interpreter {f.State.Rdx:X}");
            Assert.True(native.OutR8 == f.State[Gpr.R8], $"{context}: r8 host {native.OutR8:X} interpreter {f.State[Gpr.R8]:X}");
            Assert.True(((native.FlagsOut ^ f.State.RFlags) & comparedFlags) == 0, $"{context}: flags host {native.FlagsOut:X} interpreter {f.State.RFlags:X}");
        }
    }
}
