using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using KvmSharp.Boot;
using KvmSharp.Devices.Virtio;
using KvmSharp.Hypervisor;
using KvmSharp.Hypervisor.Snapshots;
using KvmSharp.Kvm;
using KvmSharp.Vmm;
using KvmSharp.Vmm.Config;
using KvmSharp.Vmm.Control;
using KvmSharp.Vmm.Net;

namespace KvmSharp.Api;

/// <summary>
/// The API's state machine over <see cref="IVmHost"/>: the pre-boot resources (machine-config, boot-source, drives,
/// network interfaces, entropy), then one machine started from them or loaded from a snapshot. Every command is
/// serialised by one lock and either applies whole or throws <see cref="ApiFaultException"/> with nothing changed.
/// </summary>
internal sealed class VmmController : IDisposable
{
    public const int MaximumVcpus = 32;
    private const string Origin = "vmm";

    private readonly Lock _lock = new();
    private readonly IVmHost _host;
    private readonly ApiServerOptions _options;
    private readonly TaskCompletionSource<MachineExit> _ended = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private MachineConfiguration _machine = new() { VcpuCount = 1, MemSizeMib = 128 };
    private bool _machineConfigured;
    private BootSource? _bootSource;
    private readonly List<Drive> _drives = [];
    private readonly List<NetworkInterface> _nets = [];
    private EntropyDevice? _entropy;
    private MetricsSink? _metrics;
    private Metrics? _metricsConfig;
    private IRunningVm? _vm;
    private long? _createSnapshotUs;
    private long? _loadSnapshotUs;

    public VmmController(IVmHost host, ApiServerOptions options, ApiLog log)
    {
        _host = host;
        _options = options;
        Log = log;
    }

    public ApiLog Log { get; }

    /// <summary>Completes when the started (or restored) machine has ended.</summary>
    public Task<MachineExit> MachineEnded => _ended.Task;

    public IRunningVm? Vm
    {
        get
        {
            lock (_lock)
            {
                return _vm;
            }
        }
    }

    public InstanceInfo Describe()
    {
        lock (_lock)
        {
            var state = _vm?.State switch
            {
                null => InstanceState.NotStarted,
                VmRunState.Running => InstanceState.Running,
                VmRunState.Paused => InstanceState.Paused,
                _ => InstanceState.Exited,
            };
            return new InstanceInfo(_options.InstanceId, state, _options.VmmVersion, "Firecracker");
        }
    }

    public MachineConfiguration MachineConfig
    {
        get
        {
            lock (_lock)
            {
                return _machine;
            }
        }
    }

    public void PutMachineConfig(JsonElement body)
    {
        var r = new RequestReader(body, "MachineConfig");
        var config = new MachineConfiguration
        {
            VcpuCount = r.RequiredInt("vcpu_count", 0, 255),
            MemSizeMib = r.RequiredInt("mem_size_mib", 0, int.MaxValue),
            Smt = r.Bool("smt") ?? false,
            TrackDirtyPages = CpuTemplateThen(r, () => r.Bool("track_dirty_pages") ?? false),
            HugePages = r.Enum<HugePages>("huge_pages") ?? HugePages.None,
        };
        r.End();
        lock (_lock)
        {
            RequireNotStarted();
            _machine = Validate(config);
            _machineConfigured = true;
        }
    }

    public void PatchMachineConfig(JsonElement body)
    {
        var r = new RequestReader(body, "MachineConfigUpdate");
        int? vcpus = r.Int("vcpu_count", 0, 255);
        int? memory = r.Int("mem_size_mib", 0, int.MaxValue);
        bool? smt = r.Bool("smt");
        bool? track = CpuTemplateThen(r, () => r.Bool("track_dirty_pages"));
        var huge = r.Enum<HugePages>("huge_pages");
        r.End();
        lock (_lock)
        {
            RequireNotStarted();
            _machine = Validate(new MachineConfiguration
            {
                VcpuCount = vcpus ?? _machine.VcpuCount,
                MemSizeMib = memory ?? _machine.MemSizeMib,
                Smt = smt ?? _machine.Smt,
                TrackDirtyPages = track ?? _machine.TrackDirtyPages,
                HugePages = huge ?? _machine.HugePages,
            });
            _machineConfigured = true;
        }
    }

