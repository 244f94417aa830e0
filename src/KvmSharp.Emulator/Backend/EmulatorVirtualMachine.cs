using KvmSharp.Devices.Bus;
using KvmSharp.Devices.InterruptControllers;
using KvmSharp.Devices.Interrupts;
using KvmSharp.Emulator.Cpu;
using KvmSharp.Hypervisor;
using KvmSharp.Hypervisor.Snapshots;
using KvmSharp.Memory;

namespace KvmSharp.Emulator.Backend;

/// <summary>
/// A virtual machine on the software CPU: guest RAM, vCPUs, and the PC's interrupt fabric in C# — the 8259 pair,
/// the IOAPIC, one local APIC per vCPU on an APIC bus, and the 8254 PIT — wired as the ACPI MADT describes
/// (<see cref="InterruptRouter"/>). The machine builder registers the chips' ports and MMIO with
/// <see cref="RegisterDevices"/>.
/// </summary>
public sealed class EmulatorVirtualMachine : IVirtualMachine
{
    /// <summary>The local APIC timer's input clock, which CPUID leaf 0x15 reports as the crystal.</summary>
    public const long ApicTimerFrequency = LocalApic.DefaultTimerFrequencyHz;

    private readonly Lock _fabricLock = new();
    private readonly TimeProvider _time;
    private readonly List<EmulatorVcpu> _vcpus = [];
    private readonly WakingSink _interrupts;
    private readonly int _cpuCount;
    private GuestMemory? _memory;

