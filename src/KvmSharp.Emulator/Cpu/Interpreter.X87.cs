namespace KvmSharp.Emulator.Cpu;

/// <summary>x87 FPU instructions (D8-DF, FWAIT).</summary>
public sealed partial class Interpreter
{
    private bool ExecuteX87() => Unimplemented();
}