    /// <summary>Refuses <c>cpu_template</c>, then reads on: the fields are taken in Firecracker's MachineConfig order (which its "expected one of" lists).</summary>
    private static T CpuTemplateThen<T>(RequestReader r, Func<T> next)
    {
        r.Unsupported("cpu_template", "KvmSharp passes the host CPU's CPUID through");
        return next();
    }

    private static MachineConfiguration Validate(MachineConfiguration config)
    {
        if (config.VcpuCount is < 1 or > MaximumVcpus)
        {
            throw new ApiFaultException(string.Create(CultureInfo.InvariantCulture,
                $"The vCPU number is invalid! The vCPU number can only be 1 or an even number when SMT is enabled. KvmSharp takes 1 to {MaximumVcpus} (got {config.VcpuCount})."));
        }

        ulong bytes = (ulong)config.MemSizeMib * 1024 * 1024;
        if (bytes < VmConfigValidator.MinimumMemory || bytes > VmConfigValidator.MaximumMemory)
        {
            throw new ApiFaultException(string.Create(CultureInfo.InvariantCulture,
                $"The memory size (MiB) is invalid. KvmSharp takes {VmConfigValidator.MinimumMemory >> 20} to {VmConfigValidator.MaximumMemory >> 20} MiB (got {config.MemSizeMib})."));
        }

        if (config.Smt)
        {
            throw new ApiFaultException("`smt` true is not supported by KvmSharp: each vCPU is its own core. Send \"smt\": false.");
        }

        if (config.HugePages != HugePages.None)
        {
            throw new ApiFaultException($"`huge_pages` {(config.HugePages == HugePages.Transparent ? "Transparent" : "2M")} is not supported by KvmSharp: guest memory uses normal pages. Send \"huge_pages\": \"None\".");
        }

        return config;
    }

    public void PutBootSource(JsonElement body)
    {
        var r = new RequestReader(body, "BootSourceConfig");
        var source = new BootSource
        {
            KernelImagePath = r.RequiredString("kernel_image_path"),
            BootArgs = r.String("boot_args"),
            InitrdPath = r.String("initrd_path"),
        };
        r.End();
        CheckReadable(source.KernelImagePath, "kernel");
        if (source.InitrdPath is not null)
        {
            CheckReadable(source.InitrdPath, "initrd");
        }

        if (source.BootArgs is { } args && args.Contains('\0', StringComparison.Ordinal))
        {
            throw new ApiFaultException("The kernel command line (`boot_args`) contains a NUL character.");
        }

        lock (_lock)
        {
            RequireNotStarted();
            _bootSource = source;
        }
    }

