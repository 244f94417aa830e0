using System.Text;
using KvmSharp.Devices.Bus;
using KvmSharp.Hypervisor;
using KvmSharp.Kvm;
using KvmSharp.Vmm.Demo;

namespace KvmSharp.Vmm.Tests;

[Trait(KvmTests.Trait, KvmTests.Kvm)]
public class MachineTests
{
    [Fact]
    public void TwoVcpus_RunConcurrentlyOnTheirOwnThreads_AndBothReport()
    {
        MachineHarness.RequireKvm();
        using var system = KvmSystem.Open();
        var io = new IoDispatcher();
        var device = new ThreadRecordingDevice();
        io.Ports.Register(0x30, 1, device, "report");
        const ulong Flags = 0x20_0000;
        using var machine = MachineHarness.Create(system, MachineHarness.Rendezvous, 2, io, (i, r) =>
        {
            r.Rdi = Flags + ((ulong)i * 4);
            r.Rsi = Flags + ((ulong)(1 - i) * 4);
            return r;
        });

        var exit = MachineHarness.RunWithWatchdog(machine, TestTime.Scaled(TimeSpan.FromSeconds(20)));

        Assert.Equal(MachineExitReason.AllVcpusHalted, exit.Reason);
        Assert.Null(exit.Error);
        Assert.Equal(0, exit.ProcessExitCode);
        Assert.Equal([("vcpu0", (byte)0), ("vcpu1", (byte)1)], device.Writes.OrderBy(w => w.Value));
        Assert.All(exit.VcpuStops, s => Assert.Equal(VcpuStopReason.Halted, s!.Value.Reason));
        Assert.Equal(1u, machine.Memory.Read<uint>(Flags));
        Assert.Equal(1u, machine.Memory.Read<uint>(Flags + 4));
        Assert.All(machine.Vcpus, v => Assert.Equal(1, v.Statistics[ExitKind.PortOut]));
    }

    [Fact]
    public void Stop_KicksEverySpinningVcpu()
    {
        MachineHarness.RequireKvm();
        using var system = KvmSystem.Open();
        var io = new IoDispatcher();
        var device = new ThreadRecordingDevice();
        io.Ports.Register(0x31, 1, device, "started");
        using var machine = MachineHarness.Create(system, MachineHarness.Spin, 2, io);
        int started = 0;
        device.OnWrite = () =>
        {
            if (Interlocked.Increment(ref started) == 2)
            {
                ThreadPool.QueueUserWorkItem(_ =>
                {
                    Thread.Sleep(20);
                    machine.Stop();
                });
            }
        };

        var exit = MachineHarness.RunWithWatchdog(machine, TestTime.Scaled(TimeSpan.FromSeconds(20)));

        Assert.Equal(MachineExitReason.StopRequested, exit.Reason);
        Assert.Equal(2, device.Writes.Count);
        Assert.All(exit.VcpuStops, s => Assert.Equal(VcpuStopReason.Kicked, s!.Value.Reason));
        Assert.All(machine.Vcpus, v => Assert.Equal(0x10_0002UL, v.GetRegisters().Rip));
    }

    [Fact]
    public void DeviceFailure_OnAVcpuThread_StopsTheMachineWithTheError()
    {
        MachineHarness.RequireKvm();
        using var system = KvmSystem.Open();
        var io = new IoDispatcher();
        var device = new ThreadRecordingDevice { OnWrite = () => throw new InvalidOperationException("device exploded") };
        io.Ports.Register(0x31, 1, device, "faulty");
        using var machine = MachineHarness.Create(system, MachineHarness.Spin, 1, io);

        var exit = MachineHarness.RunWithWatchdog(machine, TestTime.Scaled(TimeSpan.FromSeconds(20)));

        Assert.Equal(MachineExitReason.VmmError, exit.Reason);
        Assert.Equal("device exploded", Assert.IsType<InvalidOperationException>(exit.Error).Message);
        Assert.Equal(6, exit.ProcessExitCode);
    }

    [Fact]
    public void DemoGuest_EachVcpuPrintsItsOwnGreeting()
    {
        MachineHarness.RequireKvm();
        using var system = KvmSystem.Open();
        using var output = new MemoryStream();
        using var machine = DemoGuest.Create(system, 2, output);

        var exit = MachineHarness.RunWithWatchdog(machine, TestTime.Scaled(TimeSpan.FromSeconds(20)));

        Assert.Equal(MachineExitReason.AllVcpusHalted, exit.Reason);
        var lines = Encoding.ASCII.GetString(output.ToArray()).Split('\n', StringSplitOptions.RemoveEmptyEntries).Order(StringComparer.Ordinal);
        Assert.Equal(
            ["Hello from vCPU 0 of a KvmSharp guest running on KVM.", "Hello from vCPU 1 of a KvmSharp guest running on KVM."],
            lines);
    }

    [Fact]
    public void Run_Twice_IsRefused()
    {
        MachineHarness.RequireKvm();
        using var system = KvmSystem.Open();
        using var machine = DemoGuest.Create(system, 1, Stream.Null);

        machine.Run();

        Assert.Throws<InvalidOperationException>(() => machine.Run());
    }
}
