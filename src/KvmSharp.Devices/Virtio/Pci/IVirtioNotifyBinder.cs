namespace KvmSharp.Devices.Virtio.Pci;

/// <summary>
/// Told where each queue's notification address is while it decodes, so a machine on KVM can bind an ioeventfd
/// to it: the guest's kick then signals an eventfd in the kernel instead of exiting to the VMM, and a worker thread
/// calls <see cref="VirtioPciTransport.NotifyQueue"/>. The addresses move when the guest moves BAR0 and disappear
/// while it turns memory decoding off, so the transport calls <see cref="Unbind"/> for the old address before
/// <see cref="Bind"/> for the new one.
/// </summary>
/// <remarks>Called on the vCPU thread whose configuration write moved the BAR, with the function's lock held: do not
/// call back into the transport. A failure to bind is a host failure and may throw.</remarks>
public interface IVirtioNotifyBinder
{
    /// <summary>A guest write of 2 bytes (the queue index, 4.1.4.4) at <paramref name="address"/> now kicks <paramref name="queue"/>.</summary>
    void Bind(int queue, ulong address);

    /// <summary>Writes at <paramref name="address"/> no longer kick <paramref name="queue"/>.</summary>
    void Unbind(int queue, ulong address);
}
