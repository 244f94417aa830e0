using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using KvmSharp.Hypervisor;
using KvmSharp.Vmm.Config;
using KvmSharp.Vmm.Control;

namespace KvmSharp.Api.Tests;

public sealed class ApiEndpointTests
{
    private static readonly HttpMethod Put = HttpMethod.Put;
    private static readonly HttpMethod Patch = HttpMethod.Patch;
    private const string Prefix = "An error occurred when deserializing the json body of a request: ";

    [Fact]
    public async Task Get_Root_BeforeStart_ReportsNotStartedWithFirecrackerFields()
    {
        await using var api = await ApiFixture.StartAsync(new ApiServerOptions { InstanceId = "vm-7", VmmVersion = "0.1.0" });
        var info = await api.GetJson("/");
        Assert.Equal("""{"id":"vm-7","state":"Not started","vmm_version":"0.1.0","app_name":"Firecracker"}""", info.GetRawText());
        Assert.Equal("""{"firecracker_version":"0.1.0"}""", (await api.GetJson("/version")).GetRawText());
    }

    [Theory]
    [InlineData("application/x-www-form-urlencoded")]
    [InlineData("text/plain")]
    [InlineData(null)]
    public async Task Body_IsJsonWhateverItsContentType_AsFirecrackerReadsIt(string? contentType)
    {
        await using var api = await ApiFixture.StartAsync();
        using var request = new HttpRequestMessage(Put, "/machine-config") { Content = new ByteArrayContent("""{"vcpu_count": 2, "mem_size_mib": 256}"""u8.ToArray()) };
        if (contentType is not null)
        {
            request.Content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue(contentType);
        }

        using var response = await api.Client.SendAsync(request, TestContext.Current.CancellationToken);
        Assert.Equal(204, (int)response.StatusCode);
        Assert.Equal(2, (await api.GetJson("/machine-config")).GetProperty("vcpu_count").GetInt32());
    }

    [Fact]
    public async Task Get_MachineConfig_BeforePut_ReturnsFirecrackerDefaults()
    {
        await using var api = await ApiFixture.StartAsync();
        Assert.Equal("""{"vcpu_count":1,"mem_size_mib":128,"smt":false,"track_dirty_pages":false,"huge_pages":"None"}""",
            (await api.GetJson("/machine-config")).GetRawText());
    }

    [Fact]
    public async Task GettingStartedSequence_BootsPausesSnapshotsResumes_WithTheConfigBuiltFromThePreBootState()
    {
        await using var api = await ApiFixture.StartAsync();
        await api.Boot();
        var config = api.Host.Started!;
        Assert.Equal(api.Kernel, config.KernelPath);
        Assert.Equal("console=ttyS0 reboot=k root=/dev/vda rw", config.CommandLine);
        Assert.Equal(2, config.Cpus);
        Assert.Equal(256UL << 20, config.MemoryBytes);
        Assert.Equal([new DiskConfig(api.Disk, false, "rootfs")], config.Disks);
        Assert.Equal("Running", (await api.GetJson("/")).GetProperty("state").GetString());

        await api.NoContent(Patch, "/vm", """{"state": "Paused"}""");
        Assert.Equal("Paused", (await api.GetJson("/")).GetProperty("state").GetString());
        string state = Path.Combine(api.Directory, "vmstate.bin");
        string memory = Path.Combine(api.Directory, "memory.bin");
        await api.NoContent(Put, "/snapshot/create", $$"""{"snapshot_type": "Full", "snapshot_path": "{{state}}", "mem_file_path": "{{memory}}"}""");
        await api.NoContent(Patch, "/vm", """{"state": "Resumed"}""");
        Assert.Equal("Running", (await api.GetJson("/")).GetProperty("state").GetString());
        Assert.Equal(["Start", "Pause", $"CreateSnapshot {state} {memory}", "Resume"], api.Host.Calls);
    }

    [Fact]
    public async Task InstanceStart_WithoutBootArgs_UsesOurDefaultCommandLine_AndEntropyAndTapNet()
    {
        await using var api = await ApiFixture.StartAsync(new ApiServerOptions { Accelerator = Accelerator.Emulator });
        await api.NoContent(Put, "/boot-source", $$"""{"kernel_image_path": "{{api.Kernel}}"}""");
        await api.NoContent(Put, "/entropy", "{}");
        await api.NoContent(Put, "/network-interfaces/eth0", """{"iface_id": "eth0", "host_dev_name": "tap7", "guest_mac": "06:00:ac:10:00:02"}""");
        await api.NoContent(Put, "/actions", """{"action_type": "InstanceStart"}""");
        var config = api.Host.Started!;
        Assert.Equal(VmConfig.DefaultCommandLine, config.CommandLine);
        Assert.True(config.Rng);
        Assert.Equal(Accelerator.Emulator, config.Accelerator);
        var net = Assert.Single(config.Nets);
        Assert.Equal(NetBackendKind.Tap, net.Kind);
        Assert.Equal("tap7", net.TapName);
        Assert.Equal("06:00:ac:10:00:02", net.MacText);
        Assert.Equal(1, config.Cpus);
        Assert.Equal(128UL << 20, config.MemoryBytes);
    }

