using System.Diagnostics;
using System.Text.Json;

namespace KvmSharp.Api.Tests;

/// <summary>
/// The API as Firecracker's users reach it: curl over the socket in Firecracker's getting-started order
/// (scripts/getting-started.sh), and a stdlib-Python client that speaks as Firecracker's test framework does, the Host
/// header carrying the percent-encoded socket path (scripts/fc_client.py). Every status and body is compared whole.
/// </summary>
public sealed class ClientScriptTests
{
    private static readonly string Scripts = Path.Combine(AppContext.BaseDirectory, "scripts");

    [Fact]
    public async Task Curl_GettingStartedOrder_EveryReplyAsFirecrackers()
    {
        await using var api = await ApiFixture.StartAsync(new ApiServerOptions { InstanceId = "fc-test", VmmVersion = "0.1.0" });
        string log = Path.Combine(api.Directory, "fc.log");
        string snapshots = Directory.CreateDirectory(Path.Combine(api.Directory, "snap")).FullName;

        string output = await RunAsync("bash", [Path.Combine(Scripts, "getting-started.sh"), api.SocketPath, api.Kernel, api.Disk, log, snapshots], stdin: null);

        string[] expected =
        [
            """GET / -> 200 {"id":"fc-test","state":"Not started","vmm_version":"0.1.0","app_name":"Firecracker"}""",
            "PUT /logger -> 204 ",
            "PUT /boot-source -> 204 ",
            "PUT /drives/rootfs -> 204 ",
            "PUT /network-interfaces/net1 -> 204 ",
            "PUT /machine-config -> 204 ",
            """GET /machine-config -> 200 {"vcpu_count":2,"mem_size_mib":1024,"smt":false,"track_dirty_pages":false,"huge_pages":"None"}""",
            "PUT /actions -> 204 ",
            """GET / -> 200 {"id":"fc-test","state":"Running","vmm_version":"0.1.0","app_name":"Firecracker"}""",
            "PATCH /vm -> 204 ",
            "PUT /snapshot/create -> 204 ",
            "PATCH /vm -> 204 ",
            "PUT /actions -> 204 ",
            """PUT /boot-source -> 400 {"fault_message":"The requested operation is not supported after starting the microVM."}""",
        ];
        Assert.Equal(expected, output.Split('\n', StringSplitOptions.RemoveEmptyEntries));

        // What the host was asked to do, in order, and the machine the resources described.
        Assert.Equal(["Start", "Pause", $"CreateSnapshot {snapshots}/vmstate {snapshots}/memory", "Resume", "SendCtrlAltDel"], api.Host.Calls);
        var config = api.Host.Started!;
        Assert.Equal(api.Kernel, config.KernelPath);
        Assert.Equal("console=ttyS0 reboot=k panic=1 pci=off root=/dev/vda rw", config.CommandLine);
        Assert.Equal(2, config.Cpus);
        Assert.Equal(1024UL << 20, config.MemoryBytes);
        var net = Assert.Single(config.Nets);
        Assert.Equal("tap0", net.TapName);
        Assert.Equal("06:00:ac:10:00:02", net.MacText);

        // The logger got the API's lines at Debug, with level and origin.
        Assert.Contains("[fc-test:", await File.ReadAllTextAsync(log, TestContext.Current.CancellationToken), StringComparison.Ordinal);
    }

