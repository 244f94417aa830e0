using KvmSharp.Hypervisor;

namespace KvmSharp.Boot;

/// <summary>The CPU mode a kernel's entry point expects.</summary>
public enum BootMode
{
    /// <summary>64-bit long mode with identity paging (Linux 64-bit boot protocol).</summary>
    Long64,

    /// <summary>Flat 32-bit protected mode, paging off (PVH, multiboot).</summary>
    Protected32,
}

/// <summary>
/// How the boot vCPU starts: its mode, entry point and the registers the protocol passes values in.
/// Registers not named here start at zero.
/// </summary>
public sealed record BootEntry(BootMode Mode, ulong EntryPoint, ulong Rsi = 0, ulong Rax = 0, ulong Rbx = 0)
{
    /// <summary>RIP, RSI, RAX, RBX as the protocol says; RFLAGS with only the reserved bit (interrupts off).</summary>
    public X86Registers InitialRegisters() => new()
    {
        Rip = EntryPoint,
        Rsi = Rsi,
        Rax = Rax,
        Rbx = Rbx,
        Rflags = X86Registers.FlagsReserved,
    };

    /// <summary><paramref name="current"/> switched to <see cref="Mode"/> over the GDT (and page tables) the loader wrote.</summary>
    public X86SystemRegisters InitialSystemRegisters(X86SystemRegisters current)
        => Mode == BootMode.Long64 ? X86InitialState.LongMode(current) : X86InitialState.ProtectedMode32(current);
}

/// <summary>What a loader put in guest memory, and how to enter the kernel (<see cref="Entry"/>).</summary>
public abstract record KernelBootInfo
{
    public abstract KernelFormat Format { get; }

    public abstract BootEntry Entry { get; }
}
