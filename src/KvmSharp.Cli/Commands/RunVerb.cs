using KvmSharp.Boot;
using KvmSharp.Kvm;
using KvmSharp.Native;
using KvmSharp.Vmm;
using KvmSharp.Vmm.Config;
using KvmSharp.Vmm.Console;
using KvmSharp.Vmm.Pc;

namespace KvmSharp.Cli.Commands;

/// <summary>What <c>kvmsharp run</c> does once its options are parsed.</summary>
internal static class RunVerb
{
    private const int StdinFd = 0;

    public static int Run(CliApp app, VmConfig config, bool showStats)
    {
        try
        {
            VmConfigValidator.Validate(config, VmConfigValidator.HostMemoryBytes());
        }
        catch (VmConfigException e)
        {
            return app.Fail(ExitCodes.UsageError, e.Message);
        }

        KvmSystem system;
        try
        {
            system = KvmSystem.Open(config.KvmDevicePath);
        }
        catch (KvmUnavailableException e)
        {
            return app.Fail(ExitCodes.KvmUnavailable, e.Message);
        }

        using (system)
        {
            int maxVcpus = Math.Max(system.CheckExtension(KvmCapability.MaxVcpus), system.CheckExtension(KvmCapability.NrVcpus));
            if (maxVcpus > 0 && config.Cpus > maxVcpus)
            {
                return app.Fail(ExitCodes.UsageError, $"--cpus {config.Cpus} is more than this host's KVM allows ({maxVcpus} vCPUs per VM).");
            }

            if (config.Accelerator == Accelerator.Auto)
            {
                ExplainAutoChoice(app, config);
            }

            Stream consoleOutput;
            try
            {
                consoleOutput = config.Console == ConsoleKind.File
                    ? new FileStream(config.ConsolePath!, FileMode.Append, FileAccess.Write, FileShare.Read)
                    : app.GuestConsole();
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                return app.Fail(ExitCodes.UsageError, $"Cannot open console file '{config.ConsolePath}': {e.Message}");
            }

            using (consoleOutput)
            {
                PcMachine pc;
                try
                {
                    pc = PcMachineBuilder.Build(system, config, consoleOutput, TimeProvider.System);
                }
                catch (BootImageException e)
                {
                    return app.Fail(ExitCodes.UsageError, e.Message);
                }
                catch (KvmException e)
                {
                    return app.Fail(ExitCodes.KvmUnavailable, e.Message);
                }

                using (pc)
                {
                    var exit = RunWithConsole(app, config, pc);
                    pc.Serial.Flush();
                    consoleOutput.Flush();
                    if (showStats)
                    {
                        DemoCommand.PrintStatistics(app.Output, pc.Machine.Vcpus);
                        app.Output.WriteLine(pc.BootTimer.BootTime is { } t
                            ? $"guest boot time {t.TotalMilliseconds:0.0} ms (from VMM start to the boot timer marker)"
                            : "guest boot time: the guest wrote no boot marker");
                    }

                    return DemoCommand.Report(app, exit);
                }
            }
        }
    }

    private static MachineExit RunWithConsole(CliApp app, VmConfig config, PcMachine pc)
    {
        bool stdio = config.Console == ConsoleKind.Stdio;
        bool interactive = stdio && Terminal.IsTerminal(StdinFd);
        Terminal? terminal = null;
        ConsoleInputPump? pump = null;
        ConsoleCancelEventHandler onCancel = (_, e) =>
        {
            e.Cancel = true;
            pc.Machine.Stop();
        };
        Console.CancelKeyPress += onCancel;
        try
        {
            if (interactive)
            {
                terminal = Terminal.EnterRawMode(StdinFd);
                app.Error.WriteLine("kvmsharp: console on this terminal; Ctrl-A X quits, Ctrl-A H lists the keys.");
            }

            if (stdio)
            {
                pump = new ConsoleInputPump(
                    StdinFd,
                    interactive,
                    bytes => pc.Serial.Enqueue(bytes.Span),
                    pc.Machine.Stop,
                    message => app.Error.WriteLine($"\r\nkvmsharp: {message}\r"));
                pump.Start();
            }

            return pc.Machine.Run();
        }
        finally
        {
            pump?.Dispose();
            terminal?.Dispose();
            Console.CancelKeyPress -= onCancel;
        }
    }

    private static void ExplainAutoChoice(CliApp app, VmConfig config)
    {
        var host = KvmHostInfo.Detect();
        if (host.Module == KvmModuleKind.Pvm)
        {
            app.Error.WriteLine(
                "kvmsharp: using KVM (kvm_pvm): guest kernel code is emulated by KVM here, ~1000x slower than on VT-x/SVM; a stock Linux kernel will not finish booting under it.");
        }
        else if (host.Module != KvmModuleKind.Unknown)
        {
            app.Error.WriteLine($"kvmsharp: using KVM ({host.Describe()}).");
        }
    }
}
