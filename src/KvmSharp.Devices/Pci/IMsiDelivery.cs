namespace KvmSharp.Devices.Pci;

/// <summary>
/// Where a function's MSI-X messages go. <see cref="DirectMsiDelivery"/> hands each message to the VM's
/// <see cref="Hypervisor.IInterruptSink.SignalMsi"/> (the software CPU's interrupt router, or KVM_SIGNAL_MSI); on KVM
/// the machine builder may instead give each vector a GSI routed to its message and an irqfd
/// (KvmSharp.Vmm.Pci.KvmIrqfdMsiDelivery), so a delivery is one eventfd write.
/// </summary>
/// <remarks>
/// Called with the function's lock held, from vCPU threads and device worker threads, possibly for several vectors of
/// one function in a row. An implementation must not call back into the function and must not allocate on the
/// delivery path; it may reprogram a route when a vector's address or data differ from the last ones it saw (the
/// guest changes them rarely: when it moves an interrupt to another CPU).
/// </remarks>
public interface IMsiDelivery
{
    /// <summary>Sends the message of table entry <paramref name="vector"/>: a write of <paramref name="data"/> to <paramref name="address"/>.</summary>
    void Deliver(int vector, ulong address, uint data);
}

/// <summary>The x86 interrupt message window (Intel SDM Vol. 3A, 11.11.1 "Message Address Register Format").</summary>
public static class X86MsiAddress
{
    /// <summary>Bits 31-20 of every x86 interrupt message address: 0xFEE.</summary>
    public const uint InterruptWindow = 0xFEE0_0000;

    public const uint InterruptWindowMask = 0xFFF0_0000;

    /// <summary>
    /// True when a message to <paramref name="address"/> is an interrupt. Any other address would be an ordinary
    /// memory write of the data, which only a misprogrammed table produces; deliveries drop and count those.
    /// </summary>
    public static bool IsInterrupt(ulong address) => ((uint)address & InterruptWindowMask) == InterruptWindow;
}
