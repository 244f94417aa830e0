namespace KvmSharp.Devices.Pci;

/// <summary>
/// The host bridge at 00:00.0: class 0x060000 (bridge, host), Intel's vendor ID and the device ID cloud-hypervisor
/// and QEMU's virt machines use for a virtual host bridge (0x0D57). No BARs, no interrupt. It exists so that a
/// guest probing bus 0 finds something there: Linux's conf1 sanity check (arch/x86/pci/direct.c,
/// pci_sanity_check) accepts the mechanism once it reads a host-bridge class or an Intel/Compaq vendor ID on bus 0.
/// </summary>
public sealed class PciHostBridge : PciFunction
{
    public const ushort IntelVendorId = 0x8086;

    /// <summary>The virtual host bridge ID of cloud-hypervisor (pci/src/bus.rs) and QEMU's "pci-virt" host.</summary>
    public const ushort VirtualHostBridgeDeviceId = 0x0D57;

    /// <summary>Base class 0x06 (bridge), sub-class 0x00 (host bridge), programming interface 0.</summary>
    public const uint HostBridgeClassCode = 0x06_00_00;

    public PciHostBridge()
        : base("host-bridge", new PciIdentity(IntelVendorId, VirtualHostBridgeDeviceId, HostBridgeClassCode), usesIntx: false)
    {
        // A host bridge forwards both kinds of cycles; let the guest see and set the enables as on hardware.
        Config.SetWritable(PciRegisters.Command, 2, PciRegisters.CommandIoSpace | PciRegisters.CommandMemorySpace | PciRegisters.CommandBusMaster);
    }

    public PciFunctionState Save() => SaveFunction();

    public void Restore(PciFunctionState state) => RestoreFunction(state);
}
