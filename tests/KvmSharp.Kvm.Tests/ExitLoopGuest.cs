using KvmSharp.Hypervisor;
using KvmSharp.Memory;
using KvmSharp.Native;

namespace KvmSharp.Kvm.Tests;

/// <summary>
/// A one-vCPU KVM machine running the exit loops of Guests/exitloop.S at CPL3, so that under PVM (where CPL0
/// code is emulated at ~1 µs an instruction) only the exits cost. Shared by AllocationTests and, as a linked
/// file, by bench/KvmSharp.Benchmarks; bench/native/exit_loop.c builds the same machine with raw ioctls.
/// </summary>
internal sealed class ExitLoopMachine : IDisposable
{
    public const ulong PioLoop = 0x1000;
    public const ulong MmioLoop = 0x1020;
    public const ulong BothLoops = 0x1040;
    public const ulong HaltHandler = 0x1060;
    public const ushort Port = 0x10;

    /// <summary>256 MiB: mapped by the page tables but backed by no memory slot, so every store is an MMIO exit.</summary>
    public const ulong MmioAddress = 0x1000_0000;

    private const ulong CodeAddress = 0x1000;
    private const ulong GdtAddress = 0x2000;
    private const ulong TssAddress = 0x3000;
    private const uint TssLimit = 0x68 + 0x2000; // the 104-byte TSS, then an all-zero I/O bitmap (every port allowed)
    private const ulong StackTop = 0x7000; // TSS.RSP0: where the CPL3 -> CPL0 #GP pushes its frame
    private const ulong Pml4Address = 0x8000;
    private const ulong PdptAddress = 0x9000;
    private const ulong PdAddress = 0xA000;
    private const ulong IdtAddress = 0xB000;
    private const ulong RamSize = 2 * 1024 * 1024;

    private const ushort KernelCode = 0x10;
    private const ushort KernelData = 0x18;
    private const ushort UserData = 0x2B;
    private const ushort UserCode = 0x33;
    private const ushort TaskSelector = 0x38;

    private readonly KvmSystem _system;
    private readonly KvmVm _vm;
    private readonly GuestMemory _memory;
    private readonly KvmVcpu _vcpu;
    private readonly X86SystemRegisters _startState;

    private ExitLoopMachine(KvmSystem system, KvmVm vm, GuestMemory memory, KvmVcpu vcpu, X86SystemRegisters startState, int cpl)
    {
        _system = system;
        _vm = vm;
        _memory = memory;
        _vcpu = vcpu;
        _startState = startState;
        Cpl = cpl;
    }

    // exitloop.S (see the file for the comments):
    //   0x00 pio_loop:   out %al,(%dx); dec %rcx; jnz pio_loop; hlt
    //   0x20 mmio_loop:  mov %al,(%rdi); dec %rcx; jnz mmio_loop; hlt
    //   0x40 both_loops: out %al,(%dx); dec %rcx; jnz both_loops; 1: mov %al,(%rdi); dec %rbx; jnz 1b; hlt
    //   0x60 halt:       hlt; jmp halt
    public static ReadOnlySpan<byte> Code =>
    [
        0xee, 0x48, 0xff, 0xc9, 0x75, 0xfa, 0xf4, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0x88, 0x07, 0x48, 0xff, 0xc9, 0x75, 0xf9, 0xf4, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0xee, 0x48, 0xff, 0xc9, 0x75, 0xfa, 0x88, 0x07, 0x48, 0xff, 0xcb, 0x75, 0xf9, 0xf4, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0xf4, 0xeb, 0xfd,
    ];

    /// <summary>The privilege level the loops run at: 3, or 0 when KVM would not run them at CPL3.</summary>
    public int Cpl { get; }

    public KvmVcpu Vcpu => _vcpu;

