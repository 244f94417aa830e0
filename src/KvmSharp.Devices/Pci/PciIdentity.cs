namespace KvmSharp.Devices.Pci;

/// <summary>
/// The read-only identity of a PCI function (PCI Local Bus Specification 3.0, 6.2.1 "Device Identification").
/// </summary>
/// <param name="VendorId">Vendor ID (0x8086 Intel, 0x1AF4 Red Hat/virtio).</param>
/// <param name="DeviceId">Device ID.</param>
/// <param name="ClassCode">24-bit class code: base class in bits 23:16, sub-class 15:8, programming interface 7:0 (0x060000 host bridge).</param>
/// <param name="RevisionId">Revision ID.</param>
/// <param name="SubsystemVendorId">Subsystem vendor ID.</param>
/// <param name="SubsystemId">Subsystem ID.</param>
public readonly record struct PciIdentity(
    ushort VendorId,
    ushort DeviceId,
    uint ClassCode,
    byte RevisionId = 0,
    ushort SubsystemVendorId = 0,
    ushort SubsystemId = 0);
