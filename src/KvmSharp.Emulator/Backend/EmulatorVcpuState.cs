namespace KvmSharp.Emulator.Backend;

/// <summary>A segment register with its hidden descriptor cache (or LDTR/TR), as <see cref="Hypervisor.SegmentRegister"/> holds it.</summary>
public sealed record EmulatorSegmentState(
    ushort Selector,
    ulong Base,
    uint Limit,
    byte Type,
    byte Present,
    byte Dpl,
    byte Db,
    byte S,
    byte L,
    byte G,
    byte Avl,
    byte Unusable);

/// <summary>
/// The saved state of one software vCPU (<see cref="EmulatorVcpu.SaveState"/>): everything the interpreter needs to go
/// on bit-exactly. <see cref="Registers"/> are RAX..R15 by number; <see cref="Segments"/> are ES, CS, SS, DS, FS, GS;
/// <see cref="Dr"/> is DR0-DR3; <see cref="Fxsave"/> is the 512-byte FXSAVE image (x87, MMX, XMM0-15 and MXCSR at
/// offset 24), with <see cref="FullTagWord"/> the x87 tag word FXSAVE abridges. <see cref="Cr8"/> is restored only on
/// a vCPU without a local APIC (with one, CR8 is the TPR in the APIC's own state). <see cref="Tsc"/> is the guest's
/// TSC at saving: a restored vCPU's TSC goes on from it. Decoded-instruction caches and the TLB are not state.
/// </summary>
public sealed record EmulatorVcpuState(
    int Index,
    ulong[] Registers,
    ulong Rip,
    ulong Rflags,
    EmulatorSegmentState[] Segments,
    EmulatorSegmentState Ldtr,
    EmulatorSegmentState Tr,
    ulong GdtBase,
    ushort GdtLimit,
    ulong IdtBase,
    ushort IdtLimit,
    ulong Cr0,
    ulong Cr2,
    ulong Cr3,
    ulong Cr4,
    ulong Cr8,
    ulong Efer,
    ulong Xcr0,
    int Cpl,
    ulong[] Dr,
    ulong Dr6,
    ulong Dr7,
    ulong Star,
    ulong Lstar,
    ulong Cstar,
    ulong Sfmask,
    ulong KernelGsBase,
    ulong SysenterCs,
    ulong SysenterEsp,
    ulong SysenterEip,
    ulong TscAux,
    ulong Pat,
    ulong MiscEnable,
    byte[] Fxsave,
    ushort FullTagWord,
    bool InterruptShadow,
    bool NmiBlocked,
    bool Halted,
    bool WaitingForStartup,
    bool Shutdown,
    ulong Tsc);
