using KvmSharp.Kvm;
using KvmSharp.Vmm.Config;

namespace KvmSharp.Vmm;

/// <summary>Chooses the execution backend for a machine, as <c>kvmsharp run</c>, <c>serve</c> and the control API do.</summary>
public static class AcceleratorSelector
{
    /// <summary>
    /// The backend to use: the opened KVM device, or null for the software CPU. <c>auto</c> takes KVM where it can run a
    /// guest kernel (kvm_intel, kvm_amd) and the software CPU where /dev/kvm is missing, cannot be opened or used, or is
    /// kvm_pvm (which cannot finish booting a stock kernel), and tells <paramref name="report"/> which it took and what it
    /// found. <c>kvm</c> opens KVM or throws <see cref="KvmUnavailableException"/>.
    /// </summary>
    public static KvmSystem? Open(Accelerator accelerator, string kvmDevicePath, Action<string> report)
    {
        ArgumentNullException.ThrowIfNull(kvmDevicePath);
        ArgumentNullException.ThrowIfNull(report);
        if (accelerator == Accelerator.Emulator)
        {
            return null;
        }

        if (accelerator == Accelerator.Kvm)
        {
            return KvmSystem.Open(kvmDevicePath);
        }

        var host = KvmHostInfo.Detect();
        if (!File.Exists(kvmDevicePath))
        {
            report($"using the software CPU: {kvmDevicePath} does not exist on this host (KVM module: {host.ModuleName}).");
            return null;
        }

        if (host.Module == KvmModuleKind.Pvm)
        {
            report("using the software CPU: KVM here is kvm_pvm, which cannot finish booting a stock Linux kernel (use --accel kvm to try anyway).");
            return null;
        }

        try
        {
            var system = KvmSystem.Open(kvmDevicePath);
            report($"using KVM ({host.Describe()}).");
            return system;
        }
        catch (KvmUnavailableException e)
        {
            report($"using the software CPU: {e.Message}");
            return null;
        }
    }
}
