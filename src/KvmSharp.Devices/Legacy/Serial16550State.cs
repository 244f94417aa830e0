namespace KvmSharp.Devices.Legacy;

/// <summary>
/// The saved state of a <see cref="Serial16550"/>: its registers, the received bytes the guest has not read yet
/// (<paramref name="ReceiveFifo"/>, at most 16) and the host input still waiting to enter the receiver
/// (<paramref name="PendingInput"/>, at most <see cref="Serial16550.InputBufferCapacity"/>).
/// </summary>
public sealed record Serial16550State(
    byte InterruptEnable,
    byte LineControl,
    byte ModemControl,
    byte FifoControl,
    byte ModemStatus,
    byte Scratch,
    ushort Divisor,
    bool OverrunError,
    bool TransmitterEmptyInterruptPending,
    byte LastReceived,
    byte[] ReceiveFifo,
    byte[] PendingInput);
