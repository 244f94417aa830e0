namespace KvmSharp.Devices.Pci;

/// <summary>
/// Offsets and bits of the type 0 configuration space header (PCI Local Bus Specification 3.0, 6.1 "Configuration
/// Space Organization", Figure 6-1) and of the capabilities this code implements.
/// </summary>
public static class PciRegisters
{
    /// <summary>Size of conventional PCI configuration space; PCI Express extended space (256-4095) is not modelled.</summary>
    public const int ConfigSpaceSize = 256;

    // Header, type 0 (6.1, Figure 6-1).
    public const int VendorId = 0x00;
    public const int DeviceId = 0x02;
    public const int Command = 0x04;
    public const int Status = 0x06;
    public const int RevisionId = 0x08;

    /// <summary>Class code: programming interface at 0x09, sub-class at 0x0A, base class at 0x0B (6.2.1).</summary>
    public const int ClassCode = 0x09;
    public const int SubClass = 0x0A;
    public const int CacheLineSize = 0x0C;
    public const int LatencyTimer = 0x0D;
    public const int HeaderType = 0x0E;
    public const int Bist = 0x0F;
    public const int Bar0 = 0x10;
    public const int BarCount = 6;
    public const int CardbusCisPointer = 0x28;
    public const int SubsystemVendorId = 0x2C;
    public const int SubsystemId = 0x2E;
    public const int ExpansionRomBase = 0x30;
    public const int CapabilitiesPointer = 0x34;
    public const int InterruptLine = 0x3C;
    public const int InterruptPin = 0x3D;
    public const int MinGrant = 0x3E;
    public const int MaxLatency = 0x3F;

    /// <summary>First byte after the predefined header: capabilities live from here up (6.7).</summary>
    public const int HeaderEnd = 0x40;

    // Command register bits (6.2.2, Figure 6-2).
    public const ushort CommandIoSpace = 1 << 0;
    public const ushort CommandMemorySpace = 1 << 1;
    public const ushort CommandBusMaster = 1 << 2;
    public const ushort CommandSpecialCycles = 1 << 3;
    public const ushort CommandMemoryWriteInvalidate = 1 << 4;
    public const ushort CommandVgaPaletteSnoop = 1 << 5;
    public const ushort CommandParityErrorResponse = 1 << 6;
    public const ushort CommandSerrEnable = 1 << 8;
    public const ushort CommandFastBackToBack = 1 << 9;
    public const ushort CommandInterruptDisable = 1 << 10;

    // Status register bits (6.2.3, Figure 6-3).
    public const ushort StatusInterrupt = 1 << 3;
    public const ushort StatusCapabilitiesList = 1 << 4;
    public const ushort Status66MHz = 1 << 5;
    public const ushort StatusFastBackToBack = 1 << 7;
    public const ushort StatusMasterDataParityError = 1 << 8;
    public const ushort StatusSignaledTargetAbort = 1 << 11;
    public const ushort StatusReceivedTargetAbort = 1 << 12;
    public const ushort StatusReceivedMasterAbort = 1 << 13;
    public const ushort StatusSignaledSystemError = 1 << 14;
    public const ushort StatusDetectedParityError = 1 << 15;

    /// <summary>The error bits of the status register: set by hardware, cleared by writing 1 (6.2.3).</summary>
    public const ushort StatusWriteOneToClear = StatusMasterDataParityError | StatusSignaledTargetAbort
        | StatusReceivedTargetAbort | StatusReceivedMasterAbort | StatusSignaledSystemError | StatusDetectedParityError;

    /// <summary>Header type bit 7: the device has more than one function (6.2.1).</summary>
    public const byte HeaderTypeMultiFunction = 0x80;

    // Base address register low bits (6.2.5.1, Figure 6-5).
    public const uint BarIoSpace = 1 << 0;
    public const uint BarMemoryType64 = 0b10 << 1;
    public const uint BarPrefetchable = 1 << 3;

    /// <summary>The address bits of a memory BAR; bits 3:0 describe it and are read-only.</summary>
    public const uint BarMemoryAddressMask = 0xFFFF_FFF0;

    /// <summary>Interrupt pin value of INTA# (6.2.4); 0 means the function uses no INTx pin.</summary>
    public const byte InterruptPinA = 1;

    /// <summary>Interrupt line value meaning "unknown / not connected" on x86 (6.2.4).</summary>
    public const byte InterruptLineUnknown = 0xFF;

    // Capability IDs (PCI Code and ID Assignment Specification, "Capability IDs").
    public const byte CapabilityIdMsi = 0x05;
    public const byte CapabilityIdVendorSpecific = 0x09;
    public const byte CapabilityIdMsix = 0x11;

    /// <summary>Every capability starts with its ID and the offset of the next one (0 ends the list) (6.7).</summary>
    public const int CapabilityNextPointer = 1;
}
