using System.Buffers.Binary;
using KvmSharp.Emulator.Cpu;
using KvmSharp.Emulator.Tests.Cpu;
using KvmSharp.Hypervisor;

namespace KvmSharp.Emulator.Tests.Simd;

/// <summary>
/// The exceptions of MMX/SSE/SSE2 instructions, which the host cannot show without killing the test process:
/// #GP(0) for misaligned operands of the aligned forms, #NM with CR0.TS, #UD with CR0.EM or without CR4.OSFXSR,
/// #MF with a pending x87 exception, #XM (or #UD without CR4.OSXMMEXCPT) for unmasked SIMD exceptions, #GP for
/// reserved MXCSR bits, and #PF with nothing written. Each faulting case must leave registers and memory as they were.
/// </summary>
public sealed class SimdFaultTests : IDisposable
{
    private const ulong Cr0Em = 1UL << 2;
    private const ulong Cr0Ts = 1UL << 3;

    private readonly SimdInterpreterRunner _runner = new();

    public void Dispose() => _runner.Dispose();

    /// <summary>MXCSR 0x1F80, x87 empty, XMMn = n * 0x0101..., MMn = n * 0x1111..., RSI and RDI at data offset 256, data = its offsets.</summary>
    private static SimdMachineState BaseState()
    {
        var state = new SimdMachineState();
        BinaryPrimitives.WriteUInt16LittleEndian(state.FxImage, 0x037F);
        state.Mxcsr = 0x1F80;
        BinaryPrimitives.WriteUInt32LittleEndian(state.FxImage.AsSpan(28), 0xFFFF);
        for (int i = 0; i < 16; i++)
        {
            state.SetXmm(i, 0, 0x0101_0101_0101_0101UL * (ulong)i);
            state.SetXmm(i, 1, 0x1010_1010_1010_1010UL * (ulong)i);
        }

        for (int i = 0; i < 8; i++)
        {
            state.SetSt(i, 0x1111_1111_1111_1111UL * (ulong)i, 0x4000);
        }

        state.Gpr[SimdMachineState.Rsi] = 256;
        state.Gpr[SimdMachineState.Rdi] = 256;
        for (int i = 0; i < SimdMachineState.DataSize; i++)
        {
            state.Data[i] = (byte)i;
        }

        return state;
    }

    private SimdInterpretedResult Run(byte[] code, SimdMachineState state, Action<CpuState>? configure = null) => _runner.Run(code, state, configure);

    private static void AssertFault(SimdInterpretedResult result, ExceptionVector vector, SimdMachineState before, string name = "")
    {
        Assert.True(result.Step.Status == StepStatus.Exception && result.Step.Exception.Vector == vector, $"{name}: {result.Step.Status} {result.Step.Exception}, expected {vector}");
        Assert.Equal(0u, result.Step.Exception.ErrorCode);
        Assert.Equal(CpuFixture.CodeBase, result.Cpu.Rip);
        Assert.Equal(before.FxImage.AsSpan(0, 416).ToArray(), result.State.FxImage.AsSpan(0, 416).ToArray());
        Assert.Equal(before.Data, result.State.Data);
        Assert.Equal(before.Gpr.Where((_, i) => i != 4), result.State.Gpr.Where((_, i) => i != 4));
    }

    private static void AssertExecuted(SimdInterpretedResult result, int length, string name = "")
    {
        Assert.True(result.Step.Status == StepStatus.Executed, $"{name}: {result.Step.Status} {result.Step.Exception}");
        Assert.Equal(CpuFixture.CodeBase + (ulong)length, result.Cpu.Rip);
    }

