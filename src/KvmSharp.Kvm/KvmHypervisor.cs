using KvmSharp.Hypervisor;

namespace KvmSharp.Kvm;

/// <summary>The /dev/kvm execution backend behind the neutral <see cref="IHypervisor"/> seam.</summary>
public sealed class KvmHypervisor : IHypervisor
{
    public KvmHypervisor(string devicePath = KvmSystem.DefaultDevicePath)
    {
        System = KvmSystem.Open(devicePath);
    }

    public KvmSystem System { get; }

    public string Name => "kvm";

    public KvmVm CreateVm(VirtualMachineOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var vm = System.CreateVm();
        try
        {
            if (options.InKernelIrqChip)
            {
                vm.CreateIrqChip();
                if (options.InKernelPit)
                {
                    vm.CreatePit2();
                }
            }

            return vm;
        }
        catch
        {
            vm.Dispose();
            throw;
        }
    }

    IVirtualMachine IHypervisor.CreateVirtualMachine(VirtualMachineOptions options) => CreateVm(options);

    public void Dispose() => System.Dispose();
}
