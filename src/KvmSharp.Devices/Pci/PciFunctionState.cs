namespace KvmSharp.Devices.Pci;

/// <summary>
/// The saved state of a <see cref="PciFunction"/>: its 256 configuration bytes (BAR addresses, command register,
/// capability registers) and whether the function requests its INTx interrupt. Which BARs decode where follows from
/// the configuration bytes and is re-established on restore.
/// </summary>
public sealed record PciFunctionState(byte[] ConfigSpace, bool InterruptRequested);

/// <summary>The saved state of the configuration mechanism #1 ports: the CONFIG_ADDRESS register.</summary>
public sealed record PciConfigIoState(uint ConfigAddress);
