namespace KvmSharp.Emulator.Cpu;

/// <summary>What one <see cref="Interpreter.Step"/> did.</summary>
public enum StepStatus : byte
{
    /// <summary>The instruction completed and RIP points at the next one.</summary>
    Executed,

    /// <summary>HLT completed: RIP points past it and the vCPU waits for an interrupt.</summary>
    Halted,

    /// <summary>The instruction faulted: see <see cref="StepResult.Exception"/>; RIP points at it.</summary>
    Exception,
}