    public EmulatorVirtualMachine(int cpuCount, TimeProvider time, uint timerGsi = 0)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(cpuCount, 1);
        ArgumentNullException.ThrowIfNull(time);
        _cpuCount = cpuCount;
        _time = time;
        Pic = new Pic8259Pair(_fabricLock);
        ApicBus = new ApicBus(_fabricLock, Pic);
        IoApic = new IoApic(_fabricLock, ApicBus);
        Router = new InterruptRouter(Pic, IoApic, ApicBus, timerGsi);
        _interrupts = new WakingSink(Router, _vcpus);
        Pit = new Pit8254(time, new GsiIrqLine(_interrupts, 0));
    }

    public Pic8259Pair Pic { get; }

    public ApicBus ApicBus { get; }

    public IoApic IoApic { get; }

    public InterruptRouter Router { get; }

    public Pit8254 Pit { get; }

    /// <summary>Device interrupts: through the router, waking halted vCPUs.</summary>
    public IInterruptSink Interrupts => _interrupts;

    public IReadOnlyList<EmulatorVcpu> Vcpus => _vcpus;

    public void MapMemory(GuestMemory memory, bool trackDirtyPages = false)
    {
        ArgumentNullException.ThrowIfNull(memory);
        if (trackDirtyPages)
        {
            throw new NotSupportedException("Dirty-page tracking is not implemented by the software CPU.");
        }

        _memory = memory;
    }

    /// <summary>Puts the PIC (0x20, 0xA0, ELCR 0x4D0), PIT (0x40, port B 0x61) and IOAPIC (0xFEC00000) on the buses.</summary>
    public void RegisterDevices(IoDispatcher io)
    {
        ArgumentNullException.ThrowIfNull(io);
        io.Ports.Register(Pic8259Pair.MasterPort, Pic8259Pair.PortCount, Pic.Master, "pic master (8259A)");
        io.Ports.Register(Pic8259Pair.SlavePort, Pic8259Pair.PortCount, Pic.Slave, "pic slave (8259A)");
        io.Ports.Register(Pic8259Pair.ElcrPort, 2, Pic.Elcr, "pic elcr");
        io.Ports.Register(Pit8254.BasePort, Pit8254.PortCount, Pit, "pit (8254)");
        io.Ports.Register(Pit8254.PortBPort, 1, Pit.PortB, "port b (pit gate 2, speaker)");
        io.Mmio.Register(IoApic.DefaultBaseAddress, IoApic.MmioSize, IoApic, "ioapic");
    }

    public IVcpu CreateVcpu(int index) => CreateEmulatorVcpu(index);

    /// <summary>Creates vCPU <paramref name="index"/> with its local APIC (APIC ID = index; vCPU 0 is the BSP).</summary>
    public EmulatorVcpu CreateEmulatorVcpu(int index)
    {
        var memory = _memory ?? throw new InvalidOperationException("Map guest memory before creating vCPUs.");
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, _cpuCount);
        var platform = new EmulatorPlatform(_time);
        var apic = new LocalApic(ApicBus, (byte)index, index == 0, _time, platform.ReadTsc, EmulatorPlatform.TscFrequency, ApicTimerFrequency, physicalAddressBits: 46);
        apic.ConfigureVirtualWire();
        var fabric = new LocalFabric(apic, index == 0 ? Pit : null);
        platform.Apic = fabric;
        var cpuid = new CpuidModel(EmulatorPlatform.TscFrequency, ApicTimerFrequency, (uint)index, (uint)_cpuCount, tscDeadline: true);
        var vcpu = new EmulatorVcpu(index, memory, fabric, platform, cpuid);
        lock (_vcpus)
        {
            _vcpus.Add(vcpu);
        }

        return vcpu;
    }

    /// <summary>
    /// Captures the interrupt fabric: the 8259 pair, the IOAPIC, the PIT and each vCPU's local APIC (in vCPU order;
    /// the router and the APIC bus hold no state of their own). Call it with the vCPUs paused.
    /// </summary>
    public EmulatorPlatformState SaveState()
    {
        LocalApicState[] apics;
        lock (_vcpus)
        {
            apics = new LocalApicState[_vcpus.Count];
            for (int i = 0; i < apics.Length; i++)
            {
                apics[i] = ApicOf(_vcpus[i]).Save();
            }
        }

        return new EmulatorPlatformState(Pic.Save(), IoApic.Save(), Pit.Save(), apics);
    }

    /// <summary>
    /// Loads a state from <see cref="SaveState"/> into this machine, which has the same vCPUs created (their own state
    /// is restored with <see cref="EmulatorVcpu.RestoreState"/>). Timers go on from where they were when saved.
    /// Throws <see cref="SnapshotStateException"/>, leaving the fabric as it was, for a state that does not fit.
    /// </summary>
    public void RestoreState(EmulatorPlatformState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        if (state.Pic?.Master is null || state.Pic.Slave is null || state.IoApic is null || state.Pit is null || state.LocalApics is null)
        {
            throw new SnapshotStateException("The snapshot's interrupt controller state is incomplete: the PIC, IOAPIC, PIT or local APIC state is missing.");
        }

        if (state.LocalApics.Length != _vcpus.Count)
        {
            throw new SnapshotStateException($"The snapshot holds {state.LocalApics.Length} local APICs but this machine has {_vcpus.Count} vCPUs. Restore it with the vCPU count it was saved with.");
        }

        if (Array.IndexOf(state.LocalApics, null) >= 0 || state.Pit.Channels is null || Array.IndexOf(state.Pit.Channels, null) >= 0)
        {
            throw new SnapshotStateException("The snapshot's interrupt controller state is incomplete: a local APIC or PIT counter is missing.");
        }

        var before = SaveState();
        try
        {
            Apply(state);
        }
        catch (ArgumentException e)
        {
            Apply(before);
            throw new SnapshotStateException($"The snapshot's interrupt controller state cannot be restored: {e.Message}");
        }
    }

    public void Dispose()
    {
    }

    // The order keeps the restored pins' edges from being seen again: the IOAPIC and the LAPICs first, then the PIC
    // (whose output the LAPICs' LINT0 follows), then the PIT, which drives IRQ0 to the level the PIC and IOAPIC already hold.
    private void Apply(EmulatorPlatformState state)
    {
        IoApic.Restore(state.IoApic);
        lock (_vcpus)
        {
            for (int i = 0; i < state.LocalApics.Length; i++)
            {
                ApicOf(_vcpus[i]).Restore(state.LocalApics[i]);
            }
        }

        Pic.Restore(state.Pic);
        Pit.Restore(state.Pit);
    }

    private static LocalApic ApicOf(EmulatorVcpu vcpu) =>
        vcpu.LocalApic ?? throw new InvalidOperationException($"vCPU {vcpu.Index} has no local APIC.");

    /// <summary>One vCPU's view of the fabric: its local APIC, and the PIT's timer on the bootstrap processor.</summary>
    private sealed class LocalFabric(LocalApic apic, Pit8254? pit) : IEmulatedInterrupts, ILocalApicRegisters
    {
        public bool HasPendingInterrupt => apic.HasPendingMaskableInterrupt;

        public LocalApic? DirectApic => apic;

        public long NextDeadline => Math.Min(apic.NextDeadline, pit?.NextDeadline ?? long.MaxValue);

        public byte Tpr
        {
            get => apic.Tpr;
            set => apic.Tpr = value;
        }

        public int AcknowledgeInterrupt() => apic.AcknowledgeInterrupt();

        public bool TakeNmi() => apic.TakeNmi();

        public bool TakeInit()
        {
            if (!apic.TakeInit())
            {
                return false;
            }

            apic.InitReset();
            return true;
        }

        public int TakeStartupVector() => apic.TakeStartupVector();

        public void Poll(long nowTimestamp)
        {
            pit?.Poll(nowTimestamp);
            apic.Poll(nowTimestamp);
        }

        public bool IsLocalApicAddress(ulong address) => apic.ContainsAddress(address);

        public void LocalApicRead(ulong address, Span<byte> data) => apic.Read(address - apic.BaseAddress, data);

        public void LocalApicWrite(ulong address, ReadOnlySpan<byte> data) => apic.Write(address - apic.BaseAddress, data);

        public bool TryReadMsr(uint index, out ulong value)
        {
            switch (index)
            {
                case LocalApic.ApicBaseMsrIndex:
                    value = apic.ApicBaseMsr;
                    return true;
                case LocalApic.TscDeadlineMsrIndex:
                    value = apic.TscDeadline;
                    return true;
                default:
                    value = 0;
                    return false;
            }
        }

        public bool TryWriteMsr(uint index, ulong value)
        {
            switch (index)
            {
                case LocalApic.ApicBaseMsrIndex:
                    return apic.TryWriteApicBaseMsr(value);
                case LocalApic.TscDeadlineMsrIndex:
                    apic.TscDeadline = value;
                    return true;
                default:
                    return false;
            }
        }
    }

    /// <summary>Forwards device interrupts to the router and wakes every vCPU so a halted one re-checks its APIC.</summary>
    private sealed class WakingSink(InterruptRouter router, List<EmulatorVcpu> vcpus) : IInterruptSink
    {
        public void SetLevel(uint gsi, bool level)
        {
            router.SetLevel(gsi, level);
            if (level)
            {
                WakeAll();
            }
        }

        public void SignalMsi(ulong address, uint data)
        {
            router.SignalMsi(address, data);
            WakeAll();
        }

        private void WakeAll()
        {
            foreach (var vcpu in vcpus)
            {
                vcpu.Wake();
            }
        }
    }
}
