using KvmSharp.Boot;
using KvmSharp.Devices.Legacy;

namespace KvmSharp.Vmm.Pc;

/// <summary>A built PC: the machine to run plus the devices the front end talks to (console input, boot timer).</summary>
public sealed class PcMachine : IDisposable
{
    internal PcMachine(Machine machine, Serial16550 serial, BootTimer bootTimer, KernelBootInfo boot, string acceleratorDescription, PcVirtio virtio)
    {
        Virtio = virtio;
        Machine = machine;
        Serial = serial;
        BootTimer = bootTimer;
        Boot = boot;
        AcceleratorDescription = acceleratorDescription;
    }

    public Machine Machine { get; }

    /// <summary>COM1: the guest's console; feed host input with <see cref="Serial16550.Enqueue"/>.</summary>
    public Serial16550 Serial { get; }

    public BootTimer BootTimer { get; }

    /// <summary>What the loader put in memory and how the boot vCPU was started.</summary>
    public KernelBootInfo Boot { get; }

    public string AcceleratorDescription { get; }

    /// <summary>The PCI bus and virtio devices (none unless --disk, --rng or --console virtio asked for them).</summary>
    public PcVirtio Virtio { get; }

    /// <summary>Devices first (the notification worker and irqfds need the VM), then the machine.</summary>
    public void Dispose()
    {
        Virtio.Dispose();
        Machine.Dispose();
    }
}
