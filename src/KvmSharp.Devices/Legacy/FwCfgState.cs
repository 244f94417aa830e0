namespace KvmSharp.Devices.Legacy;

/// <summary>
/// The saved guest-visible state of a <see cref="FwCfg"/>: the selected key and the read offset into its item.
/// The items themselves are machine configuration, rebuilt by the VMM before restoring.
/// </summary>
public sealed record FwCfgState(ushort Selector, int Offset);
