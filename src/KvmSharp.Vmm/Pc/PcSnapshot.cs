using System.Diagnostics;
using System.Net;
using KvmSharp.Boot;
using KvmSharp.Devices.InterruptControllers;
using KvmSharp.Devices.Legacy;
using KvmSharp.Emulator.Backend;
using KvmSharp.Hypervisor.Snapshots;
using KvmSharp.Kvm;
using KvmSharp.Memory;
using KvmSharp.Vmm.Config;
using KvmSharp.Vmm.Control;

namespace KvmSharp.Vmm.Pc;

/// <summary>
/// Snapshots of a paused PC (docs/snapshots.md): a state file (<see cref="SnapshotFile"/>: the machine's description,
/// every ISA device, the interrupt controllers and PIT, every vCPU, every PCI/virtio device) and a memory file (RAM
/// regions one after another, zero pages as holes). A restore builds the same PC in a fresh process with RAM mapped
/// copy-on-write from the memory file, puts every saved state back, and only then starts the device threads.
/// </summary>
public static class PcSnapshot
{
    public const string MachineSection = "machine";
    public const string KvmVmSection = "kvm-vm";
    public const string EmulatorPlatformSection = "platform";
    public const int MachineVersion = 1;
    public const int DeviceVersion = 1;

    public static string VcpuSection(int index) => $"vcpu{index}";

    /// <summary>Writes the snapshot of <paramref name="pc"/>, whose vCPUs are parked and devices quiesced.</summary>
    public static SnapshotResult Create(PcMachine pc, string statePath, string memoryPath, IProgress<long>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(pc);
        ArgumentNullException.ThrowIfNull(statePath);
        ArgumentNullException.ThrowIfNull(memoryPath);
        if (!pc.Machine.IsPaused)
        {
            throw new InvalidOperationException("A snapshot needs a paused machine.");
        }

        CheckDirectory(statePath, "snapshot_path");
        CheckDirectory(memoryPath, "mem_file_path");
        var clock = Stopwatch.StartNew();
        var sections = SaveSections(pc);
        byte[] state = SnapshotFile.Serialize(sections);
        var stateTime = clock.Elapsed;
        pc.Machine.Memory.WriteTo(memoryPath, progress);
        var memoryTime = clock.Elapsed - stateTime;
        // The state file last: a state file on disk always has its memory file beside it.
        WriteAtomically(statePath, state);
        return new SnapshotResult(state.LongLength, (long)pc.Machine.Memory.TotalSize, stateTime, memoryTime);
    }

    /// <summary>Every state section of the paused machine, in a fixed order.</summary>
    public static List<SnapshotSection> SaveSections(PcMachine pc)
    {
        ArgumentNullException.ThrowIfNull(pc);
        var machine = pc.Machine;
        var sections = new List<SnapshotSection>
        {
            SnapshotStateJson.ToSection(MachineSection, MachineVersion, PcSnapshotMachine.From(pc.Config, pc.AcceleratorDescription)),
        };
        var legacy = pc.Legacy;
        sections.Add(SnapshotStateJson.ToSection("serial0", DeviceVersion, legacy.Serial.Save()));
        sections.Add(SnapshotStateJson.ToSection("i8042", DeviceVersion, legacy.I8042.Save()));
        sections.Add(SnapshotStateJson.ToSection("rtc", DeviceVersion, legacy.Rtc.Save()));
        sections.Add(SnapshotStateJson.ToSection("acpi-pm", DeviceVersion, legacy.AcpiPm.Save()));
        sections.Add(SnapshotStateJson.ToSection("fw-cfg", DeviceVersion, legacy.FwCfg.Save()));

        switch (machine.VirtualMachine)
        {
            case KvmVm kvm:
                sections.Add(SnapshotStateJson.ToSection(KvmVmSection, DeviceVersion, kvm.SaveState()));
                for (int i = 0; i < machine.Vcpus.Count; i++)
                {
                    var state = machine.RunOnVcpu(i, static v => ((KvmVcpu)v).SaveState());
                    sections.Add(SnapshotStateJson.ToSection(VcpuSection(i), DeviceVersion, state));
                }

                break;
            case EmulatorVirtualMachine emulator:
                sections.Add(SnapshotStateJson.ToSection(EmulatorPlatformSection, DeviceVersion, emulator.SaveState()));
                for (int i = 0; i < machine.Vcpus.Count; i++)
                {
                    var state = machine.RunOnVcpu(i, static v => ((EmulatorVcpu)v).SaveState());
                    sections.Add(SnapshotStateJson.ToSection(VcpuSection(i), DeviceVersion, state));
                }

                break;
            default:
                throw new InvalidOperationException($"Snapshots of a {machine.VirtualMachine.GetType().Name} machine are not supported.");
        }

        sections.AddRange(pc.Virtio.SaveState());
        return sections;
    }

