namespace KvmSharp.Hypervisor.Snapshots;

/// <summary>
/// A snapshot that cannot be restored: a corrupt or truncated file, a version this build does not read, or a saved
/// value a device rejects (a queue size above its maximum, an index past its ring). The message is one line that says
/// what is wrong; nothing of the machine being restored is half-applied when it is thrown by a device's Restore,
/// because a device checks the whole saved state before it changes anything.
/// </summary>
public sealed class SnapshotStateException(string message) : Exception(message);
