using System.Buffers.Binary;
using KvmSharp.Emulator.Cpu;
using KvmSharp.Emulator.Decoding;
using KvmSharp.Emulator.Execution.X87;
using KvmSharp.Emulator.Tests.Cpu;
using KvmSharp.Hypervisor;
using KvmSharp.Memory;
using static KvmSharp.Emulator.Tests.Cpu.CpuFixture;

namespace KvmSharp.Emulator.Tests.X87;

/// <summary>
/// What the host cannot show without killing the test process or leaving 64-bit mode: #MF delivery at the next
/// waiting instruction, #NM from CR0.EM/TS/MP, #UD for FISTTP, faulting memory operands with no side effect, stack
/// overflow/underflow responses, FDP with a segment override, and the real-mode environment images.
/// </summary>
public sealed class X87InterpreterTests
{
    private static readonly Float80 One = new(0x8000_0000_0000_0000, 0x3FFF);

    // fldcw [DataBase]: D9 2C 25 disp32
    private static readonly byte[] LoadControlWordFromData = [0xD9, 0x2C, 0x25, 0x00, 0x00, 0x02, 0x00];

    private static Float80 St(CpuState state, int i)
    {
        int p = (state.Fx.Top + i) & 7;
        return new Float80(state.Fx.Significand(p), state.Fx.SignExponent(p));
    }

    private static StepResult Step(CpuFixture f, StepStatus expected = StepStatus.Executed)
    {
        var result = f.Interpreter.Step();
        Assert.Equal(expected, result.Status);
        return result;
    }

    [Fact]
    public void UnmaskedException_CompletesTheFaultingInstruction_AndRaisesMF_AtTheNextWaitingOne()
    {
        byte[] code =
        [
            .. LoadControlWordFromData, // 00: fldcw [DataBase] (ZE unmasked)
            0xD9, 0xE8,                 // 07: fld1
            0xD9, 0xEE,                 // 09: fldz
            0xDE, 0xF9,                 // 0B: fdivp st(1), st  -> 1/0
            0xDF, 0xE0,                 // 0D: fnstsw ax        (non-waiting)
            0xD9, 0x3C, 0x25, 0x10, 0x00, 0x02, 0x00, // 0F: fnstcw [DataBase+16] (non-waiting)
            0xD9, 0xE8,                 // 16: fld1             -> #MF
        ];
        using var f = new CpuFixture(code);
        f.Memory.Write(DataBase, (ushort)0x037B);
        f.State.Fx.InitializeX87();
        for (int i = 0; i < 5; i++)
        {
            Step(f);
        }

        // The unmasked #Z left the stack alone (no result, no pop) and set ES and B.
        Assert.Equal(X87Bits.ZE | X87Bits.ES | X87Bits.B | (6 << 11), f.State.Fx.Fsw);
        Assert.Equal(X87Bits.ZE | X87Bits.ES | X87Bits.B | (6 << 11), (int)(f.State.Rax & 0xFFFF));
        Assert.Equal(Float80.PositiveZero, St(f.State, 0));
        Assert.Equal(One, St(f.State, 1));
        Assert.Equal((ushort)0x06F9, f.State.Fx.Fop); // DE F9
        Assert.Equal(CodeBase + 0x0B, f.State.Fx.Fip);
        Step(f);
        Assert.Equal((ushort)0x037B, f.Memory.Read<ushort>(DataBase + 16));

        var fault = Step(f, StepStatus.Exception);
        Assert.Equal(CpuException.X87FloatingPoint, fault.Exception);
        Assert.Equal(CodeBase + 0x16, f.State.Rip);
        Assert.Equal(6, f.State.Fx.Top);
    }

