using System.CommandLine;
using System.Runtime.InteropServices;
using KvmSharp.Api;
using KvmSharp.Vmm.Config;
using KvmSharp.Vmm.Control;

namespace KvmSharp.Cli.Commands;

/// <summary>
/// <c>kvmsharp serve --api-sock PATH</c>: Firecracker's process model. The API socket configures and starts one
/// machine (or <c>--config-file</c> starts it at once); the command ends when the machine does, with <c>run</c>'s exit
/// code, or on SIGTERM/SIGINT.
/// </summary>
internal static class ServeCommand
{
    /// <summary>
    /// Makes the machine host the API drives, given the app (its streams) and the accelerator asked for. The PC machine's
    /// host plugs in here (<c>= (app, accel) =&gt; new PcVmHost(...)</c>); tests put a fake.
    /// </summary>
    internal static Func<CliApp, Accelerator, IVmHost>? HostFactory { get; set; }

    public static Command Create(CliApp app)
    {
        var apiSock = new Option<string?>("--api-sock")
        {
            Description = "The UNIX socket to serve Firecracker's HTTP API on (a stale socket file is replaced).",
            HelpName = "PATH",
        };
        var id = new Option<string>("--id")
        {
            Description = "The instance id GET / reports and log lines carry.",
            DefaultValueFactory = _ => "anonymous-instance",
            HelpName = "ID",
        };
        var configFile = new Option<string?>("--config-file")
        {
            Description = "Firecracker's full-VM JSON (the shape of GET /vm/config): configure and start the machine at once.",
            HelpName = "FILE",
        };
        var accel = AccelOption.Create();
        var noApi = new Option<bool>("--no-api")
        {
            Description = "Serve no API (needs --config-file), as Firecracker's --no-api.",
        };
        var device = DeviceOption.Create();
        var command = new Command("serve", "Run one VM driven by a Firecracker-compatible HTTP API on a UNIX socket.")
        {
            apiSock, id, configFile, accel, noApi, device,
        };
        command.SetAction((parse, token) => Run(app, new ServeArguments(
            parse.GetValue(apiSock),
            parse.GetValue(id)!,
            parse.GetValue(configFile),
            AccelOption.Parse(parse.GetValue(accel)),
            parse.GetValue(noApi),
            parse.GetValue(device)!), token));
        return command;
    }

    internal sealed record ServeArguments(string? ApiSock, string Id, string? ConfigFile, Accelerator Accelerator, bool NoApi, string DevicePath);

    internal static async Task<int> Run(CliApp app, ServeArguments args, CancellationToken token)
    {
        if (args.NoApi ? args.ConfigFile is null : args.ApiSock is null)
        {
            return app.Fail(ExitCodes.UsageError, args.NoApi
                ? "--no-api needs --config-file: without the API nothing would start the machine."
                : "serve needs --api-sock PATH (or --no-api with --config-file).");
        }

        string? configJson = null;
        if (args.ConfigFile is not null)
        {
            try
            {
                configJson = await File.ReadAllTextAsync(args.ConfigFile, token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                return app.Fail(ExitCodes.UsageError, $"Cannot read --config-file '{args.ConfigFile}': {e.Message}");
            }
        }

        using var host = HostFactory is { } factory ? factory(app, args.Accelerator) : app.CreateHost(args.Accelerator, args.DevicePath);
        var options = new ApiServerOptions
        {
            InstanceId = args.Id,
            VmmVersion = CliApp.Version,
            Accelerator = args.Accelerator,
            KvmDevicePath = args.DevicePath,
        };
        ApiServer server;
        try
        {
            server = await ApiServer.StartAsync(args.NoApi ? null : args.ApiSock, host, options, token).ConfigureAwait(false);
        }
        catch (ApiServerException e)
        {
            return app.Fail(ExitCodes.UsageError, e.Message);
        }

        await using (server.ConfigureAwait(false))
        {
            if (configJson is not null)
            {
                try
                {
                    server.ApplyConfiguration(configJson);
                }
                catch (ApiFaultException e)
                {
                    return app.Fail(ExitCodes.UsageError, $"--config-file '{args.ConfigFile}': {e.Message}");
                }
            }

            using var stop = CancellationTokenSource.CreateLinkedTokenSource(token);
            using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Cancel);
            using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, Cancel);
            try
            {
                var exit = await server.MachineEnded.WaitAsync(stop.Token).ConfigureAwait(false);
                return exit.ProcessExitCode;
            }
            catch (OperationCanceledException)
            {
                // SIGTERM or Ctrl-C: end the machine, if any, and wait for it to stop.
                if (server.Vm is { } vm && vm.State != VmRunState.Exited)
                {
                    vm.Stop();
                    try
                    {
                        var exit = await server.MachineEnded.WaitAsync(TimeSpan.FromSeconds(10), CancellationToken.None).ConfigureAwait(false);
                        return exit.ProcessExitCode;
                    }
                    catch (TimeoutException)
                    {
                        return app.Fail(ExitCodes.VmmError, "The machine did not stop within 10 seconds of the signal.");
                    }
                }

                return ExitCodes.Success;
            }

            void Cancel(PosixSignalContext context)
            {
                context.Cancel = true;
                stop.Cancel();
            }
        }
    }
}