    /// <summary>
    /// Builds the machine at CPL3 and checks, by stopping at the first exit and reading CS, that the loop
    /// really runs there; if KVM refuses, builds it again at CPL0 (unless <paramref name="allowCpl0"/> is false).
    /// </summary>
    public static ExitLoopMachine Create(bool userMode = true, bool allowCpl0 = true)
    {
        if (userMode)
        {
            var machine = Build(cpl: 3);
            if (machine.RunsAtCpl3())
            {
                return machine;
            }

            machine.Dispose();
            if (!allowCpl0)
            {
                throw new InvalidOperationException("KVM did not run the exit loop at CPL3.");
            }
        }

        return Build(cpl: 0);
    }

    /// <summary>Points the vCPU at <paramref name="entry"/> in the start mode, with the loop counts in RCX (and RBX).</summary>
    public void Reset(ulong entry, ulong count, ulong secondCount = 0)
    {
        _vcpu.SetSystemRegisters(_startState);
        var regs = new X86Registers
        {
            Rip = entry,
            Rcx = count,
            Rbx = secondCount,
            Rdx = Port,
            Rdi = MmioAddress,
            Rsp = StackTop,
            Rflags = X86Registers.FlagsReserved | X86Registers.FlagIoplMask,
        };
        _vcpu.SetRegisters(regs);
    }

    public void Dispose()
    {
        _vcpu.Dispose();
        _vm.Dispose();
        _memory.Dispose();
        _system.Dispose();
    }

    private static ExitLoopMachine Build(int cpl)
    {
        var system = KvmSystem.Open();
        KvmVm? vm = null;
        GuestMemory? memory = null;
        KvmVcpu? vcpu = null;
        try
        {
            vm = system.CreateVm();
            if (system.CheckExtension(KvmCapability.SetTssAddr) > 0)
            {
                vm.SetTssAddress(0xFFFB_D000);
            }

            memory = GuestMemory.Create(RamSize);
            vm.MapMemory(memory);
            WriteTables(memory);
            vcpu = vm.CreateVcpu(0);
            var sregs = StartState(vcpu.GetSystemRegisters(), cpl);
            vcpu.SetSystemRegisters(sregs);
            return new ExitLoopMachine(system, vm, memory, vcpu, sregs, cpl);
        }
        catch
        {
            vcpu?.Dispose();
            vm?.Dispose();
            memory?.Dispose();
            system.Dispose();
            throw;
        }
    }

    private static void WriteTables(GuestMemory memory)
    {
        memory.Write(CodeAddress, Code);

        // 1 GiB identity-mapped with 2 MiB pages, present | writable | user at every level.
        const ulong PresentWritableUser = 0x7;
        const ulong LargePage = 0x80;
        memory.Write(Pml4Address, PdptAddress | PresentWritableUser);
        memory.Write(PdptAddress, PdAddress | PresentWritableUser);
        for (ulong i = 0; i < 512; i++)
        {
            memory.Write(PdAddress + (i * 8), (i << 21) | PresentWritableUser | LargePage);
        }

        // GDT (selectors in the SYSCALL/SYSRET layout): delivering #GP reads the gate's KernelCode and the TSS from it.
        memory.Write(GdtAddress + KernelCode, 0x00AF_9A00_0000_FFFFUL);
        memory.Write(GdtAddress + KernelData, 0x00CF_9200_0000_FFFFUL);
        memory.Write(GdtAddress + (UserData & ~3UL), 0x00CF_F200_0000_FFFFUL);
        memory.Write(GdtAddress + (UserCode & ~3UL), 0x00AF_FA00_0000_FFFFUL);
        memory.Write(GdtAddress + TaskSelector, (TssLimit & 0xFFFFUL) | (TssAddress << 16) | (0x89UL << 40));
        memory.Write(GdtAddress + TaskSelector + 8, 0UL);

        memory.Write(TssAddress + 4, StackTop); // RSP0
        memory.Write(TssAddress + 0x66, (ushort)0x68); // I/O map base: right after the TSS
        memory.Write(TssAddress + TssLimit, (byte)0xFF); // the bitmap's terminating byte

        // Every vector goes to the CPL0 halt: a 64-bit interrupt gate, selector KernelCode, DPL 0.
        for (ulong vector = 0; vector < 256; vector++)
        {
            ulong gate = (HaltHandler & 0xFFFF) | ((ulong)KernelCode << 16) | (0x8EUL << 40) | ((HaltHandler >> 16) << 48);
            memory.Write(IdtAddress + (vector * 16), gate);
            memory.Write(IdtAddress + (vector * 16) + 8, HaltHandler >> 32);
        }
    }