    public void PutDrive(string pathId, JsonElement body)
    {
        var r = new RequestReader(body, "BlockDeviceConfig");
        var drive = new Drive
        {
            DriveId = r.RequiredString("drive_id"),
            IsRootDevice = r.RequiredBool("is_root_device"),
            PathOnHost = r.String("path_on_host") ?? "",
            IsReadOnly = r.Bool("is_read_only") ?? false,
            Partuuid = r.String("partuuid"),
            CacheType = r.Enum<CacheType>("cache_type") ?? CacheType.Unsafe,
            IoEngine = r.Enum<IoEngine>("io_engine") ?? IoEngine.Sync,
        };
        r.Unsupported("rate_limiter");
        r.Unsupported("socket", "vhost-user block devices are not implemented");
        r.End();
        CheckId(pathId, drive.DriveId);
        if (drive.PathOnHost.Length == 0)
        {
            throw new ApiFaultException(RequestReader.Prefix + "missing field `path_on_host` in BlockDeviceConfig (KvmSharp's drives are image files).");
        }

        if (drive.IoEngine == IoEngine.Async)
        {
            throw new ApiFaultException("`io_engine` Async is not supported by KvmSharp: block I/O is synchronous preadv/pwritev. Send \"io_engine\": \"Sync\".");
        }

        CheckReadable(drive.PathOnHost, "block device backing");
        lock (_lock)
        {
            RequireNotStarted();
            int existing = _drives.FindIndex(d => d.DriveId == drive.DriveId);
            if (drive.IsRootDevice && _drives.Exists(d => d.IsRootDevice && d.DriveId != drive.DriveId))
            {
                throw new ApiFaultException("A root block device already exists!");
            }

            if (existing >= 0)
            {
                _drives.RemoveAt(existing);
            }

            // The root device is the guest's first disk (/dev/vda), as in Firecracker.
            if (drive.IsRootDevice)
            {
                _drives.Insert(0, drive);
            }
            else if (existing >= 0 && existing <= _drives.Count)
            {
                _drives.Insert(existing, drive);
            }
            else
            {
                _drives.Add(drive);
            }
        }
    }

    public static void PatchDrive()
    {
        throw new ApiFaultException("Updating a drive after boot (PATCH /drives) is not supported by KvmSharp: the disk image cannot be swapped or resized under a running guest.");
    }

    public void PutNetworkInterface(string pathId, JsonElement body)
    {
        var r = new RequestReader(body, "NetworkInterfaceConfig");
        var iface = new NetworkInterface
        {
            IfaceId = r.RequiredString("iface_id"),
            HostDevName = r.RequiredString("host_dev_name"),
            GuestMac = r.String("guest_mac"),
        };
        r.Unsupported("mtu");
        r.Unsupported("rx_rate_limiter");
        r.Unsupported("tx_rate_limiter");
        r.End();
        CheckId(pathId, iface.IfaceId);
        if (!KvmSharp.Native.TapDevice.IsValidName(iface.HostDevName))
        {
            throw new ApiFaultException($"`host_dev_name` '{iface.HostDevName}' is not an interface name (1 to 15 characters, no '/', ':' or spaces).");
        }

        if (iface.GuestMac is { } mac)
        {
            try
            {
                NetConfig.ParseMac(mac);
            }
            catch (VmConfigException)
            {
                throw new ApiFaultException($"`guest_mac` '{mac}' is not a unicast MAC address: write six hex pairs, for example 06:00:AC:10:00:02.");
            }
        }

        lock (_lock)
        {
            RequireNotStarted();
            if (_nets.Exists(n => n.HostDevName == iface.HostDevName && n.IfaceId != iface.IfaceId))
            {
                throw new ApiFaultException($"The host device name '{iface.HostDevName}' is already used by another network interface.");
            }

            int existing = _nets.FindIndex(n => n.IfaceId == iface.IfaceId);
            if (existing >= 0)
            {
                _nets[existing] = iface;
            }
            else
            {
                _nets.Add(iface);
            }
        }
    }

    public void PutEntropy(JsonElement body)
    {
        var r = new RequestReader(body, "EntropyDeviceConfig");
        r.Unsupported("rate_limiter");
        r.End();
        lock (_lock)
        {
            RequireNotStarted();
            _entropy = new EntropyDevice();
        }
    }

    public void PutLogger(JsonElement body)
    {
        var r = new RequestReader(body, "LoggerConfig");
        var config = new Logger
        {
            LogPath = r.String("log_path"),
            Level = r.Enum<LogLevel>("level") ?? LogLevel.Info,
            ShowLevel = r.Bool("show_level") ?? false,
            ShowLogOrigin = r.Bool("show_log_origin") ?? false,
            Module = r.String("module"),
        };
        r.End();
        lock (_lock)
        {
            RequireNotStarted();
            Log.Configure(config);
        }
    }