    [Fact]
    public async Task RootDrive_IsFirstDisk_ReadOnlyWithPartuuid()
    {
        await using var api = await ApiFixture.StartAsync();
        string data = Path.Combine(api.Directory, "data.img");
        File.WriteAllBytes(data, new byte[512]);
        await api.NoContent(Put, "/boot-source", $$"""{"kernel_image_path": "{{api.Kernel}}", "boot_args": "console=ttyS0"}""");
        await api.NoContent(Put, "/drives/data", $$"""{"drive_id": "data", "path_on_host": "{{data}}", "is_root_device": false}""");
        await api.NoContent(Put, "/drives/rootfs", $$"""{"drive_id": "rootfs", "path_on_host": "{{api.Disk}}", "is_root_device": true, "is_read_only": true, "partuuid": "abcd-01", "cache_type": "Writeback", "io_engine": "Sync"}""");
        Assert.Equal("A root block device already exists!", await api.Fault(Put, "/drives/other", $$"""{"drive_id": "other", "path_on_host": "{{data}}", "is_root_device": true}"""));
        await api.NoContent(Put, "/actions", """{"action_type": "InstanceStart"}""");
        var config = api.Host.Started!;
        Assert.Equal("console=ttyS0 root=PARTUUID=abcd-01 ro", config.CommandLine);
        Assert.Equal([new DiskConfig(api.Disk, true, "rootfs"), new DiskConfig(data, false, "data")], config.Disks);
    }

    [Fact]
    public async Task VmConfig_ListsFirecrackerKeys_AndTheConfiguredResources()
    {
        await using var api = await ApiFixture.StartAsync();
        await api.NoContent(Put, "/machine-config", """{"vcpu_count": 2, "mem_size_mib": 512, "track_dirty_pages": true}""");
        await api.NoContent(Put, "/boot-source", $$"""{"kernel_image_path": "{{api.Kernel}}", "boot_args": "quiet"}""");
        await api.NoContent(Put, "/drives/rootfs", $$"""{"drive_id": "rootfs", "path_on_host": "{{api.Disk}}", "is_root_device": true}""");
        var full = await api.GetJson("/vm/config");
        Assert.Equal(
            ["balloon", "drives", "boot-source", "cpu-config", "logger", "machine-config", "metrics", "mmds-config", "network-interfaces", "vsock", "entropy"],
            full.EnumerateObject().Select(p => p.Name));
        Assert.Equal($$"""{"kernel_image_path":"{{api.Kernel}}","boot_args":"quiet","initrd_path":null}""", full.GetProperty("boot-source").GetRawText());
        Assert.Equal("""{"vcpu_count":2,"mem_size_mib":512,"smt":false,"track_dirty_pages":true,"huge_pages":"None"}""", full.GetProperty("machine-config").GetRawText());
        var drive = Assert.Single(full.GetProperty("drives").EnumerateArray());
        Assert.Equal("rootfs", drive.GetProperty("drive_id").GetString());
        Assert.Equal("Unsafe", drive.GetProperty("cache_type").GetString());
        Assert.Equal(JsonValueKind.Null, full.GetProperty("vsock").ValueKind);
    }

    [Fact]
    public async Task PatchMachineConfig_MergesIntoTheCurrentOne()
    {
        await using var api = await ApiFixture.StartAsync();
        await api.NoContent(Put, "/machine-config", """{"vcpu_count": 2, "mem_size_mib": 512}""");
        await api.NoContent(Patch, "/machine-config", """{"vcpu_count": 4}""");
        Assert.Equal("""{"vcpu_count":4,"mem_size_mib":512,"smt":false,"track_dirty_pages":false,"huge_pages":"None"}""", (await api.GetJson("/machine-config")).GetRawText());
    }

