using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace KvmSharp.Cli.Commands;

/// <summary>
/// <c>kvmsharp ctl --api-sock PATH status|pause|resume|snapshot DIR|stats [--watch]</c>: a client of a running VMM's API
/// (<c>kvmsharp serve</c> or <c>kvmsharp run --api-sock</c>; Firecracker's requests, so it drives either).
/// </summary>
internal static class CtlCommand
{
    public static Command Create(CliApp app)
    {
        var socket = new Option<string>("--api-sock")
        {
            Description = "The VMM's API socket.",
            Required = true,
            HelpName = "PATH",
            Recursive = true,
        };
        var command = new Command("ctl", "Control a running VMM through its API socket: status, pause, resume, snapshot, stats.") { socket };

        var status = new Command("status", "Print the instance's id, state and version (GET /).");
        status.SetAction(parse => Call(app, parse.GetValue(socket)!, async client =>
        {
            var info = await client.GetAsync("/", CancellationToken.None).ConfigureAwait(false);
            app.Output.WriteLine($"{info.GetProperty("id").GetString()}: {info.GetProperty("state").GetString()} ({info.GetProperty("app_name").GetString()} {info.GetProperty("vmm_version").GetString()})");
        }));

        var pause = new Command("pause", "Pause the VM: every vCPU parked, devices quiesced (PATCH /vm Paused).");
        pause.SetAction(parse => Call(app, parse.GetValue(socket)!, client =>
            client.SendAsync(HttpMethod.Patch, "/vm", """{"state": "Paused"}""", CancellationToken.None)));

        var resume = new Command("resume", "Resume a paused VM (PATCH /vm Resumed).");
        resume.SetAction(parse => Call(app, parse.GetValue(socket)!, client =>
            client.SendAsync(HttpMethod.Patch, "/vm", """{"state": "Resumed"}""", CancellationToken.None)));

        var dir = new Argument<string>("DIR") { Description = "Directory for vmstate.bin and memory.bin (created if missing)." };
        var snapshot = new Command("snapshot", "Snapshot the VM into DIR/vmstate.bin and DIR/memory.bin: pauses it if it runs, resumes it after.") { dir };
        snapshot.SetAction(parse => Call(app, parse.GetValue(socket)!, async client =>
        {
            string target = Path.GetFullPath(parse.GetValue(dir)!);
            Directory.CreateDirectory(target);
            var info = await client.GetAsync("/", CancellationToken.None).ConfigureAwait(false);
            bool wasRunning = info.GetProperty("state").GetString() == "Running";
            if (wasRunning)
            {
                await client.SendAsync(HttpMethod.Patch, "/vm", """{"state": "Paused"}""", CancellationToken.None).ConfigureAwait(false);
            }

            try
            {
                string body = JsonSerializer.Serialize(new Dictionary<string, string>
                {
                    ["snapshot_path"] = Path.Combine(target, "vmstate.bin"),
                    ["mem_file_path"] = Path.Combine(target, "memory.bin"),
                    ["snapshot_type"] = "Full",
                });
                await client.SendAsync(HttpMethod.Put, "/snapshot/create", body, CancellationToken.None).ConfigureAwait(false);
            }
            finally
            {
                if (wasRunning)
                {
                    await client.SendAsync(HttpMethod.Patch, "/vm", """{"state": "Resumed"}""", CancellationToken.None).ConfigureAwait(false);
                }
            }

            app.Output.WriteLine($"snapshot in {target}: vmstate.bin {new FileInfo(Path.Combine(target, "vmstate.bin")).Length:N0} bytes, memory.bin {new FileInfo(Path.Combine(target, "memory.bin")).Length:N0} bytes");
        }));

        var watch = new Option<bool>("--watch") { Description = "Refresh the table like kvm_stat, with per-second rates, until Ctrl-C." };
        var interval = new Option<double>("--interval") { Description = "Seconds between refreshes with --watch.", DefaultValueFactory = _ => 1.0, HelpName = "S" };
        var stats = new Command("stats", "Exits per reason per vCPU, and device counters (GET /x/stats).") { watch, interval };
        stats.SetAction(parse => Call(app, parse.GetValue(socket)!, client => Stats(app, client, parse.GetValue(watch), parse.GetValue(interval))));

        command.Add(status);
        command.Add(pause);
        command.Add(resume);
        command.Add(snapshot);
        command.Add(stats);
        return command;
    }