    public void PutMetrics(JsonElement body)
    {
        var r = new RequestReader(body, "MetricsConfig");
        var config = new Metrics { MetricsPath = r.RequiredString("metrics_path") };
        r.End();
        lock (_lock)
        {
            RequireNotStarted();
            if (_metrics is not null)
            {
                throw new ApiFaultException("Reinitialization of metrics not allowed.");
            }

            _metrics = MetricsSink.Open(config.MetricsPath);
            _metricsConfig = config;
        }
    }

    public void PutAction(JsonElement body)
    {
        var r = new RequestReader(body, "ActionBody");
        var action = r.RequiredEnum<ActionType>("action_type");
        r.End();
        switch (action)
        {
            case ActionType.InstanceStart:
                StartInstance();
                break;
            case ActionType.SendCtrlAltDel:
                lock (_lock)
                {
                    RequireRunningMachine().SendCtrlAltDel();
                    Log.Info(Origin, "Sent Ctrl-Alt-Del to the guest.");
                }

                break;
            default:
                FlushMetrics();
                break;
        }
    }

    public void FlushMetrics()
    {
        lock (_lock)
        {
            var metrics = _metrics ?? throw new ApiFaultException("The metrics system is not initialized: PUT /metrics {\"metrics_path\": ...} first.");
            metrics.Flush(_vm, _createSnapshotUs, _loadSnapshotUs);
        }
    }

    private void StartInstance()
    {
        lock (_lock)
        {
            RequireNotStarted();
            var source = _bootSource ?? throw new ApiFaultException("Cannot start microvm without kernel configuration.");
            var config = BuildConfig(source);
            Log.Info(Origin, $"Starting the microVM: {config.Cpus} vCPU(s), {config.MemoryBytes >> 20} MiB, kernel '{config.KernelPath}', command line '{config.CommandLine}'.");
            var vm = CallHost(() => _host.Start(config));
            Adopt(vm);
            Log.Info(Origin, $"The microVM is running on {vm.Accelerator}.");
        }
    }

    /// <summary>The <see cref="VmConfig"/> InstanceStart runs, from the pre-boot resources.</summary>
    internal VmConfig BuildConfig(BootSource source)
    {
        string commandLine = source.BootArgs ?? VmConfig.DefaultCommandLine;
        var root = _drives.Find(d => d.IsRootDevice);
        if (root is not null && !commandLine.Contains("root=", StringComparison.Ordinal))
        {
            // Firecracker's rule: the root device gets root=/dev/vda (or root=PARTUUID=...) and ro/rw.
            commandLine += (root.Partuuid is { } uuid ? " root=PARTUUID=" + uuid : " root=/dev/vda") + (root.IsReadOnly ? " ro" : " rw");
        }

        var nets = new List<NetConfig>();
        foreach (var iface in _nets)
        {
            byte[] mac = NetConfig.DefaultMac.ToArray();
            mac[5] = (byte)(mac[5] + nets.Count);
            nets.Add(new NetConfig(NetBackendKind.Tap, iface.HostDevName, iface.GuestMac is { } m ? NetConfig.ParseMac(m) : mac, []));
        }

        return new VmConfig
        {
            KernelPath = source.KernelImagePath,
            InitrdPath = source.InitrdPath,
            CommandLine = commandLine,
            MemoryBytes = (ulong)_machine.MemSizeMib * 1024 * 1024,
            Cpus = _machine.VcpuCount,
            Accelerator = _options.Accelerator,
            Console = _options.Console,
            ConsolePath = _options.ConsolePath,
            KvmDevicePath = _options.KvmDevicePath,
            Disks = _drives.Select(d => new DiskConfig(d.PathOnHost, d.IsReadOnly, d.DriveId.Length <= DiskConfig.MaximumSerialLength ? d.DriveId : null)).ToArray(),
            Rng = _entropy is not null,
            Nets = nets,
        };
    }