    [Fact]
    public void Fwait_RaisesTheMFPending_AndPassesOnceFnclexClearedIt()
    {
        byte[] code =
        [
            .. LoadControlWordFromData, // 00: fldcw (ZE unmasked)
            0xD9, 0xE8,                 // 07: fld1
            0xD9, 0xEE,                 // 09: fldz
            0xDE, 0xF9,                 // 0B: fdivp
            0x9B,                       // 0D: fwait  -> #MF
            0xDB, 0xE2,                 // 0E: fnclex
            0x9B,                       // 10: fwait
            0xD9, 0xE8,                 // 11: fld1
            0xF4,                       // 13: hlt
        ];
        using var f = new CpuFixture(code);
        f.Memory.Write(DataBase, (ushort)0x037B);
        for (int i = 0; i < 4; i++)
        {
            Step(f);
        }

        Assert.Equal(CpuException.X87FloatingPoint, Step(f, StepStatus.Exception).Exception);
        Assert.Equal(CodeBase + 0x0D, f.State.Rip);
        f.State.Rip = CodeBase + 0x0E; // what a handler that cleared the exception and skipped the FWAIT would do

        Assert.Equal(StepStatus.Halted, f.Run().Status);
        Assert.Equal(5 << 11, f.State.Fx.Fsw); // flags, ES and B cleared; TOP 5 after the last push
        Assert.Equal(One, St(f.State, 0));
    }

    [Fact]
    public void NonWaitingInstructions_RunWithAnExceptionPending_WaitingOnesFault()
    {
        using var f = new CpuFixture([0xD9, 0x2C, 0x25, 0x00, 0x00, 0x02, 0x00]); // fldcw (waiting)
        f.State.Fx.Fcw = 0x037E;
        f.State.Fx.Fsw = X87Bits.IE | X87Bits.ES | X87Bits.B;
        Assert.Equal(CpuException.X87FloatingPoint, Step(f, StepStatus.Exception).Exception);

        // fnstenv [DataBase], fnsave [DataBase+32], then fninit all run.
        f.Memory.Write(CodeBase, (ReadOnlySpan<byte>)[0xD9, 0x34, 0x25, 0x00, 0x00, 0x02, 0x00, 0xDD, 0x34, 0x25, 0x20, 0x00, 0x02, 0x00, 0xDB, 0xE3]);
        f.State.Rip = CodeBase;
        Step(f);
        Assert.Equal((ushort)0x037F, f.State.Fx.Fcw); // FNSTENV masked everything
        Step(f);
        Assert.Equal(FxState.DefaultFcw, f.State.Fx.Fcw); // FNSAVE reinitialized
        Assert.Equal(0, f.State.Fx.Fsw);
        Step(f);
        Assert.Equal((ushort)(X87Bits.IE | X87Bits.ES | X87Bits.B), f.Memory.Read<ushort>(DataBase + 4));
        Assert.Equal((ushort)0x037F, f.Memory.Read<ushort>(DataBase + 32)); // saved after FNSTENV masked all
    }

    [Theory]
    [InlineData(X86SystemRegisters.Cr0Mp, false)]
    [InlineData(1UL << 3, false)]                       // TS alone: FWAIT still runs
    [InlineData(X86SystemRegisters.Cr0Mp | (1UL << 3), true)]
    [InlineData(1UL << 2, false)]                       // EM does not affect FWAIT
    public void Fwait_FaultsWithNM_OnlyWhenMPAndTSAreBothSet(ulong cr0Bits, bool faults)
    {
        using var f = new CpuFixture([0x9B, 0xF4]);
        f.State.Cr0 |= cr0Bits;
        var result = f.Interpreter.Step();
        if (faults)
        {
            Assert.Equal(new StepResult(StepStatus.Exception, CpuException.DeviceNotAvailable), result);
            Assert.Equal(CodeBase, f.State.Rip);
        }
        else
        {
            Assert.Equal(StepStatus.Executed, result.Status);
        }
    }

