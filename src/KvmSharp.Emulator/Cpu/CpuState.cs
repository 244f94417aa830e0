using KvmSharp.Emulator.Execution;

namespace KvmSharp.Emulator.Cpu;

/// <summary>
/// The architectural state of one software vCPU: general-purpose registers, RIP, RFLAGS, the FS/GS
/// bases, the paging control registers and the CPL. Plain storage, allocated once; the interpreter
/// reads and writes it in place.
/// </summary>
public sealed class CpuState
{
    /// <summary>The number of general-purpose registers in 64-bit mode.</summary>
    public const int RegisterCount = 16;

    private readonly ulong[] _registers = new ulong[RegisterCount];

    /// <summary>RIP.</summary>
    public ulong Rip { get; set; }

    /// <summary>RFLAGS; bit 1 reads as 1.</summary>
    public ulong RFlags { get; set; } = Flags.Reserved1;

    /// <summary>The FS segment base (the only part of FS used in 64-bit mode).</summary>
    public ulong FsBase { get; set; }

    /// <summary>The GS segment base.</summary>
    public ulong GsBase { get; set; }

    /// <summary>CR0.</summary>
    public ulong Cr0 { get; set; }

    /// <summary>CR2: the linear address of the last #PF.</summary>
    public ulong Cr2 { get; set; }

    /// <summary>CR3.</summary>
    public ulong Cr3 { get; set; }

    /// <summary>CR4.</summary>
    public ulong Cr4 { get; set; }

    /// <summary>IA32_EFER.</summary>
    public ulong Efer { get; set; }

    /// <summary>The current privilege level, 0-3.</summary>
    public int Cpl { get; set; }

    /// <summary>RAX.</summary>
    public ulong Rax { get => _registers[Gpr.Rax]; set => _registers[Gpr.Rax] = value; }

    /// <summary>RCX.</summary>
    public ulong Rcx { get => _registers[Gpr.Rcx]; set => _registers[Gpr.Rcx] = value; }

    /// <summary>RDX.</summary>
    public ulong Rdx { get => _registers[Gpr.Rdx]; set => _registers[Gpr.Rdx] = value; }

    /// <summary>RBX.</summary>
    public ulong Rbx { get => _registers[Gpr.Rbx]; set => _registers[Gpr.Rbx] = value; }

    /// <summary>RSP.</summary>
    public ulong Rsp { get => _registers[Gpr.Rsp]; set => _registers[Gpr.Rsp] = value; }

    /// <summary>RBP.</summary>
    public ulong Rbp { get => _registers[Gpr.Rbp]; set => _registers[Gpr.Rbp] = value; }

    /// <summary>RSI.</summary>
    public ulong Rsi { get => _registers[Gpr.Rsi]; set => _registers[Gpr.Rsi] = value; }

    /// <summary>RDI.</summary>
    public ulong Rdi { get => _registers[Gpr.Rdi]; set => _registers[Gpr.Rdi] = value; }

    /// <summary>A general-purpose register by number (0 = RAX ... 15 = R15), all 64 bits.</summary>
    public ulong this[int register]
    {
        get => _registers[register];
        set => _registers[register] = value;
    }
}