    public void PatchVm(JsonElement body)
    {
        var r = new RequestReader(body, "Vm");
        var state = r.RequiredEnum<VmStateRequest>("state");
        r.End();
        lock (_lock)
        {
            var vm = RequireRunningMachine();
            if (state == VmStateRequest.Paused)
            {
                CallHost(vm.Pause);
                Log.Info(Origin, "The microVM is paused.");
            }
            else
            {
                CallHost(vm.Resume);
                Log.Info(Origin, "The microVM is resumed.");
            }
        }
    }

    public void CreateSnapshot(JsonElement body)
    {
        var r = new RequestReader(body, "CreateSnapshotParams");
        var request = new SnapshotCreateParams
        {
            SnapshotPath = r.RequiredString("snapshot_path"),
            MemFilePath = r.RequiredString("mem_file_path"),
            SnapshotType = r.Enum<SnapshotType>("snapshot_type") ?? SnapshotType.Full,
        };
        r.End();
        if (request.SnapshotType == SnapshotType.Diff)
        {
            throw new ApiFaultException("`snapshot_type` Diff is not supported by KvmSharp: send \"snapshot_type\": \"Full\".");
        }

        lock (_lock)
        {
            var vm = RequireRunningMachine();
            if (vm.State != VmRunState.Paused)
            {
                throw new ApiFaultException("Cannot create a snapshot: the microVM is not paused. PATCH /vm {\"state\": \"Paused\"} first.");
            }

            var clock = Stopwatch.StartNew();
            var result = CallHost(() => vm.CreateSnapshot(request.SnapshotPath, request.MemFilePath));
            _createSnapshotUs = (long)clock.Elapsed.TotalMicroseconds;
            Log.Info(Origin, $"Snapshot written: {result.StateBytes} bytes of state to '{request.SnapshotPath}', {result.MemoryBytes} bytes of memory to '{request.MemFilePath}'.");
        }
    }

    public void LoadSnapshot(JsonElement body)
    {
        var r = new RequestReader(body, "LoadSnapshotConfig");
        string statePath = r.RequiredString("snapshot_path");
        var backend = r.Object("mem_backend", "MemBackendConfig");
        string? memFile = r.String("mem_file_path");
        bool track = r.Bool("track_dirty_pages") ?? false;
        bool? legacyTrack = r.Bool("enable_diff_snapshots");
        bool resume = r.Bool("resume_vm") ?? false;
        r.Unsupported("network_overrides");
        r.Unsupported("vsock_override");
        r.Unsupported("clock_realtime");
        r.End();
        string memoryPath;
        if (backend is not null && memFile is not null)
        {
            throw new ApiFaultException(RequestReader.Prefix + "too many fields: either `mem_backend` or `mem_file_path` exclusively is required.");
        }

        if (backend is not null)
        {
            var type = backend.RequiredEnum<MemoryBackendType>("backend_type");
            memoryPath = backend.RequiredString("backend_path");
            backend.End();
            if (type == MemoryBackendType.Uffd)
            {
                throw new ApiFaultException("`backend_type` Uffd is not supported by KvmSharp: send \"backend_type\": \"File\".");
            }
        }
        else
        {
            memoryPath = memFile ?? throw new ApiFaultException(RequestReader.Prefix + "missing field: either `mem_backend` or `mem_file_path` is required.");
        }

        track |= legacyTrack ?? false;
        lock (_lock)
        {
            RequireNotStarted();
            if (_machineConfigured || _bootSource is not null || _drives.Count > 0 || _nets.Count > 0 || _entropy is not null)
            {
                throw new ApiFaultException(ApiFaultException.LoadSnapshotNotAllowed);
            }

            var clock = Stopwatch.StartNew();
            var vm = CallHost(() => _host.LoadSnapshot(statePath, memoryPath, resume));
            _loadSnapshotUs = (long)clock.Elapsed.TotalMicroseconds;
            DescribeFrom(vm.Config, track);
            Adopt(vm);
            Log.Info(Origin, $"Snapshot '{statePath}' loaded ({(resume ? "resumed" : "paused")}).");
        }
    }

