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

    public string Describe() => Module switch
    {
        KvmModuleKind.IntelVmx => "kvm_intel (Intel VT-x)",
        KvmModuleKind.AmdSvm => "kvm_amd (AMD-V/SVM)",
        KvmModuleKind.Pvm => "kvm_pvm (pagetable-based VM, no VT-x/SVM: guest kernel code is emulated, ~1000x slower)",
        _ => "unknown (no kvm_intel, kvm_amd or kvm_pvm module found)",
    };

    public static KvmHostInfo Detect() => Detect("/sys/module", "/proc/cpuinfo");

    /// <summary>Detection against given roots, so tests can feed it a fake sysfs.</summary>
    public static KvmHostInfo Detect(string sysModuleRoot, string cpuInfoPath)
    {
        var module = KvmModuleKind.Unknown;
        if (Directory.Exists(Path.Combine(sysModuleRoot, "kvm_intel")))
        {
            module = KvmModuleKind.IntelVmx;
        }
        else if (Directory.Exists(Path.Combine(sysModuleRoot, "kvm_amd")))
        {
            module = KvmModuleKind.AmdSvm;
        }
        else if (Directory.Exists(Path.Combine(sysModuleRoot, "kvm_pvm")))
        {
            module = KvmModuleKind.Pvm;
        }

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

        return new KvmHostInfo(module, vmx, svm);
    }
}
