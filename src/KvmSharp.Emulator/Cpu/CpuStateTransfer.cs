using KvmSharp.Emulator.Decoding;
using KvmSharp.Hypervisor;

namespace KvmSharp.Emulator.Cpu;

/// <summary>
/// Moves register state between the software CPU and the backend-neutral structures of
/// <see cref="KvmSharp.Hypervisor"/> (the kvm_regs/kvm_sregs layouts), so that boot code, snapshots and tools
/// treat both backends alike.
/// </summary>
public static class CpuStateTransfer
{

    public static X86Registers GetRegisters(CpuState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        var r = new X86Registers
        {
            Rax = state.Rax,
            Rbx = state.Rbx,
            Rcx = state.Rcx,
            Rdx = state.Rdx,
            Rsi = state.Rsi,
            Rdi = state.Rdi,
            Rsp = state.Rsp,
            Rbp = state.Rbp,
            R8 = state[8],
            R9 = state[9],
            R10 = state[10],
            R11 = state[11],
            R12 = state[12],
            R13 = state[13],
            R14 = state[14],
            R15 = state[15],
            Rip = state.Rip,
            Rflags = state.RFlags,
        };
        return r;
    }

    public static void SetRegisters(CpuState state, in X86Registers r)
    {
        ArgumentNullException.ThrowIfNull(state);
        state.Rax = r.Rax;
        state.Rbx = r.Rbx;
        state.Rcx = r.Rcx;
        state.Rdx = r.Rdx;
        state.Rsi = r.Rsi;
        state.Rdi = r.Rdi;
        state.Rsp = r.Rsp;
        state.Rbp = r.Rbp;
        state[8] = r.R8;
        state[9] = r.R9;
        state[10] = r.R10;
        state[11] = r.R11;
        state[12] = r.R12;
        state[13] = r.R13;
        state[14] = r.R14;
        state[15] = r.R15;
        state.Rip = r.Rip;
        state.RFlags = r.Rflags | X86Registers.FlagsReserved;
    }

    /// <summary>The system registers; <paramref name="cr8"/> and <paramref name="apicBase"/> come from the platform's local APIC.</summary>
    public static X86SystemRegisters GetSystemRegisters(CpuState state, ulong cr8 = 0, ulong apicBase = 0)
    {
        ArgumentNullException.ThrowIfNull(state);
        return new X86SystemRegisters
        {
            Cs = state.Segment(SegmentName.Cs),
            Ds = state.Segment(SegmentName.Ds),
            Es = state.Segment(SegmentName.Es),
            Fs = state.Segment(SegmentName.Fs),
            Gs = state.Segment(SegmentName.Gs),
            Ss = state.Segment(SegmentName.Ss),
            Tr = state.Tr,
            Ldt = state.Ldtr,
            Gdt = state.Gdtr,
            Idt = state.Idtr,
            Cr0 = state.Cr0,
            Cr2 = state.Cr2,
            Cr3 = state.Cr3,
            Cr4 = state.Cr4,
            Cr8 = cr8,
            Efer = state.Efer,
            ApicBase = apicBase,
        };
    }

    /// <summary>
    /// Loads segments, descriptor tables and control registers; the CPL becomes CS.DPL (SS.DPL in protected mode
    /// as KVM defines it), 0 in real mode. The caller reloads the interpreter's paging afterwards.
    /// </summary>
    public static void SetSystemRegisters(CpuState state, in X86SystemRegisters s)
    {
        ArgumentNullException.ThrowIfNull(state);
        state.Segment(SegmentName.Cs) = s.Cs;
        state.Segment(SegmentName.Ds) = s.Ds;
        state.Segment(SegmentName.Es) = s.Es;
        state.Segment(SegmentName.Fs) = s.Fs;
        state.Segment(SegmentName.Gs) = s.Gs;
        state.Segment(SegmentName.Ss) = s.Ss;
        state.Tr = s.Tr;
        state.Ldtr = s.Ldt;
        state.Gdtr = s.Gdt;
        state.Idtr = s.Idt;
        state.Cr0 = s.Cr0;
        state.Cr2 = s.Cr2;
        state.Cr3 = s.Cr3;
        state.Cr4 = s.Cr4;
        state.Efer = s.Efer;
        state.Cpl = (s.Cr0 & X86SystemRegisters.Cr0Pe) == 0 ? 0 : s.Ss.Dpl;
    }
}
