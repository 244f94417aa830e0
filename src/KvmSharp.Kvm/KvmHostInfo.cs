namespace KvmSharp.Kvm;

/// <summary>Which kernel module serves /dev/kvm.</summary>
public enum KvmModuleKind
{
    Unknown,

    /// <summary>kvm_intel: VT-x.</summary>
    IntelVmx,

    /// <summary>kvm_amd: AMD-V/SVM.</summary>
    AmdSvm,

    /// <summary>kvm_pvm: "pagetable-based VM", runs without VT-x/SVM; CPL0 guest code is emulated.</summary>
    Pvm,
}

/// <summary>What the host offers for hardware virtualization, read from /sys/module and /proc/cpuinfo.</summary>
public sealed record KvmHostInfo(KvmModuleKind Module, bool CpuHasVmx, bool CpuHasSvm)
{
    /// <summary>Whether a stock kernel-mode guest (Linux) runs at useful speed under this module.</summary>
    public bool RunsKernelGuestsNatively => Module is KvmModuleKind.IntelVmx or KvmModuleKind.AmdSvm;

    /// <summary>The module's name: kvm_intel, kvm_amd, kvm_pvm, or none.</summary>
    public string ModuleName => Module switch
    {
        KvmModuleKind.IntelVmx => "kvm_intel",
        KvmModuleKind.AmdSvm => "kvm_amd",
        KvmModuleKind.Pvm => "kvm_pvm",
        _ => "none",
    };

    public string Describe() => Module switch
    {
        KvmModuleKind.IntelVmx => "kvm_intel (Intel VT-x)",
        KvmModuleKind.AmdSvm => "kvm_amd (AMD-V/SVM)",
        KvmModuleKind.Pvm => "kvm_pvm (pagetable-based VM, no VT-x/SVM: guest kernel code is emulated, ~1000x slower)",
        _ => "none (KVM's device is not registered: no kvm_intel, kvm_amd or kvm_pvm module is active)",
    };

    public static KvmHostInfo Detect() => Detect("/sys/module", "/proc/cpuinfo", "/sys/class/misc/kvm");

    /// <summary>
    /// Detection against given roots, so tests can feed it a fake sysfs. A module counts only once KVM's device is
    /// registered (<paramref name="kvmMiscDevice"/>, /sys/class/misc/kvm): a built-in module with parameters has a
    /// /sys/module directory even where it found no hardware (this project's Firecracker machines list kvm_pvm there
    /// and have no /dev/kvm). Of several vendor modules, the one matching the CPU's vmx/svm flag wins.
    /// </summary>
    public static KvmHostInfo Detect(string sysModuleRoot, string cpuInfoPath, string kvmMiscDevice)
    {
        ArgumentNullException.ThrowIfNull(sysModuleRoot);
        ArgumentNullException.ThrowIfNull(cpuInfoPath);
        ArgumentNullException.ThrowIfNull(kvmMiscDevice);
        var (vmx, svm) = ReadCpuFlags(cpuInfoPath);
        bool Loaded(string name) => Directory.Exists(Path.Combine(sysModuleRoot, name));

        var module = KvmModuleKind.Unknown;
        if (Directory.Exists(kvmMiscDevice))
        {
            bool intel = Loaded("kvm_intel"), amd = Loaded("kvm_amd"), pvm = Loaded("kvm_pvm");
            module = (intel && vmx) ? KvmModuleKind.IntelVmx
                : (amd && svm) ? KvmModuleKind.AmdSvm
                : pvm ? KvmModuleKind.Pvm
                : intel ? KvmModuleKind.IntelVmx
                : amd ? KvmModuleKind.AmdSvm
                : KvmModuleKind.Unknown;
        }

        return new KvmHostInfo(module, vmx, svm);
    }

    private static (bool Vmx, bool Svm) ReadCpuFlags(string cpuInfoPath)
    {
        bool vmx = false, svm = false;
        if (File.Exists(cpuInfoPath))
        {
            foreach (var line in File.ReadLines(cpuInfoPath))
            {
                if (!line.StartsWith("flags", StringComparison.Ordinal))
                {
                    continue;
                }

                int colon = line.IndexOf(':', StringComparison.Ordinal);
                foreach (var flag in line[(colon + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries))
                {
                    vmx |= flag == "vmx";
                    svm |= flag == "svm";
                }

                break;
            }
        }

        return (vmx, svm);
    }
}