    /// <summary>Reads and checks a state file: its format, checksum and machine description (one line if it is not one).</summary>
    public static PcSnapshotState ReadState(string statePath)
    {
        var sections = new SnapshotSections(SnapshotFile.Read(statePath));
        var machine = sections.Get<PcSnapshotMachine>(MachineSection, MachineVersion);
        return new PcSnapshotState(sections, machine.ToConfig(), machine.Accelerator);
    }

    /// <summary>
    /// Builds the snapshot's PC on <paramref name="system"/> (KVM) or, when null, on the software CPU, and restores every
    /// saved state into it; the devices' threads run, the vCPUs have not started. The backend must be the one the
    /// snapshot was taken on (their vCPU state differs).
    /// </summary>
    public static PcMachine Restore(PcSnapshotState snapshot, KvmSystem? system, string memoryPath, Stream consoleOutput, TimeProvider time, bool quiesced = false)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        ArgumentNullException.ThrowIfNull(memoryPath);
        string backend = system is null ? "emulator" : "kvm";
        if (snapshot.Accelerator != backend)
        {
            throw new SnapshotStateException(system is null
                ? "The snapshot was taken on KVM; restore it with KVM (--accel kvm), the software CPU cannot take KVM's vCPU state."
                : "The snapshot was taken on the software CPU; restore it with --accel emulator.");
        }

        PcMachine pc;
        try
        {
            pc = system is null
                ? PcMachineBuilder.BuildForRestoreOnEmulator(snapshot.Config, memoryPath, consoleOutput, time)
                : PcMachineBuilder.BuildForRestore(system, snapshot.Config, memoryPath, consoleOutput, time);
        }
        catch (GuestMemoryException e)
        {
            throw new SnapshotStateException(e.Message);
        }

        try
        {
            RestoreSections(pc, snapshot.Sections);
            if (quiesced)
            {
                // Restored paused: the device threads start parked, so nothing touches guest memory before a resume.
                pc.Virtio.Quiesce();
            }

            pc.StartDevices();
            return pc;
        }
        catch
        {
            pc.Dispose();
            throw;
        }
    }

    /// <summary>Puts every saved state into a machine built for the restore (nothing of it has run).</summary>
    public static void RestoreSections(PcMachine pc, SnapshotSections sections)
    {
        ArgumentNullException.ThrowIfNull(pc);
        ArgumentNullException.ThrowIfNull(sections);
        var machine = pc.Machine;
        var legacy = pc.Legacy;

        // Read every record first: a file that is missing a part, or has one of another version, changes nothing.
        var serial = sections.Get<Serial16550State>("serial0", DeviceVersion);
        var i8042 = sections.Get<I8042State>("i8042", DeviceVersion);
        var rtc = sections.Get<CmosRtcState>("rtc", DeviceVersion);
        var acpiPm = sections.Get<AcpiPmState>("acpi-pm", DeviceVersion);
        var fwCfg = sections.Get<FwCfgState>("fw-cfg", DeviceVersion);
        for (int i = 0; i < machine.Vcpus.Count; i++)
        {
            _ = sections.Get(VcpuSection(i));
        }

        if (sections.Contains(VcpuSection(machine.Vcpus.Count)))
        {
            throw new SnapshotStateException($"The snapshot has more vCPUs than its machine description's {machine.Vcpus.Count}: it is corrupt.");
        }

        try
        {
            RestoreRecords(pc, sections, serial, i8042, rtc, acpiPm, fwCfg);
        }
        catch (ArgumentException e)
        {
            // The device models reject a state they cannot have saved with ArgumentException: a corrupt or foreign file.
            throw new SnapshotStateException($"The snapshot's device state cannot be restored: {e.Message}");
        }
    }

    private static void RestoreRecords(PcMachine pc, SnapshotSections sections, Serial16550State serial, I8042State i8042, CmosRtcState rtc, AcpiPmState acpiPm, FwCfgState fwCfg)
    {
        var machine = pc.Machine;
        var legacy = pc.Legacy;
        legacy.Serial.Restore(serial);
        legacy.I8042.Restore(i8042);
        legacy.Rtc.Restore(rtc);
        legacy.AcpiPm.Restore(acpiPm);
        legacy.FwCfg.Restore(fwCfg);

        switch (machine.VirtualMachine)
        {
            case KvmVm kvm:
                kvm.RestoreState(sections.Get<KvmVmState>(KvmVmSection, DeviceVersion));
                for (int i = 0; i < machine.Vcpus.Count; i++)
                {
                    ((KvmVcpu)machine.Vcpus[i]).RestoreState(sections.Get<KvmVcpuState>(VcpuSection(i), DeviceVersion));
                }

                break;
            case EmulatorVirtualMachine emulator:
                emulator.RestoreState(sections.Get<EmulatorPlatformState>(EmulatorPlatformSection, DeviceVersion));
                for (int i = 0; i < machine.Vcpus.Count; i++)
                {
                    ((EmulatorVcpu)machine.Vcpus[i]).RestoreState(sections.Get<EmulatorVcpuState>(VcpuSection(i), DeviceVersion));
                }

                break;
        }

        pc.Virtio.RestoreState(sections);
    }

    private static void CheckDirectory(string path, string field)
    {
        string? directory = Path.GetDirectoryName(Path.GetFullPath(path));
        if (directory is not null && !Directory.Exists(directory))
        {
            throw new InvalidOperationException($"Cannot write the snapshot: the directory of {field} '{path}' does not exist.");
        }
    }

    private static void WriteAtomically(string path, byte[] bytes)
    {
        string temporary = path + ".tmp";
        using (var file = new FileStream(temporary, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            file.Write(bytes);
            file.Flush(flushToDisk: true);
        }

        File.Move(temporary, path, overwrite: true);
    }
}

