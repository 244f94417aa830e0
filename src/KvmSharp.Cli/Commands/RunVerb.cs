using System.Diagnostics;
using System.Globalization;
using KvmSharp.Api;
using KvmSharp.Boot;
using KvmSharp.Devices.Virtio;
using KvmSharp.Emulator.Backend;
using KvmSharp.Kvm;
using KvmSharp.Native;
using KvmSharp.Vmm;
using KvmSharp.Vmm.Config;
using KvmSharp.Vmm.Console;
using KvmSharp.Vmm.Control;
using KvmSharp.Vmm.Net;
using KvmSharp.Vmm.Pc;

namespace KvmSharp.Cli.Commands;

/// <summary>What <c>kvmsharp run</c> does once its options are parsed.</summary>
internal static class RunVerb
{
    private const int StdinFd = 0;

    public static int Run(CliApp app, VmConfig config, bool showStats, string? apiSock = null)
    {
        try
        {
            VmConfigValidator.Validate(config, VmConfigValidator.HostMemoryBytes());
        }
        catch (VmConfigException e)
        {
            return app.Fail(ExitCodes.UsageError, e.Message);
        }

        // A kernel in no bootable format is the user's input error, whatever the host has: say so before the
        // accelerator is chosen or /dev/kvm is opened. The files are read once, here.
        PcBootFiles? files;
        try
        {
            files = PcMachineBuilder.ReadBootFiles(config, TimeProvider.System);
        }
        catch (BootImageException e)
        {
            return app.Fail(ExitCodes.UsageError, e.Message);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return app.Fail(ExitCodes.UsageError, $"Cannot read the kernel or initrd: {e.Message}");
        }

        // The machine build copies the kernel and initrd into guest memory; after that the VMM keeps no copy (the closures
        // below would otherwise hold the bytes for the whole run: 53 MB for the default vmlinux).
        PcBootFiles TakeFiles()
        {
            var taken = files ?? throw new InvalidOperationException("The kernel and initrd were already loaded.");
            files = null;
            return taken;
        }

        long bootFileBytes = files.Request.Kernel.LongLength + (files.Request.Initrd?.LongLength ?? 0);

        // --api-sock: the socket is opened before the machine is built, so a bad path fails at once.
        ApiServer? server = null;
        PcVmHost? host = null;
        if (apiSock is not null)
        {
            host = new PcVmHost(new PcVmHostOptions
            {
                ConsoleOutput = Stream.Null,
                Report = message => app.Error.WriteLine($"kvmsharp: {message}"),
                SnapshotProgress = app.SnapshotProgress,
            });
            try
            {
                server = ApiServer.StartAsync(apiSock, host, new ApiServerOptions
                {
                    VmmVersion = CliApp.Version,
                    Accelerator = config.Accelerator,
                    KvmDevicePath = config.KvmDevicePath,
                }).GetAwaiter().GetResult();
            }
            catch (ApiServerException e)
            {
                host.Dispose();
                return app.Fail(ExitCodes.UsageError, e.Message);
            }
        }

        try
        {
            return OpenAndRun(app, config, showStats, bootFileBytes, TakeFiles, server, host);
        }
        finally
        {
            host?.Dispose();
            server?.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
    }

    private static int OpenAndRun(CliApp app, VmConfig config, bool showStats, long bootFileBytes, Func<PcBootFiles> takeFiles, ApiServer? server, PcVmHost? host)
    {

        KvmSystem? system;
        try
        {
            system = OpenAccelerator(app, config);
        }
        catch (KvmUnavailableException e)
        {
            return app.Fail(ExitCodes.KvmUnavailable, e.Message);
        }

        if (system is null)
        {
            return RunMachine(app, config, showStats, bootFileBytes, output => PcMachineBuilder.BuildOnEmulator(config, takeFiles(), output, TimeProvider.System), server, host);
        }

        using (system)
        {
            int maxVcpus = Math.Max(system.CheckExtension(KvmCapability.MaxVcpus), system.CheckExtension(KvmCapability.NrVcpus));
            if (maxVcpus > 0 && config.Cpus > maxVcpus)
            {
                return app.Fail(ExitCodes.UsageError, $"--cpus {config.Cpus} is more than this host's KVM allows ({maxVcpus} vCPUs per VM).");
            }

            return RunMachine(app, config, showStats, bootFileBytes, output => PcMachineBuilder.Build(system, config, takeFiles(), output, TimeProvider.System), server, host);
        }
    }

    /// <summary>Boot files from this size up are worth an aggressive collection once they are in guest memory.</summary>
    private const long LargeBootFiles = 4L << 20;

    private static int RunMachine(CliApp app, VmConfig config, bool showStats, long bootFileBytes, Func<Stream, PcMachine> build, ApiServer? server, PcVmHost? host)
    {
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
                pc = build(consoleOutput);
            }
            catch (BootImageException e)
            {
                return app.Fail(ExitCodes.UsageError, e.Message);
            }
            catch (BlockImageException e)
            {
                return app.Fail(ExitCodes.UsageError, e.Message);
            }
            catch (NetworkBackendException e)
            {
                return app.Fail(ExitCodes.UsageError, e.Message);
            }
            catch (KvmException e)
            {
                return app.Fail(ExitCodes.KvmUnavailable, e.Message);
            }

            // The kernel and initrd arrays (large-object heap: 55 MB for the default vmlinux guest) are garbage now. Collect
            // once, aggressively, before the guest runs: a plain collection frees them but leaves their pages resident, and
            // measured at the default guest's shell the VMM then carried 107 MiB outside guest RAM instead of 60. It costs
            // 2-3 ms, which a small kernel's start-to-exit time would notice and its few pages do not repay.
            if (bootFileBytes >= LargeBootFiles)
            {
                GC.Collect(2, GCCollectionMode.Aggressive, blocking: true, compacting: true);
            }

            using (pc)
            {
                Func<MachineExit> run = pc.Machine.Run;
                if (server is not null && host is not null)
                {
                    // The API drives this machine from its own threads; it runs here, and the API sees it end.
                    var attached = host.Attach(pc);
                    server.AttachRunning(attached);
                    run = attached.RunHere;
                }

                var runTime = Stopwatch.StartNew();
                var exit = RunWithConsole(app, config, pc, run);
                runTime.Stop();
                pc.Serial.Flush();
                consoleOutput.Flush();
                if (showStats)
                {
                    DemoCommand.PrintStatistics(app.Output, pc.Machine.Vcpus);
                    app.Output.WriteLine(pc.BootTimer.BootTime is { } t
                        ? $"guest boot time {t.TotalMilliseconds:0.0} ms (from VMM start to the boot timer marker)"
                        : "guest boot time: the guest wrote no boot marker");
                    foreach (var vcpu in pc.Machine.Vcpus)
                    {
                        if (vcpu is EmulatorVcpu emulated)
                        {
                            app.Output.WriteLine(EmulatorSpeedLine(emulated, runTime.Elapsed));
                        }
                    }

                    foreach (string line in pc.Virtio.StatisticsLines())
                    {
                        app.Output.WriteLine(line);
                    }
                }

                return DemoCommand.Report(app, exit);
            }
        }
    }

    /// <summary>
    /// "vcpu0: N guest instructions in R s running (H s halted), M MIPS": the software CPU's speed over the time it was
    /// not waiting in HLT, which is what an instruction rate means.
    /// </summary>
    internal static string EmulatorSpeedLine(EmulatorVcpu vcpu, TimeSpan wall)
    {
        var running = wall - vcpu.HaltedTime;
        double mips = running > TimeSpan.Zero ? vcpu.InstructionsRetired / running.TotalSeconds / 1e6 : 0;
        return string.Create(CultureInfo.InvariantCulture,
            $"vcpu{vcpu.Index}: {vcpu.InstructionsRetired:N0} guest instructions in {running.TotalSeconds:0.00} s running ({vcpu.HaltedTime.TotalSeconds:0.00} s halted), {mips:0.0} MIPS");
    }

    private static MachineExit RunWithConsole(CliApp app, VmConfig config, PcMachine pc, Func<MachineExit> run)
    {
        // Host input goes to the serial port, or with --console virtio to the guest's hvc0.
        bool stdio = config.Console is ConsoleKind.Stdio or ConsoleKind.Virtio;
        var virtioConsole = pc.Virtio.Console;
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
                    bytes => virtioConsole is null ? pc.Serial.Enqueue(bytes.Span) : virtioConsole.Enqueue(bytes.Span),
                    pc.Machine.Stop,
                    message => app.Error.WriteLine($"\r\nkvmsharp: {message}\r"));
                pump.Start();
            }

            return run();
        }
        finally
        {
            pump?.Dispose();
            terminal?.Dispose();
            Console.CancelKeyPress -= onCancel;
        }
    }

    private static KvmSystem? OpenAccelerator(CliApp app, VmConfig config) =>
        AcceleratorSelector.Open(config.Accelerator, config.KvmDevicePath, message => app.Error.WriteLine($"kvmsharp: {message}"));
}
