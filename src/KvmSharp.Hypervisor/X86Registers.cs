using System.Runtime.InteropServices;

namespace KvmSharp.Hypervisor;

/// <summary>General-purpose registers, RIP and RFLAGS (the layout of the kernel's kvm_regs, 144 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
public struct X86Registers
{
    public ulong Rax, Rbx, Rcx, Rdx;
    public ulong Rsi, Rdi, Rsp, Rbp;
    public ulong R8, R9, R10, R11;
    public ulong R12, R13, R14, R15;
    public ulong Rip, Rflags;

    /// <summary>RFLAGS bit 1 is always set on x86.</summary>
    public const ulong FlagsReserved = 1UL << 1;
    public const ulong FlagTrap = 1UL << 8;
    public const ulong FlagInterrupt = 1UL << 9;
    public const ulong FlagIoplMask = 3UL << 12;
}

/// <summary>A segment register with its hidden descriptor cache (the layout of kvm_segment, 24 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
public struct SegmentRegister
{
    public ulong Base;
    public uint Limit;
    public ushort Selector;
    public byte Type;
    public byte Present;
    public byte Dpl;
    public byte Db;
    public byte S;
    public byte L;
    public byte G;
    public byte Avl;
    public byte Unusable;
    private readonly byte _padding;

    /// <summary>Flat 4 GiB code segment: 64-bit (L=1) or 32-bit (D=1).</summary>
    public static SegmentRegister FlatCode(ushort selector, bool longMode, byte dpl = 0) => new()
    {
        Base = 0,
        Limit = 0xFFFF_FFFF,
        Selector = selector,
        Type = 0xB, // execute/read, accessed
        Present = 1,
        Dpl = dpl,
        Db = longMode ? (byte)0 : (byte)1,
        S = 1,
        L = longMode ? (byte)1 : (byte)0,
        G = 1,
    };

    /// <summary>Flat 4 GiB read/write data segment.</summary>
    public static SegmentRegister FlatData(ushort selector, byte dpl = 0) => new()
    {
        Base = 0,
        Limit = 0xFFFF_FFFF,
        Selector = selector,
        Type = 0x3, // read/write, accessed
        Present = 1,
        Dpl = dpl,
        Db = 1,
        S = 1,
        G = 1,
    };

    /// <summary>Real-mode segment: base = selector * 16, 64 KiB limit.</summary>
    public static SegmentRegister RealMode(ushort selector, bool code = false) => new()
    {
        Base = (ulong)selector << 4,
        Limit = 0xFFFF,
        Selector = selector,
        Type = code ? (byte)0xB : (byte)0x3,
        Present = 1,
        S = 1,
    };
}

/// <summary>GDTR/IDTR (the layout of kvm_dtable, 16 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
public struct DescriptorTable
{
    public ulong Base;
    public ushort Limit;
    private readonly ushort _padding0;
    private readonly ushort _padding1;
    private readonly ushort _padding2;
}

/// <summary>Segment, descriptor-table and control registers (the layout of kvm_sregs, 312 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct X86SystemRegisters
{
    public SegmentRegister Cs, Ds, Es, Fs, Gs, Ss;
    public SegmentRegister Tr, Ldt;
    public DescriptorTable Gdt, Idt;
    public ulong Cr0, Cr2, Cr3, Cr4, Cr8;
    public ulong Efer;
    public ulong ApicBase;

    /// <summary>Pending external interrupt (one bit per vector) when there is no in-kernel irqchip.</summary>
    public fixed ulong InterruptBitmap[4];

    public const ulong Cr0Pe = 1UL << 0;
    public const ulong Cr0Mp = 1UL << 1;
    public const ulong Cr0Et = 1UL << 4;
    public const ulong Cr0Ne = 1UL << 5;
    public const ulong Cr0Wp = 1UL << 16;
    public const ulong Cr0Pg = 1UL << 31;
    public const ulong Cr4Pae = 1UL << 5;
    public const ulong Cr4Pge = 1UL << 7;
    public const ulong Cr4Osfxsr = 1UL << 9;
    public const ulong Cr4Osxmmexcpt = 1UL << 10;
    public const ulong EferSce = 1UL << 0;
    public const ulong EferLme = 1UL << 8;
    public const ulong EferLma = 1UL << 10;
    public const ulong EferNxe = 1UL << 11;
}

/// <summary>
/// x87/SSE state (the layout of kvm_fpu, 416 bytes). KVM's KVM_GET_FPU/KVM_SET_FPU copy the x87 and XMM
/// fields but not <see cref="Mxcsr"/>; save and restore MXCSR through the XSAVE area on that backend.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct FpuState
{
    public fixed byte Fpr[128];
    public ushort Fcw;
    public ushort Fsw;
    public byte Ftwx;
    private readonly byte _pad1;
    public ushort LastOpcode;
    public ulong LastIp;
    public ulong LastDp;
    public fixed byte Xmm[256];
    public uint Mxcsr;
    private readonly uint _pad2;
}
