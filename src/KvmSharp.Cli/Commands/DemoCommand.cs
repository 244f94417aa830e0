using System.CommandLine;
using KvmSharp.Hypervisor;
using KvmSharp.Kvm;
using KvmSharp.Vmm;
using KvmSharp.Vmm.Demo;

namespace KvmSharp.Cli.Commands;

/// <summary><c>kvmsharp demo</c>: a tiny 64-bit guest per vCPU that prints a greeting over an emulated port.</summary>
internal static class DemoCommand
{
    public static Command Create(CliApp app)
    {
        var device = DeviceOption.Create();
        var cpus = new Option<int>("--cpus")
        {
            Description = "Number of vCPUs (one host thread each).",
            DefaultValueFactory = _ => 1,
            HelpName = "N",
        };
        var stats = new Option<bool>("--stats")
        {
            Description = "Print each vCPU's exit counts (like kvm_stat) when the guest stops.",
        };
        var command = new Command("demo", "Run a small guest on KVM: each vCPU prints a greeting on the debug console port (0xE9) and halts.")
        {
            device,
            cpus,
            stats,
        };
        command.SetAction(parse => Run(app, parse.GetValue(device)!, parse.GetValue(cpus), parse.GetValue(stats)));
        return command;
    }

    private static int Run(CliApp app, string devicePath, int cpuCount, bool showStats)
    {
        if (cpuCount < 1 || cpuCount > 9)
        {
            return app.Fail(ExitCodes.UsageError, $"--cpus {cpuCount} is out of range: the demo runs 1 to 9 vCPUs.");
        }

        KvmSystem system;
        try
        {
            system = KvmSystem.Open(devicePath);
        }
        catch (KvmUnavailableException e)
        {
            return app.Fail(ExitCodes.KvmUnavailable, e.Message);
        }

        using (system)
        {
            int maximum = Math.Max(system.CheckExtension(KvmCapability.MaxVcpus), system.CheckExtension(KvmCapability.NrVcpus));
            if (maximum > 0 && cpuCount > maximum)
            {
                return app.Fail(ExitCodes.UsageError, $"--cpus {cpuCount} is more than this host's KVM allows ({maximum} vCPUs per VM). Use --cpus {maximum} or fewer.");
            }

            using var console = app.GuestConsole();
            Machine machine;
            try
            {
                machine = DemoGuest.Create(system, cpuCount, console);
            }
            catch (KvmException e)
            {
                return app.Fail(ExitCodes.KvmUnavailable, e.Message);
            }

            using (machine)
            {
                ConsoleCancelEventHandler onCancel = (_, e) =>
                {
                    e.Cancel = true;
                    machine.Stop();
                };
                Console.CancelKeyPress += onCancel;
                MachineExit exit;
                try
                {
                    exit = machine.Run();
                }
                finally
                {
                    Console.CancelKeyPress -= onCancel;
                }

                console.Flush();
                if (showStats)
                {
                    PrintStatistics(app.Output, machine.Vcpus);
                }

                return Report(app, exit);
            }
        }
    }

    /// <summary>
    /// The process exit status for <paramref name="exit"/> (<see cref="MachineExit.ProcessExitCode"/>), with one
    /// line on stderr when the guest did not end normally.
    /// </summary>
    internal static int Report(CliApp app, MachineExit exit)
    {
        int code = exit.ProcessExitCode;
        if (exit.GuestExitCode is not null)
        {
            return code;
        }

        return exit.Reason switch
        {
            MachineExitReason.Shutdown => app.Fail(code, "The guest shut down (triple fault)."),
            MachineExitReason.Debug => app.Fail(code, $"The guest stopped at a debug exception ({Describe(exit)}) and no debugger is attached."),
            MachineExitReason.BackendError => app.Fail(code, $"KVM could not run the guest: {Describe(exit)}."),
            MachineExitReason.VmmError => app.Fail(code, $"The VMM failed on a vCPU thread: {exit.Error?.Message ?? "unknown error"}."),
            _ => code,
        };
    }

    private static string Describe(MachineExit exit)
    {
        foreach (var stop in exit.VcpuStops)
        {
            if (stop is { } s && s.Reason is not (VcpuStopReason.Kicked or VcpuStopReason.Halted))
            {
                return s.ToString();
            }
        }

        return exit.Reason.ToString();
    }

    internal static void PrintStatistics(TextWriter o, IReadOnlyList<IVcpu> vcpus)
    {
        o.WriteLine();
        o.Write($"{"exit",-16}");
        foreach (var v in vcpus)
        {
            o.Write($"{"vcpu" + v.Index,10}");
        }

        o.WriteLine();
        foreach (var kind in Enum.GetValues<ExitKind>())
        {
            long total = 0;
            foreach (var v in vcpus)
            {
                total += v.Statistics[kind];
            }

            if (total == 0)
            {
                continue;
            }

            o.Write($"{kind,-16}");
            foreach (var v in vcpus)
            {
                o.Write($"{v.Statistics[kind],10}");
            }

            o.WriteLine();
        }
    }
}
