using System.Buffers.Binary;
using KvmSharp.Devices.InterruptControllers;
using KvmSharp.Emulator.Cpu;
using KvmSharp.Emulator.Decoding;
using KvmSharp.Emulator.Execution;
using KvmSharp.Hypervisor;
using KvmSharp.Hypervisor.Snapshots;

namespace KvmSharp.Emulator.Backend;

/// <summary>Saving and restoring a software vCPU's state for snapshots.</summary>
public sealed partial class EmulatorVcpu
{
    // RFLAGS bits that exist: the status flags, bit 1, TF, IF, DF, IOPL, NT, RF, VM, AC, VIF, VIP, ID.
    private const ulong DefinedFlags = 0x3F_7FD7;
    private const ulong Cr0Cd = 1UL << 30;
    private const ulong Cr0Nw = 1UL << 29;

    /// <summary>The local APIC of this vCPU (the machine saves it with the rest of the interrupt fabric).</summary>
    internal LocalApic? LocalApic => _apic;

    /// <summary>
    /// Captures the architectural state, the halted/waiting-for-SIPI state and the TSC. Call it while the vCPU is not
    /// running (on its own thread, or with the thread parked outside <see cref="Run"/>).
    /// </summary>
    public EmulatorVcpuState SaveState()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var s = State;
        var registers = new ulong[CpuState.RegisterCount];
        for (int i = 0; i < registers.Length; i++)
        {
            registers[i] = s[i];
        }

        var segments = new EmulatorSegmentState[CpuState.SegmentCount];
        for (int i = 0; i < segments.Length; i++)
        {
            segments[i] = ToRecord(s.Segment((SegmentName)i));
        }

