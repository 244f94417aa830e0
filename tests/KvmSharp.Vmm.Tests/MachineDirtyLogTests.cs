using KvmSharp.Boot;
using KvmSharp.Devices.Bus;
using KvmSharp.Emulator.Backend;
using KvmSharp.Hypervisor;
using KvmSharp.Kvm;
using KvmSharp.Memory;
using KvmSharp.Vmm.Migration;

namespace KvmSharp.Vmm.Tests;

/// <summary>
/// <see cref="MachineDirtyLog"/> on both backends: a guest that stores to known pages and halts; the log reports
/// exactly those pages and the paging structures the walks set accessed/dirty bits in, then nothing more.
/// </summary>
public sealed class MachineDirtyLogTests
{
    // mov byte [0x200000], 1; mov byte [0x203000], 1; mov [0x205ffc], rax (across 0x205000/0x206000); hlt
    private static readonly byte[] Stores =
    [
        0xC6, 0x04, 0x25, 0x00, 0x00, 0x20, 0x00, 0x01,
        0xC6, 0x04, 0x25, 0x00, 0x30, 0x20, 0x00, 0x01,
        0x48, 0x89, 0x04, 0x25, 0xFC, 0x5F, 0x20, 0x00,
        0xF4,
    ];

    private static readonly ulong[] Expected =
        [X86InitialState.Pml4Address, X86InitialState.PdptAddress, X86InitialState.PdBaseAddress, 0x20_0000, 0x20_3000, 0x20_5000, 0x20_6000];

    [Fact]
    public void Emulator_ReportsExactlyTheWrittenPages()
    {
        var vm = new EmulatorVirtualMachine(1, TimeProvider.System);
        var memory = GuestMemory.Create(4 * 1024 * 1024);
        vm.MapMemory(memory);
        var io = new IoDispatcher();
        vm.RegisterDevices(io);
        Prepare(memory);
        var vcpu = vm.CreateEmulatorVcpu(0);
        vcpu.SetSystemRegisters(X86InitialState.LongMode(vcpu.GetSystemRegisters()));
        vcpu.SetRegisters(Registers);
        using var machine = new Machine(vm, memory, [vcpu], io);
        RunAndCheck(machine);
    }

    [Fact]
    [Trait(KvmTests.Trait, KvmTests.Kvm)]
    public void Kvm_ReportsExactlyTheWrittenPages()
    {
        MachineHarness.RequireKvm();
        using var system = KvmSystem.Open();
        var vm = system.CreateVm();
        var memory = GuestMemory.Create(4 * 1024 * 1024);
        vm.MapMemory(memory);
        Prepare(memory);
        var vcpu = vm.CreateVcpu(0);
        vcpu.SetSystemRegisters(X86InitialState.LongMode(vcpu.GetSystemRegisters()));
        vcpu.SetRegisters(Registers);
        using var machine = new Machine(vm, memory, [vcpu], new IoDispatcher());
        RunAndCheck(machine, alsoAllowed: MachineHarness.CodeAddress);
    }

    private static X86Registers Registers => new() { Rip = MachineHarness.CodeAddress, Rflags = X86Registers.FlagsReserved, Rsp = 0x30_0000 };

    private static void Prepare(GuestMemory memory)
    {
        X86InitialState.WriteTables(memory, mappedGiB: 1);
        memory.Write(MachineHarness.CodeAddress, Stores);
    }

    /// <param name="alsoAllowed">
    /// A page the log may report besides <see cref="Expected"/>: KVM under QEMU's emulated SVM (the nested KVM host)
    /// also reports the page of the running code, which the guest never writes (the VMM's own log has nothing there;
    /// seen 2026-12-07, cause in KVM not found). Over-reporting costs a migration one page; missing one would lose it.
    /// </param>
    private static void RunAndCheck(Machine machine, ulong? alsoAllowed = null)
    {
        using var log = new MachineDirtyLog(machine);
        log.Start();

        Assert.Equal(MachineExitReason.AllVcpusHalted, MachineHarness.RunWithWatchdog(machine, TestTime.Scaled(TimeSpan.FromSeconds(30))).Reason);

        var bitmaps = log.CreateBitmaps();
        log.Collect(bitmaps);
        var reported = Assert.Single(bitmaps).DirtyPageAddresses();
        Assert.Equal(Expected, reported.Where(page => page != alsoAllowed));
        var again = log.CreateBitmaps();
        log.Collect(again);
        Assert.Empty(again[0].DirtyPageAddresses());
        Assert.Equal(1, machine.Memory.Read<byte>(0x20_3000));
    }
}
