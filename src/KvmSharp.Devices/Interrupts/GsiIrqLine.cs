using KvmSharp.Hypervisor;

namespace KvmSharp.Devices.Interrupts;

/// <summary>
/// An <see cref="IIrqLine"/> wired to one GSI of an <see cref="IInterruptSink"/>. It remembers the level it last
/// drove and forwards only changes: devices re-evaluate their line after every register access, and on KVM each
/// forwarded call is a KVM_IRQ_LINE ioctl (a system call), so repeating an unchanged level would cost an exit's
/// worth of time for nothing. The line starts low, as KVM's lines do when a VM is created.
/// </summary>
public sealed class GsiIrqLine : IIrqLine
{
    private readonly IInterruptSink _sink;

    // Serializes changes so that two threads cannot forward their levels in the opposite order to the one in
    // which they decided them (the sink would then hold a stale level).
    private readonly Lock _lock = new();
    private bool _level;

    public GsiIrqLine(IInterruptSink sink, uint gsi)
    {
        ArgumentNullException.ThrowIfNull(sink);
        _sink = sink;
        Gsi = gsi;
    }

    /// <summary>The global system interrupt this line drives.</summary>
    public uint Gsi { get; }

    /// <summary>The level last forwarded to the sink.</summary>
    public bool Level
    {
        get
        {
            lock (_lock)
            {
                return _level;
            }
        }
    }

    public void SetLevel(bool high)
    {
        lock (_lock)
        {
            if (high == _level)
            {
                return;
            }

            // Record the level only once the sink accepted it, so a failed call is retried by the next change.
            _sink.SetLevel(Gsi, high);
            _level = high;
        }
    }
}
