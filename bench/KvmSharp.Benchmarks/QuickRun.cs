using System.Diagnostics;
using System.Globalization;
using KvmSharp.Hypervisor;
using KvmSharp.Kvm.Tests;

namespace KvmSharp.Benchmarks;

/// <summary>
/// `--quick`: the same measurement as bench/native/exit_loop.c, in the same output format, in seconds:
/// one warm-up run, then the median of 5 runs of N exits, and the bytes allocated per exit.
/// </summary>
internal static class QuickRun
{
    private const int Runs = 5;

    public static int Run(string[] args)
    {
        int n = ExitBenchmarks.N;
        bool userMode = true;
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--quick":
                    break;
                case "--cpl0":
                    userMode = false;
                    break;
                case "-n" when i + 1 < args.Length && int.TryParse(args[i + 1], CultureInfo.InvariantCulture, out n) && n > 0:
                    i++;
                    break;
                default:
                    Console.Error.WriteLine($"Unknown or invalid argument '{args[i]}'. Usage: KvmSharp.Benchmarks --quick [--cpl0] [-n N]");
                    return 2;
            }
        }

        using var machine = ExitLoopMachine.Create(userMode);
        if (userMode && machine.Cpl != 3)
        {
            Console.Error.WriteLine("KvmSharp.Benchmarks: KVM did not run the loop at CPL3; falling back to CPL0 (emulated under PVM)");
        }

        var io = new NothingAttachedIo();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"cpl={machine.Cpl} n={n} runs={Runs}"));
        Print("pio", Measure(machine, io, ExitLoopMachine.PioLoop, n, ExitKind.PortOut));
        Print("mmio", Measure(machine, io, ExitLoopMachine.MmioLoop, n, ExitKind.MmioWrite));
        return 0;
    }

    private static (double NsPerExit, double BytesPerExit) Measure(ExitLoopMachine machine, IVcpuIo io, ulong entry, int n, ExitKind kind)
    {
        var vcpu = machine.Vcpu;
        Span<double> samples = stackalloc double[Runs];
        long allocated = 0;
        for (int run = -1; run < Runs; run++)
        {
            // run == -1 is the warm-up: JIT, tiering, first-touch of the kvm_run page.
            long exitsBefore = vcpu.Statistics[kind];
            long bytesBefore = GC.GetAllocatedBytesForCurrentThread();
            long start = Stopwatch.GetTimestamp();
            machine.Reset(entry, (ulong)n);
            var stop = vcpu.Run(io);
            long elapsed = Stopwatch.GetTimestamp() - start;
            long bytes = GC.GetAllocatedBytesForCurrentThread() - bytesBefore;
            long exits = vcpu.Statistics[kind] - exitsBefore;
            if (stop.Reason != VcpuStopReason.Halted || exits != n)
            {
                throw new InvalidOperationException($"The exit loop stopped with {stop} after {exits} exits, not halted after {n}.");
            }

            if (run >= 0)
            {
                samples[run] = elapsed * (1e9 / Stopwatch.Frequency) / n;
                allocated += bytes;
            }
        }

        samples.Sort();
        return (samples[Runs / 2], allocated / ((double)Runs * n));
    }

    private static void Print(string kind, (double NsPerExit, double BytesPerExit) result)
        => Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{kind} ns/exit={result.NsPerExit:F1} bytes/exit={result.BytesPerExit:0.###}"));
}
