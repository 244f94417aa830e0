using System.Net.Sockets;
using System.Text.Json;
using KvmSharp.Vmm;
using KvmSharp.Vmm.Control;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace KvmSharp.Api;

/// <summary>The API socket could not be opened: a missing directory, a live server on the path. One line.</summary>
public sealed class ApiServerException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// The Firecracker-compatible HTTP/1.1 JSON API on a UNIX socket (Kestrel, minimal APIs, source-generated JSON), over
/// the one machine of an <see cref="IVmHost"/>. Kestrel serves requests on thread-pool threads, never on vCPU threads;
/// commands are serialised, so the host sees one call at a time.
/// </summary>
public sealed class ApiServer : IAsyncDisposable
{
    private readonly WebApplication? _app;
    private readonly VmmController _controller;

    private ApiServer(string? socketPath, WebApplication? app, VmmController controller)
    {
        SocketPath = socketPath;
        _app = app;
        _controller = controller;
    }

    /// <summary>The socket served, or null without one (<c>--no-api</c>).</summary>
    public string? SocketPath { get; }

    /// <summary>Completes when the machine (started through the API or <see cref="ApplyConfiguration"/>) has ended.</summary>
    public Task<MachineExit> MachineEnded => _controller.MachineEnded;

    /// <summary>The machine, once started or loaded.</summary>
    public IRunningVm? Vm => _controller.Vm;

    /// <summary>
    /// Serves the API on <paramref name="socketPath"/> (null: no socket, for <c>--no-api</c> with a config file). A stale
    /// socket file is replaced; a path where a server answers is refused. Throws <see cref="ApiServerException"/>.
    /// </summary>
    public static async Task<ApiServer> StartAsync(string? socketPath, IVmHost host, ApiServerOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(host);
        ArgumentNullException.ThrowIfNull(options);
        var controller = new VmmController(host, options, new ApiLog(options.InstanceId, options.Log));
        if (socketPath is null)
        {
            return new ApiServer(null, null, controller);
        }

        PrepareSocketPath(socketPath);
        var app = Build(socketPath, controller, options);
        try
        {
            await app.StartAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or SocketException or UnauthorizedAccessException)
        {
            await app.DisposeAsync().ConfigureAwait(false);
            controller.Dispose();
            throw new ApiServerException($"Cannot serve the API on '{socketPath}': {e.Message}", e);
        }

        controller.Log.Info("api_server", $"Serving the API on '{socketPath}'.");
        return new ApiServer(socketPath, app, controller);
    }

    /// <summary>
    /// Applies Firecracker's full-VM JSON (the shape of GET /vm/config: boot-source, machine-config, drives,
    /// network-interfaces, entropy, logger, metrics) and starts the machine, as <c>firecracker --config-file</c>
    /// does. Throws <see cref="ApiFaultException"/> with the message the API would answer.
    /// </summary>
    public void ApplyConfiguration(string fullVmConfigurationJson)
    {
        ArgumentNullException.ThrowIfNull(fullVmConfigurationJson);
        _controller.ApplyFullConfig(RequestReader.Parse(System.Text.Encoding.UTF8.GetBytes(fullVmConfigurationJson)));
    }

    /// <summary>
    /// Serves a machine started outside the API (<c>kvmsharp run --api-sock</c>): the API is in its post-boot phase
    /// at once, <see cref="MachineEnded"/> completes with that machine.
    /// </summary>
    public void AttachRunning(IRunningVm vm) => _controller.AttachRunning(vm);

    public async ValueTask DisposeAsync()
    {
        if (_app is not null)
        {
            await _app.StopAsync().ConfigureAwait(false);
            await _app.DisposeAsync().ConfigureAwait(false);
            try
            {
                File.Delete(SocketPath!);
            }
            catch (IOException)
            {
                // Best effort: a stale socket file is replaced by the next server anyway.
            }
        }

        _controller.Dispose();
    }

    private static void PrepareSocketPath(string socketPath)
    {
        string full = Path.GetFullPath(socketPath);
        string? directory = Path.GetDirectoryName(full);
        if (directory is null || !Directory.Exists(directory))
        {
            throw new ApiServerException($"The directory of the API socket '{socketPath}' does not exist. Create it or pass another --api-sock.");
        }

        if (Directory.Exists(full))
        {
            throw new ApiServerException($"The API socket path '{socketPath}' is a directory. Pass the path of a socket file to create.");
        }

        if (!File.Exists(full))
        {
            return;
        }

        using (var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
        {
            try
            {
                probe.Connect(new UnixDomainSocketEndPoint(full));
                throw new ApiServerException($"The API socket '{socketPath}' is in use by a running server. Stop it or pass another --api-sock.");
            }
            catch (SocketException)
            {
                // Nobody answers: a stale socket (or a file) that Firecracker would remove too.
            }
        }

        try
        {
            File.Delete(full);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ApiServerException($"Cannot remove the stale API socket '{socketPath}': {e.Message}", e);
        }
    }

    private static WebApplication Build(string socketPath, VmmController controller, ApiServerOptions options)
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions
        {
            Args = [],
            ApplicationName = "KvmSharp.Api",
            ContentRootPath = AppContext.BaseDirectory,
            EnvironmentName = "Production",
        });
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            kestrel.Limits.MaxRequestBodySize = options.MaxPayloadBytes;
            kestrel.ListenUnixSocket(socketPath, listen => listen.Use(PercentEncodedHostFilter.Wrap));
        });
        builder.Services.ConfigureHttpJsonOptions(json => json.SerializerOptions.TypeInfoResolverChain.Insert(0, ApiJsonContext.Default));
        ApiEndpoints.AddOpenApiDocument(builder.Services);
        var app = builder.Build();

        // Firecracker reads every body as JSON whatever its Content-Type says (`curl -d` sends a form type): so do we,
        // before routing, whose content-type check would otherwise turn the request into "Invalid request method".
        app.Use((context, next) =>
        {
            bool hasBody = HttpMethods.IsPut(context.Request.Method) || HttpMethods.IsPatch(context.Request.Method) || context.Request.ContentLength > 0;
            if (hasBody && context.Request.ContentType?.StartsWith("application/json", StringComparison.OrdinalIgnoreCase) != true)
            {
                context.Request.ContentType = "application/json";
            }

            return next(context);
        });
        app.UseRouting();
        ApiEndpoints.Map(app, controller, options);
        return app;
    }
}
