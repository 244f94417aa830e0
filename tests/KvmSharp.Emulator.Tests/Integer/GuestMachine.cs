using KvmSharp.Emulator.Cpu;
using KvmSharp.Emulator.Decoding;
using KvmSharp.Emulator.Mmu;
using KvmSharp.Hypervisor;
using KvmSharp.Memory;

namespace KvmSharp.Emulator.Tests.Integer;

/// <summary>
/// An interpreter whose data window sits at the same linear addresses as <see cref="NativeMachine"/>'s host
/// window, backed by guest RAM at <see cref="WindowPhysical"/>, so one register file means the same memory in both.
/// </summary>
/// <remarks>
/// 64-bit mode: 4-level paging, identity-mapped low megabyte (code at <see cref="CodeBase"/>, page tables from
/// 0x1000), and the window's pages mapped present, writable and user; <see cref="SetWindowPage"/> changes one.
/// 32-bit mode: protected mode without paging; CS is flat with base 0, and DS, ES and SS are 4 GiB segments
/// whose base is chosen so that offset <c>windowLinear + x</c> lands on physical <c>WindowPhysical + x</c>
/// (linear addresses wrap at 4 GiB).
/// </remarks>
internal sealed class GuestMachine : IDisposable
{
    public const ulong CodeBase = 0x1_0000;
    public const ulong WindowPhysical = 0x20_0000;
    public const ulong PageFlags = PageTableEntry.Present | PageTableEntry.Writable | PageTableEntry.User;

    private readonly Dictionary<ulong, ulong> _windowPtes = [];
    private ulong _nextTable = 0x1000;
    private ulong _pml4;

    public GuestMachine(bool longMode, ulong windowLinear, int windowSize, IVcpuIo? io = null, int cpl = 0)
    {
        WindowLinear = windowLinear;
        WindowSize = windowSize;
        LongMode = longMode;
        Memory = GuestMemory.Create(8 << 20);
        if (longMode)
        {
            ulong pml4 = AllocateTable();
            _pml4 = pml4;
            for (ulong page = 0; page < 256; page++)
            {
                Map(pml4, page << 12, page << 12);
            }

            for (ulong offset = 0; offset < (ulong)windowSize; offset += 4096)
            {
                _windowPtes[offset] = Map(pml4, windowLinear + offset, WindowPhysical + offset);
            }

            State = new CpuState
            {
                Cr0 = X86SystemRegisters.Cr0Pe | X86SystemRegisters.Cr0Pg | X86SystemRegisters.Cr0Wp,
                Cr3 = pml4,
                Cr4 = X86SystemRegisters.Cr4Pae,
                Efer = X86SystemRegisters.EferLme | X86SystemRegisters.EferLma,
            };
            State.SetFlatLongMode(cpl);
        }
        else
        {
            State = new CpuState { Cr0 = X86SystemRegisters.Cr0Pe, Cpl = cpl };
            ulong dataBase = (WindowPhysical - windowLinear) & 0xFFFF_FFFF;
            State.Segment(SegmentName.Cs) = SegmentRegister.FlatCode((ushort)(0x08 | cpl), longMode: false, (byte)cpl);
            foreach (var name in (ReadOnlySpan<SegmentName>)[SegmentName.Ds, SegmentName.Es, SegmentName.Ss, SegmentName.Fs, SegmentName.Gs])
            {
                State.Segment(name) = SegmentRegister.FlatData((ushort)(0x10 | cpl), (byte)cpl);
                State.Segment(name).Base = dataBase;
            }
        }

        Interpreter = new Interpreter(State, Memory, io, null, Cpu.CpuFixture.DecodeCacheBits);
    }

    public GuestMemory Memory { get; }

    public CpuState State { get; }

    public Interpreter Interpreter { get; }

    public ulong WindowLinear { get; }

    public int WindowSize { get; }

    public bool LongMode { get; }

    /// <summary>Puts <paramref name="code"/> at <see cref="CodeBase"/> and RIP there.</summary>
    public void Load(ReadOnlySpan<byte> code)
    {
        Memory.Write(CodeBase, code);
        State.Rip = CodeBase;
    }

    /// <summary>Copies registers (all 16, or the low 32 bits of the first 8 in 32-bit mode) and RFLAGS into the CPU.</summary>
    public void SetRegisters(RegisterFile registers)
    {
        for (int r = 0; r < 16; r++)
        {
            State[r] = LongMode ? registers.Gpr[r] : r < 8 ? (uint)registers.Gpr[r] : 0;
        }

        State.RFlags = registers.Flags;
    }

    public RegisterFile GetRegisters()
    {
        var registers = new RegisterFile { Flags = State.RFlags };
        for (int r = 0; r < 16; r++)
        {
            registers.Gpr[r] = State[r];
        }

        return registers;
    }

    public void WriteWindow(ReadOnlySpan<byte> bytes) => Memory.Write(WindowPhysical, bytes);

    public void ReadWindow(Span<byte> bytes) => Memory.Read(WindowPhysical, bytes);

    /// <summary>Replaces the flags of the window page at <paramref name="offset"/> (64-bit mode) and flushes the TLB.</summary>
    public void SetWindowPage(ulong offset, ulong flags)
    {
        ulong pte = _windowPtes[offset & ~0xFFFUL];
        Memory.Write(pte, flags == 0 ? 0UL : (WindowPhysical + (offset & ~0xFFFUL)) | flags);
        Interpreter.ReloadPaging();
    }

    /// <summary>Maps one more 4 KiB page (64-bit mode), <paramref name="flags"/> 0 for not present, and flushes the TLB.</summary>
    public void MapPage(ulong linear, ulong physical, ulong flags = PageFlags)
    {
        ulong pte = Map(_pml4, linear, physical);
        Memory.Write(pte, flags == 0 ? 0UL : physical | flags);
        Interpreter.ReloadPaging();
    }

    /// <summary>Steps until RIP reaches <paramref name="end"/>; every step must execute. Returns the number of steps.</summary>
    public int RunTo(ulong end, int maxSteps = 100_000)
    {
        int steps = 0;
        while (State.Rip != end)
        {
            var result = Interpreter.Step();
            if (result.Status != StepStatus.Executed)
            {
                throw new InvalidOperationException($"Step {steps} at 0x{State.Rip:X} ended with {result.Status} {result.Exception}.");
            }

            if (++steps > maxSteps)
            {
                throw new InvalidOperationException($"No end after {maxSteps} steps (RIP 0x{State.Rip:X}).");
            }
        }

        return steps;
    }

    public void Dispose() => Memory.Dispose();

    private ulong AllocateTable()
    {
        ulong table = _nextTable;
        _nextTable += 0x1000;
        if (_nextTable > CodeBase)
        {
            throw new InvalidOperationException("Out of page-table pages.");
        }

        Memory.Fill(table, 0x1000, 0);
        return table;
    }

    /// <summary>Maps one 4 KiB page; returns the physical address of its PTE.</summary>
    private ulong Map(ulong pml4, ulong linear, ulong physical)
    {
        ulong table = pml4;
        for (int shift = 39; shift > 12; shift -= 9)
        {
            ulong entryAddress = table + (((linear >> shift) & 511) * 8);
            ulong entry = Memory.Read<ulong>(entryAddress);
            if (entry == 0)
            {
                entry = AllocateTable() | PageFlags;
                Memory.Write(entryAddress, entry);
            }

            table = entry & 0x000F_FFFF_FFFF_F000;
        }

        ulong pte = table + (((linear >> 12) & 511) * 8);
        Memory.Write(pte, physical | PageFlags);
        return pte;
    }
}