        var fxsave = new byte[FxState.ImageSize];
        s.Fx.Save(fxsave);
        return new EmulatorVcpuState(
            Index,
            registers,
            s.Rip,
            s.RFlags,
            segments,
            ToRecord(s.Ldtr),
            ToRecord(s.Tr),
            s.Gdtr.Base,
            s.Gdtr.Limit,
            s.Idtr.Base,
            s.Idtr.Limit,
            s.Cr0,
            s.Cr2,
            s.Cr3,
            s.Cr4,
            Platform.ReadCr8(),
            s.Efer,
            s.Xcr0,
            s.Cpl,
            (ulong[])s.Dr.Clone(),
            s.Dr6,
            s.Dr7,
            s.Star,
            s.Lstar,
            s.Cstar,
            s.Sfmask,
            s.KernelGsBase,
            s.SysenterCs,
            s.SysenterEsp,
            s.SysenterEip,
            s.TscAux,
            s.Pat,
            _cpu.MiscEnable,
            fxsave,
            s.Fx.Ftw,
            s.InterruptShadow,
            _cpu.NmiBlocked,
            _halted,
            _waitingForStartup,
            _cpu.IsShutdown,
            Platform.ReadTsc());
    }

    /// <summary>
    /// Loads a state from <see cref="SaveState"/>: the vCPU goes on exactly where the saved one was, its TSC from the
    /// saved value, with its decoded-instruction caches and TLB dropped. Throws <see cref="SnapshotStateException"/>,
    /// changing nothing, for a state this CPU could not be in (another vCPU's, arrays of the wrong length, reserved
    /// bits in RFLAGS/CRs/EFER, long mode without paging, an invalid PAE PDPTE, ...).
    /// </summary>
    public void RestoreState(EmulatorVcpuState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (Check(state) is { } problem)
        {
            throw new SnapshotStateException($"The snapshot's state of vCPU {Index} cannot be restored: {problem}.");
        }

        var before = SaveState();
        Apply(state);
        try
        {
            _cpu.DiscardDerivedState();
        }
        catch (ArgumentException)
        {
            Apply(before);
            _cpu.DiscardDerivedState();
            throw new SnapshotStateException($"The snapshot's state of vCPU {Index} cannot be restored: its PAE page-directory-pointer table at CR3 0x{state.Cr3:x} has reserved bits set.");
        }
    }

    private void Apply(EmulatorVcpuState state)
    {
        var s = State;
        for (int i = 0; i < CpuState.RegisterCount; i++)
        {
            s[i] = state.Registers[i];
        }

        s.Rip = state.Rip;
        s.RFlags = state.Rflags | Flags.Reserved1;
        for (int i = 0; i < CpuState.SegmentCount; i++)
        {
            s.Segment((SegmentName)i) = FromRecord(state.Segments[i]);
        }

        s.Ldtr = FromRecord(state.Ldtr);
        s.Tr = FromRecord(state.Tr);
        s.Gdtr = new DescriptorTable { Base = state.GdtBase, Limit = state.GdtLimit };
        s.Idtr = new DescriptorTable { Base = state.IdtBase, Limit = state.IdtLimit };
        s.Cr0 = state.Cr0;
        s.Cr2 = state.Cr2;
        s.Cr3 = state.Cr3;
        s.Cr4 = state.Cr4;
        s.Efer = state.Efer;
        s.Xcr0 = state.Xcr0;
        s.Cpl = state.Cpl;
        state.Dr.CopyTo(s.Dr, 0);
        s.Dr6 = state.Dr6;
        s.Dr7 = state.Dr7;
        s.Star = state.Star;
        s.Lstar = state.Lstar;
        s.Cstar = state.Cstar;
        s.Sfmask = state.Sfmask;
        s.KernelGsBase = state.KernelGsBase;
        s.SysenterCs = state.SysenterCs;
        s.SysenterEsp = state.SysenterEsp;
        s.SysenterEip = state.SysenterEip;
        s.TscAux = state.TscAux;
        s.Pat = state.Pat;
        s.Fx.TryRestore(state.Fxsave); // Check refused an MXCSR it would refuse
        s.Fx.Ftw = state.FullTagWord;
        s.InterruptShadow = state.InterruptShadow;
        _cpu.MiscEnable = state.MiscEnable;
        _cpu.NmiBlocked = state.NmiBlocked;
        _cpu.IsShutdown = state.Shutdown;
        _halted = state.Halted;
        _waitingForStartup = state.WaitingForStartup;
        _resumeFromBreakpoint = false;
        if (Platform.Apic is null)
        {
            Platform.WriteCr8(state.Cr8);
        }

        Platform.WriteTsc(state.Tsc);
    }

    /// <summary>What makes <paramref name="state"/> one this vCPU cannot take, or null.</summary>
    private string? Check(EmulatorVcpuState state)
    {
        if (state.Index != Index)
        {
            return $"it was saved from vCPU {state.Index}";
        }

        if (state.Registers is not { Length: CpuState.RegisterCount } || state.Segments is not { Length: CpuState.SegmentCount }
            || state.Dr is not { Length: 4 } || state.Fxsave is not { Length: FxState.ImageSize })
        {
            return $"it must hold {CpuState.RegisterCount} registers, {CpuState.SegmentCount} segments, 4 debug address registers and a {FxState.ImageSize}-byte FXSAVE image";
        }

        if (state.Ldtr is null || state.Tr is null)
        {
            return "LDTR or TR is missing";
        }

        foreach (var segment in state.Segments)
        {
            if (CheckSegment(segment) is { } bad)
            {
                return bad;
            }
        }

        if ((CheckSegment(state.Ldtr) ?? CheckSegment(state.Tr)) is { } badSystem)
        {
            return badSystem;
        }

        return CheckSystem(state);
    }

    private static string? CheckSystem(EmulatorVcpuState state)
    {
        if ((state.Rflags & ~DefinedFlags) != 0)
        {
            return $"RFLAGS 0x{state.Rflags:x} sets reserved bits";
        }

        ulong cr0 = state.Cr0;
        bool pe = (cr0 & X86SystemRegisters.Cr0Pe) != 0;
        bool pg = (cr0 & X86SystemRegisters.Cr0Pg) != 0;
        if ((cr0 >> 32) != 0 || (pg && !pe) || ((cr0 & Cr0Nw) != 0 && (cr0 & Cr0Cd) == 0))
        {
            return $"CR0 0x{cr0:x} is not a valid value (reserved bits, PG without PE, or NW without CD)";
        }

        if ((state.Cr4 & ~Interpreter.Cr4Supported) != 0)
        {
            return $"CR4 0x{state.Cr4:x} sets bits this CPU does not implement";
        }

        if ((state.Cr3 >> 52) != 0 || state.Cr8 > 0xF)
        {
            return $"CR3 0x{state.Cr3:x} or CR8 0x{state.Cr8:x} sets reserved bits";
        }

        ulong efer = state.Efer;
        bool lme = (efer & X86SystemRegisters.EferLme) != 0;
        bool lma = (efer & X86SystemRegisters.EferLma) != 0;
        bool pae = (state.Cr4 & X86SystemRegisters.Cr4Pae) != 0;
        if ((efer & ~Interpreter.EferSupported) != 0 || lma != (lme && pg) || (lma && !pae))
        {
            return $"EFER 0x{efer:x} does not fit CR0 0x{cr0:x} and CR4 0x{state.Cr4:x} (long mode needs LME, PG and PAE, and is active whenever LME and PG are set)";
        }

        var cs = state.Segments[(int)SegmentName.Cs];
        if (lma && cs.L != 0 && cs.Db != 0)
        {
            return "CS sets both L and D in long mode";
        }

        if (state.Cpl is < 0 or > 3 || (!pe && state.Cpl != 0))
        {
            return $"CPL {state.Cpl} is not possible in this mode";
        }

        if ((state.Xcr0 & ~3UL) != 0 || (state.Xcr0 & 1) == 0)
        {
            return $"XCR0 0x{state.Xcr0:x} enables state this CPU does not have";
        }

        if ((state.Dr6 >> 32) != 0 || (state.Dr7 >> 32) != 0)
        {
            return "DR6 or DR7 sets bits above 31";
        }

        for (int i = 0; i < 8; i++)
        {
            ulong type = (state.Pat >> (i * 8)) & 0xFF;
            if (type is 2 or 3 or > 7)
            {
                return $"IA32_PAT 0x{state.Pat:x} holds a reserved memory type";
            }
        }

        uint mxcsr = BinaryPrimitives.ReadUInt32LittleEndian(state.Fxsave.AsSpan(24));
        if ((mxcsr & ~FxState.MxcsrMask) != 0)
        {
            return $"MXCSR 0x{mxcsr:x} sets reserved bits";
        }

        return null;
    }

    private static string? CheckSegment(EmulatorSegmentState? segment)
    {
        if (segment is null)
        {
            return "a segment register is missing";
        }

        if (segment.Type > 0xF || segment.Dpl > 3 || (segment.Present | segment.Db | segment.S | segment.L | segment.G | segment.Avl | segment.Unusable) > 1)
        {
            return $"segment selector 0x{segment.Selector:x} has a descriptor with out-of-range fields";
        }

        return null;
    }

    private static EmulatorSegmentState ToRecord(in SegmentRegister r) =>
        new(r.Selector, r.Base, r.Limit, r.Type, r.Present, r.Dpl, r.Db, r.S, r.L, r.G, r.Avl, r.Unusable);

    private static SegmentRegister FromRecord(EmulatorSegmentState r) => new()
    {
        Selector = r.Selector,
        Base = r.Base,
        Limit = r.Limit,
        Type = r.Type,
        Present = r.Present,
        Dpl = r.Dpl,
        Db = r.Db,
        S = r.S,
        L = r.L,
        G = r.G,
        Avl = r.Avl,
        Unusable = r.Unusable,
    };
}
