using System.Runtime.InteropServices;
using KvmSharp.Kvm.Interop;
using KvmSharp.Native;

namespace KvmSharp.Kvm;

/// <summary>The /dev/kvm system fd: API version, capabilities, supported CPUID and MSRs; creates VMs.</summary>
public sealed unsafe class KvmSystem : IDisposable
{
    public const string DefaultDevicePath = "/dev/kvm";

    private readonly FileDescriptor _fd;

    private readonly Lock _probeLock = new();
    private bool? _hardwareBreakpointsTrap;

    private KvmSystem(FileDescriptor fd, string path)
    {
        _fd = fd;
        DevicePath = path;
    }

    public string DevicePath { get; }

    internal FileDescriptor Descriptor => _fd;

    /// <summary>
    /// Opens the KVM device and checks the API version and the capabilities KvmSharp cannot run without.
    /// Throws <see cref="KvmUnavailableException"/> with a message that says what to do.
    /// </summary>
    public static KvmSystem Open(string path = DefaultDevicePath)
    {
        var system = OpenUnchecked(path);
        try
        {
            int version = Ioctl.TryInvoke(system._fd, KvmIoctls.KVM_GET_API_VERSION, 0);
            if (version < 0)
            {
                throw new KvmUnavailableException(KvmUnavailableReason.DeviceError, NotAKvmDeviceMessage(path, -version));
            }

            if (version != KvmConstants.KVM_API_VERSION)
            {
                throw new KvmUnavailableException(KvmUnavailableReason.ApiVersionMismatch, UnsupportedApiVersionMessage(path, version));
            }

            foreach (var use in KvmCapabilities.UsedByVmm)
            {
                if (use.Need == CapabilityNeed.Required && system.CheckExtension(use.Capability) <= 0)
                {
                    throw new KvmUnavailableException(KvmUnavailableReason.CapabilityMissing, MissingCapabilityMessage(path, use));
                }
            }

            return system;
        }
        catch
        {
            system.Dispose();
            throw;
        }
    }

    /// <summary>The user-facing line for a device node that does not answer KVM_GET_API_VERSION.</summary>
    public static string NotAKvmDeviceMessage(string path, int errno)
        => $"'{path}' is not a KVM device (KVM_GET_API_VERSION failed: {Errno.Describe(errno)}). Pass the path of the KVM device node, normally /dev/kvm.";

    public static string UnsupportedApiVersionMessage(string path, int version)
        => $"KVM API version {version} at '{path}' is not supported (KvmSharp needs version {KvmConstants.KVM_API_VERSION}). Use a Linux kernel from 2.6.22 or later.";

    public static string MissingCapabilityMessage(string path, CapabilityUse use)
    {
        ArgumentNullException.ThrowIfNull(use);
        return $"KVM at '{path}' lacks {use.Name} ({use.Purpose}), which KvmSharp needs. Upgrade the host kernel.";
    }

    /// <summary>Opens the device with clear errors but without version or capability checks (for <c>kvmsharp caps</c>).</summary>
    public static KvmSystem OpenUnchecked(string path = DefaultDevicePath)
    {
        try
        {
            return new KvmSystem(FileDescriptor.Open(path, FileOpenFlags.ReadWrite), path);
        }
        catch (NativeErrorException e)
        {
            throw e.Errno switch
            {
                Errno.ENOENT or Errno.ENODEV or Errno.ENXIO => new KvmUnavailableException(
                    KvmUnavailableReason.DeviceMissing,
                    $"'{path}' not found. Make sure the kernel has KVM enabled (modprobe kvm_intel or kvm_amd) and the CPU's virtualization extensions are on in the firmware."),
                Errno.EACCES or Errno.EPERM => new KvmUnavailableException(
                    KvmUnavailableReason.PermissionDenied,
                    $"Permission denied opening '{path}'. Add your user to the group that owns it (sudo usermod -aG kvm $USER, then log in again) or run as root."),
                _ => new KvmUnavailableException(
                    KvmUnavailableReason.DeviceError,
                    $"Cannot open '{path}': {Errno.Describe(e.Errno)}."),
            };
        }
    }

    /// <summary>
    /// Whether execute breakpoints in DR0-DR3 trap on this host (probed once, with a three-instruction guest, the first
    /// time it is asked). False under QEMU's emulated SVM; <see cref="KvmVcpu.SetGuestDebug"/> then emulates them.
    /// </summary>
    public bool HardwareBreakpointsTrap
    {
        get
        {
            lock (_probeLock)
            {
                _hardwareBreakpointsTrap ??= HardwareBreakpointProbe.BreakpointsTrap(this);
                return _hardwareBreakpointsTrap.Value;
            }
        }
    }

    public int ApiVersion => Ioctl.Invoke(_fd, KvmIoctls.KVM_GET_API_VERSION, 0, "KVM_GET_API_VERSION");