    [Theory]
    [InlineData(1UL << 2)] // EM
    [InlineData(1UL << 3)] // TS
    public void X87Instructions_FaultWithNM_WhenEMOrTSIsSet_EvenNonWaitingOnes(ulong cr0Bits)
    {
        foreach (byte[] code in new byte[][] { [0xD9, 0xE8], [0xDB, 0xE3], [0xDF, 0xE0], [0xDD, 0x04, 0x25, 0x00, 0x00, 0x02, 0x00] })
        {
            using var f = new CpuFixture(code);
            f.State.Cr0 |= cr0Bits;
            f.State.Fx.Fcw = 0x1234;
            Assert.Equal(new StepResult(StepStatus.Exception, CpuException.DeviceNotAvailable), f.Interpreter.Step());
            Assert.Equal((ushort)0x1234, f.State.Fx.Fcw);
            Assert.Equal(CodeBase, f.State.Rip);
        }
    }

    [Theory]
    [InlineData(new byte[] { 0xDB, 0x0E })] // fisttp dword [rsi]
    [InlineData(new byte[] { 0xDD, 0x0E })] // fisttp qword [rsi]
    [InlineData(new byte[] { 0xDF, 0x0E })] // fisttp word [rsi]
    public void Fisttp_IsInvalid_BecauseSse3IsNotAdvertised_AndIsCounted(byte[] code)
    {
        using var f = new CpuFixture(code);
        f.State.Rsi = DataBase;
        f.State.Cr0 |= 1UL << 3; // #UD outranks #NM
        Assert.Equal(new StepResult(StepStatus.Exception, CpuException.InvalidOpcode), f.Interpreter.Step());
        Assert.Equal(1, f.Interpreter.UndefinedOpcodes[OpcodeMap.OneByte, code[0]]);
    }

    [Fact]
    public void StoreToAnUnmappedPage_FaultsWithPF_AndLeavesTheStackAndStatusAlone()
    {
        // fstp qword [rdx] with RDX in the unmapped page
        using var f = new CpuFixture([0xDD, 0x1A]);
        f.State.Rdx = UnmappedPage + 8;
        f.State.Fx.InitializeX87();
        f.State.Fx.Top = 7;
        f.State.Fx.Significand(7) = One.Significand;
        f.State.Fx.SignExponent(7) = One.SignExponent;
        f.State.Fx.SetTag(7, 0);
        ushort ftw = f.State.Fx.Ftw;

        var result = f.Interpreter.Step();

        Assert.Equal(new StepResult(StepStatus.Exception, CpuException.PageFault(0x2)), result);
        Assert.Equal(7, f.State.Fx.Top);
        Assert.Equal(ftw, f.State.Fx.Ftw);
        Assert.Equal(7 << 11, f.State.Fx.Fsw);
        Assert.Equal(0UL, f.State.Fx.Fip);
    }

    [Fact]
    public void FnsaveAcrossIntoAnUnmappedPage_WritesNothing_AndDoesNotReinitialize()
    {
        // fnsave [rdx], the 108-byte image straddling the unmapped page
        using var f = new CpuFixture([0xDD, 0x32]);
        f.State.Rdx = UnmappedPage - 50;
        f.State.Fx.Fcw = 0x0A7F;
        f.State.Fx.Ftw = 0x3FFF;
        f.Memory.Write(UnmappedPage - 50, 0xA5A5_A5A5_A5A5_A5A5UL);

        Assert.Equal(StepStatus.Exception, f.Interpreter.Step().Status);

        Assert.Equal(0xA5A5_A5A5_A5A5_A5A5UL, f.Memory.Read<ulong>(UnmappedPage - 50));
        Assert.Equal((ushort)0x0A7F, f.State.Fx.Fcw);
        Assert.Equal((ushort)0x3FFF, f.State.Fx.Ftw);
        Assert.Equal(UnmappedPage, f.State.Cr2);
    }

    [Fact]
    public void LoadFromAnUnmappedPage_FaultsBeforePushing()
    {
        using var f = new CpuFixture([0xDD, 0x02]); // fld qword [rdx]
        f.State.Rdx = UnmappedPage;
        f.State.Fx.InitializeX87();
        Assert.Equal(new StepResult(StepStatus.Exception, CpuException.PageFault(0x0)), f.Interpreter.Step());
        Assert.Equal(0, f.State.Fx.Top);
        Assert.Equal((ushort)0xFFFF, f.State.Fx.Ftw);
    }

