namespace KvmSharp.Emulator.Cpu;

/// <summary>MMX, SSE and SSE2 instructions and the FXSAVE/FXRSTOR/LDMXCSR/STMXCSR group.</summary>
public sealed partial class Interpreter
{
    private bool ExecuteSimd() => Unimplemented();
}