    public static TheoryData<string, byte[]> MisalignedAlignedForms => new()
    {
        { "movaps xmm1, [rsi+8]", [0x0F, 0x28, 0x4E, 0x08] },
        { "movaps [rsi+8], xmm1", [0x0F, 0x29, 0x4E, 0x08] },
        { "movdqa xmm1, [rsi+4]", [0x66, 0x0F, 0x6F, 0x4E, 0x04] },
        { "movdqa [rsi+1], xmm1", [0x66, 0x0F, 0x7F, 0x4E, 0x01] },
        { "movntps [rsi+8], xmm1", [0x0F, 0x2B, 0x4E, 0x08] },
        { "movntdq [rsi+8], xmm1", [0x66, 0x0F, 0xE7, 0x4E, 0x08] },
        { "addps xmm1, [rsi+4]", [0x0F, 0x58, 0x4E, 0x04] },
        { "sqrtpd xmm1, [rsi+8]", [0x66, 0x0F, 0x51, 0x4E, 0x08] },
        { "cmpps xmm1, [rsi+8], 0", [0x0F, 0xC2, 0x4E, 0x08, 0x00] },
        { "andps xmm1, [rsi+8]", [0x0F, 0x54, 0x4E, 0x08] },
        { "paddb xmm1, [rsi+8]", [0x66, 0x0F, 0xFC, 0x4E, 0x08] },
        { "psllw xmm1, [rsi+8]", [0x66, 0x0F, 0xF1, 0x4E, 0x08] },
        { "pshufd xmm1, [rsi+8], 0", [0x66, 0x0F, 0x70, 0x4E, 0x08, 0x00] },
        { "cvtpd2pi mm1, [rsi+8]", [0x66, 0x0F, 0x2D, 0x4E, 0x08] },
        { "cvtdq2ps xmm1, [rsi+8]", [0x0F, 0x5B, 0x4E, 0x08] },
        { "fxsave [rsi+8]", [0x0F, 0xAE, 0x46, 0x08] },
        { "fxrstor64 [rsi+8]", [0x48, 0x0F, 0xAE, 0x4E, 0x08] },
    };

    [Theory]
    [MemberData(nameof(MisalignedAlignedForms))]
    public void AlignedForm_WithAMisalignedOperand_RaisesGeneralProtection(string name, byte[] code)
    {
        var state = BaseState();
        AssertFault(Run(code, state), ExceptionVector.GeneralProtection, state, name);
    }

    public static TheoryData<string, byte[]> UnalignedForms => new()
    {
        { "movups xmm1, [rsi+8]", [0x0F, 0x10, 0x4E, 0x08] },
        { "movdqu [rsi+3], xmm1", [0xF3, 0x0F, 0x7F, 0x4E, 0x03] },
        { "addss xmm1, [rsi+1]", [0xF3, 0x0F, 0x58, 0x4E, 0x01] },
        { "cvtps2pd xmm1, [rsi+4]", [0x0F, 0x5A, 0x4E, 0x04] },
        { "comisd xmm1, [rsi+2]", [0x66, 0x0F, 0x2F, 0x4E, 0x02] },
        { "paddb mm1, [rsi+3]", [0x0F, 0xFC, 0x4E, 0x03] },
        { "movlps xmm1, [rsi+8]", [0x0F, 0x12, 0x4E, 0x08] },
        { "ldmxcsr [rsi+1]", [0x0F, 0xAE, 0x56, 0x01] },
    };

    [Theory]
    [MemberData(nameof(UnalignedForms))]
    public void UnalignedForm_WithAMisalignedOperand_Executes(string name, byte[] code)
    {
        var state = BaseState();
        BinaryPrimitives.WriteUInt32LittleEndian(state.Data.AsSpan(257), 0x1F80); // a valid MXCSR for LDMXCSR
        AssertExecuted(Run(code, state), code.Length, name);
    }

    [Fact]
    public void Movups_MisalignedLoad_LoadsTheBytes()
    {
        var state = BaseState();
        var result = Run([0x0F, 0x10, 0x4E, 0x08], state); // movups xmm1, [rsi+8]
        AssertExecuted(result, 4);
        Assert.Equal(0x0F0E_0D0C_0B0A_0908UL, result.State.Xmm(1, 0));
        Assert.Equal(0x1716_1514_1312_1110UL, result.State.Xmm(1, 1));
    }

    private static readonly (string Name, byte[] Code, bool Mmx)[] StateChecked =
    [
        ("addps xmm1, xmm2", [0x0F, 0x58, 0xCA], false),
        ("movdqu xmm1, xmm2", [0xF3, 0x0F, 0x6F, 0xCA], false),
        ("paddb xmm1, xmm2", [0x66, 0x0F, 0xFC, 0xCA], false),
        ("cvtsi2sd xmm1, rax", [0xF2, 0x48, 0x0F, 0x2A, 0xC8], false),
        ("ldmxcsr [rsi]", [0x0F, 0xAE, 0x16], false),
        ("stmxcsr [rsi]", [0x0F, 0xAE, 0x1E], false),
        ("cvtpi2ps xmm1, mm2", [0x0F, 0x2A, 0xCA], false),
        ("movq2dq xmm1, mm2", [0xF3, 0x0F, 0xD6, 0xCA], false),
        ("paddb mm1, mm2", [0x0F, 0xFC, 0xCA], true),
        ("pshufw mm1, mm2, 0x1b", [0x0F, 0x70, 0xCA, 0x1B], true),
        ("movd mm1, eax", [0x0F, 0x6E, 0xC8], true),
        ("maskmovq mm1, mm2", [0x0F, 0xF7, 0xCA], true),
        ("emms", [0x0F, 0x77], true),
    ];

