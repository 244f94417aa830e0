using KvmSharp.Emulator.Mmu;
using KvmSharp.Hypervisor;
using KvmSharp.Memory;

namespace KvmSharp.Emulator.Tests.Mmu;

/// <summary>Guest RAM to build paging structures in by hand, with the entry bits the tests spell out.</summary>
internal sealed class PagingFixture : IDisposable
{
    public const ulong P = PageTableEntry.Present;
    public const ulong W = PageTableEntry.Writable;
    public const ulong U = PageTableEntry.User;
    public const ulong A = PageTableEntry.Accessed;
    public const ulong D = PageTableEntry.Dirty;
    public const ulong Ps = PageTableEntry.PageSize;
    public const ulong G = PageTableEntry.Global;
    public const ulong Xd = PageTableEntry.ExecuteDisable;

    public const ulong Pe = X86SystemRegisters.Cr0Pe;
    public const ulong Pg = X86SystemRegisters.Cr0Pg;
    public const ulong Wp = X86SystemRegisters.Cr0Wp;
    public const ulong Pae = X86SystemRegisters.Cr4Pae;
    public const ulong Pse = PagingState.Cr4Pse;
    public const ulong Pge = X86SystemRegisters.Cr4Pge;
    public const ulong Lme = X86SystemRegisters.EferLme;
    public const ulong Lma = X86SystemRegisters.EferLma;
    public const ulong Nxe = X86SystemRegisters.EferNxe;

    public PagingFixture(ulong size = 4 << 20) => Memory = GuestMemory.Create(size);

    public GuestMemory Memory { get; }

    public void Set64(ulong address, ulong value) => Memory.Write(address, value);

    public ulong Get64(ulong address) => Memory.Read<ulong>(address);

    public void Set32(ulong address, uint value) => Memory.Write(address, value);

    public uint Get32(ulong address) => Memory.Read<uint>(address);

    public static PagingState FourLevel(ulong cr3, ulong cr0Extra = 0, ulong cr4Extra = 0, ulong eferExtra = 0)
        => new(Pe | Pg | cr0Extra, cr3, Pae | cr4Extra, Lme | Lma | eferExtra);

    public static PagingState ThirtyTwoBit(ulong cr3, ulong cr0Extra = 0, ulong cr4Extra = 0, ulong eferExtra = 0)
        => new(Pe | Pg | cr0Extra, cr3, cr4Extra, eferExtra);

    public void Dispose() => Memory.Dispose();
}
