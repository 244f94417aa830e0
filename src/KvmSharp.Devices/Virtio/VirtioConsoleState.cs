namespace KvmSharp.Devices.Virtio;

/// <summary>
/// A <see cref="VirtioConsole"/>'s state for snapshots: the console size, host input not yet delivered, and each
/// queue's indices (null when that queue was not active).
/// </summary>
public sealed record VirtioConsoleState(ushort Columns, ushort Rows, byte[] PendingInput, SplitVirtQueueState? ReceiveQueue, SplitVirtQueueState? TransmitQueue);
