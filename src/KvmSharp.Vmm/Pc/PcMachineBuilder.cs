using KvmSharp.Boot;
using KvmSharp.Boot.Acpi;
using KvmSharp.Devices.Bus;
using KvmSharp.Devices.Interrupts;
using KvmSharp.Devices.Legacy;
using KvmSharp.Devices.Pci;
using KvmSharp.Emulator.Backend;
using KvmSharp.Hypervisor;
using KvmSharp.Kvm;
using KvmSharp.Memory;
using KvmSharp.Vmm.Config;

namespace KvmSharp.Vmm.Pc;

/// <summary>
/// Builds the PC of <c>kvmsharp run</c> on KVM: RAM per <see cref="PcMemoryLayout"/>, the in-kernel
/// PIC/IOAPIC/LAPIC and PIT, legacy devices on their ISA ports, the kernel loaded by its boot protocol,
/// and vCPUs with CPUID, MSRs and LAPIC LINT pins set up as a PC has them. Transactional: on failure
/// everything acquired so far is released in reverse order.
/// </summary>
public static class PcMachineBuilder
{
    // Port map (docs/machine.md).
    public const ushort SerialPort = Serial16550.DefaultPort;
    public const uint SerialGsi = Serial16550.DefaultIrq;
    public const ushort DebugExitPort = 0xF4;
    public const uint KeyboardGsi = 1;
    public const ushort BootTimerPort = 0x3F0;

    /// <summary>
    /// The boot timer's MMIO alias, for guests whose kernel has no /dev/port (Debian's cloud kernel): busybox
    /// `devmem 0xD0000000 8 123`. In the MMIO hole, below the range future PCI BARs will use.
    /// </summary>
    public const ulong BootTimerMmio = 0xD000_0000;

    // VT-x needs three pages for its real-mode TSS and one for the EPT identity map; both sit in the
    // MMIO hole below 4 GiB where no RAM is (QEMU uses the same addresses).
    private const uint TssAddress = 0xFFFB_D000;
    private const ulong IdentityMapAddress = 0xFFFB_C000;

    private const uint MsrMiscEnable = 0x1A0;
    private const ulong MiscEnableFastStrings = 1;
    private const uint MsrMtrrDefType = 0x2FF;
    private const ulong MtrrEnableWriteBack = (1UL << 11) | 6;

    // LAPIC local vector table (Intel SDM Vol. 3A 11.5.1): LINT0 = ExtINT (the 8259's output), LINT1 = NMI.
    private const int LapicLint0 = 0x350;
    private const int LapicLint1 = 0x360;
    private const uint DeliveryExtInt = 7u << 8;
    private const uint DeliveryNmi = 4u << 8;

    /// <summary>
    /// Reads the kernel and initrd of <paramref name="config"/> and checks that the kernel is in a format KvmSharp boots
    /// (<see cref="BootImageException"/> if not), before any hypervisor is opened. The boot timer counts from here.
    /// </summary>
    public static PcBootFiles ReadBootFiles(VmConfig config, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(time);
        long started = time.GetTimestamp();
        var request = LoadRequest(config);
        KernelLoader.CheckFormat(request.Kernel, request.FileName);
        return new PcBootFiles(request, started);
    }

    public static PcMachine Build(KvmSystem system, VmConfig config, PcBootFiles files, Stream consoleOutput, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(files);
        return BuildOnKvm(system, config, files, null, consoleOutput, time);
    }

    /// <summary>
    /// Builds the PC of <paramref name="config"/> on KVM for a snapshot's restore: RAM mapped privately from
    /// <paramref name="memoryPath"/> (<see cref="GuestMemory.MapFromFile"/>), devices and vCPUs as for a boot, but no
    /// kernel loaded and no boot registers set: the snapshot's state replaces them (<see cref="PcSnapshot"/>).
    /// </summary>
    public static PcMachine BuildForRestore(KvmSystem system, VmConfig config, string memoryPath, Stream consoleOutput, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(memoryPath);
        return BuildOnKvm(system, config, null, memoryPath, consoleOutput, time);
    }

    private static PcMachine BuildOnKvm(KvmSystem system, VmConfig config, PcBootFiles? files, string? memoryPath, Stream consoleOutput, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(system);
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(consoleOutput);
        ArgumentNullException.ThrowIfNull(time);
        long started = files?.StartedTimestamp ?? time.GetTimestamp();
        var cleanup = new Stack<IDisposable>();
        try
        {
            var vm = system.CreateVm();
            cleanup.Push(vm);
            if (system.CheckExtension(KvmCapability.SetTssAddr) > 0)
            {
                vm.SetTssAddress(TssAddress);
            }

            if (system.CheckExtension(KvmCapability.SetIdentityMapAddr) > 0)
            {
                vm.SetIdentityMapAddress(IdentityMapAddress);
            }

            vm.CreateIrqChip();
            vm.CreatePit2();

            var memory = CreateMemory(config, memoryPath);
            cleanup.Push(memory);
            vm.MapMemory(memory);

            var io = new IoDispatcher();
            var control = new MachineControl(io);
            var legacy = AddDevices(io, control, vm.Interrupts, config, consoleOutput, time, started);
            var virtio = PcVirtio.Create(io, vm.Interrupts, memory, config, consoleOutput, vm, _ => control.RequestExit(MachineExitReason.VmmError));
            cleanup.Push(virtio);
            var boot = files is null ? null : LoadGuest(memory, config, files.Request, virtio.Bus);

            var vcpus = CreateVcpus(system, vm, config.Cpus, boot?.Entry, cleanup);
            var machine = new Machine(vm, memory, vcpus, io, control);
            if (files is not null)
            {
                // A restore starts the device threads once the snapshot's device state is in (PcSnapshot).
                virtio.Start();
            }

            return new PcMachine(machine, legacy, boot, "kvm", virtio, config);
        }
        catch
        {
            while (cleanup.Count > 0)
            {
                cleanup.Pop().Dispose();
            }

            throw;
        }
    }

