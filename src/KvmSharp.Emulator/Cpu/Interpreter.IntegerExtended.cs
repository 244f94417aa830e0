namespace KvmSharp.Emulator.Cpu;

/// <summary>the integer instructions outside the core switch (strings, XADD/CMPXCHG, ENTER/LEAVE, bit scans, double shifts, port I/O, flags, BCD).</summary>
public sealed partial class Interpreter
{
    private bool ExecuteIntegerExtended() => Unimplemented();
}