    /// <summary>Requests and the replies Firecracker gives them (status, body), in one keep-alive session.</summary>
    public static TheoryData<string, (string Method, string Path, string? Body, int Status, string? Reply)[]> Sessions() => new()
    {
        {
            "malformed and unknown before boot, nothing applied",
            [
                ("PUT", "/machine-config", "{\"vcpu_count\": 2, ", 400, Fault("An error occurred when deserializing the json body of a request: the body is not valid JSON at line 1 column 19.")),
                ("PUT", "/machine-config", """{"vcpu_count": 2, "mem_size_mib": 256, "vcpus": 4}""", 400,
                    Fault("An error occurred when deserializing the json body of a request: unknown field `vcpus`, expected one of `vcpu_count`, `mem_size_mib`, `smt`, `cpu_template`, `track_dirty_pages`, `huge_pages`.")),
                ("PUT", "/machine-config", """{"vcpu_count": "2", "mem_size_mib": 256}""", 400,
                    Fault("An error occurred when deserializing the json body of a request: invalid type: string \"2\" for field `vcpu_count`, expected an integer.")),
                ("PUT", "/machine-config", """{"vcpu_count": 0, "mem_size_mib": 256}""", 400,
                    Fault("The vCPU number is invalid! The vCPU number can only be 1 or an even number when SMT is enabled. KvmSharp takes 1 to 32 (got 0).")),
                ("GET", "/machine-config", null, 200, """{"vcpu_count":1,"mem_size_mib":128,"smt":false,"track_dirty_pages":false,"huge_pages":"None"}"""),
                ("PUT", "/boot-source", """{"boot_args": "quiet"}""", 400,
                    Fault("An error occurred when deserializing the json body of a request: missing field `kernel_image_path` in BootSourceConfig.")),
                ("PUT", "/actions", """{"action_type": "InstanceStart"}""", 400, Fault("Cannot start microvm without kernel configuration.")),
                ("PUT", "/actions", """{"action_type": "Reboot"}""", 400,
                    Fault("An error occurred when deserializing the json body of a request: unknown variant `Reboot` for field `action_type`, expected one of `InstanceStart`, `SendCtrlAltDel`, `FlushMetrics`.")),
                ("PATCH", "/vm", """{"state": "Paused"}""", 400, Fault("The requested operation is not supported before starting the microVM.")),
                ("GET", "/", null, 200, """{"id":"anonymous-instance","state":"Not started","vmm_version":"0.1.0","app_name":"Firecracker"}"""),
            ]
        },
        {
            "bad paths and methods",
            [
                ("GET", "/nonexistent", null, 400, Fault("Invalid request method and/or path: GET nonexistent.")),
                ("DELETE", "/machine-config", null, 400, Fault("Invalid request method and/or path: DELETE machine-config.")),
                ("PUT", "/drives", """{"drive_id": "rootfs"}""", 400, Fault("Invalid request method and/or path: PUT drives.")),
                ("PUT", "/drives/a/b", """{"drive_id": "a"}""", 400, Fault("Invalid request method and/or path: PUT drives/a/b.")),
                ("GET", "/version", null, 200, """{"firecracker_version":"0.1.0"}"""),
            ]
        },
    };

    [Theory]
    [MemberData(nameof(Sessions))]
    public async Task Python_FirecrackerTestFrameworkClient_GetsFirecrackersReplies(string name, (string Method, string Path, string? Body, int Status, string? Reply)[] session)
    {
        Assert.NotEmpty(name);
        await using var api = await ApiFixture.StartAsync();
        string requests = JsonSerializer.Serialize(session.Select(s => new object?[] { s.Method, s.Path, s.Body }).ToArray());

        string output = await RunAsync("python3", [Path.Combine(Scripts, "fc_client.py"), api.SocketPath], requests);

        string[] lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(session.Length, lines.Length);
        for (int i = 0; i < session.Length; i++)
        {
            using var reply = JsonDocument.Parse(lines[i]);
            int status = reply.RootElement[0].GetInt32();
            string? body = reply.RootElement[1].ValueKind == JsonValueKind.Null ? null : JsonSerializer.Serialize(reply.RootElement[1]);
            Assert.True(session[i].Status == status, $"{session[i].Method} {session[i].Path}: {status} {body}");
            Assert.Equal(session[i].Reply, body);
        }

        Assert.Empty(api.Host.Calls);
    }

    private static string Fault(string message) => JsonSerializer.Serialize(new Dictionary<string, string> { ["fault_message"] = message });

    private static async Task<string> RunAsync(string program, string[] arguments, string? stdin)
    {
        var start = new ProcessStartInfo(program)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (string argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start)!;
        await process.StandardInput.WriteAsync(stdin ?? string.Empty);
        process.StandardInput.Close();
        var output = process.StandardOutput.ReadToEndAsync(TestContext.Current.CancellationToken);
        var error = process.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken);
        await process.WaitForExitAsync(TestContext.Current.CancellationToken);
        Assert.True(process.ExitCode == 0, $"{program} exited with {process.ExitCode}: {await error}");
        return await output;
    }
}
