using KvmSharp.Boot;
using KvmSharp.Devices.Legacy;

namespace KvmSharp.Vmm.Pc;

/// <summary>A built PC: the machine to run plus the devices the front end talks to (console input, boot timer).</summary>
public sealed class PcMachine : IDisposable
{
    internal PcMachine(Machine machine, PcLegacyDevices legacy, KernelBootInfo? boot, string acceleratorDescription, PcVirtio virtio, Config.VmConfig config)
    {
        Virtio = virtio;
        Machine = machine;
        Legacy = legacy;
        Boot = boot;
        AcceleratorDescription = acceleratorDescription;
        Config = config;
    }

    /// <summary>The configuration the machine was built from.</summary>
    public Config.VmConfig Config { get; }

    /// <summary>The ISA devices (serial, i8042, RTC, ACPI PM, fw_cfg, boot timer).</summary>
    public PcLegacyDevices Legacy { get; }

    public Machine Machine { get; }

    /// <summary>COM1: the guest's console; feed host input with <see cref="Serial16550.Enqueue"/>.</summary>
    public Serial16550 Serial => Legacy.Serial;

    public BootTimer BootTimer => Legacy.BootTimer;

    /// <summary>What the loader put in memory and how the boot vCPU was started; null for a machine restored from a snapshot.</summary>
    public KernelBootInfo? Boot { get; }

    public string AcceleratorDescription { get; }

    /// <summary>The PCI bus and virtio devices (none unless --disk, --rng or --console virtio asked for them).</summary>
    public PcVirtio Virtio { get; }

    /// <summary>For a machine built for a restore: starts the device threads (virtio notification worker, network event loop) once its state is restored.</summary>
    public void StartDevices() => Virtio.Start();

    /// <summary>Devices first (the notification worker and irqfds need the VM), then the machine.</summary>
    public void Dispose()
    {
        Virtio.Dispose();
        Machine.Dispose();
    }
}
