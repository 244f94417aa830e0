namespace KvmSharp.Devices.Interrupts;

/// <summary>
/// One interrupt request line as a device sees it: a wire it drives high or low. Where the wire goes (a GSI of
/// the in-kernel IOAPIC/PIC, the emulator's interrupt controllers, a test recorder) is the machine's business.
/// </summary>
public interface IIrqLine
{
    /// <summary>Drives the line high (asserted) or low. Devices call it after each state change, on vCPU threads.</summary>
    void SetLevel(bool high);
}