    public static TheoryData<string, byte[]> Forms => [.. StateChecked.Select(static f => new TheoryDataRow<string, byte[]>(f.Name, f.Code))];

    public static TheoryData<string, byte[], bool> FormsWithKind => [.. StateChecked.Select(static f => new TheoryDataRow<string, byte[], bool>(f.Name, f.Code, f.Mmx))];

    [Theory]
    [MemberData(nameof(Forms))]
    public void WithCr0Ts_RaisesDeviceNotAvailable(string name, byte[] code)
    {
        var state = BaseState();
        BinaryPrimitives.WriteUInt32LittleEndian(state.Data.AsSpan(256), 0x1F80);
        AssertFault(Run(code, state, static s => s.Cr0 |= Cr0Ts), ExceptionVector.DeviceNotAvailable, state, name);
    }

    [Theory]
    [MemberData(nameof(Forms))]
    public void WithCr0Em_RaisesInvalidOpcode_EvenWithCr0Ts(string name, byte[] code)
    {
        var state = BaseState();
        AssertFault(Run(code, state, static s => s.Cr0 |= Cr0Em | Cr0Ts), ExceptionVector.InvalidOpcode, state, name);
    }

    [Theory]
    [MemberData(nameof(FormsWithKind))]
    public void WithoutCr4Osfxsr_SseFormsRaiseInvalidOpcode_MmxFormsExecute(string name, byte[] code, bool mmx)
    {
        var state = BaseState();
        BinaryPrimitives.WriteUInt32LittleEndian(state.Data.AsSpan(256), 0x1F80);
        var result = Run(code, state, static s => s.Cr4 &= ~X86SystemRegisters.Cr4Osfxsr);
        if (mmx)
        {
            AssertExecuted(result, code.Length, name);
        }
        else
        {
            AssertFault(result, ExceptionVector.InvalidOpcode, state, name);
        }
    }

    public static TheoryData<string, byte[], bool> PendingX87Cases => new()
    {
        { "paddb mm1, mm2", [0x0F, 0xFC, 0xCA], true },
        { "movq [rsi], mm1", [0x0F, 0x7F, 0x0E], true },
        { "emms", [0x0F, 0x77], true },
        { "cvtpi2ps xmm1, mm2", [0x0F, 0x2A, 0xCA], true },
        { "cvtps2pi mm1, xmm2", [0x0F, 0x2D, 0xCA], true },
        { "movdq2q mm1, xmm2", [0xF2, 0x0F, 0xD6, 0xCA], true },
        { "cvtpi2ps xmm1, [rsi]", [0x0F, 0x2A, 0x0E], false },
        { "cvtpi2pd xmm1, [rsi]", [0x66, 0x0F, 0x2A, 0x0E], false },
        { "paddb xmm1, xmm2", [0x66, 0x0F, 0xFC, 0xCA], false },
        { "addps xmm1, xmm2", [0x0F, 0x58, 0xCA], false },
    };

    [Theory]
    [MemberData(nameof(PendingX87Cases))]
    public void WithAPendingX87Exception_MmxRegisterFormsRaiseX87FloatingPoint(string name, byte[] code, bool faults)
    {
        var state = BaseState();
        BinaryPrimitives.WriteUInt16LittleEndian(state.FxImage, 0x037E); // IM clear
        state.Fsw = 0x8081;                                                // IE, ES, B
        var result = Run(code, state);
        if (faults)
        {
            AssertFault(result, ExceptionVector.X87FloatingPoint, state, name);
        }
        else
        {
            AssertExecuted(result, code.Length, name);
        }
    }

