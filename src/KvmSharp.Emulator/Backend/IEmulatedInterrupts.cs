using KvmSharp.Devices.InterruptControllers;

namespace KvmSharp.Emulator.Backend;

/// <summary>
/// What one software vCPU sees of the interrupt fabric (its local APIC, and through it the PIC and IOAPIC): pending
/// interrupts to acknowledge, NMIs, timers to poll, and the local APIC's MMIO page. Called on the vCPU thread.
/// </summary>
public interface IEmulatedInterrupts
{
    /// <summary>A maskable interrupt (fixed vector or ExtINT) is waiting for RFLAGS.IF.</summary>
    bool HasPendingInterrupt { get; }

    /// <summary>
    /// The local APIC whose <see cref="LocalApic.HasPendingMaskableInterrupt"/> is <see cref="HasPendingInterrupt"/>,
    /// when the fabric is one: the vCPU checks it after every instruction, and reading it directly avoids an
    /// interface call there (3% of a Debian boot on the software CPU).
    /// </summary>
    LocalApic? DirectApic => null;

    /// <summary>The INTA cycle: the vector to deliver (moves it to in-service), or -1 when it vanished.</summary>
    int AcknowledgeInterrupt();

    /// <summary>Consumes a pending NMI.</summary>
    bool TakeNmi();

    /// <summary>Consumes a pending INIT IPI.</summary>
    bool TakeInit();

    /// <summary>Consumes a pending startup IPI: its vector, or -1.</summary>
    int TakeStartupVector();

    /// <summary>Raises the timer interrupts due at <paramref name="nowTimestamp"/> (Stopwatch ticks).</summary>
    void Poll(long nowTimestamp);

    /// <summary>The Stopwatch timestamp of the next timer event, or long.MaxValue.</summary>
    long NextDeadline { get; }

    /// <summary>Whether <paramref name="address"/> is in this vCPU's local APIC page.</summary>
    bool IsLocalApicAddress(ulong address);

    void LocalApicRead(ulong address, Span<byte> data);

    void LocalApicWrite(ulong address, ReadOnlySpan<byte> data);
}
