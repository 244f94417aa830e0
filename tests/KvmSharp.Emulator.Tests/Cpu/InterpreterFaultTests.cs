using KvmSharp.Emulator.Decoding;
using KvmSharp.Emulator.Cpu;
using static KvmSharp.Emulator.Tests.Cpu.CpuFixture;

namespace KvmSharp.Emulator.Tests.Cpu;

public sealed class InterpreterFaultTests
{
    [Fact]
    public void DivideByZero_RaisesDivideError_AtTheDivInstruction_WithRegistersUnchanged()
    {
        // 0: mov eax, 5   b8 05 00 00 00
        // 5: xor ecx, ecx 31 c9
        // 7: div ecx      f7 f1
        // 9: hlt          f4
        byte[] code = [0xB8, 0x05, 0x00, 0x00, 0x00, 0x31, 0xC9, 0xF7, 0xF1, 0xF4];
        using var f = new CpuFixture(code);
        f.State.Rdx = 0x1234;

        var result = f.Run();

        Assert.Equal(new RunResult(StepStatus.Exception, 2, CpuException.DivideError), result);
        Assert.Equal(CodeBase + 7, f.State.Rip);
        Assert.Equal(5UL, f.State.Rax);
        Assert.Equal(0x1234UL, f.State.Rdx);
    }

    [Fact]
    public void PageCrossingStore_IntoAnUnmappedPage_FaultsWithCr2AtThatPage_AndWritesNothing()
    {
        // 0: mov eax, 0x11223344  b8 44 33 22 11
        // 5: mov rdx, 0x4fffe     48 c7 c2 fe ff 04 00
        // c: mov [rdx], eax       89 02
        // e: hlt                  f4
        byte[] code = [0xB8, 0x44, 0x33, 0x22, 0x11, 0x48, 0xC7, 0xC2, 0xFE, 0xFF, 0x04, 0x00, 0x89, 0x02, 0xF4];
        using var f = new CpuFixture(code);
        f.Memory.Write(UnmappedPage - 2, (ushort)0xAAAA);

        var result = f.Run();

        Assert.Equal(StepStatus.Exception, result.Status);
        Assert.Equal(CpuException.PageFault(0x2), result.Exception); // not present, write, supervisor
        Assert.Equal(UnmappedPage, f.State.Cr2);
        Assert.Equal(CodeBase + 0xC, f.State.Rip);
        Assert.Equal((ushort)0xAAAA, f.Memory.Read<ushort>(UnmappedPage - 2));
    }

    [Fact]
    public void UserModeLoad_FromAnUnmappedPage_ReportsAUserReadFault()
    {
        // 0: mov rdx, 0x50010  48 c7 c2 10 00 05 00
        // 7: mov rax, [rdx]    48 8b 02
        byte[] code = [0x48, 0xC7, 0xC2, 0x10, 0x00, 0x05, 0x00, 0x48, 0x8B, 0x02];
        using var f = new CpuFixture(code, cpl: 3);

        var result = f.Run();

        Assert.Equal(new RunResult(StepStatus.Exception, 1, CpuException.PageFault(0x4)), result);
        Assert.Equal(UnmappedPage + 0x10, f.State.Cr2);
        Assert.Equal(CodeBase + 7, f.State.Rip);
    }

    [Fact]
    public void InstructionFetch_ThatRunsIntoAnUnmappedPage_FaultsAtTheSecondPage()
    {
        using var f = new CpuFixture([]);
        // mov eax, 0x11223344 (b8 44 33 22 11) with only b8 44 on the last mapped page.
        f.Memory.Write(UnmappedPage - 2, (ushort)0x44B8);
        f.State.Rip = UnmappedPage - 2;

        var result = f.Interpreter.Step();

        Assert.Equal(new StepResult(StepStatus.Exception, CpuException.PageFault(0x0)), result);
        Assert.Equal(UnmappedPage, f.State.Cr2);
        Assert.Equal(UnmappedPage - 2, f.State.Rip);
    }

    [Fact]
    public void UnadvertisedInstruction_RaisesInvalidOpcode_AtIt_AndIsCounted()
    {
        // 0: mov eax, 1  b8 01 00 00 00
        // 5: xgetbv      0f 01 d0   (decodes, but CPUID does not advertise XSAVE)
        byte[] code = [0xB8, 0x01, 0x00, 0x00, 0x00, 0x0F, 0x01, 0xD0, 0xF4];
        using var f = new CpuFixture(code);

        var result = f.Run();

        Assert.Equal(new RunResult(StepStatus.Exception, 1, CpuException.InvalidOpcode), result);
        Assert.Equal(CodeBase + 5, f.State.Rip);
        Assert.Equal(1, f.Interpreter.UndefinedOpcodes[OpcodeMap.Map0F, 0x01]);
        Assert.Equal(1, f.Interpreter.UndefinedOpcodes.Total);
    }

    [Fact]
    public void UndefinedOpcode_RaisesInvalidOpcode()
    {
        using var f = new CpuFixture([0x06]); // PUSH ES: invalid in 64-bit mode

        Assert.Equal(new StepResult(StepStatus.Exception, CpuException.InvalidOpcode), f.Interpreter.Step());
        Assert.Equal(CodeBase, f.State.Rip);
    }

    [Fact]
    public void Hlt_AtCpl3_RaisesGeneralProtection()
    {
        using var f = new CpuFixture([0xF4], cpl: 3);

        Assert.Equal(new StepResult(StepStatus.Exception, CpuException.GeneralProtection), f.Interpreter.Step());
    }

    [Fact]
    public void NonCanonicalMemoryOperand_RaisesGeneralProtection_AndAStackOneRaisesStackFault()
    {
        // mov rdx, 0x8000_0000_0000 (48 ba imm64); mov rax, [rdx] (48 8b 02)
        byte[] code = [0x48, 0xBA, 0x00, 0x00, 0x00, 0x00, 0x00, 0x80, 0x00, 0x00, 0x48, 0x8B, 0x02];
        using var f = new CpuFixture(code);
        Assert.Equal(new RunResult(StepStatus.Exception, 1, CpuException.GeneralProtection), f.Run());

        using var g = new CpuFixture([0x50]); // push rax
        g.State.Rsp = 0x8000_0000_0008;
        Assert.Equal(new StepResult(StepStatus.Exception, CpuException.StackFault), g.Interpreter.Step());
        Assert.Equal(0x8000_0000_0008UL, g.State.Rsp);
    }
}