    [Theory]
    [InlineData("""{"mem_size_mib": 128}""", Prefix + "missing field `vcpu_count` in MachineConfig.")]
    [InlineData("""{"vcpu_count": 1}""", Prefix + "missing field `mem_size_mib` in MachineConfig.")]
    [InlineData("""{"vcpu_count": "2", "mem_size_mib": 128}""", Prefix + "invalid type: string \"2\" for field `vcpu_count`, expected an integer.")]
    [InlineData("""{"vcpu_count": 1.5, "mem_size_mib": 128}""", Prefix + "invalid type: number 1.5 for field `vcpu_count`, expected an integer.")]
    [InlineData("""{"vcpu_count": 1, "mem_size_mib": 128, "smt": "no"}""", Prefix + "invalid type: string \"no\" for field `smt`, expected a boolean.")]
    [InlineData("""{"vcpu_count": 1, "mem_size_mib": 128, "huge_pages": "1G"}""", Prefix + "unknown variant `1G` for field `huge_pages`, expected one of `None`, `Transparent`, `2M`.")]
    [InlineData("""{"vcpu_count": 1, "mem_size_mib": 128, "bogus": 1}""", Prefix + "unknown field `bogus`, expected one of `vcpu_count`, `mem_size_mib`, `smt`, `cpu_template`, `track_dirty_pages`, `huge_pages`.")]
    [InlineData("""{"vcpu_count": 33, "mem_size_mib": 128}""", "The vCPU number is invalid! The vCPU number can only be 1 or an even number when SMT is enabled. KvmSharp takes 1 to 32 (got 33).")]
    [InlineData("""{"vcpu_count": 0, "mem_size_mib": 128}""", "The vCPU number is invalid! The vCPU number can only be 1 or an even number when SMT is enabled. KvmSharp takes 1 to 32 (got 0).")]
    [InlineData("""{"vcpu_count": 1, "mem_size_mib": 8}""", "The memory size (MiB) is invalid. KvmSharp takes 16 to 1048576 MiB (got 8).")]
    [InlineData("""{"vcpu_count": 1, "mem_size_mib": 128, "huge_pages": "2M"}""", "`huge_pages` 2M is not supported by KvmSharp: guest memory uses normal pages. Send \"huge_pages\": \"None\".")]
    [InlineData("""{"vcpu_count": 2, "mem_size_mib": 128, "smt": true}""", "`smt` true is not supported by KvmSharp: each vCPU is its own core. Send \"smt\": false.")]
    [InlineData("""{"vcpu_count": 1, "mem_size_mib": 128, "cpu_template": "T2"}""", "`cpu_template` is not supported by KvmSharp: KvmSharp passes the host CPU's CPUID through.")]
    [InlineData("""[1, 2]""", Prefix + "invalid type: sequence, expected struct MachineConfig.")]
    [InlineData("""{"vcpu_count": 1, "mem_size_mib": 128""", Prefix + "the body is not valid JSON at line 1 column 38.")]
    [InlineData("""{"vcpu_count": 1, 'mem_size_mib': 128}""", Prefix + "the body is not valid JSON at line 1 column 19.")]
    [InlineData("", "The request body is empty: send a JSON object.")]
    public async Task PutMachineConfig_BadBody_Is400WithSpecificMessage_AndChangesNothing(string body, string message)
    {
        await using var api = await ApiFixture.StartAsync();
        await api.NoContent(Put, "/machine-config", """{"vcpu_count": 2, "mem_size_mib": 256}""");
        Assert.Equal(message, await api.Fault(Put, "/machine-config", body));
        Assert.Equal(2, (await api.GetJson("/machine-config")).GetProperty("vcpu_count").GetInt32());
        Assert.Equal(256, (await api.GetJson("/machine-config")).GetProperty("mem_size_mib").GetInt32());
    }

