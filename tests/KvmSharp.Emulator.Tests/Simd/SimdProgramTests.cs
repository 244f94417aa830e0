using KvmSharp.Emulator.Cpu;
using KvmSharp.Emulator.Tests.Cpu;
using KvmSharp.Hypervisor;

namespace KvmSharp.Emulator.Tests.Simd;

/// <summary>SSE code run as a program through <see cref="Interpreter.Run"/>: results, and no allocation per instruction.</summary>
public sealed class SimdProgramTests
{
    //  0: xorps xmm0, xmm0            0f 57 c0
    //  3: movaps xmm1, [rsi]          0f 28 0e
    //  6: mulps xmm1, [rdi]           0f 59 0f
    //  9: addps xmm0, xmm1            0f 58 c1
    //  c: add rsi, 16                 48 83 c6 10
    // 10: add rdi, 16                 48 83 c7 10
    // 14: dec rcx                     48 ff c9
    // 17: jne 3                       75 ea
    // 19: movhlps xmm1, xmm0          0f 12 c8
    // 1c: addps xmm0, xmm1            0f 58 c1
    // 1f: pshufd xmm1, xmm0, 0x55     66 0f 70 c8 55
    // 24: addss xmm0, xmm1            f3 0f 58 c1
    // 28: cvttss2si eax, xmm0         f3 0f 2c c0
    // 2c: movq xmm2, rax              66 48 0f 6e d0
    // 31: paddq xmm2, xmm2            66 0f d4 d2
    // 35: movq rdx, xmm2              66 48 0f 7e d2
    // 3a: hlt                         f4
    private static readonly byte[] DotProduct =
    [
        0x0F, 0x57, 0xC0, 0x0F, 0x28, 0x0E, 0x0F, 0x59, 0x0F, 0x0F, 0x58, 0xC1, 0x48, 0x83, 0xC6, 0x10, 0x48, 0x83, 0xC7, 0x10,
        0x48, 0xFF, 0xC9, 0x75, 0xEA, 0x0F, 0x12, 0xC8, 0x0F, 0x58, 0xC1, 0x66, 0x0F, 0x70, 0xC8, 0x55, 0xF3, 0x0F, 0x58, 0xC1,
        0xF3, 0x0F, 0x2C, 0xC0, 0x66, 0x48, 0x0F, 0x6E, 0xD0, 0x66, 0x0F, 0xD4, 0xD2, 0x66, 0x48, 0x0F, 0x7E, 0xD2, 0xF4,
    ];

    private static void Prepare(CpuFixture f)
    {
        for (int i = 0; i < 16; i++)
        {
            f.Memory.Write(CpuFixture.DataBase + (ulong)(4 * i), (float)i);
            f.Memory.Write(CpuFixture.DataBase + 0x100 + (ulong)(4 * i), 2.0f);
        }

        f.State.Cr4 |= X86SystemRegisters.Cr4Osfxsr | X86SystemRegisters.Cr4Osxmmexcpt;
        f.State.Rip = CpuFixture.CodeBase;
        f.State.Rsi = CpuFixture.DataBase;
        f.State.Rdi = CpuFixture.DataBase + 0x100;
        f.State.Rcx = 4;
    }

    [Fact]
    public void DotProduct_ComputesTheSum()
    {
        using var f = new CpuFixture(DotProduct);
        Prepare(f);
        var result = f.Run();
        Assert.Equal(StepStatus.Halted, result.Status);
        Assert.Equal(240UL, f.State.Rax);
        Assert.Equal(480UL, f.State.Rdx);
        Assert.Equal(0x4370_0000UL, f.State.Fx.Xmm(0, 0) & 0xFFFF_FFFF); // 240.0f
        Assert.Equal(0x1F80u, f.State.Fx.Mxcsr);                          // every step exact
    }

    [Fact]
    public void DotProduct_AllocatesNothing_OnceWarm()
    {
        using var f = new CpuFixture(DotProduct);
        Prepare(f);
        f.Run();
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 200; i++)
        {
            Prepare(f);
            f.Run();
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        Assert.Equal(240UL, f.State.Rax);
    }
}