    private static X86SystemRegisters StartState(X86SystemRegisters sregs, int cpl)
    {
        sregs.Cr0 = X86SystemRegisters.Cr0Pe | X86SystemRegisters.Cr0Mp | X86SystemRegisters.Cr0Et | X86SystemRegisters.Cr0Ne | X86SystemRegisters.Cr0Pg;
        sregs.Cr3 = Pml4Address;
        sregs.Cr4 = X86SystemRegisters.Cr4Pae;
        sregs.Efer = X86SystemRegisters.EferLme | X86SystemRegisters.EferLma;
        byte dpl = (byte)cpl;
        sregs.Cs = SegmentRegister.FlatCode(cpl == 3 ? UserCode : KernelCode, longMode: true, dpl);
        sregs.Ss = SegmentRegister.FlatData(cpl == 3 ? UserData : KernelData, dpl);
        sregs.Ds = sregs.Es = sregs.Fs = sregs.Gs = sregs.Ss;
        sregs.Gdt = new DescriptorTable { Base = GdtAddress, Limit = (9 * 8) - 1 };
        sregs.Idt = new DescriptorTable { Base = IdtAddress, Limit = (256 * 16) - 1 };
        sregs.Tr = new SegmentRegister
        {
            Base = TssAddress,
            Limit = TssLimit,
            Selector = TaskSelector,
            Type = 0xB, // busy 64-bit TSS
            Present = 1,
        };
        return sregs;
    }

    private bool RunsAtCpl3()
    {
        try
        {
            Reset(PioLoop, 2);
            var probe = new FirstExitStop();
            if (_vcpu.Run(probe).Reason != VcpuStopReason.IoRequestedStop)
            {
                return false;
            }

            var cs = _vcpu.GetSystemRegisters().Cs;
            probe.Release();
            return cs.Dpl == 3 && (cs.Selector & 3) == 3 && _vcpu.Run(probe).Reason == VcpuStopReason.Halted && probe.Writes == 2;
        }
        catch (NativeErrorException)
        {
            // KVM_SET_SREGS refused the CPL3 state.
            return false;
        }
    }

    /// <summary>Stops the vCPU at its first port write until released.</summary>
    private sealed class FirstExitStop : IVcpuIo
    {
        private bool _released;

        public int Writes { get; private set; }

        public bool StopRequested => !_released && Writes > 0;

        public void Release() => _released = true;

        public void PortRead(ushort port, Span<byte> data) => data.Fill(0xFF);

        public void PortWrite(ushort port, ReadOnlySpan<byte> data) => Writes++;

        public void MmioRead(ulong address, Span<byte> data) => data.Fill(0xFF);

        public void MmioWrite(ulong address, ReadOnlySpan<byte> data)
        {
        }
    }
}

/// <summary>An I/O handler for a machine with nothing attached: reads see all ones, writes vanish.</summary>
internal sealed class NothingAttachedIo : IVcpuIo
{
    public bool StopRequested => false;

    public void PortRead(ushort port, Span<byte> data) => data.Fill(0xFF);

    public void PortWrite(ushort port, ReadOnlySpan<byte> data)
    {
    }

    public void MmioRead(ulong address, Span<byte> data) => data.Fill(0xFF);

    public void MmioWrite(ulong address, ReadOnlySpan<byte> data)
    {
    }
}
