namespace KvmSharp.Emulator.Cpu;

/// <summary>How one instruction (or a run of them) ended.</summary>
public enum StepStatus : byte
{
    /// <summary>The instruction completed.</summary>
    Executed,

    /// <summary>HLT completed: the CPU waits for an interrupt.</summary>
    Halted,

    /// <summary>The instruction raised an exception; it had no effect (faults) and is to be delivered.</summary>
    Exception,

    /// <summary>The instruction completed and a device it accessed asked the VM to stop (debug-exit, power-off).</summary>
    IoStop,

    /// <summary>The CPU shut down (triple fault).</summary>
    Shutdown,
}
