namespace KvmSharp.Devices.Virtio.Pci;

/// <summary>
/// Numbers of the virtio modern PCI transport (virtio 1.1, 4.1 "Virtio Over PCI Bus") and of the device status
/// field (2.1), plus the layout of KvmSharp's one memory BAR.
/// </summary>
public static class VirtioPciRegisters
{
    // PCI identity (4.1.2): Red Hat's vendor ID, device ID 0x1040 + virtio device ID, revision 1 for a modern device.
    public const ushort VendorId = 0x1AF4;
    public const ushort DeviceIdBase = 0x1040;
    public const byte ModernRevision = 1;

    /// <summary>Subsystem vendor and ID as QEMU gives a modern virtio function (4.1.2.1 says they are informational).</summary>
    public const ushort SubsystemVendorId = 0x1AF4;
    public const ushort SubsystemId = 0x1100;

    // virtio_pci_cap.cfg_type (4.1.4).
    public const byte CapCommonCfg = 1;
    public const byte CapNotifyCfg = 2;
    public const byte CapIsrCfg = 3;
    public const byte CapDeviceCfg = 4;
    public const byte CapPciCfg = 5;

    // struct virtio_pci_cap (4.1.4): after the generic cap_vndr and cap_next.
    public const int CapLengthField = 2;
    public const int CapCfgType = 3;
    public const int CapBar = 4;
    public const int CapId = 5;
    public const int CapOffset = 8;
    public const int CapLength = 12;

    /// <summary>sizeof(struct virtio_pci_cap).</summary>
    public const int CapSize = 16;

    /// <summary>struct virtio_pci_notify_cap adds notify_off_multiplier (4.1.4.4).</summary>
    public const int CapNotifyOffMultiplier = 16;
    public const int NotifyCapSize = 20;

    /// <summary>struct virtio_pci_cfg_cap adds pci_cfg_data[4] (4.1.4.8).</summary>
    public const int CapPciCfgData = 16;
    public const int PciCfgCapSize = 20;

    // struct virtio_pci_common_cfg (4.1.4.3).
    public const int DeviceFeatureSelect = 0x00;
    public const int DeviceFeature = 0x04;
    public const int DriverFeatureSelect = 0x08;
    public const int DriverFeature = 0x0C;
    public const int ConfigMsixVector = 0x10;
    public const int NumQueues = 0x12;
    public const int DeviceStatus = 0x14;
    public const int ConfigGeneration = 0x15;
    public const int QueueSelect = 0x16;
    public const int QueueSize = 0x18;
    public const int QueueMsixVector = 0x1A;
    public const int QueueEnable = 0x1C;
    public const int QueueNotifyOff = 0x1E;
    public const int QueueDescLow = 0x20;
    public const int QueueDescHigh = 0x24;
    public const int QueueDriverLow = 0x28;
    public const int QueueDriverHigh = 0x2C;
    public const int QueueDeviceLow = 0x30;
    public const int QueueDeviceHigh = 0x34;

    /// <summary>Length of the virtio 1.1 common configuration structure (queue_notify_data and queue_reset are not offered).</summary>
    public const int CommonCfgLength = 0x38;

    // Device status (2.1).
    public const byte StatusAcknowledge = 1;
    public const byte StatusDriver = 2;
    public const byte StatusDriverOk = 4;
    public const byte StatusFeaturesOk = 8;
    public const byte StatusDeviceNeedsReset = 64;
    public const byte StatusFailed = 128;

    /// <summary>The status bits the driver sets; DEVICE_NEEDS_RESET belongs to the device.</summary>
    public const byte StatusDriverBits = StatusAcknowledge | StatusDriver | StatusDriverOk | StatusFeaturesOk | StatusFailed;

    // ISR status (4.1.4.5).
    public const byte IsrQueue = 1;
    public const byte IsrConfig = 2;

    /// <summary>The vector number meaning "no MSI-X vector" (4.1.5.1.2).</summary>
    public const ushort NoVector = 0xFFFF;

    // KvmSharp's BAR0 layout: one 4 KiB page per structure, the MSI-X table and PBA after them on their own pages
    // (PCI 3.0, 6.8.2: MSI-X structures must not share a 4 KiB page with other registers).
    public const int Bar = 0;
    public const uint CommonCfgOffset = 0x0000;
    public const uint IsrOffset = 0x1000;
    public const uint DeviceCfgOffset = 0x2000;
    public const uint NotifyOffset = 0x3000;
    public const uint MsixTableOffset = 0x4000;
    public const uint RegionSize = 0x1000;

    /// <summary>notify_off_multiplier: queue n notifies at NotifyOffset + 4n (queue_notify_off = n).</summary>
    public const uint NotifyOffMultiplier = 4;

    /// <summary>Queues the notify page has room for.</summary>
    public const int MaxQueues = (int)(RegionSize / NotifyOffMultiplier);
}
