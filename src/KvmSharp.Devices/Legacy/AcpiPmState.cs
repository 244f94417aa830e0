namespace KvmSharp.Devices.Legacy;

/// <summary>The saved state of an <see cref="AcpiPm"/>: PM1_STS, PM1_EN and the readable bits of PM1_CNT (SLP_TYP, BM_RLD).</summary>
public sealed record AcpiPmState(ushort Status, ushort Enable, ushort Control);
