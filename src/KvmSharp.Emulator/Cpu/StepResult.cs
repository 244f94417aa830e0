namespace KvmSharp.Emulator.Cpu;

/// <summary>The outcome of one instruction.</summary>
/// <param name="Status">Executed, halted, or faulted.</param>
/// <param name="Exception">The fault when <paramref name="Status"/> is <see cref="StepStatus.Exception"/>.</param>
public readonly record struct StepResult(StepStatus Status, CpuException Exception);
