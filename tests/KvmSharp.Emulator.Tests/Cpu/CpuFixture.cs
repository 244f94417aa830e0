using KvmSharp.Emulator.Cpu;
using KvmSharp.Emulator.Mmu;
using KvmSharp.Hypervisor;
using KvmSharp.Memory;

namespace KvmSharp.Emulator.Tests.Cpu;

/// <summary>
/// 4 MiB of guest RAM with 4-level identity page tables for the first 2 MiB (4 KiB pages, all
/// present, writable and user) except <see cref="UnmappedPage"/>, and a 64-bit CPU at CPL 0 with
/// RIP at <see cref="CodeBase"/> and RSP at <see cref="StackTop"/>.
/// </summary>
internal sealed class CpuFixture : IDisposable
{
    public const ulong CodeBase = 0x1_0000;
    public const ulong DataBase = 0x2_0000;
    public const ulong UnmappedPage = 0x5_0000;
    public const ulong StackTop = 0x8_0000;

    private const ulong Pml4 = 0x1000;
    private const ulong Pdpt = 0x2000;
    private const ulong PageDirectory = 0x3000;
    private const ulong PageTable = 0x4000;
    private const ulong Entry = PageTableEntry.Present | PageTableEntry.Writable | PageTableEntry.User;

    public CpuFixture(byte[] code, int cpl = 0)
    {
        Memory = GuestMemory.Create(4 << 20);
        Memory.Write(Pml4, Pdpt | Entry);
        Memory.Write(Pdpt, PageDirectory | Entry);
        Memory.Write(PageDirectory, PageTable | Entry);
        for (ulong page = 0; page < 512; page++)
        {
            ulong address = page << 12;
            Memory.Write(PageTable + (page * 8), address == UnmappedPage ? 0UL : address | Entry);
        }

        Memory.Write(CodeBase, (ReadOnlySpan<byte>)code);
        State = new CpuState
        {
            Cr0 = X86SystemRegisters.Cr0Pe | X86SystemRegisters.Cr0Pg | X86SystemRegisters.Cr0Wp,
            Cr3 = Pml4,
            Cr4 = X86SystemRegisters.Cr4Pae,
            Efer = X86SystemRegisters.EferLme | X86SystemRegisters.EferLma,
            Cpl = cpl,
            Rip = CodeBase,
            Rsp = StackTop,
        };
        State.SetFlatLongMode(cpl);
        Interpreter = new Interpreter(State, Memory, null, null, DecodeCacheBits);
    }

    /// <summary>
    /// The decoded-instruction cache of the tests' interpreters: 1,024 entries. Many tests build an interpreter per
    /// case, and the production size (65,536 entries, 5 MiB zeroed each time) made them spend most of their time in
    /// allocation and GC.
    /// </summary>
    public const int DecodeCacheBits = 10;

    public GuestMemory Memory { get; }

    public CpuState State { get; }

    public Interpreter Interpreter { get; }

    public RunResult Run(int maxInstructions = 10_000) => Interpreter.Run(maxInstructions);

    public void Dispose() => Memory.Dispose();
}
