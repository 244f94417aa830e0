using KvmSharp.Boot;
using KvmSharp.Devices.Bus;
using KvmSharp.Emulator.Backend;
using KvmSharp.Hypervisor;
using KvmSharp.Kvm;
using KvmSharp.Memory;

namespace KvmSharp.Vmm.Tests;

/// <summary>Machine.Pause parks every vCPU outside the guest; RunOnVcpu reaches a parked vCPU; Resume lets it go on.</summary>
public class MachinePauseTests
{
    private const ulong Counter = 0x20_0000;

    // count.S: 1: incq (%rdi); jmp 1b
    private static readonly byte[] Count = [0x48, 0xff, 0x07, 0xeb, 0xfb];

    [Fact]
    public void Emulator_PauseStopsTheCounter_ResumeRestartsIt() => PauseAndResume(null);

    [Fact]
    [Trait(KvmTests.Trait, KvmTests.Kvm)]
    public void Kvm_PauseStopsTheCounter_ResumeRestartsIt()
    {
        MachineHarness.RequireKvm();
        using var system = KvmSystem.Open();
        PauseAndResume(system);
    }

    [Fact]
    public void StartPaused_NoVcpuRunsUntilResume()
    {
        using var machine = CreateOnEmulator(2);
        machine.StartPaused();
        var run = Runner.Start(machine);
        Thread.Sleep(200);
        Assert.Equal(0UL, machine.Memory.Read<ulong>(Counter));
        Assert.Equal(MachineHarness.CodeAddress, machine.RunOnVcpu(1, v => v.GetRegisters().Rip));
        machine.Resume();
        WaitFor(() => machine.Memory.Read<ulong>(Counter) > 0);
        machine.Stop();
        Assert.Equal(MachineExitReason.StopRequested, run.Join().Reason);
    }

    [Fact]
    public void RunOnVcpu_WhileRunning_IsRefused_AndPauseAfterTheEndThrows()
    {
        using var machine = CreateOnEmulator(1);
        var run = Runner.Start(machine);
        WaitFor(() => machine.Memory.Read<ulong>(Counter) > 0);
        var refused = Assert.Throws<InvalidOperationException>(() => machine.RunOnVcpu(0, v => v.GetRegisters().Rip));
        Assert.Contains("paused", refused.Message, StringComparison.Ordinal);
        machine.Stop();
        run.Join();
        Assert.Throws<InvalidOperationException>(machine.Pause);
    }

    private static void PauseAndResume(KvmSystem? system)
    {
        using var machine = system is null ? CreateOnEmulator(2) : CreateOnKvm(system, 2);
        var run = Runner.Start(machine);
        WaitFor(() => machine.Memory.Read<ulong>(Counter) > 1000);

        machine.Pause();
        Assert.True(machine.IsPaused);
        ulong paused = machine.Memory.Read<ulong>(Counter);
        Thread.Sleep(100);
        Assert.Equal(paused, machine.Memory.Read<ulong>(Counter));
        for (int i = 0; i < 2; i++)
        {
            // Parked between instructions of the loop: at the incq or the jmp, on each vCPU's own thread.
            var (rip, thread) = machine.RunOnVcpu(i, v => (v.GetRegisters().Rip, Thread.CurrentThread.Name));
            Assert.Contains(rip, new[] { MachineHarness.CodeAddress, MachineHarness.CodeAddress + 3 });
            Assert.Equal($"vcpu{i}", thread);
        }

        machine.Pause();
        machine.Resume();
        Assert.False(machine.IsPaused);
        WaitFor(() => machine.Memory.Read<ulong>(Counter) > paused + 1000);
        machine.Stop();
        Assert.Equal(MachineExitReason.StopRequested, run.Join().Reason);
    }

    private static Machine CreateOnEmulator(int vcpuCount)
    {
        var vm = new EmulatorVirtualMachine(vcpuCount, TimeProvider.System);
        var memory = GuestMemory.Create(4 * 1024 * 1024);
        vm.MapMemory(memory);
        var io = new IoDispatcher();
        vm.RegisterDevices(io);
        var vcpus = new List<IVcpu>();
        Prepare(memory);
        for (int i = 0; i < vcpuCount; i++)
        {
            var vcpu = vm.CreateEmulatorVcpu(i);
            vcpu.SetSystemRegisters(X86InitialState.LongMode(vcpu.GetSystemRegisters()));
            vcpu.SetRegisters(Registers(i));
            vcpus.Add(vcpu);
        }

        return new Machine(vm, memory, vcpus, io);
    }

    private static Machine CreateOnKvm(KvmSystem system, int vcpuCount)
    {
        var vm = system.CreateVm();
        var memory = GuestMemory.Create(4 * 1024 * 1024);
        vm.MapMemory(memory);
        Prepare(memory);
        var vcpus = new List<IVcpu>();
        for (int i = 0; i < vcpuCount; i++)
        {
            var vcpu = vm.CreateVcpu(i);
            vcpu.SetSystemRegisters(X86InitialState.LongMode(vcpu.GetSystemRegisters()));
            vcpu.SetRegisters(Registers(i));
            vcpus.Add(vcpu);
        }

        return new Machine(vm, memory, vcpus, new IoDispatcher());
    }

    private static void Prepare(GuestMemory memory)
    {
        X86InitialState.WriteTables(memory, mappedGiB: 1);
        memory.Write(MachineHarness.CodeAddress, Count);
    }

    // Both vCPUs count in the same word; the increments race, which does not matter here: only "does it move" does.
    private static X86Registers Registers(int i) => new()
    {
        Rip = MachineHarness.CodeAddress,
        Rflags = X86Registers.FlagsReserved,
        Rdi = Counter,
        Rsp = 0x30_0000 - ((ulong)i * 0x1000),
    };

    private static void WaitFor(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow + TestTime.Scaled(TimeSpan.FromSeconds(20));
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "timed out waiting for the guest");
            Thread.Sleep(5);
        }
    }

    /// <summary>Machine.Run on a thread of its own, as the control API runs it.</summary>
    private sealed class Runner
    {
        private readonly Thread _thread;
        private MachineExit? _exit;

        private Runner(Machine machine)
        {
            _thread = new Thread(() => _exit = machine.Run()) { IsBackground = true };
        }

        public static Runner Start(Machine machine)
        {
            var runner = new Runner(machine);
            runner._thread.Start();
            return runner;
        }

        public MachineExit Join()
        {
            Assert.True(_thread.Join(TestTime.Scaled(TimeSpan.FromSeconds(10))), "the machine did not stop");
            return _exit!;
        }
    }
}