    [Theory]
    [InlineData("/boot-source", """{"boot_args": "x"}""", Prefix + "missing field `kernel_image_path` in BootSourceConfig.")]
    [InlineData("/boot-source", """{"kernel_image_path": 5}""", Prefix + "invalid type: number 5 for field `kernel_image_path`, expected a string.")]
    [InlineData("/drives/rootfs", """{"drive_id": "rootfs", "path_on_host": "/x"}""", Prefix + "missing field `is_root_device` in BlockDeviceConfig.")]
    [InlineData("/drives/rootfs", """{"is_root_device": true, "path_on_host": "/x"}""", Prefix + "missing field `drive_id` in BlockDeviceConfig.")]
    [InlineData("/drives/rootfs", """{"drive_id": "rootfs", "is_root_device": true}""", Prefix + "missing field `path_on_host` in BlockDeviceConfig (KvmSharp's drives are image files).")]
    [InlineData("/drives/rootfs", """{"drive_id": "other", "is_root_device": true, "path_on_host": "/x"}""", "The id from the path does not match the id from the body!")]
    [InlineData("/drives/rootfs", """{"drive_id": "rootfs", "is_root_device": true, "path_on_host": "/x", "cache_type": "None"}""", Prefix + "unknown variant `None` for field `cache_type`, expected one of `Unsafe`, `Writeback`.")]
    [InlineData("/drives/rootfs", """{"drive_id": "rootfs", "is_root_device": true, "path_on_host": "/x", "io_engine": "Async"}""", "`io_engine` Async is not supported by KvmSharp: block I/O is synchronous preadv/pwritev. Send \"io_engine\": \"Sync\".")]
    [InlineData("/drives/rootfs", """{"drive_id": "rootfs", "is_root_device": true, "path_on_host": "/x", "rate_limiter": {"bandwidth": {"size": 1, "refill_time": 1}}}""", "`rate_limiter` is not supported by KvmSharp.")]
    [InlineData("/drives/rootfs", """{"drive_id": "rootfs", "is_root_device": true, "path_on_host": "/nonexistent/disk.img"}""", "The block device backing file '/nonexistent/disk.img' cannot be opened: Could not find a part of the path '/nonexistent/disk.img'.")]
    [InlineData("/network-interfaces/eth0", """{"iface_id": "eth0"}""", Prefix + "missing field `host_dev_name` in NetworkInterfaceConfig.")]
    [InlineData("/network-interfaces/eth0", """{"iface_id": "eth1", "host_dev_name": "tap0"}""", "The id from the path does not match the id from the body!")]
    [InlineData("/network-interfaces/eth0", """{"iface_id": "eth0", "host_dev_name": "tap0", "guest_mac": "zz"}""", "`guest_mac` 'zz' is not a unicast MAC address: write six hex pairs, for example 06:00:AC:10:00:02.")]
    [InlineData("/network-interfaces/eth0", """{"iface_id": "eth0", "host_dev_name": "a/b"}""", "`host_dev_name` 'a/b' is not an interface name (1 to 15 characters, no '/', ':' or spaces).")]
    [InlineData("/entropy", """{"rate_limiter": {}}""", "`rate_limiter` is not supported by KvmSharp.")]
    [InlineData("/entropy", """{"x": 1}""", Prefix + "unknown field `x`, expected one of `rate_limiter`.")]
    [InlineData("/logger", """{"level": "Loud"}""", Prefix + "unknown variant `Loud` for field `level`, expected one of `Off`, `Error`, `Warning`, `Info`, `Debug`, `Trace`.")]
    [InlineData("/metrics", """{}""", Prefix + "missing field `metrics_path` in MetricsConfig.")]
    [InlineData("/actions", """{"action_type": "Reboot"}""", Prefix + "unknown variant `Reboot` for field `action_type`, expected one of `InstanceStart`, `SendCtrlAltDel`, `FlushMetrics`.")]
    [InlineData("/actions", """{}""", Prefix + "missing field `action_type` in ActionBody.")]
    [InlineData("/actions", """{"action_type": "InstanceStart"}""", "Cannot start microvm without kernel configuration.")]
    [InlineData("/actions", """{"action_type": "SendCtrlAltDel"}""", "The requested operation is not supported before starting the microVM.")]
    [InlineData("/actions", """{"action_type": "FlushMetrics"}""", "The metrics system is not initialized: PUT /metrics {\"metrics_path\": ...} first.")]
    [InlineData("/snapshot/create", """{"snapshot_path": "/tmp/s", "mem_file_path": "/tmp/m"}""", "The requested operation is not supported before starting the microVM.")]
    [InlineData("/snapshot/create", """{"mem_file_path": "/tmp/m"}""", Prefix + "missing field `snapshot_path` in CreateSnapshotParams.")]
    [InlineData("/snapshot/create", """{"snapshot_path": "/tmp/s", "mem_file_path": "/tmp/m", "snapshot_type": "Diff"}""", "`snapshot_type` Diff is not supported by KvmSharp: send \"snapshot_type\": \"Full\".")]
    [InlineData("/snapshot/load", """{"snapshot_path": "/tmp/s"}""", Prefix + "missing field: either `mem_backend` or `mem_file_path` is required.")]
    [InlineData("/snapshot/load", """{"snapshot_path": "/tmp/s", "mem_file_path": "/m", "mem_backend": {"backend_type": "File", "backend_path": "/m"}}""", Prefix + "too many fields: either `mem_backend` or `mem_file_path` exclusively is required.")]
    [InlineData("/snapshot/load", """{"snapshot_path": "/tmp/s", "mem_backend": {"backend_type": "Uffd", "backend_path": "/u.sock"}}""", "`backend_type` Uffd is not supported by KvmSharp: send \"backend_type\": \"File\".")]
    [InlineData("/snapshot/load", """{"snapshot_path": "/tmp/s", "mem_backend": {"backend_type": "Ram", "backend_path": "/m"}}""", Prefix + "unknown variant `Ram` for field `backend_type`, expected one of `File`, `Uffd`.")]
    [InlineData("/snapshot/load", """{"snapshot_path": "/tmp/s", "mem_backend": {"backend_path": "/m"}}""", Prefix + "missing field `backend_type` in MemBackendConfig.")]
    public async Task Put_BadRequest_Is400WithSpecificMessage(string path, string body, string message)
    {
        await using var api = await ApiFixture.StartAsync();
        Assert.Equal(message, await api.Fault(Put, path, body));
        Assert.Empty(api.Host.Calls);
        var full = await api.GetJson("/vm/config");
        Assert.Equal(0, full.GetProperty("drives").GetArrayLength());
        Assert.Equal(0, full.GetProperty("network-interfaces").GetArrayLength());
        Assert.Equal(JsonValueKind.Null, full.GetProperty("boot-source").ValueKind);
        Assert.Equal(JsonValueKind.Null, full.GetProperty("entropy").ValueKind);
    }