    /// <summary>KVM_CHECK_EXTENSION: 0 when absent, otherwise 1 or a capability-specific value.</summary>
    public int CheckExtension(KvmCapability capability)
    {
        int rc = Ioctl.TryInvoke(_fd, KvmIoctls.KVM_CHECK_EXTENSION, (nint)capability);
        return rc < 0 ? 0 : rc;
    }

    /// <summary>Size of the per-vCPU kvm_run mapping.</summary>
    public int VcpuMmapSize => Ioctl.Invoke(_fd, KvmIoctls.KVM_GET_VCPU_MMAP_SIZE, 0, "KVM_GET_VCPU_MMAP_SIZE");

    /// <summary>KVM_GET_SUPPORTED_CPUID: every leaf the host and KVM can offer a guest.</summary>
    public CpuidEntry[] GetSupportedCpuid()
    {
        int capacity = 128;
        while (true)
        {
            int bytes = sizeof(kvm_cpuid2) + (capacity * sizeof(kvm_cpuid_entry2));
            byte* buffer = (byte*)NativeMemory.AllocZeroed((nuint)bytes);
            try
            {
                var header = (kvm_cpuid2*)buffer;
                header->nent = (uint)capacity;
                // SAFETY: buffer holds the header plus `capacity` entries; the kernel writes at most nent entries.
                int rc = Ioctl.TryInvoke(_fd, KvmIoctls.KVM_GET_SUPPORTED_CPUID, (nint)buffer);
                if (rc == -Errno.E2BIG && capacity < 4096)
                {
                    capacity *= 2;
                    continue;
                }

                if (rc < 0)
                {
                    throw new KvmException("KVM_GET_SUPPORTED_CPUID", -rc);
                }

                var entries = (kvm_cpuid_entry2*)(buffer + sizeof(kvm_cpuid2));
                var result = new CpuidEntry[header->nent];
                for (int i = 0; i < result.Length; i++)
                {
                    result[i] = CpuidEntry.FromKernel(entries[i]);
                }

                return result;
            }
            finally
            {
                NativeMemory.Free(buffer);
            }
        }
    }

    /// <summary>KVM_GET_MSR_INDEX_LIST: the MSRs KVM saves and restores for a guest.</summary>
    public uint[] GetMsrIndexList()
    {
        kvm_msr_list probe = default;
        // SAFETY: with nmsrs = 0 the kernel writes only the count (E2BIG) and no indices.
        int rc = Ioctl.TryInvoke(_fd, KvmIoctls.KVM_GET_MSR_INDEX_LIST, (nint)(&probe));
        if (rc < 0 && rc != -Errno.E2BIG)
        {
            throw new KvmException("KVM_GET_MSR_INDEX_LIST", -rc);
        }

        uint count = probe.nmsrs;
        uint* buffer = (uint*)NativeMemory.AllocZeroed((nuint)(sizeof(uint) * (count + 1)));
        try
        {
            buffer[0] = count;
            // SAFETY: buffer holds the count plus `count` indices.
            rc = Ioctl.TryInvoke(_fd, KvmIoctls.KVM_GET_MSR_INDEX_LIST, (nint)buffer);
            if (rc < 0)
            {
                throw new KvmException("KVM_GET_MSR_INDEX_LIST", -rc);
            }

            return new ReadOnlySpan<uint>(buffer + 1, (int)buffer[0]).ToArray();
        }
        finally
        {
            NativeMemory.Free(buffer);
        }
    }

    /// <summary>Creates a VM (KVM_CREATE_VM, default machine type).</summary>
    public KvmVm CreateVm()
    {
        int fd = Ioctl.TryInvoke(_fd, KvmIoctls.KVM_CREATE_VM, 0);
        if (fd < 0)
        {
            throw new KvmException("KVM_CREATE_VM", -fd, $"KVM_CREATE_VM failed: {Errno.Describe(-fd)}. Another hypervisor may be holding the virtualization extensions, or the host is out of memory.");
        }

        return new KvmVm(this, FileDescriptor.FromRaw(fd));
    }

    public void Dispose() => _fd.Dispose();
}

/// <summary>One CPUID leaf/subleaf as KVM describes it (kvm_cpuid_entry2).</summary>
public readonly record struct CpuidEntry(uint Function, uint Index, uint Flags, uint Eax, uint Ebx, uint Ecx, uint Edx)
{
    /// <summary>KVM_CPUID_FLAG_SIGNIFCANT_INDEX: the subleaf (ECX input) selects this entry.</summary>
    public const uint FlagSignificantIndex = 1;

    internal static CpuidEntry FromKernel(in kvm_cpuid_entry2 e) => new(e.function, e.index, e.flags, e.eax, e.ebx, e.ecx, e.edx);

    internal kvm_cpuid_entry2 ToKernel() => new()
    {
        function = Function,
        index = Index,
        flags = Flags,
        eax = Eax,
        ebx = Ebx,
        ecx = Ecx,
        edx = Edx,
    };
}
