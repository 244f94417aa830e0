using System.Runtime.InteropServices;

namespace KvmSharp.Kvm;

/// <summary>Pending/injected exception, interrupt, NMI and SMI state (the layout of kvm_vcpu_events, 64 bytes).</summary>
[StructLayout(LayoutKind.Explicit, Size = 64)]
public struct VcpuEvents
{
    [FieldOffset(0)] public byte ExceptionInjected;
    [FieldOffset(1)] public byte ExceptionNumber;
    [FieldOffset(2)] public byte ExceptionHasErrorCode;
    [FieldOffset(3)] public byte ExceptionPending;
    [FieldOffset(4)] public uint ExceptionErrorCode;
    [FieldOffset(8)] public byte InterruptInjected;
    [FieldOffset(9)] public byte InterruptNumber;
    [FieldOffset(10)] public byte InterruptSoft;
    [FieldOffset(11)] public byte InterruptShadow;
    [FieldOffset(12)] public byte NmiInjected;
    [FieldOffset(13)] public byte NmiPending;
    [FieldOffset(14)] public byte NmiMasked;
    [FieldOffset(16)] public uint SipiVector;
    [FieldOffset(20)] public uint Flags;
    [FieldOffset(24)] public byte Smm;
    [FieldOffset(25)] public byte SmiPending;
    [FieldOffset(26)] public byte SmmInsideNmi;
    [FieldOffset(27)] public byte LatchedInit;
    [FieldOffset(28)] public byte TripleFaultPending;
    [FieldOffset(55)] public byte ExceptionHasPayload;
    [FieldOffset(56)] public ulong ExceptionPayload;
}
