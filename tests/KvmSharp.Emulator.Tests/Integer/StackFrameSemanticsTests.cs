using KvmSharp.Emulator.Cpu;
using KvmSharp.Emulator.Decoding;
using KvmSharp.Emulator.Execution;

namespace KvmSharp.Emulator.Tests.Integer;

/// <summary>
/// ENTER, LEAVE, PUSHA and POPA where the host cannot be compared: faults (the first push that would fault is
/// reported, nothing is written, no register changes; ENTER write-checks its final stack pointer), and a 16-bit
/// stack (SS.B = 0) in 32-bit code, where SP wraps within 64 KiB and the upper half of ESP is kept.
/// </summary>
public sealed class StackFrameSemanticsTests
{
    private const ulong Window = 0x100_0000;
    private const ulong Unmapped = Window + 0x2000;
    private const ulong Next = GuestMachine.CodeBase;
    private const ulong StackBase = 0x50_0000;

    [Fact]
    public void Enter_WhosePushesRunIntoAnUnmappedPage_FaultsAtTheFirstSuchPush_AndWritesNothing()
    {
        using var m = new GuestMachine(longMode: true, Window, 0x4000);
        m.SetWindowPage(Unmapped - Window, 0);
        m.Load([0xC8, 0x00, 0x00, 0x03]); // enter 0, 3: pushes rbp, two frame pointers, the new frame pointer
        m.State.Rsp = Unmapped + 0x1010;
        m.State.Rbp = Unmapped + 0x1F00;

        var result = m.Interpreter.Step();

        // Pushes go to +0x1008 and +0x1000 (mapped), then +0xFF8 faults.
        Assert.Equal(new StepResult(StepStatus.Exception, CpuException.PageFault(2)), result);
        Assert.Equal(Unmapped + 0xFF8, m.State.Cr2);
        Assert.Equal((Unmapped + 0x1010, Unmapped + 0x1F00), (m.State.Rsp, m.State.Rbp));
        Assert.Equal(0UL, m.Memory.Read<ulong>(GuestMachine.WindowPhysical + 0x3008));
        Assert.Equal(0UL, m.Memory.Read<ulong>(GuestMachine.WindowPhysical + 0x3000));
    }

    [Fact]
    public void Enter_WriteChecksTheFinalStackPointer_BeforeCommittingAnything()
    {
        using var m = new GuestMachine(longMode: true, Window, 0x4000);
        m.SetWindowPage(Unmapped - Window, 0);
        m.Load([0xC8, 0x20, 0x00, 0x00]); // enter 0x20, 0
        m.State.Rsp = Unmapped + 0x1010;
        m.State.Rbp = 0x1234;

        var result = m.Interpreter.Step();

        // rbp would go to +0x1008; the final RSP, +0x1008 - 0x20 = +0xFE8, is in the unmapped page.
        Assert.Equal(new StepResult(StepStatus.Exception, CpuException.PageFault(2)), result);
        Assert.Equal(Unmapped + 0xFE8, m.State.Cr2);
        Assert.Equal((Unmapped + 0x1010, 0x1234UL), (m.State.Rsp, m.State.Rbp));
        Assert.Equal(0UL, m.Memory.Read<ulong>(GuestMachine.WindowPhysical + 0x3008));
    }

    [Fact]
    public void Enter_WhoseOuterFramePointerReadFaults_ChangesNothing()
    {
        using var m = new GuestMachine(longMode: true, Window, 0x4000);
        m.SetWindowPage(Unmapped - Window, 0);
        m.Load([0xC8, 0x00, 0x00, 0x02]); // enter 0, 2: reads [rbp - 8]
        m.State.Rsp = Window + 0x3800;
        m.State.Rbp = Unmapped + 0x1004;

        var result = m.Interpreter.Step();

        Assert.Equal(new StepResult(StepStatus.Exception, CpuException.PageFault(0)), result);
        Assert.Equal(Unmapped + 0xFFC, m.State.Cr2);
        Assert.Equal((Window + 0x3800, Unmapped + 0x1004), (m.State.Rsp, m.State.Rbp));
        Assert.Equal(0UL, m.Memory.Read<ulong>(GuestMachine.WindowPhysical + 0x37F8));
    }

    [Fact]
    public void Leave_FromAnUnmappedFrame_ChangesNothing()
    {
        using var m = new GuestMachine(longMode: true, Window, 0x4000);
        m.SetWindowPage(Unmapped - Window, 0);
        m.Load([0xC9]); // leave
        m.State.Rsp = Window + 0x3800;
        m.State.Rbp = Unmapped + 0x10;

        Assert.Equal(new StepResult(StepStatus.Exception, CpuException.PageFault(0)), m.Interpreter.Step());
        Assert.Equal((Window + 0x3800, Unmapped + 0x10), (m.State.Rsp, m.State.Rbp));
    }

