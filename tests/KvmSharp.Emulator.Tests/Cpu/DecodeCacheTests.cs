using KvmSharp.Emulator.Cpu;

namespace KvmSharp.Emulator.Tests.Cpu;

public sealed class DecodeCacheTests
{
    // xor ecx, ecx; L: mov eax, 1; inc ecx; cmp ecx, 2; je done; mov byte [rip + L+1], 2; jmp L; done: hlt
    private static readonly byte[] SelfModifying =
    [
        0x31, 0xC9, 0xB8, 0x01, 0x00, 0x00, 0x00, 0xFF, 0xC1, 0x83, 0xF9, 0x02, 0x74, 0x09, 0xC6, 0x05,
        0xEE, 0xFF, 0xFF, 0xFF, 0x02, 0xEB, 0xEB, 0xF4,
    ];

    [Fact]
    public void StoreIntoDecodedCode_IsSeen_TheNextTimeTheInstructionRuns()
    {
        using var f = new CpuFixture(SelfModifying);

        var result = f.Run();

        Assert.Equal(StepStatus.Halted, result.Status);
        Assert.Equal(2UL, f.State.Rax); // the patched immediate, not the cached decode of "mov eax, 1"
        Assert.Equal(2UL, f.State.Rcx);
        Assert.Equal(1UL, f.Interpreter.DecodedPagesInvalidated);
    }

    [Fact]
    public void LoopBody_IsDecodedOnce_AndServedFromTheCache()
    {
        // mov ecx, 1000; L: dec ecx; jnz L; hlt
        using var f = new CpuFixture([0xB9, 0xE8, 0x03, 0x00, 0x00, 0xFF, 0xC9, 0x75, 0xFC, 0xF4]);

        var result = f.Run();

        Assert.Equal(StepStatus.Halted, result.Status);
        Assert.Equal(2002, result.InstructionsExecuted);
        // Two blocks are decoded: [mov, dec, jnz, hlt] from the start and [dec, jnz, hlt] from L; every other fetch hits.
        Assert.Equal(2UL, f.Interpreter.BlocksDecoded);
        Assert.Equal(2002UL - 2, f.Interpreter.DecodeCacheHits);
    }

    [Fact]
    public void RemappingTheCodePageInsideABlock_IsSeen_ByTheNextInstruction()
    {
        // At linear 0x10000 (physical 0x10000): mov rax, 0x30007; mov [0x4080], rax (the PTE of linear page 0x10000);
        // invlpg [0x10000]; mov ebx, 1; hlt. Physical 0x30000 holds the same code with "mov ebx, 2". The block decoded
        // from 0x10000 holds all five; after the INVLPG the next fetch must go through the new mapping.
        byte[] code =
        [
            0x48, 0xB8, 0x07, 0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x48, 0x89, 0x04, 0x25, 0x80, 0x40, 0x00, 0x00,
            0x0F, 0x01, 0x3C, 0x25, 0x00, 0x00, 0x01, 0x00,
            0xBB, 0x01, 0x00, 0x00, 0x00,
            0xF4,
        ];
        using var f = new CpuFixture(code);
        byte[] remapped = (byte[])code.Clone();
        remapped[27] = 2;
        f.Memory.Write(0x3_0000, (ReadOnlySpan<byte>)remapped);

        var result = f.Run();

        Assert.Equal(StepStatus.Halted, result.Status);
        Assert.Equal(5, result.InstructionsExecuted);
        Assert.Equal(2UL, f.State.Rbx);
        Assert.Equal(2UL, f.Interpreter.BlocksDecoded); // the block at physical 0x10000, then the one at 0x3001A
    }

    [Fact]
    public void WriteFromOutsideTheCpu_IsSeen_AfterNotifyMemoryWritten()
    {
        // mov eax, 1; hlt  — run, patch the immediate from the host, run again from the start.
        using var f = new CpuFixture([0xB8, 0x01, 0x00, 0x00, 0x00, 0xF4]);
        f.Run();
        f.Memory.Write(CpuFixture.CodeBase + 1, (byte)7);
        f.Interpreter.NotifyMemoryWritten(CpuFixture.CodeBase + 1, 1);
        f.State.Rip = CpuFixture.CodeBase;

        f.Run();

        Assert.Equal(7UL, f.State.Rax);
    }

    [Fact]
    public void WriteFromOutsideTheCpu_WithoutNotification_IsStillSeen_BecauseHitsCompareTheBytes()
    {
        // mov eax, 1; hlt — run, patch the immediate behind the CPU's back, run again: the cached decode must not be used.
        using var f = new CpuFixture([0xB8, 0x01, 0x00, 0x00, 0x00, 0xF4]);
        f.Run();
        ulong hits = f.Interpreter.DecodeCacheHits;
        f.Memory.Write(CpuFixture.CodeBase + 1, (byte)9);
        f.State.Rip = CpuFixture.CodeBase;

        f.Run();

        Assert.Equal(9UL, f.State.Rax);
        Assert.Equal(hits + 1, f.Interpreter.DecodeCacheHits); // the unchanged HLT still hits; the MOV was decoded again
    }
}
