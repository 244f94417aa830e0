namespace KvmSharp.Devices.Legacy;

/// <summary>
/// The saved state of an <see cref="I8042"/>: the status register, the controller command byte, the output port,
/// the output buffer and the command (if any) waiting for its data byte on port 0x60 (0 when none).
/// </summary>
public sealed record I8042State(byte Status, byte CommandByte, byte OutputPort, byte OutputBuffer, byte PendingCommand)
{
    /// <summary>Keyboard bytes queued behind the output buffer (<see cref="I8042.SendCtrlAltDel"/>), oldest first.</summary>
    public byte[] PendingKeys { get; init; } = [];
}