    [Fact]
    public void Pushad_OnA16BitStack_WrapsSp_KeepsTheUpperHalfOfEsp_AndPushesTheWholeOriginalEsp()
    {
        using var m = Stack16();
        m.Load([0x60, 0x61]); // pushad; popad
        for (int r = 0; r < 8; r++)
        {
            m.State[r] = 0x1111_1111U * (uint)(r + 1);
        }

        m.State.Rsp = 0x1234_0008;

        m.Interpreter.Step();

        Assert.Equal(0x1234_FFE8UL, m.State.Rsp);
        uint[] expected = [0x8888_8888, 0x7777_7777, 0x6666_6666, 0x1234_0008, 0x4444_4444, 0x3333_3333, 0x2222_2222, 0x1111_1111];
        ushort offset = 0xFFE8;
        foreach (uint value in expected)
        {
            Assert.Equal(value, m.Memory.Read<uint>(StackBase + offset)); // no dword straddles the wrap here
            offset += 4;
        }

        for (int r = 0; r < 8; r++)
        {
            m.State[r] = r == 4 ? m.State[r] : 0;
        }

        m.Interpreter.Step();

        Assert.Equal(0x1234_0008UL, m.State.Rsp);
        Assert.Equal(0x1111_1111UL, m.State.Rax);
        Assert.Equal(0x8888_8888UL, m.State.Rdi);
        Assert.Equal(0x6666_6666UL, m.State.Rbp);
    }

    [Fact]
    public void Enter32_OnA16BitStack_ReadsThroughBp_AndTheFramePointerKeepsEspsUpperHalf()
    {
        using var m = Stack16();
        m.Load([0xC8, 0x04, 0x00, 0x02]); // enter 4, 2
        m.Memory.Write(StackBase + 0x000C, 0xCAFE_F00DU); // [bp - 4] with BP = 0x0010
        m.State.Rsp = 0x1234_0004;
        m.State.Rbp = 0xAAAA_0010;

        m.RunTo(Next + 4);

        Assert.Equal(0xAAAA_0010U, m.Memory.Read<uint>(StackBase + 0x0000)); // old EBP
        Assert.Equal(0xCAFE_F00DU, m.Memory.Read<uint>(StackBase + 0xFFFC)); // outer frame pointer, after SP wrapped
        Assert.Equal(0x1234_0000U, m.Memory.Read<uint>(StackBase + 0xFFF8)); // the new frame pointer
        Assert.Equal(0x1234_0000UL, m.State.Rbp);
        Assert.Equal(0x1234_FFF4UL, m.State.Rsp);
    }

    [Fact]
    public void Leave16_OnA16BitStack_SetsOnlySp()
    {
        using var m = Stack16();
        m.Load([0x66, 0xC9]); // leave (16-bit operand)
        m.Memory.Write(StackBase + 0xFFFE, (ushort)0xBEEF);
        m.State.Rsp = 0x5678_0100;
        m.State.Rbp = 0x9999_FFFE;

        m.RunTo(Next + 2);

        Assert.Equal(0x5678_0000UL, m.State.Rsp); // SP = BP + 2 wraps to 0
        Assert.Equal(0x9999_BEEFUL, m.State.Rbp);
    }

    [Fact]
    public void Pusha_ThatWouldLeaveTheStackSegment_RaisesStackFault()
    {
        using var m = StringSemanticsTests.Flat32();
        m.State.Ss.Type = 0x7; // expand-down: valid offsets are above the limit field
        m.State.Ss.Limit = 0x0000_1000;
        m.Load([0x60]); // pushad
        m.State.Rsp = 0x1010; // the lowest pushes would go to 0xFF0..0x100F, partly at or below the limit

        Assert.Equal(new StepResult(StepStatus.Exception, CpuException.StackFault), m.Interpreter.Step());
        Assert.Equal(0x1010UL, m.State.Rsp);
    }

    /// <summary>32-bit code with a 16-bit stack segment (B = 0) based at <see cref="StackBase"/>.</summary>
    private static GuestMachine Stack16()
    {
        var m = StringSemanticsTests.Flat32();
        m.State.Ss.Base = StackBase;
        m.State.Ss.Limit = 0xFFFF;
        m.State.Ss.Db = 0;
        m.State.Ss.G = 0;
        return m;
    }
}