    /// <summary>
    /// Builds the same PC on the software CPU (<c>--accel emulator</c>): the interrupt controllers and PIT are the C#
    /// models of <see cref="EmulatorVirtualMachine"/> instead of KVM's in-kernel ones; devices, ACPI tables and the
    /// loaded kernel are identical.
    /// </summary>
    public static PcMachine BuildOnEmulator(VmConfig config, PcBootFiles files, Stream consoleOutput, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(files);
        return BuildOnEmulator(config, files, null, consoleOutput, time);
    }

    /// <summary>The software CPU's <see cref="BuildForRestore(KvmSystem, VmConfig, string, Stream, TimeProvider)"/>.</summary>
    public static PcMachine BuildForRestoreOnEmulator(VmConfig config, string memoryPath, Stream consoleOutput, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(memoryPath);
        return BuildOnEmulator(config, null, memoryPath, consoleOutput, time);
    }

    private static PcMachine BuildOnEmulator(VmConfig config, PcBootFiles? files, string? memoryPath, Stream consoleOutput, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(consoleOutput);
        ArgumentNullException.ThrowIfNull(time);
        long started = files?.StartedTimestamp ?? time.GetTimestamp();
        var memory = CreateMemory(config, memoryPath);
        PcVirtio? virtio = null;
        try
        {
            var vm = new EmulatorVirtualMachine(config.Cpus, time);
            vm.MapMemory(memory);

            var io = new IoDispatcher();
            var control = new MachineControl(io);
            var legacy = AddDevices(io, control, vm.Interrupts, config, consoleOutput, time, started);
            vm.RegisterDevices(io);
            virtio = PcVirtio.Create(io, vm.Interrupts, memory, config, consoleOutput, kvm: null, _ => control.RequestExit(MachineExitReason.VmmError));
            var boot = files is null ? null : LoadGuest(memory, config, files.Request, virtio.Bus);

            var vcpus = new List<IVcpu>(config.Cpus);
            for (int i = 0; i < config.Cpus; i++)
            {
                var vcpu = vm.CreateEmulatorVcpu(i);
                vcpu.SetMsrs([MsrMiscEnable], [MiscEnableFastStrings]);
                if (i == 0 && boot is not null)
                {
                    vcpu.SetSystemRegisters(boot.Entry.InitialSystemRegisters(vcpu.GetSystemRegisters()));
                    vcpu.SetRegisters(boot.Entry.InitialRegisters());
                }

                vcpus.Add(vcpu);
            }

            var machine = new Machine(vm, memory, vcpus, io, control);
            if (files is not null)
            {
                // A restore starts the device threads once the snapshot's device state is in (PcSnapshot).
                virtio.Start();
            }

            return new PcMachine(machine, legacy, boot, "emulator", virtio, config);
        }
        catch
        {
            virtio?.Dispose();
            memory.Dispose();
            throw;
        }
    }

    /// <summary>Fresh RAM for a boot, or for a restore the snapshot's memory file mapped copy-on-write.</summary>
    private static GuestMemory CreateMemory(VmConfig config, string? memoryPath)
    {
        var ranges = PcMemoryLayout.RamRanges(config.MemoryBytes);
        return memoryPath is null ? GuestMemory.Create(ranges) : GuestMemory.MapFromFile(ranges, memoryPath);
    }

    private static KernelLoadRequest LoadRequest(VmConfig config) => new(
        Path.GetFileName(config.KernelPath),
        File.ReadAllBytes(config.KernelPath),
        config.InitrdPath is null ? null : File.ReadAllBytes(config.InitrdPath),
        config.InitrdPath is null ? null : Path.GetFileName(config.InitrdPath),
        config.CommandLine,
        config.MemoryBytes)
    {
        KernelPath = config.KernelPath,
    };