    [Fact]
    public void NinthPush_OverflowsTheStack_MaskedItPushesTheIndefinite_UnmaskedNothingMoves()
    {
        byte[] nine = [.. Enumerable.Repeat(new byte[] { 0xD9, 0xE8 }, 9).SelectMany(static b => b)];
        using (var f = new CpuFixture(nine))
        {
            f.State.Fx.InitializeX87();
            for (int i = 0; i < 9; i++)
            {
                Step(f);
            }

            Assert.Equal(X87Bits.IE | X87Bits.SF | X87Bits.C1 | (7 << 11), f.State.Fx.Fsw);
            Assert.Equal(Float80.Indefinite, St(f.State, 0));
            Assert.Equal(2, f.State.Fx.Tag(7)); // special
            Assert.Equal(One, St(f.State, 1));
        }

        using (var f = new CpuFixture(nine))
        {
            f.State.Fx.InitializeX87();
            f.State.Fx.Fcw = 0x037E;
            for (int i = 0; i < 9; i++)
            {
                Step(f);
            }

            Assert.Equal(X87Bits.IE | X87Bits.SF | X87Bits.C1 | X87Bits.ES | X87Bits.B, f.State.Fx.Fsw);
            Assert.Equal(One, St(f.State, 0));
            Assert.Equal((ushort)0, f.State.Fx.Ftw); // all eight valid
        }
    }

    [Fact]
    public void ArithmeticOnAnEmptyRegister_Underflows_MaskedTheIndefiniteIsWritten()
    {
        using var f = new CpuFixture([0xD8, 0xC1]); // fadd st, st(1) on an empty stack
        f.State.Fx.InitializeX87();
        f.State.Fx.Fsw = X87Bits.C1;

        Step(f);

        Assert.Equal(X87Bits.IE | X87Bits.SF, f.State.Fx.Fsw); // C1 = 0: underflow
        Assert.Equal(Float80.Indefinite, St(f.State, 0));
        Assert.Equal(2, f.State.Fx.Tag(0));
        Assert.Equal(3, f.State.Fx.Tag(1));
    }

    [Fact]
    public void UnmaskedException_RecordsFopAndTheOperandOffset_NotTheFsBase_AndFipIncludesPrefixes()
    {
        // fld qword fs:[rsi] (64 DD 06) of an SNaN with #I unmasked
        using var f = new CpuFixture([0x64, 0xDD, 0x06]);
        f.State.FsBase = DataBase - 0x40;
        f.State.Rsi = 0x40;
        f.Memory.Write(DataBase, 0x7FF0_0000_0000_0001UL);
        f.State.Fx.InitializeX87();
        f.State.Fx.Fcw = 0x037E;

        Step(f);

        Assert.Equal((ushort)0x506, f.State.Fx.Fop);
        Assert.Equal(0x40UL, f.State.Fx.Fdp);
        Assert.Equal(CodeBase, f.State.Fx.Fip);
        Assert.Equal(X87Bits.IE | X87Bits.ES | X87Bits.B, f.State.Fx.Fsw);
        Assert.Equal(3, f.State.Fx.Tag(7)); // nothing pushed
    }