/// <summary>A state file read and checked: its sections, the machine it describes and the backend it was taken on.</summary>
public sealed record PcSnapshotState(SnapshotSections Sections, VmConfig Config, string Accelerator);

/// <summary>A saved <c>--net</c>: the backend and address; passt is started anew on restore, a TAP reopened by name.</summary>
public sealed record PcSnapshotNet(NetBackendKind Kind, string? TapName, byte[] Mac, PcSnapshotForward[] HostForwards);

public sealed record PcSnapshotForward(bool Udp, string? HostAddress, int HostPort, int GuestPort);

/// <summary>
/// The machine a snapshot was taken of: what a restore must build before it can put the saved state back. The kernel
/// is recorded for the record (GET /vm/config); a restore does not read it, the kernel is in the memory file.
/// </summary>
public sealed record PcSnapshotMachine(
    string Accelerator,
    int Cpus,
    ulong MemoryBytes,
    string KernelPath,
    string? InitrdPath,
    string CommandLine,
    DiskConfig[] Disks,
    bool Rng,
    PcSnapshotNet[] Nets,
    ConsoleKind Console,
    string? ConsolePath,
    MemoryRange[] RamRanges)
{
    public static PcSnapshotMachine From(VmConfig config, string accelerator) => new(
        accelerator,
        config.Cpus,
        config.MemoryBytes,
        config.KernelPath,
        config.InitrdPath,
        config.CommandLine,
        [.. config.Disks],
        config.Rng,
        [.. config.Nets.Select(n => new PcSnapshotNet(n.Kind, n.TapName, n.Mac,
            [.. n.HostForwards.Select(f => new PcSnapshotForward(f.Udp, f.HostAddress?.ToString(), f.HostPort, f.GuestPort))]))],
        config.Console,
        config.ConsolePath,
        [.. PcMemoryLayout.RamRanges(config.MemoryBytes)]);

    /// <summary>The configuration to build; throws <see cref="SnapshotStateException"/> if the description is not a valid machine.</summary>
    public VmConfig ToConfig()
    {
        if (Cpus is < 1 or > VmConfigValidator.MaximumCpus || MemoryBytes is < VmConfigValidator.MinimumMemory or > VmConfigValidator.MaximumMemory
            || Disks is null || Nets is null || RamRanges is null)
        {
            throw new SnapshotStateException($"The snapshot's machine description ({Cpus} vCPUs, {MemoryBytes} bytes of RAM) is not a machine KvmSharp builds: the file is corrupt.");
        }

        var expected = PcMemoryLayout.RamRanges(MemoryBytes);
        if (!expected.SequenceEqual(RamRanges))
        {
            throw new SnapshotStateException("The snapshot's RAM layout is not the one this build of KvmSharp gives its memory size.");
        }

        var nets = new List<NetConfig>();
        foreach (var n in Nets)
        {
            if (n.Mac is not { Length: 6 } || n.HostForwards is null)
            {
                throw new SnapshotStateException("The snapshot's network adapter description is corrupt.");
            }

            var forwards = new List<HostForward>();
            foreach (var f in n.HostForwards)
            {
                IPAddress? address = null;
                if (f.HostAddress is not null && !IPAddress.TryParse(f.HostAddress, out address))
                {
                    throw new SnapshotStateException($"The snapshot's port forward address '{f.HostAddress}' is not an address.");
                }

                forwards.Add(new HostForward(f.Udp, address, f.HostPort, f.GuestPort));
            }

            nets.Add(new NetConfig(n.Kind, n.TapName, n.Mac, forwards));
        }

        return new VmConfig
        {
            KernelPath = KernelPath,
            InitrdPath = InitrdPath,
            CommandLine = CommandLine,
            MemoryBytes = MemoryBytes,
            Cpus = Cpus,
            Accelerator = Accelerator == "kvm" ? Config.Accelerator.Kvm : Config.Accelerator.Emulator,
            Console = Console,
            ConsolePath = ConsolePath,
            Disks = Disks,
            Rng = Rng,
            Nets = nets,
        };
    }
}