    [Fact]
    public void UnmaskedDivideByZero_RaisesSimdFloatingPoint_WithZeSet_AndTheDestinationUnchanged()
    {
        var state = BaseState();
        state.Mxcsr = 0x1F80 & ~0x0200u; // ZM clear
        state.SetXmm(1, 0, 0x3F80_0000_4000_0000);    // 1.0f, 2.0f
        state.SetXmm(1, 1, 0x4040_0000_4080_0000);    // 3.0f, 4.0f
        state.SetXmm(2, 0, 0x3F80_0000_0000_0000);    // 1.0f, 0.0f
        state.SetXmm(2, 1, 0x3F80_0000_3F80_0000);
        var before = state.Clone();
        var result = Run([0x0F, 0x5E, 0xCA], state); // divps xmm1, xmm2
        Assert.Equal(ExceptionVector.SimdFloatingPoint, result.Step.Exception.Vector);
        Assert.Equal(0x1D84u, result.State.Mxcsr);
        Assert.Equal(before.Xmm(1, 0), result.State.Xmm(1, 0));
        Assert.Equal(before.Xmm(1, 1), result.State.Xmm(1, 1));

        var withoutOsxmmexcpt = Run([0x0F, 0x5E, 0xCA], before, static s => s.Cr4 &= ~X86SystemRegisters.Cr4Osxmmexcpt);
        Assert.Equal(ExceptionVector.InvalidOpcode, withoutOsxmmexcpt.Step.Exception.Vector);
        Assert.Equal(0x1D84u, withoutOsxmmexcpt.State.Mxcsr);
        Assert.Equal(before.Xmm(1, 0), withoutOsxmmexcpt.State.Xmm(1, 0));
    }

    [Fact]
    public void UnmaskedPrecision_OnCvtsd2si_RaisesSimdFloatingPoint_AndLeavesTheRegister()
    {
        var state = BaseState();
        state.Mxcsr = 0x0F80; // PM clear
        state.SetXmm(2, 0, 0x3FF8_0000_0000_0000); // 1.5
        state.Gpr[1] = 0xDEAD_BEEF;
        var result = Run([0xF2, 0x48, 0x0F, 0x2D, 0xCA], state); // cvtsd2si rcx, xmm2
        Assert.Equal(ExceptionVector.SimdFloatingPoint, result.Step.Exception.Vector);
        Assert.Equal(0x0FA0u, result.State.Mxcsr);
        Assert.Equal(0xDEAD_BEEFUL, result.State.Gpr[1]);

        state.Mxcsr = 0x1F80;
        result = Run([0xF2, 0x48, 0x0F, 0x2D, 0xCA], state);
        AssertExecuted(result, 5);
        Assert.Equal(2UL, result.State.Gpr[1]); // 1.5 rounds to even
        Assert.Equal(0x1FA0u, result.State.Mxcsr);
    }

    [Fact]
    public void Ldmxcsr_WithAReservedBit_RaisesGeneralProtection()
    {
        var state = BaseState();
        BinaryPrimitives.WriteUInt32LittleEndian(state.Data.AsSpan(256), 0x0001_1F80);
        AssertFault(Run([0x0F, 0xAE, 0x16], state), ExceptionVector.GeneralProtection, state);
    }

    [Fact]
    public void Fxrstor_WithAReservedMxcsrBit_RaisesGeneralProtection_AndRestoresNothing()
    {
        var state = BaseState();
        var image = BaseState().FxImage;
        image[160] = 0x5A;
        BinaryPrimitives.WriteUInt32LittleEndian(image.AsSpan(24), 0x8000_1F80);
        image.CopyTo(state.Data, 256);
        AssertFault(Run([0x48, 0x0F, 0xAE, 0x0E], state), ExceptionVector.GeneralProtection, state);
    }

    [Fact]
    public void Fxsave_WithCr0Em_RaisesDeviceNotAvailable()
    {
        var state = BaseState();
        AssertFault(Run([0x0F, 0xAE, 0x06], state, static s => s.Cr0 |= Cr0Em), ExceptionVector.DeviceNotAvailable, state);
    }

    [Fact]
    public void Movnti_IgnoresCr0EmAndTs()
    {
        var state = BaseState();
        state.Gpr[0] = 0x1122_3344_5566_7788;
        var result = Run([0x48, 0x0F, 0xC3, 0x06], state, static s => s.Cr0 |= Cr0Em | Cr0Ts); // movnti [rsi], rax
        AssertExecuted(result, 4);
        Assert.Equal(0x1122_3344_5566_7788UL, BinaryPrimitives.ReadUInt64LittleEndian(result.State.Data.AsSpan(256)));
    }