    [Theory]
    [InlineData("PUT", "/machine-config", """{"vcpu_count": 1, "mem_size_mib": 128}""")]
    [InlineData("PATCH", "/machine-config", """{"vcpu_count": 1}""")]
    [InlineData("PUT", "/boot-source", """{"kernel_image_path": "/x"}""")]
    [InlineData("PUT", "/drives/data", """{"drive_id": "data", "path_on_host": "/x", "is_root_device": false}""")]
    [InlineData("PUT", "/network-interfaces/eth0", """{"iface_id": "eth0", "host_dev_name": "tap0"}""")]
    [InlineData("PUT", "/entropy", """{}""")]
    [InlineData("PUT", "/logger", """{"level": "Info"}""")]
    [InlineData("PUT", "/metrics", """{"metrics_path": "/tmp/m"}""")]
    [InlineData("PUT", "/actions", """{"action_type": "InstanceStart"}""")]
    [InlineData("PUT", "/snapshot/load", """{"snapshot_path": "/s", "mem_file_path": "/m"}""")]
    public async Task PreBootRequest_AfterStart_IsFirecrackersPostBootFault(string method, string path, string body)
    {
        await using var api = await ApiFixture.StartAsync();
        await api.Boot();
        if (path == "/boot-source")
        {
            body = body.Replace("/x", api.Kernel, StringComparison.Ordinal);
        }
        else if (path.StartsWith("/drives", StringComparison.Ordinal))
        {
            body = body.Replace("/x", api.Disk, StringComparison.Ordinal);
        }

        Assert.Equal("The requested operation is not supported after starting the microVM.", await api.Fault(new HttpMethod(method), path, body));
        Assert.Equal(["Start"], api.Host.Calls);
    }

    [Theory]
    [InlineData("PATCH", "/vm", """{"state": "Paused"}""")]
    [InlineData("PATCH", "/drives/rootfs", """{"drive_id": "rootfs", "path_on_host": "/x", "is_root_device": true}""")]
    [InlineData("PATCH", "/network-interfaces/eth0", """{"iface_id": "eth0", "host_dev_name": "tap0"}""")]
    public async Task RuntimeRequest_BeforeStart_IsFirecrackersPreBootFault(string method, string path, string body)
    {
        await using var api = await ApiFixture.StartAsync();
        Assert.Equal("The requested operation is not supported before starting the microVM.", await api.Fault(new HttpMethod(method), path, body));
        using var stats = await api.Client.GetAsync("/x/stats", TestContext.Current.CancellationToken);
        Assert.Equal(400, (int)stats.StatusCode);
    }

    [Fact]
    public async Task PatchVm_BadState_Is400_AndDoesNotPause()
    {
        await using var api = await ApiFixture.StartAsync();
        await api.Boot();
        Assert.Equal(Prefix + "unknown variant `Pause` for field `state`, expected one of `Paused`, `Resumed`.", await api.Fault(Patch, "/vm", """{"state": "Pause"}"""));
        Assert.Equal(Prefix + "missing field `state` in Vm.", await api.Fault(Patch, "/vm", "{}"));
        Assert.Equal("Running", (await api.GetJson("/")).GetProperty("state").GetString());
        Assert.Equal(["Start"], api.Host.Calls);
    }

    [Fact]
    public async Task PatchDrive_AfterStart_IsRefusedHonestly()
    {
        await using var api = await ApiFixture.StartAsync();
        await api.Boot();
        Assert.Equal("Updating a drive after boot (PATCH /drives) is not supported by KvmSharp: the disk image cannot be swapped or resized under a running guest.",
            await api.Fault(Patch, "/drives/rootfs", """{"drive_id": "rootfs", "path_on_host": "/x"}"""));
    }

    [Fact]
    public async Task SnapshotCreate_WhileRunning_Is400AndWritesNothing()
    {
        await using var api = await ApiFixture.StartAsync();
        await api.Boot();
        string state = Path.Combine(api.Directory, "vmstate.bin");
        Assert.Equal("Cannot create a snapshot: the microVM is not paused. PATCH /vm {\"state\": \"Paused\"} first.",
            await api.Fault(Put, "/snapshot/create", $$"""{"snapshot_path": "{{state}}", "mem_file_path": "{{state}}.mem"}"""));
        Assert.False(File.Exists(state));
        Assert.Equal(["Start"], api.Host.Calls);
    }

    [Fact]
    public async Task SnapshotLoad_InFreshProcess_LoadsPaused_AndReportsTheRestoredConfig()
    {
        await using var api = await ApiFixture.StartAsync();
        await api.NoContent(Put, "/snapshot/load", """{"snapshot_path": "/snap/vmstate.bin", "mem_backend": {"backend_type": "File", "backend_path": "/snap/memory.bin"}, "track_dirty_pages": false}""");
        Assert.Equal(["LoadSnapshot /snap/vmstate.bin /snap/memory.bin False"], api.Host.Calls);
        Assert.Equal("Paused", (await api.GetJson("/")).GetProperty("state").GetString());
        var full = await api.GetJson("/vm/config");
        Assert.Equal(2, full.GetProperty("machine-config").GetProperty("vcpu_count").GetInt32());
        Assert.Equal(256, full.GetProperty("machine-config").GetProperty("mem_size_mib").GetInt32());
        Assert.Equal("/restored/disk.img", full.GetProperty("drives")[0].GetProperty("path_on_host").GetString());
        await api.NoContent(Patch, "/vm", """{"state": "Resumed"}""");
        Assert.Equal("Running", (await api.GetJson("/")).GetProperty("state").GetString());
    }