    private static int Call(CliApp app, string socket, Func<ApiClient, Task> action)
    {
        using var client = new ApiClient(socket);
        try
        {
            action(client).GetAwaiter().GetResult();
            return ExitCodes.Success;
        }
        catch (ApiClientException e)
        {
            return app.Fail(ExitCodes.UsageError, e.Message);
        }
    }

    private static async Task Stats(CliApp app, ApiClient client, bool watch, double interval)
    {
        // Escape codes only on a terminal: `ctl stats > file` and the tests get plain text.
        bool terminal = ReferenceEquals(app.Output, Console.Out) && !Console.IsOutputRedirected;
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(app.Output),
            Ansi = terminal ? AnsiSupport.Detect : AnsiSupport.No,
            ColorSystem = terminal ? ColorSystemSupport.Detect : ColorSystemSupport.NoColors,
            Interactive = terminal ? InteractionSupport.Detect : InteractionSupport.No,
        });
        var first = await client.GetAsync("/x/stats", CancellationToken.None).ConfigureAwait(false);
        if (!watch)
        {
            console.Write(Render(first, null, 0));
            return;
        }

        using var stop = new CancellationTokenSource();
        Console.CancelKeyPress += (_, e) =>
        {
            e.Cancel = true;
            stop.Cancel();
        };
        var previous = first;
        var period = TimeSpan.FromSeconds(Math.Max(interval, 0.1));
        await console.Live(Render(first, null, 0)).StartAsync(async live =>
        {
            while (!stop.IsCancellationRequested)
            {
                try
                {
                    await Task.Delay(period, stop.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }

                var now = await client.GetAsync("/x/stats", CancellationToken.None).ConfigureAwait(false);
                live.UpdateTarget(Render(now, previous, period.TotalSeconds));
                live.Refresh();
                previous = now;
            }
        }).ConfigureAwait(false);
    }

    /// <summary>The kvm_stat-like table: one row per exit kind, a column per vCPU (count, and rate/s once there is a previous sample).</summary>
    internal static IRenderable Render(JsonElement stats, JsonElement? previous, double seconds)
    {
        var vcpus = stats.GetProperty("vcpus").EnumerateArray().ToList();
        var table = new Table().Title($"[bold]{stats.GetProperty("state").GetString()}[/] on {stats.GetProperty("accelerator").GetString()}");
        table.AddColumn("exit");
        foreach (var v in vcpus)
        {
            table.AddColumn(new TableColumn($"vcpu{v.GetProperty("vcpu").GetInt32()}").RightAligned());
        }

        var kinds = vcpus.Count == 0 ? [] : vcpus[0].GetProperty("exits").EnumerateObject().Select(p => p.Name).ToList();
        foreach (string kind in kinds)
        {
            var cells = new List<string> { kind };
            for (int i = 0; i < vcpus.Count; i++)
            {
                long count = vcpus[i].GetProperty("exits").GetProperty(kind).GetInt64();
                string cell = count.ToString("N0", CultureInfo.InvariantCulture);
                if (previous is { } p && seconds > 0)
                {
                    long before = p.GetProperty("vcpus")[i].GetProperty("exits").GetProperty(kind).GetInt64();
                    cell += string.Create(CultureInfo.InvariantCulture, $" ({(count - before) / seconds:N0}/s)");
                }

                cells.Add(cell);
            }

            table.AddRow(cells.ToArray());
        }

        var devices = new Table().AddColumn("device").AddColumn("counter").AddColumn(new TableColumn("value").RightAligned());
        foreach (var device in stats.GetProperty("devices").EnumerateObject())
        {
            foreach (var counter in device.Value.EnumerateObject())
            {
                devices.AddRow(device.Name, counter.Name, counter.Value.GetInt64().ToString("N0", CultureInfo.InvariantCulture));
            }
        }

        return new Rows(table, devices);
    }
}
