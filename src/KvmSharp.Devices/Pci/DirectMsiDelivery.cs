using KvmSharp.Hypervisor;

namespace KvmSharp.Devices.Pci;

/// <summary>
/// Delivers each MSI-X message with <see cref="IInterruptSink.SignalMsi"/>: the software CPU's interrupt router, or
/// KVM_SIGNAL_MSI on KVM (one ioctl per interrupt, no GSI route needed). Messages outside the x86 interrupt window
/// (<see cref="X86MsiAddress"/>) are dropped and counted. Allocation-free and thread-safe.
/// </summary>
public sealed class DirectMsiDelivery : IMsiDelivery
{
    private readonly IInterruptSink _sink;
    private long _delivered;
    private long _dropped;

    public DirectMsiDelivery(IInterruptSink sink)
    {
        ArgumentNullException.ThrowIfNull(sink);
        _sink = sink;
    }

    /// <summary>Messages handed to the sink.</summary>
    public long Delivered => Interlocked.Read(ref _delivered);

    /// <summary>Messages whose address is not an x86 interrupt address.</summary>
    public long Dropped => Interlocked.Read(ref _dropped);

    public void Deliver(int vector, ulong address, uint data)
    {
        if (!X86MsiAddress.IsInterrupt(address))
        {
            Interlocked.Increment(ref _dropped);
            return;
        }

        _sink.SignalMsi(address, data);
        Interlocked.Increment(ref _delivered);
    }
}