    [Fact]
    public async Task SnapshotLoad_LegacyMemFilePathAndResume_Runs()
    {
        await using var api = await ApiFixture.StartAsync();
        await api.NoContent(Put, "/snapshot/load", """{"snapshot_path": "/s", "mem_file_path": "/m", "resume_vm": true}""");
        Assert.Equal(["LoadSnapshot /s /m True"], api.Host.Calls);
        Assert.Equal("Running", (await api.GetJson("/")).GetProperty("state").GetString());
    }

    [Fact]
    public async Task SnapshotLoad_AfterConfiguringBootResources_IsFirecrackersFault()
    {
        await using var api = await ApiFixture.StartAsync();
        await api.NoContent(Put, "/machine-config", """{"vcpu_count": 1, "mem_size_mib": 128}""");
        Assert.Equal("Loading a microVM snapshot not allowed after configuring boot-specific resources.",
            await api.Fault(Put, "/snapshot/load", """{"snapshot_path": "/s", "mem_file_path": "/m"}"""));
        Assert.Empty(api.Host.Calls);
    }

    [Fact]
    public async Task HostExceptions_Are400WithTheirMessage_AndTheMachineStaysNotStarted()
    {
        await using var api = await ApiFixture.StartAsync();
        await api.NoContent(Put, "/boot-source", $$"""{"kernel_image_path": "{{api.Kernel}}"}""");
        api.Host.FailWith = new VmConfigException("Memory size 128 MiB is more than this host has.");
        Assert.Equal("Memory size 128 MiB is more than this host has.", await api.Fault(Put, "/actions", """{"action_type": "InstanceStart"}"""));
        Assert.Equal("Not started", (await api.GetJson("/")).GetProperty("state").GetString());
        api.Host.FailWith = new InvalidOperationException("Busy.");
        Assert.Equal("Busy.", await api.Fault(Put, "/actions", """{"action_type": "InstanceStart"}"""));
        api.Host.FailWith = new NullReferenceException("bug");
        Assert.Equal("Internal error: NullReferenceException: bug", await api.Fault(Put, "/actions", """{"action_type": "InstanceStart"}""", 500));
        api.Host.FailWith = null;
        await api.NoContent(Put, "/actions", """{"action_type": "InstanceStart"}""");
        Assert.Equal("Running", (await api.GetJson("/")).GetProperty("state").GetString());
    }

    [Theory]
    [InlineData("GET", "/nothing", "Invalid request method and/or path: GET nothing.")]
    [InlineData("PUT", "/vm", "Invalid request method and/or path: PUT vm.")]
    [InlineData("POST", "/actions", "Invalid request method and/or path: POST actions.")]
    [InlineData("DELETE", "/machine-config", "Invalid request method and/or path: DELETE machine-config.")]
    [InlineData("PUT", "/vsock", "The vsock device is not supported by KvmSharp (PUT /vsock).")]
    [InlineData("PUT", "/balloon", "The balloon device is not supported by KvmSharp (PUT /balloon).")]
    [InlineData("GET", "/balloon/statistics", "The balloon device is not supported by KvmSharp (GET /balloon/statistics).")]
    [InlineData("PUT", "/mmds", "The mmds device is not supported by KvmSharp (PUT /mmds).")]
    [InlineData("PUT", "/mmds/config", "The mmds device is not supported by KvmSharp (PUT /mmds/config).")]
    public async Task UnknownPathOrMethod_AndUnsupportedDevices_Are400(string method, string path, string message)
    {
        await using var api = await ApiFixture.StartAsync();
        Assert.Equal(message, await api.Fault(new HttpMethod(method), path, method == "GET" ? null : "{}"));
    }

