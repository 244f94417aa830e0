namespace KvmSharp.Emulator.Cpu;

/// <summary>The outcome of <see cref="Interpreter.Run"/>.</summary>
/// <param name="Status">How the last step ended (<see cref="StepStatus.Executed"/> when the budget ran out).</param>
/// <param name="InstructionsExecuted">Instructions that completed (a faulting one does not count; HLT does).</param>
/// <param name="Exception">The fault when <paramref name="Status"/> is <see cref="StepStatus.Exception"/>.</param>
public readonly record struct RunResult(StepStatus Status, int InstructionsExecuted, CpuException Exception);
