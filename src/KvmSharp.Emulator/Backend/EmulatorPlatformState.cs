using KvmSharp.Devices.InterruptControllers;

namespace KvmSharp.Emulator.Backend;

/// <summary>
/// The saved interrupt fabric of an <see cref="EmulatorVirtualMachine"/>: the 8259 pair, the IOAPIC, the 8254 PIT and
/// the local APIC of each vCPU in vCPU order, as the devices' own records (times relative to the moment of saving).
/// </summary>
public sealed record EmulatorPlatformState(
    Pic8259PairState Pic,
    IoApicState IoApic,
    Pit8254State Pit,
    LocalApicState[] LocalApics);