    /// <summary>
    /// ACPI tables in the BIOS area (found by Linux's scan too): the CPUs and IOAPIC (MADT), the PM1a blocks whose
    /// SLP_EN write is the guest's power-off (FADT, DSDT \_S5) and the PCI root bridge with its BAR window and each
    /// device's INTx GSI (DSDT \_SB.PCI0); then the kernel by its boot protocol.
    /// </summary>
    private static KernelBootInfo LoadGuest(GuestMemory memory, VmConfig config, KernelLoadRequest request, PciBus pci)
    {
        ulong rsdp = AcpiTables.Write(memory, new AcpiConfig(config.Cpus)
        {
            Pm1aEventPort = AcpiPm.EventBlockPort,
            Pm1aControlPort = AcpiPm.ControlBlockPort,
            PciRootBridge = new PciRootBridge(pci.MmioWindowStart, pci.MmioWindowEnd)
            {
                InterruptRoutes = [.. pci.IntxRoutes.Select(r => new PciInterruptRoute(r.Device, r.Gsi))],
            },
        });
        return KernelLoader.Load(memory, request with { AcpiRsdpAddress = rsdp });
    }

    private static PcLegacyDevices AddDevices(
        IoDispatcher io,
        MachineControl control,
        IInterruptSink interrupts,
        VmConfig config,
        Stream consoleOutput,
        TimeProvider time,
        long started)
    {
        var serial = new Serial16550(consoleOutput, new GsiIrqLine(interrupts, SerialGsi));
        io.Ports.Register(SerialPort, Serial16550.RegisterCount, serial, "serial0 (16550A)");

        var i8042 = new I8042(() => control.RequestExit(MachineExitReason.Reset), new GsiIrqLine(interrupts, KeyboardGsi));
        io.Ports.Register(I8042.DataPort, 1, i8042.Data, "i8042 data");
        io.Ports.Register(I8042.CommandPort, 1, i8042.Command, "i8042 status/command");

        var rtc = new CmosRtc(time);
        rtc.SetMemorySize(config.MemoryBytes);
        io.Ports.Register(CmosRtc.IndexPort, 2, rtc, "cmos rtc");

        var debugExit = new DebugExit(status => control.RequestExit(MachineExitReason.DeviceRequestedStop, status), iosize: 4);
        io.Ports.Register(DebugExitPort, 4, debugExit, "isa-debug-exit");

        var fwCfg = new FwCfg();
        fwCfg.SetRamSize(config.MemoryBytes);
        fwCfg.SetCpuCount((ushort)config.Cpus);
        io.Ports.Register(FwCfg.SelectorPort, 2, fwCfg, "fw_cfg");

        var acpiPm = new AcpiPm(() => control.RequestExit(MachineExitReason.PowerOff), new GsiIrqLine(interrupts, AcpiConfig.DefaultSciIrq));
        io.Ports.Register(AcpiPm.EventBlockPort, AcpiPm.EventBlockLength, acpiPm.Events, "acpi pm1a event block");
        io.Ports.Register(AcpiPm.ControlBlockPort, AcpiPm.ControlBlockLength, acpiPm.Control, "acpi pm1a control block");

        var bootTimer = new BootTimer(time, started);
        io.Ports.Register(BootTimerPort, 1, bootTimer, "boot timer");
        io.Mmio.Register(BootTimerMmio, 1, bootTimer, "boot timer (MMIO alias)");

        io.Ports.Register(DebugConsole.DefaultPort, 1, new DebugConsole(consoleOutput), "debugcon");
        return new PcLegacyDevices(serial, i8042, rtc, acpiPm, fwCfg, bootTimer);
    }

    private static List<IVcpu> CreateVcpus(KvmSystem system, KvmVm vm, int count, BootEntry? entry, Stack<IDisposable> cleanup)
    {
        var supported = system.GetSupportedCpuid();
        var vcpus = new List<IVcpu>(count);
        for (int i = 0; i < count; i++)
        {
            var vcpu = vm.CreateVcpu(i);
            cleanup.Push(vcpu);
            vcpu.SetCpuid(VcpuCpuid.Build(supported, i, count));
            vcpu.SetMsrs([MsrMiscEnable, MsrMtrrDefType], [MiscEnableFastStrings, MtrrEnableWriteBack]);

            var lapic = vcpu.GetLapic();
            BitConverter.TryWriteBytes(lapic.AsSpan(LapicLint0, 4), DeliveryExtInt);
            BitConverter.TryWriteBytes(lapic.AsSpan(LapicLint1, 4), DeliveryNmi);
            vcpu.SetLapic(lapic);

            if (i == 0 && entry is not null)
            {
                // The bootstrap processor enters the kernel; the others wait for INIT/SIPI (KVM keeps them
                // in KVM_MP_STATE_UNINITIALIZED when the LAPIC is in the kernel).
                vcpu.SetSystemRegisters(entry.InitialSystemRegisters(vcpu.GetSystemRegisters()));
                vcpu.SetRegisters(entry.InitialRegisters());
            }

            vcpus.Add(vcpu);
        }

        return vcpus;
    }
}

/// <summary>The ISA devices of the PC whose state a snapshot keeps (debug-exit and debugcon keep none).</summary>
public sealed record PcLegacyDevices(Serial16550 Serial, I8042 I8042, CmosRtc Rtc, AcpiPm AcpiPm, FwCfg FwCfg, BootTimer BootTimer);

/// <summary>The kernel and initrd as <see cref="PcMachineBuilder.ReadBootFiles"/> read them, and when it began (the boot timer's zero).</summary>
public sealed record PcBootFiles(KernelLoadRequest Request, long StartedTimestamp);
