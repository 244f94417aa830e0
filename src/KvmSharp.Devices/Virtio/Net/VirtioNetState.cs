namespace KvmSharp.Devices.Virtio.Net;

/// <summary>
/// A <see cref="VirtioNet"/>'s state for snapshots: the MAC it was built with (checked, not changed, on restore: the
/// driver cannot set it), the features of the activation, the receive offloads GUEST_OFFLOADS_SET left in force,
/// whether the link was up, and each queue's indices (null for a queue not in use). Receive chains the device had
/// popped but not filled, and a transmit chain waiting for the backend, are not in it: the saved next_avail indices
/// are moved back over them (<see cref="SplitVirtQueue.SaveRewound"/>), so the restored device pops them again.
/// </summary>
public sealed record VirtioNetState(
    byte[] Mac,
    ulong NegotiatedFeatures,
    ulong GuestOffloads,
    bool LinkUp,
    SplitVirtQueueState? ReceiveQueue,
    SplitVirtQueueState? TransmitQueue,
    SplitVirtQueueState? ControlQueue);