    [Fact]
    public void RealMode_EnvironmentImages_HoldLinearPointers_InBothSizes_AndFldenvReadsThemBack()
    {
        using var memory = GuestMemory.Create(1 << 20);
        var state = RealModeState();
        byte[] code =
        [
            0xD9, 0x2E, 0x00, 0x10,       // 0100: fldcw [0x1000]
            0xDD, 0x06, 0x08, 0x10,       // 0104: fld qword [0x1008]   (SNaN, #I unmasked)
            0xD9, 0x36, 0x20, 0x10,       // 0108: fnstenv [0x1020]     (14 bytes)
            0x66, 0xD9, 0x36, 0x40, 0x10, // 010C: fnstenv [0x1040]     (28 bytes)
            0xDB, 0xE3,                   // 0111: fninit
            0xD9, 0x26, 0x20, 0x10,       // 0113: fldenv [0x1020]
            0xF4,                         // 0117: hlt
        ];
        memory.Write(0x10100, (ReadOnlySpan<byte>)code);
        memory.Write(0x21000, (ushort)0x037E);
        memory.Write(0x21008, 0x7FF0_0000_0000_0001UL);
        var interpreter = new Interpreter(state, memory, null, null, CpuFixture.DecodeCacheBits);

        Assert.Equal(StepStatus.Halted, interpreter.Run(100).Status);

        Span<byte> small = stackalloc byte[14];
        memory.Read(0x21020, small);
        // FCW, FSW, FTW, FIP[15:0], FIP[19:16] << 12 | FOP, FDP[15:0], FDP[19:16] << 12
        Assert.Equal("7E038180FFFF0401061508100020", Convert.ToHexString(small));
        Span<byte> large = stackalloc byte[28];
        memory.Read(0x21040, large);
        uint[] expected = [0xFFFF_037F, 0xFFFF_8081, 0xFFFF_FFFF, 0xFFFF_0104, 0x0000_1506, 0xFFFF_1008, 0x0000_2000];
        for (int i = 0; i < expected.Length; i++)
        {
            Assert.Equal(expected[i], BinaryPrimitives.ReadUInt32LittleEndian(large[(4 * i)..]));
        }

        Assert.Equal(0x10104UL, state.Fx.Fip);
        Assert.Equal(0x21008UL, state.Fx.Fdp);
        Assert.Equal((ushort)0x506, state.Fx.Fop);
        Assert.Equal((ushort)0x037E, state.Fx.Fcw);
        Assert.Equal(X87Bits.IE | X87Bits.ES | X87Bits.B, state.Fx.Fsw); // FLDENV recomputed ES from the flags and masks
    }

    [Fact]
    public void X87Instructions_DoNotAllocate()
    {
        byte[] code =
        [
            0xDB, 0xE3,       // fninit
            0xDD, 0x06,       // fld qword [rsi]
            0xD9, 0xE8,       // fld1
            0xD8, 0xC1,       // fadd st, st(1)
            0xD8, 0xC9,       // fmul st, st(1)
            0xD9, 0xFA,       // fsqrt
            0xD9, 0xFE,       // fsin
            0xD9, 0xF2,       // fptan
            0xD9, 0xF3,       // fpatan
            0xD9, 0xF0,       // f2xm1
            0xD9, 0xF1,       // fyl2x
            0xDB, 0x5E, 0x08, // fistp dword [rsi+8]
            0xDD, 0x76, 0x30, // fnsave [rsi+48]
            0xDD, 0x66, 0x30, // frstor [rsi+48]
            0xF4,             // hlt
        ];
        using var f = new CpuFixture(code);
        f.State.Rsi = DataBase;
        f.Memory.Write(DataBase, BitConverter.DoubleToInt64Bits(2.75));
        Assert.Equal(StepStatus.Halted, f.Run().Status); // JIT everything once
        f.State.Rip = CodeBase;

        long before = GC.GetAllocatedBytesForCurrentThread();
        var result = f.Run();
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal(StepStatus.Halted, result.Status);
        Assert.Equal(0, allocated);
    }

    private static CpuState RealModeState()
    {
        var state = new CpuState { Cr0 = X86SystemRegisters.Cr0Et | X86SystemRegisters.Cr0Ne, Rip = 0x100 };
        state.Cs = new SegmentRegister { Selector = 0x1000, Base = 0x10000, Limit = 0xFFFF, Type = 0xB, Present = 1, S = 1 };
        foreach (var name in (ReadOnlySpan<SegmentName>)[SegmentName.Ds, SegmentName.Es, SegmentName.Ss])
        {
            state.Segment(name) = new SegmentRegister { Selector = 0x2000, Base = 0x20000, Limit = 0xFFFF, Type = 0x3, Present = 1, S = 1 };
        }

        state.Fx.InitializeX87();
        return state;
    }
}