    [Fact]
    public void Store_CrossingIntoAnUnmappedPage_RaisesPageFault_AndWritesNothing()
    {
        var state = BaseState();
        state.Gpr[SimdMachineState.Rsi] = CpuFixture.UnmappedPage - 8 - SimdInterpreterRunner.DataBase;
        var memory = _runner.Memory;
        Span<byte> pattern = stackalloc byte[8];
        pattern.Fill(0xCC);
        memory.Write(CpuFixture.UnmappedPage - 8, pattern);
        var result = Run([0x0F, 0x11, 0x0E], state); // movups [rsi], xmm1
        Assert.Equal(ExceptionVector.PageFault, result.Step.Exception.Vector);
        Assert.Equal(CpuFixture.UnmappedPage, result.Cpu.Cr2);
        memory.Read(CpuFixture.UnmappedPage - 8, pattern);
        Assert.Equal(0xCCCC_CCCC_CCCC_CCCCUL, BinaryPrimitives.ReadUInt64LittleEndian(pattern));
    }

    [Fact]
    public void Fxsave_CrossingIntoAnUnmappedPage_RaisesPageFault_AndWritesNothing()
    {
        var state = BaseState();
        state.Gpr[SimdMachineState.Rsi] = CpuFixture.UnmappedPage - 256 - SimdInterpreterRunner.DataBase;
        var memory = _runner.Memory;
        Span<byte> pattern = stackalloc byte[256];
        pattern.Fill(0xCC);
        memory.Write(CpuFixture.UnmappedPage - 256, pattern);
        var result = Run([0x0F, 0xAE, 0x06], state); // fxsave [rsi]
        Assert.Equal(ExceptionVector.PageFault, result.Step.Exception.Vector);
        memory.Read(CpuFixture.UnmappedPage - 256, pattern);
        Assert.True(pattern.IndexOfAnyExcept((byte)0xCC) < 0);
    }

    [Fact]
    public void Maskmovdqu_WritesOnlyTheSelectedBytes_AndWithAnEmptyMaskTouchesNoMemory()
    {
        var state = BaseState();
        state.SetXmm(1, 0, 0x8877_6655_4433_2211);
        state.SetXmm(1, 1, 0x0FEE_DDCC_BBAA_9900);
        state.SetXmm(2, 0, 0x8000_0080_0000_FF00); // bytes 1, 4, 7
        state.SetXmm(2, 1, 0x8000_0000_0000_0000); // byte 15
        var result = Run([0x66, 0x0F, 0xF7, 0xCA], state); // maskmovdqu xmm1, xmm2 -> [rdi]
        AssertExecuted(result, 4);
        byte[] expected = state.Data.AsSpan(256, 16).ToArray();
        expected[1] = 0x22;
        expected[4] = 0x55;
        expected[7] = 0x88;
        expected[15] = 0x0F;
        Assert.Equal(expected, result.State.Data.AsSpan(256, 16).ToArray());

        state.SetXmm(2, 0, 0);
        state.SetXmm(2, 1, 0);
        state.Gpr[SimdMachineState.Rdi] = CpuFixture.UnmappedPage - SimdInterpreterRunner.DataBase;
        AssertExecuted(Run([0x66, 0x0F, 0xF7, 0xCA], state), 4);
    }

    public static TheoryData<string, byte[]> NotAdvertised => new()
    {
        { "addsubps (SSE3)", [0xF2, 0x0F, 0xD0, 0xCA] },
        { "haddpd (SSE3)", [0x66, 0x0F, 0x7C, 0xCA] },
        { "movshdup (SSE3)", [0xF3, 0x0F, 0x16, 0xCA] },
        { "lddqu (SSE3)", [0xF2, 0x0F, 0xF0, 0x0E] },
        { "pshufb (SSSE3)", [0x66, 0x0F, 0x38, 0x00, 0xCA] },
        { "palignr (SSSE3)", [0x0F, 0x3A, 0x0F, 0xCA, 0x01] },
        { "pmulld (SSE4.1)", [0x66, 0x0F, 0x38, 0x40, 0xCA] },
        { "crc32 (SSE4.2)", [0xF2, 0x0F, 0x38, 0xF1, 0xC1] },
        { "xsave", [0x0F, 0xAE, 0x26] },
        { "clflushopt", [0x66, 0x0F, 0xAE, 0x3E] },
        { "rdfsbase", [0xF3, 0x48, 0x0F, 0xAE, 0xC0] },
        { "vmread (VMX)", [0x0F, 0x78, 0xC1] },
        { "ud0", [0x0F, 0xFF, 0xC0] },
    };

    [Theory]
    [MemberData(nameof(NotAdvertised))]
    public void AnInstructionOfAFeatureNotAdvertised_OrUd0_RaisesInvalidOpcode(string name, byte[] code)
    {
        var state = BaseState();
        AssertFault(Run(code, state), ExceptionVector.InvalidOpcode, state, name);
    }
}
