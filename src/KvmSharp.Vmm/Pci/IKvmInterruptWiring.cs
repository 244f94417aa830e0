using KvmSharp.Kvm;
using KvmSharp.Native;

namespace KvmSharp.Vmm.Pci;

/// <summary>
/// The KVM VM calls the PCI wiring makes: GSI routing, irqfds and ioeventfds. <see cref="KvmVmWiring"/> forwards them
/// to a <see cref="KvmVm"/>; tests substitute a recorder, so the bookkeeping runs without /dev/kvm.
/// </summary>
internal interface IKvmInterruptWiring
{
    void SetGsiRouting(IReadOnlyList<GsiRoute> routes);

    void AddIrqfd(EventFd eventFd, uint gsi);

    void RemoveIrqfd(EventFd eventFd, uint gsi);

    void AddIoeventfd(EventFd eventFd, ulong address, uint length);

    void RemoveIoeventfd(EventFd eventFd, ulong address, uint length);
}

/// <summary>The wiring of a real KVM VM (MMIO ioeventfds, no data match).</summary>
internal sealed class KvmVmWiring(KvmVm vm) : IKvmInterruptWiring
{
    public void SetGsiRouting(IReadOnlyList<GsiRoute> routes) => vm.SetGsiRouting(routes);

    public void AddIrqfd(EventFd eventFd, uint gsi) => vm.AddIrqfd(eventFd, gsi);

    public void RemoveIrqfd(EventFd eventFd, uint gsi) => vm.RemoveIrqfd(eventFd, gsi);

    public void AddIoeventfd(EventFd eventFd, ulong address, uint length) => vm.AddIoeventfd(eventFd, address, length, isPort: false);

    public void RemoveIoeventfd(EventFd eventFd, ulong address, uint length) => vm.RemoveIoeventfd(eventFd, address, length, isPort: false);
}
