using KvmSharp.Native;

namespace KvmSharp.Kvm;

/// <summary>A KVM ioctl failed; carries the request name and errno.</summary>
public sealed class KvmException : NativeErrorException
{
    public KvmException(string ioctl, int errno)
        : base(ioctl, errno)
    {
    }

    public KvmException(string ioctl, int errno, string message)
        : base(ioctl, errno, message)
    {
    }
}

/// <summary>Why KVM cannot be used on this host.</summary>
public enum KvmUnavailableReason
{
    DeviceMissing,
    PermissionDenied,
    DeviceError,
    ApiVersionMismatch,
    CapabilityMissing,
}

/// <summary>KVM cannot be used here; the message says what to do about it (and is shown to users as-is).</summary>
public sealed class KvmUnavailableException : Exception
{
    public KvmUnavailableException(KvmUnavailableReason reason, string message)
        : base(message)
    {
        Reason = reason;
    }

    public KvmUnavailableReason Reason { get; }
}
