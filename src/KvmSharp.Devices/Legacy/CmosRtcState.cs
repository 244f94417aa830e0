namespace KvmSharp.Devices.Legacy;

/// <summary>
/// The saved state of a <see cref="CmosRtc"/>: the 128 bytes of CMOS (with the time registers holding the time
/// at the moment of saving), the index register, the NMI-disable bit, the guest clock's offset from host UTC in
/// ticks, and the guest second at which register C's update flag was last cleared.
/// </summary>
public sealed record CmosRtcState(byte[] Data, byte Index, bool NmiDisabled, long OffsetTicks, long UpdateFlagSecond);
