using KvmSharp.Memory;

namespace KvmSharp.Hypervisor;

/// <summary>Raises guest interrupts without knowing which backend runs the guest.</summary>
public interface IInterruptSink
{
    /// <summary>Drives a GSI (interrupt controller input pin) high or low.</summary>
    void SetLevel(uint gsi, bool level);

    /// <summary>Delivers a message-signalled interrupt.</summary>
    void SignalMsi(ulong address, uint data);
}

/// <summary>A virtual machine: guest memory, vCPUs and interrupt controllers of one backend.</summary>
public interface IVirtualMachine : IDisposable
{
    /// <summary>Makes every region of <paramref name="memory"/> visible to the guest.</summary>
    void MapMemory(GuestMemory memory, bool trackDirtyPages = false);

    IVcpu CreateVcpu(int index);

    IInterruptSink Interrupts { get; }
}

/// <summary>An execution backend (KVM or the software CPU).</summary>
public interface IHypervisor : IDisposable
{
    string Name { get; }

    IVirtualMachine CreateVirtualMachine(VirtualMachineOptions options);
}

/// <summary>What a machine asks of its backend at creation.</summary>
public sealed record VirtualMachineOptions
{
    /// <summary>Create the in-kernel PIC/IOAPIC/LAPIC (and PIT) where the backend has them.</summary>
    public bool InKernelIrqChip { get; init; }

    /// <summary>Create the in-kernel i8254 PIT (needs the irqchip).</summary>
    public bool InKernelPit { get; init; }
}
