using KvmSharp.Devices.InterruptControllers;
using KvmSharp.Emulator.Cpu;

namespace KvmSharp.Emulator.Tests.Cpu;

/// <summary>The vCPU's batch loop inside the interpreter: where it stops and what it counts.</summary>
public sealed class RunUntilInterruptTests
{
    // L: inc eax; jmp L  — runs forever.
    private static readonly byte[] Spin = [0xFF, 0xC0, 0xEB, 0xFC];

    private static LocalApic ApicWithPendingInterrupt(bool pending)
    {
        var sync = new Lock();
        var bus = new ApicBus(sync, new Pic8259Pair(sync));
        var apic = new LocalApic(bus, 0, bootstrapProcessor: true, TimeProvider.System, () => 0, 1_000_000_000);
        apic.Write(LocalApic.RegisterSvr, BitConverter.GetBytes(0x1FFu)); // software-enable, spurious vector 0xFF
        if (pending)
        {
            bus.Deliver(new ApicMessage(0x41, ApicDeliveryMode.Fixed, false, 0, false));
        }

        Assert.Equal(pending, apic.HasPendingMaskableInterrupt);
        return apic;
    }

    [Fact]
    public void NothingPending_RunsTheWholeBatch()
    {
        using var f = new CpuFixture(Spin);
        f.State.RFlags |= 0x200; // IF

        var result = f.Interpreter.RunUntilInterrupt(1000, ApicWithPendingInterrupt(false));

        Assert.Equal(new RunResult(StepStatus.Executed, 1000, default), result);
        Assert.Equal(500UL, f.State.Rax);
        Assert.Equal(1000UL, f.Interpreter.InstructionsRetired);
    }

    [Fact]
    public void PendingInterrupt_WithIfSet_StopsAfterOneInstruction()
    {
        using var f = new CpuFixture(Spin);
        f.State.RFlags |= 0x200;

        var result = f.Interpreter.RunUntilInterrupt(1000, ApicWithPendingInterrupt(true));

        Assert.Equal(new RunResult(StepStatus.Executed, 1, default), result);
        Assert.Equal(CpuFixture.CodeBase + 2, f.State.Rip);
    }

    [Fact]
    public void PendingInterrupt_WithIfClear_DoesNotStop()
    {
        using var f = new CpuFixture(Spin);

        var result = f.Interpreter.RunUntilInterrupt(1000, ApicWithPendingInterrupt(true));

        Assert.Equal(1000, result.InstructionsExecuted);
    }

    [Fact]
    public void PendingInterrupt_InTheShadowOfSti_IsTakenOneInstructionLater()
    {
        // sti; inc eax; L: jmp L — the interrupt waits out STI's shadow (the INC), then the loop stops.
        using var f = new CpuFixture([0xFB, 0xFF, 0xC0, 0xEB, 0xFE]);

        var result = f.Interpreter.RunUntilInterrupt(1000, ApicWithPendingInterrupt(true));

        Assert.Equal(new RunResult(StepStatus.Executed, 2, default), result);
        Assert.Equal(1UL, f.State.Rax);
    }

    [Fact]
    public void Fault_StopsWithTheExceptionAndTheCountBeforeIt()
    {
        // inc eax; inc eax; ud2
        using var f = new CpuFixture([0xFF, 0xC0, 0xFF, 0xC0, 0x0F, 0x0B]);

        var result = f.Interpreter.RunUntilInterrupt(1000, ApicWithPendingInterrupt(false));

        Assert.Equal(StepStatus.Exception, result.Status);
        Assert.Equal(2, result.InstructionsExecuted);
        Assert.Equal(CpuException.InvalidOpcode, result.Exception);
        Assert.Equal(CpuFixture.CodeBase + 4, f.State.Rip);
    }

    [Fact]
    public void Hlt_StopsAndCountsIt()
    {
        using var f = new CpuFixture([0xFF, 0xC0, 0xF4]);

        var result = f.Interpreter.RunUntilInterrupt(1000, ApicWithPendingInterrupt(false));

        Assert.Equal(new RunResult(StepStatus.Halted, 2, default), result);
    }
}