    /// <summary>
    /// Takes a machine started elsewhere (<c>kvmsharp run --api-sock</c>): the API is then in its post-boot phase, and
    /// GET /vm/config describes the machine's configuration.
    /// </summary>
    public void AttachRunning(IRunningVm vm)
    {
        ArgumentNullException.ThrowIfNull(vm);
        lock (_lock)
        {
            RequireNotStarted();
            DescribeFrom(vm.Config, track: false);
            Adopt(vm);
            Log.Info(Origin, $"Serving the machine started from the command line ({vm.Accelerator}).");
        }
    }

    /// <summary>The pre-boot resources that describe <paramref name="config"/>, for a machine the API did not configure.</summary>
    private void DescribeFrom(VmConfig config, bool track)
    {
        _machine = new MachineConfiguration { VcpuCount = config.Cpus, MemSizeMib = (int)(config.MemoryBytes >> 20), TrackDirtyPages = track };
        _bootSource = new BootSource { KernelImagePath = config.KernelPath, BootArgs = config.CommandLine, InitrdPath = config.InitrdPath };
        _drives.Clear();
        for (int i = 0; i < config.Disks.Count; i++)
        {
            var disk = config.Disks[i];
            _drives.Add(new Drive { DriveId = disk.Serial ?? "drive" + i.ToString(CultureInfo.InvariantCulture), IsRootDevice = false, PathOnHost = disk.Path, IsReadOnly = disk.ReadOnly });
        }

        _nets.Clear();
        for (int i = 0; i < config.Nets.Count; i++)
        {
            var net = config.Nets[i];
            _nets.Add(new NetworkInterface { IfaceId = "net" + i.ToString(CultureInfo.InvariantCulture), HostDevName = net.TapName ?? "passt", GuestMac = net.MacText });
        }

        _entropy = config.Rng ? new EntropyDevice() : null;
    }

    public FullVmConfiguration FullConfig()
    {
        lock (_lock)
        {
            return new FullVmConfiguration
            {
                Drives = _drives.ToArray(),
                BootSource = _bootSource,
                Logger = Log.Configured,
                MachineConfig = _machine,
                Metrics = _metricsConfig,
                NetworkInterfaces = _nets.ToArray(),
                Entropy = _entropy,
            };
        }
    }

    /// <summary>
    /// Firecracker's <c>--config-file</c>: the keys of GET /vm/config, applied in Firecracker's order (logger, metrics,
    /// machine-config, boot-source, drives, network interfaces, entropy), then InstanceStart.
    /// </summary>
    public void ApplyFullConfig(JsonElement body)
    {
        if (body.ValueKind != JsonValueKind.Object)
        {
            throw new ApiFaultException(RequestReader.Prefix + "invalid type: expected struct VmmConfig.");
        }

        var known = new[] { "balloon", "drives", "boot-source", "cpu-config", "logger", "machine-config", "metrics", "mmds-config", "network-interfaces", "vsock", "entropy" };
        foreach (var property in body.EnumerateObject())
        {
            if (Array.IndexOf(known, property.Name) < 0)
            {
                throw new ApiFaultException(RequestReader.Prefix + $"unknown field `{property.Name}`, expected one of {string.Join(", ", known.Select(k => $"`{k}`"))}.");
            }

            if (property.Name is "balloon" or "cpu-config" or "mmds-config" or "vsock" && property.Value.ValueKind != JsonValueKind.Null)
            {
                throw new ApiFaultException($"`{property.Name}` is not supported by KvmSharp.");
            }
        }

        if (!body.TryGetProperty("boot-source", out _))
        {
            throw new ApiFaultException(RequestReader.Prefix + "missing field `boot-source` in VmmConfig.");
        }

        Section(body, "logger", PutLogger);
        Section(body, "metrics", PutMetrics);
        Section(body, "machine-config", PutMachineConfig);
        Section(body, "boot-source", PutBootSource);
        Items(body, "drives", item => PutDrive(Id(item, "drive_id"), item));
        Items(body, "network-interfaces", item => PutNetworkInterface(Id(item, "iface_id"), item));
        Section(body, "entropy", PutEntropy);
        StartInstance();

        static void Section(JsonElement body, string name, Action<JsonElement> apply)
        {
            if (body.TryGetProperty(name, out var value) && value.ValueKind != JsonValueKind.Null)
            {
                apply(value);
            }
        }

        static void Items(JsonElement body, string name, Action<JsonElement> apply)
        {
            if (!body.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null)
            {
                return;
            }

            if (value.ValueKind != JsonValueKind.Array)
            {
                throw new ApiFaultException(RequestReader.Prefix + $"invalid type for `{name}`, expected a sequence.");
            }

            foreach (var item in value.EnumerateArray())
            {
                apply(item);
            }
        }

        static string Id(JsonElement item, string name) =>
            item.ValueKind == JsonValueKind.Object && item.TryGetProperty(name, out var id) && id.ValueKind == JsonValueKind.String ? id.GetString()! : "";
    }

