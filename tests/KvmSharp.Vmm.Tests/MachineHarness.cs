using KvmSharp.Boot;
using KvmSharp.Devices.Bus;
using KvmSharp.Hypervisor;
using KvmSharp.Kvm;
using KvmSharp.Memory;

namespace KvmSharp.Vmm.Tests;

internal static class MachineHarness
{
    public const ulong CodeAddress = 0x10_0000;

    // rendezvous.S: movl $1,(%rdi); 1: pause; cmpl $0,(%rsi); je 1b; mov %bl,%al; out %al,$0x30; hlt
    public static readonly byte[] Rendezvous = [0xc7, 0x07, 0x01, 0x00, 0x00, 0x00, 0xf3, 0x90, 0x83, 0x3e, 0x00, 0x74, 0xf9, 0x88, 0xd8, 0xe6, 0x30, 0xf4];

    // spin.S: out %al,$0x31; 1: jmp 1b
    public static readonly byte[] Spin = [0xe6, 0x31, 0xeb, 0xfe];

    public static void RequireKvm() => KvmTests.Require();

    /// <summary>A 64-bit KVM machine running <paramref name="code"/> on every vCPU; <paramref name="setup"/> adjusts each vCPU's registers.</summary>
    public static Machine Create(KvmSystem system, byte[] code, int vcpuCount, IoDispatcher io, Func<int, X86Registers, X86Registers>? setup = null)
    {
        var vm = system.CreateVm();
        var memory = GuestMemory.Create(4 * 1024 * 1024);
        vm.MapMemory(memory);
        X86InitialState.WriteTables(memory, mappedGiB: 1);
        memory.Write(CodeAddress, code);
        var vcpus = new List<IVcpu>();
        for (int i = 0; i < vcpuCount; i++)
        {
            var vcpu = vm.CreateVcpu(i);
            vcpu.SetSystemRegisters(X86InitialState.LongMode(vcpu.GetSystemRegisters()));
            var regs = new X86Registers { Rip = CodeAddress, Rflags = X86Registers.FlagsReserved, Rbx = (ulong)i, Rsp = 0x30_0000 - ((ulong)i * 0x1000) };
            vcpu.SetRegisters(setup is null ? regs : setup(i, regs));
            vcpus.Add(vcpu);
        }

        return new Machine(vm, memory, vcpus, io);
    }

    /// <summary>Runs the machine with a watchdog that stops it after <paramref name="timeout"/>.</summary>
    public static MachineExit RunWithWatchdog(Machine machine, TimeSpan timeout)
    {
        using var watchdog = new Timer(_ => machine.Stop(), null, timeout, Timeout.InfiniteTimeSpan);
        return machine.Run();
    }
}

/// <summary>A port device that records which thread wrote what.</summary>
internal sealed class ThreadRecordingDevice : IBusDevice
{
    private readonly Lock _lock = new();

    public List<(string? Thread, byte Value)> Writes { get; } = [];

    public Action? OnWrite { get; set; }

    public void Read(ulong offset, Span<byte> data) => data.Fill(0);

    public void Write(ulong offset, ReadOnlySpan<byte> data)
    {
        lock (_lock)
        {
            Writes.Add((Thread.CurrentThread.Name, data[0]));
        }

        OnWrite?.Invoke();
    }
}
