using KvmSharp.Emulator.Decoding;

namespace KvmSharp.Emulator.Cpu;

/// <summary>System instructions: segment loads, far transfers, interrupts, flags, descriptor tables, CRs/DRs, MSRs, CPUID, SYSCALL.</summary>
public sealed partial class Interpreter
{
    private bool ExecuteSystem() => _insn.Op switch
    {
        Mnemonic.Ud0 or Mnemonic.Ud1 or Mnemonic.Ud2 => Fault(CpuException.InvalidOpcode),
        _ => ExecuteIntegerExtended(),
    };
}