    public VmStatistics Statistics()
    {
        lock (_lock)
        {
            var vm = RequireRunningMachine(allowExited: true);
            var vcpus = new List<VcpuExitStatistics>();
            var kinds = Enum.GetValues<ExitKind>();
            for (int i = 0; i < vm.VcpuStatistics.Count; i++)
            {
                var counts = vm.VcpuStatistics[i].Snapshot();
                var exits = new Dictionary<string, long>();
                long total = 0;
                foreach (var kind in kinds)
                {
                    exits[kind.ToString()] = counts[(int)kind];
                    total += counts[(int)kind];
                }

                vcpus.Add(new VcpuExitStatistics(i, total, exits));
            }

            return new VmStatistics(Describe().State switch
            {
                InstanceState.Running => "Running",
                InstanceState.Paused => "Paused",
                _ => "Exited",
            }, vm.Accelerator, vcpus, vm.DeviceCounters());
        }
    }

    private void Adopt(IRunningVm vm)
    {
        _vm = vm;
        vm.Completion.ContinueWith(t =>
        {
            if (t.IsCompletedSuccessfully)
            {
                Log.Info(Origin, $"The microVM ended: {t.Result.Reason}.");
                _ended.TrySetResult(t.Result);
            }
            else
            {
                _ended.TrySetException(t.Exception?.InnerExceptions ?? [new InvalidOperationException("The machine's completion was cancelled.")]);
            }
        }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    private void RequireNotStarted()
    {
        if (_vm is not null)
        {
            throw new ApiFaultException(ApiFaultException.NotSupportedAfterStart);
        }
    }

    private IRunningVm RequireRunningMachine(bool allowExited = false)
    {
        var vm = _vm ?? throw new ApiFaultException(ApiFaultException.NotSupportedBeforeStart);
        if (!allowExited && vm.State == VmRunState.Exited)
        {
            throw new ApiFaultException("The microVM has ended; this process is about to exit.");
        }

        return vm;
    }

    private static void CheckId(string pathId, string bodyId)
    {
        if (pathId != bodyId)
        {
            throw new ApiFaultException("The id from the path does not match the id from the body!");
        }
    }

    private static void CheckReadable(string path, string what)
    {
        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ApiFaultException($"The {what} file '{path}' cannot be opened: {e.Message}");
        }
    }

    private static void CallHost(Action call) => CallHost(() =>
    {
        call();
        return 0;
    });

    /// <summary>Runs an <see cref="IVmHost"/> call; the user errors it throws become 400s with their own message.</summary>
    private static T CallHost<T>(Func<T> call)
    {
        try
        {
            return call();
        }
        catch (Exception e) when (e is VmConfigException or BootImageException or BlockImageException or NetworkBackendException
            or KvmException or KvmUnavailableException or SnapshotStateException or InvalidOperationException or IOException
            or UnauthorizedAccessException)
        {
            throw new ApiFaultException(e.Message);
        }
    }

    public void Dispose()
    {
        _metrics?.Dispose();
        Log.Dispose();
    }
}
