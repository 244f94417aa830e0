using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using KvmSharp.Hypervisor;
using KvmSharp.Kvm.Tests;

namespace KvmSharp.Benchmarks;

/// <summary>
/// Round-trip cost of one PIO and one MMIO exit through <see cref="Kvm.KvmVcpu.Run"/> with a do-nothing
/// handler: each invocation runs N exits of Guests/exitloop.S (at CPL3 when KVM allows it) and a HLT.
/// </summary>
[MemoryDiagnoser]
[Config(typeof(ExitBenchmarkConfig))]
public class ExitBenchmarks
{
    public const int N = 10_000;

    private readonly NothingAttachedIo _io = new();
    private ExitLoopMachine? _machine;

    [GlobalSetup]
    public void Setup()
    {
        _machine = ExitLoopMachine.Create();
        Console.WriteLine(_machine.Cpl == 3
            ? "// exit loop runs at CPL3"
            : "// exit loop runs at CPL0: KVM refused CPL3, so the loop instructions are emulated under PVM");
    }

    [GlobalCleanup]
    public void Cleanup() => _machine?.Dispose();

    [Benchmark(OperationsPerInvoke = N)]
    public VcpuStopReason PioExit() => RunLoop(ExitLoopMachine.PioLoop);

    [Benchmark(OperationsPerInvoke = N)]
    public VcpuStopReason MmioExit() => RunLoop(ExitLoopMachine.MmioLoop);

    private VcpuStopReason RunLoop(ulong entry)
    {
        var machine = _machine!;
        machine.Reset(entry, N);
        var stop = machine.Vcpu.Run(_io);
        if (stop.Reason != VcpuStopReason.Halted)
        {
            ThrowUnexpectedStop(stop);
        }

        return stop.Reason;
    }

    private static void ThrowUnexpectedStop(VcpuStop stop) => throw new InvalidOperationException($"The exit loop stopped with {stop} instead of halting.");
}

/// <summary>
/// An invocation is N exits (tens of milliseconds), so one invocation per unroll and few iterations: the
/// default unroll factor of 16 would make each iteration seconds long.
/// </summary>
public sealed class ExitBenchmarkConfig : ManualConfig
{
    public ExitBenchmarkConfig()
    {
        AddJob(Job.Default.WithUnrollFactor(1).WithWarmupCount(3).WithIterationCount(10));
    }
}
