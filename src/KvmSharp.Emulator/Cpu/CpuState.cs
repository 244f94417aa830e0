using KvmSharp.Emulator.Decoding;
using KvmSharp.Emulator.Execution;
using KvmSharp.Hypervisor;

namespace KvmSharp.Emulator.Cpu;

/// <summary>
/// The architectural state of one software vCPU: general-purpose registers, RIP, RFLAGS, the segment registers
/// with their hidden descriptor caches, GDTR/IDTR/LDTR/TR, control and debug registers, the MSRs the CPU itself
/// implements, and the x87/SSE state in FXSAVE layout. Plain storage, allocated once; the interpreter reads and
/// writes it in place.
/// </summary>
public sealed class CpuState
{
    /// <summary>The number of general-purpose registers in 64-bit mode.</summary>
    public const int RegisterCount = 16;

    /// <summary>ES, CS, SS, DS, FS, GS in <see cref="SegmentName"/> order.</summary>
    public const int SegmentCount = 6;

    private readonly ulong[] _registers = new ulong[RegisterCount];
    private readonly SegmentRegister[] _segments = new SegmentRegister[SegmentCount];

    /// <summary>RIP.</summary>
    public ulong Rip { get; set; }

    /// <summary>RFLAGS; bit 1 reads as 1.</summary>
    public ulong RFlags { get; set; } = Flags.Reserved1;

    /// <summary>The FS segment base.</summary>
    public ulong FsBase
    {
        get => _segments[(int)SegmentName.Fs].Base;
        set => _segments[(int)SegmentName.Fs].Base = value;
    }

    /// <summary>The GS segment base.</summary>
    public ulong GsBase
    {
        get => _segments[(int)SegmentName.Gs].Base;
        set => _segments[(int)SegmentName.Gs].Base = value;
    }

    /// <summary>A segment register and its hidden part, by name.</summary>
    public ref SegmentRegister Segment(SegmentName segment) => ref _segments[(int)segment];

    /// <summary>CS.</summary>
    public ref SegmentRegister Cs => ref _segments[(int)SegmentName.Cs];

    /// <summary>SS.</summary>
    public ref SegmentRegister Ss => ref _segments[(int)SegmentName.Ss];

    /// <summary>LDTR.</summary>
    public SegmentRegister Ldtr;

    /// <summary>TR.</summary>
    public SegmentRegister Tr;

    /// <summary>GDTR.</summary>
    public DescriptorTable Gdtr;

    /// <summary>IDTR.</summary>
    public DescriptorTable Idtr;

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

    /// <summary>XCR0 (only x87 and SSE state exist: 3).</summary>
    public ulong Xcr0 { get; set; } = 1;

    /// <summary>The current privilege level, 0-3 (CS.RPL outside real mode).</summary>
    public int Cpl { get; set; }

    /// <summary>DR0-DR3.</summary>
    public readonly ulong[] Dr = new ulong[4];

    /// <summary>DR6.</summary>
    public ulong Dr6 { get; set; } = 0xFFFF_0FF0;

    /// <summary>DR7.</summary>
    public ulong Dr7 { get; set; } = 0x400;

    /// <summary>IA32_STAR: SYSCALL/SYSRET selectors and the legacy-mode SYSCALL EIP.</summary>
    public ulong Star { get; set; }

    /// <summary>IA32_LSTAR: the 64-bit SYSCALL target.</summary>
    public ulong Lstar { get; set; }

    /// <summary>IA32_CSTAR: the compatibility-mode SYSCALL target (never used by Intel CPUs; kept for writes/reads).</summary>
    public ulong Cstar { get; set; }

    /// <summary>IA32_FMASK: RFLAGS bits SYSCALL clears.</summary>
    public ulong Sfmask { get; set; }

    /// <summary>IA32_KERNEL_GS_BASE: what SWAPGS exchanges with the GS base.</summary>
    public ulong KernelGsBase { get; set; }

    /// <summary>IA32_SYSENTER_CS.</summary>
    public ulong SysenterCs { get; set; }

    /// <summary>IA32_SYSENTER_ESP.</summary>
    public ulong SysenterEsp { get; set; }

    /// <summary>IA32_SYSENTER_EIP.</summary>
    public ulong SysenterEip { get; set; }

    /// <summary>IA32_TSC_AUX (RDTSCP's ECX).</summary>
    public ulong TscAux { get; set; }

    /// <summary>IA32_PAT (the power-on value).</summary>
    public ulong Pat { get; set; } = 0x0007_0406_0007_0406;

    /// <summary>The x87, MMX and SSE state (FXSAVE image).</summary>
    public FxState Fx { get; } = new();

    /// <summary>True for the instruction after STI, MOV SS or POP SS: interrupts wait one instruction.</summary>
    public bool InterruptShadow { get; set; }

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

    /// <summary>The execution mode the CS descriptor, CR0.PE and EFER.LMA select.</summary>
    public CpuMode Mode
    {
        get
        {
            if ((Cr0 & X86SystemRegisters.Cr0Pe) == 0 || (RFlags & Flags.VM) != 0)
            {
                return CpuMode.Real16;
            }

            ref var cs = ref _segments[(int)SegmentName.Cs];
            if ((Efer & X86SystemRegisters.EferLma) != 0 && cs.L != 0)
            {
                return CpuMode.Long64;
            }

            return cs.Db != 0 ? CpuMode.Protected32 : CpuMode.Protected16;
        }
    }

    /// <summary>Loads flat 64-bit code and data segments of privilege <paramref name="cpl"/> (tests and the 64-bit boot entry); FS/GS keep their bases.</summary>
    public void SetFlatLongMode(int cpl = 0, ushort codeSelector = 0x10, ushort dataSelector = 0x18)
    {
        byte dpl = (byte)cpl;
        _segments[(int)SegmentName.Cs] = SegmentRegister.FlatCode((ushort)(codeSelector | cpl), longMode: true, dpl);
        foreach (var name in (ReadOnlySpan<SegmentName>)[SegmentName.Ds, SegmentName.Es, SegmentName.Ss, SegmentName.Fs, SegmentName.Gs])
        {
            ulong keepBase = _segments[(int)name].Base;
            _segments[(int)name] = SegmentRegister.FlatData((ushort)(dataSelector | cpl), dpl);
            if (name is SegmentName.Fs or SegmentName.Gs)
            {
                _segments[(int)name].Base = keepBase;
            }
        }

        Cpl = cpl;
    }
}