    [Fact]
    public async Task PercentEncodedSocketPathHostHeader_IsAccepted()
    {
        await using var api = await ApiFixture.StartAsync();
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await socket.ConnectAsync(new UnixDomainSocketEndPoint(api.SocketPath), TestContext.Current.CancellationToken);
        string host = Uri.EscapeDataString(api.SocketPath);
        await socket.SendAsync(Encoding.ASCII.GetBytes($"GET / HTTP/1.1\r\nHost: {host}\r\nAccept: application/json\r\nConnection: close\r\n\r\n"), TestContext.Current.CancellationToken);
        var response = new MemoryStream();
        var buffer = new byte[4096];
        int n;
        while ((n = await socket.ReceiveAsync(buffer, TestContext.Current.CancellationToken)) > 0)
        {
            response.Write(buffer, 0, n);
        }

        string text = Encoding.ASCII.GetString(response.ToArray());
        Assert.StartsWith("HTTP/1.1 200 OK\r\n", text, StringComparison.Ordinal);
        Assert.Contains("\r\nContent-Length: 96\r\n", text, StringComparison.Ordinal);
        Assert.EndsWith("\"state\":\"Not started\",\"vmm_version\":\"0.1.0\",\"app_name\":\"Firecracker\"}", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task OversizedPayload_Is400WithFirecrackersMessage()
    {
        await using var api = await ApiFixture.StartAsync(new ApiServerOptions { MaxPayloadBytes = 100 });
        string body = $$"""{"kernel_image_path": "{{new string('a', 200)}}"}""";
        Assert.Equal($"Request payload with size {body.Length} is larger than the limit of 100 allowed by server.", await api.Fault(Put, "/boot-source", body));
    }

    [Fact]
    public async Task FlushMetrics_WritesOneJsonLinePerFlush_WithVcpuExitDeltasAndDeviceCounters()
    {
        await using var api = await ApiFixture.StartAsync();
        string metrics = Path.Combine(api.Directory, "metrics.json");
        await api.NoContent(Put, "/metrics", $$"""{"metrics_path": "{{metrics}}"}""");
        Assert.Equal("Reinitialization of metrics not allowed.", await api.Fault(Put, "/metrics", $$"""{"metrics_path": "{{metrics}}"}"""));
        await api.Boot();
        api.Host.Vm!.CountExits(0, ExitKind.PortIn, 5);
        api.Host.Vm.CountExits(1, ExitKind.PortIn, 2);
        api.Host.Vm.CountExits(1, ExitKind.MmioWrite, 3);
        long before = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        await api.NoContent(Put, "/actions", """{"action_type": "FlushMetrics"}""");
        api.Host.Vm.CountExits(0, ExitKind.PortIn, 1);
        await api.NoContent(Put, "/actions", """{"action_type": "FlushMetrics"}""");
        var lines = File.ReadAllLines(metrics);
        Assert.Equal(2, lines.Length);
        using var first = JsonDocument.Parse(lines[0]);
        Assert.InRange(first.RootElement.GetProperty("utc_timestamp_ms").GetInt64(), before, before + 60_000);
        Assert.Equal("""{"exit_io_in":7,"exit_io_out":0,"exit_mmio_read":0,"exit_mmio_write":3,"failures":0}""", first.RootElement.GetProperty("vcpu").GetRawText());
        Assert.Equal(5, first.RootElement.GetProperty("kvmsharp").GetProperty("vcpus")[0].GetProperty("PortIn").GetInt64());
        Assert.Equal(7, first.RootElement.GetProperty("kvmsharp").GetProperty("devices").GetProperty("virtio-blk0").GetProperty("reads").GetInt64());
        using var second = JsonDocument.Parse(lines[1]);
        Assert.Equal("""{"exit_io_in":1,"exit_io_out":0,"exit_mmio_read":0,"exit_mmio_write":0,"failures":0}""", second.RootElement.GetProperty("vcpu").GetRawText());
    }

    [Fact]
    public async Task Logger_WritesFirecrackerFormatLines_WithLevelAndOrigin_FilteredByLevel()
    {
        await using var api = await ApiFixture.StartAsync(new ApiServerOptions { InstanceId = "vm-1" });
        string log = Path.Combine(api.Directory, "fc.log");
        await api.NoContent(Put, "/logger", $$"""{"log_path": "{{log}}", "level": "Info", "show_level": true, "show_log_origin": false}""");
        await api.Boot();
        await api.Fault(Patch, "/vm", """{"state": "Stop"}""");
        var lines = File.ReadAllLines(log);
        Assert.Contains(lines, l => l.EndsWith(" [vm-1:fc_api:INFO] The API server received a PUT request on \"/machine-config\".", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.EndsWith(":INFO] The microVM is running on emulator.", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.Contains(":ERROR] PATCH /vm: " + Prefix + "unknown variant `Stop`", StringComparison.Ordinal));
        Assert.DoesNotContain(lines, l => l.Contains("Request body:", StringComparison.Ordinal));
        Assert.Matches(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9} \[vm-1:", lines[0]);
    }

    [Fact]
    public async Task Logger_ModuleFilter_KeepsOnlyThatOrigin()
    {
        await using var api = await ApiFixture.StartAsync();
        string log = Path.Combine(api.Directory, "fc.log");
        await api.NoContent(Put, "/logger", $$"""{"log_path": "{{log}}", "level": "Debug", "module": "vmm"}""");
        await api.Boot();
        var lines = File.ReadAllLines(log);
        Assert.NotEmpty(lines);
        Assert.All(lines, l => Assert.DoesNotContain("API server received", l, StringComparison.Ordinal));
        Assert.Contains(lines, l => l.Contains("Starting the microVM: 2 vCPU(s), 256 MiB", StringComparison.Ordinal));
    }

    [Fact]
    public async Task XStats_ReportsExitsPerVcpuByKindName_AndDeviceCounters()
    {
        await using var api = await ApiFixture.StartAsync();
        await api.Boot();
        api.Host.Vm!.CountExits(1, ExitKind.Halt, 4);
        var stats = await api.GetJson("/x/stats");
        Assert.Equal("Running", stats.GetProperty("state").GetString());
        Assert.Equal("emulator", stats.GetProperty("accelerator").GetString());
        Assert.Equal(2, stats.GetProperty("vcpus").GetArrayLength());
        Assert.Equal(4, stats.GetProperty("vcpus")[1].GetProperty("exits").GetProperty("Halt").GetInt64());
        Assert.Equal(4, stats.GetProperty("vcpus")[1].GetProperty("total").GetInt64());
        Assert.Equal(3, stats.GetProperty("devices").GetProperty("virtio-blk0").GetProperty("writes").GetInt64());
    }

    [Fact]
    public async Task SendCtrlAltDel_EndsTheMachine_AndMachineEndedCompletes()
    {
        await using var api = await ApiFixture.StartAsync();
        await api.Boot();
        await api.NoContent(Put, "/actions", """{"action_type": "SendCtrlAltDel"}""");
        var exit = await api.Server.MachineEnded.WaitAsync(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken);
        Assert.Equal(KvmSharp.Vmm.MachineExitReason.Reset, exit.Reason);
        Assert.Equal("Exited", (await api.GetJson("/")).GetProperty("state").GetString());
        Assert.Equal("The microVM has ended; this process is about to exit.", await api.Fault(Patch, "/vm", """{"state": "Paused"}"""));
    }

    [Fact]
    public async Task StartAsync_OnALiveServersSocket_IsRefused_AndAStaleSocketIsReplaced()
    {
        await using var api = await ApiFixture.StartAsync();
        var e = await Assert.ThrowsAsync<ApiServerException>(() => ApiServer.StartAsync(api.SocketPath, new FakeVmHost(), new ApiServerOptions(), TestContext.Current.CancellationToken));
        Assert.Equal($"The API socket '{api.SocketPath}' is in use by a running server. Stop it or pass another --api-sock.", e.Message);
        Assert.Equal("Not started", (await api.GetJson("/")).GetProperty("state").GetString());

        string stale = Path.Combine(api.Directory, "stale.sock");
        // A socket left by a process that died: bound, never unlinked (a .NET Socket unlinks its file on Dispose).
        using (var python = System.Diagnostics.Process.Start("python3", ["-c", "import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])", stale]))
        {
            await python.WaitForExitAsync(TestContext.Current.CancellationToken);
        }

        Assert.True(File.Exists(stale));
        await using var second = await ApiServer.StartAsync(stale, new FakeVmHost(), new ApiServerOptions(), TestContext.Current.CancellationToken);
        using var client = ApiFixture.CreateClient(stale);
        using var response = await client.GetAsync("/", TestContext.Current.CancellationToken);
        Assert.Equal(200, (int)response.StatusCode);
    }

    [Fact]
    public async Task StartAsync_InAMissingDirectory_IsOneLine()
    {
        var e = await Assert.ThrowsAsync<ApiServerException>(() => ApiServer.StartAsync("/nonexistent-dir/api.sock", new FakeVmHost(), new ApiServerOptions(), TestContext.Current.CancellationToken));
        Assert.Equal("The directory of the API socket '/nonexistent-dir/api.sock' does not exist. Create it or pass another --api-sock.", e.Message);
    }

    [Fact]
    public async Task ApplyConfiguration_FullVmJson_ConfiguresAndStarts()
    {
        await using var api = await ApiFixture.StartAsync();
        api.Server.ApplyConfiguration($$"""
            {
              "boot-source": {"kernel_image_path": "{{api.Kernel}}", "boot_args": "console=ttyS0"},
              "drives": [{"drive_id": "rootfs", "path_on_host": "{{api.Disk}}", "is_root_device": true, "is_read_only": false}],
              "machine-config": {"vcpu_count": 2, "mem_size_mib": 1024, "smt": false},
              "network-interfaces": [],
              "entropy": {},
              "vsock": null
            }
            """);
        var config = api.Host.Started!;
        Assert.Equal(2, config.Cpus);
        Assert.Equal(1024UL << 20, config.MemoryBytes);
        Assert.Equal("console=ttyS0 root=/dev/vda rw", config.CommandLine);
        Assert.True(config.Rng);
        Assert.Equal(VmRunState.Running, api.Server.Vm!.State);
    }

    [Theory]
    [InlineData("""{"machine-config": {"vcpu_count": 1, "mem_size_mib": 128}}""", Prefix + "missing field `boot-source` in VmmConfig.")]
    [InlineData("""{"boot-source": {"kernel_image_path": "K"}, "bogus": {}}""", Prefix + "unknown field `bogus`, expected one of `balloon`, `drives`, `boot-source`, `cpu-config`, `logger`, `machine-config`, `metrics`, `mmds-config`, `network-interfaces`, `vsock`, `entropy`.")]
    [InlineData("""{"boot-source": {"kernel_image_path": "K"}, "vsock": {"guest_cid": 3, "uds_path": "/v"}}""", "`vsock` is not supported by KvmSharp.")]
    [InlineData("""{"boot-source": {"kernel_image_path": "K"}, "machine-config": {"vcpu_count": 1}}""", Prefix + "missing field `mem_size_mib` in MachineConfig.")]
    public async Task ApplyConfiguration_BadJson_ThrowsTheApiFault_AndStartsNothing(string json, string message)
    {
        await using var api = await ApiFixture.StartAsync();
        var e = Assert.Throws<ApiFaultException>(() => api.Server.ApplyConfiguration(json.Replace("\"K\"", JsonSerializer.Serialize(api.Kernel), StringComparison.Ordinal)));
        Assert.Equal(message, e.Message);
        Assert.Empty(api.Host.Calls);
    }
}
