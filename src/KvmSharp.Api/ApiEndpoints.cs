using System.Buffers;
using System.Globalization;
using System.IO.Pipelines;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace KvmSharp.Api;

/// <summary>The routes: Firecracker's paths, methods and codes (PUT/PATCH 204, GET 200, errors 400), and ours under /x/.</summary>
internal static class ApiEndpoints
{
    public const string DocumentName = "v1";
    public const string OpenApiPath = "/x/openapi/{documentName}.json";
    private const string Json = "application/json";
    private const string Origin = "api_server";

    public static void AddOpenApiDocument(IServiceCollection services) =>
        services.AddOpenApi(DocumentName, o => o.AddDocumentTransformer((document, _, _) =>
        {
            document.Info = new() { Title = "KvmSharp API", Version = "1", Description = "Firecracker-compatible control API of KvmSharp on a UNIX socket; KvmSharp's own additions are under /x/." };
            document.Servers = [];
            return Task.CompletedTask;
        }));

    public static void Map(WebApplication app, VmmController vmm, ApiServerOptions options)
    {
        app.MapOpenApi(OpenApiPath);

        app.MapGet("/", () => Ok(vmm.Describe(), ApiJsonContext.Default.InstanceInfo))
            .Produces<InstanceInfo>(200).WithSummary("Returns general information about an instance.");
        app.MapGet("/version", () => Ok(new VersionInfo(options.VmmVersion), ApiJsonContext.Default.VersionInfo))
            .Produces<VersionInfo>(200).WithSummary("Gets the version of the VMM (KvmSharp's, in Firecracker's field).");
        app.MapGet("/machine-config", () => Ok(vmm.MachineConfig, ApiJsonContext.Default.MachineConfiguration))
            .Produces<MachineConfiguration>(200).WithSummary("Gets the machine configuration of the VM.");
        app.MapGet("/vm/config", () => Ok(vmm.FullConfig(), ApiJsonContext.Default.FullVmConfiguration))
            .Produces<FullVmConfiguration>(200).WithSummary("Gets the full VM configuration.");

        Put<MachineConfiguration>(app, vmm, "/machine-config", "Configures the vCPU count and memory size (pre-boot only).", (_, b) => vmm.PutMachineConfig(b));
        Patch<MachineConfigurationUpdate>(app, vmm, "/machine-config", "Partially updates the machine configuration (pre-boot only).", (_, b) => vmm.PatchMachineConfig(b));
        Put<BootSource>(app, vmm, "/boot-source", "Sets the kernel, initrd and command line (pre-boot only).", (_, b) => vmm.PutBootSource(b));
        Put<Drive>(app, vmm, "/drives/{drive_id}", "Adds or replaces a raw image drive (pre-boot only).", (c, b) => vmm.PutDrive(RouteId(c, "drive_id"), b));
        Patch<Drive>(app, vmm, "/drives/{drive_id}", "Not supported by KvmSharp: a drive cannot be updated after boot.", (c, b) =>
        {
            if (vmm.Vm is null)
            {
                throw new ApiFaultException(ApiFaultException.NotSupportedBeforeStart);
            }

            VmmController.PatchDrive();
        });
        Put<NetworkInterface>(app, vmm, "/network-interfaces/{iface_id}", "Adds a virtio-net interface on a TAP device (pre-boot only).", (c, b) => vmm.PutNetworkInterface(RouteId(c, "iface_id"), b));
        Patch<NetworkInterface>(app, vmm, "/network-interfaces/{iface_id}", "Not supported by KvmSharp: rate limiters are not implemented.", (_, _) =>
            throw (vmm.Vm is null ? new ApiFaultException(ApiFaultException.NotSupportedBeforeStart) : ApiFaultException.NotSupported("Updating a network interface (PATCH /network-interfaces)")));
        Put<EntropyDevice>(app, vmm, "/entropy", "Adds a virtio-rng device (pre-boot only).", (_, b) => vmm.PutEntropy(b));
        Put<Logger>(app, vmm, "/logger", "Configures the log (pre-boot only).", (_, b) => vmm.PutLogger(b));
        Put<Metrics>(app, vmm, "/metrics", "Configures the metrics file FlushMetrics writes (pre-boot only).", (_, b) => vmm.PutMetrics(b));
        Put<InstanceActionInfo>(app, vmm, "/actions", "InstanceStart, SendCtrlAltDel or FlushMetrics.", (_, b) => vmm.PutAction(b));
        Patch<Vm>(app, vmm, "/vm", "Pauses or resumes the microVM.", (_, b) => vmm.PatchVm(b));
        Put<SnapshotCreateParams>(app, vmm, "/snapshot/create", "Writes a Full snapshot of the paused microVM.", (_, b) => vmm.CreateSnapshot(b));
        Put<SnapshotLoadParams>(app, vmm, "/snapshot/load", "Loads a snapshot into this fresh process.", (_, b) => vmm.LoadSnapshot(b));

        app.MapGet("/x/stats", (HttpContext c) => Get(vmm, c, () => Ok(vmm.Statistics(), ApiJsonContext.Default.VmStatistics)))
            .Produces<VmStatistics>(200).Produces<Fault>(400).WithSummary("KvmSharp: exit counts per vCPU by exit kind, and device counters.");

        foreach (string path in (string[])["/vsock", "/balloon", "/balloon/statistics", "/balloon/hinting/start", "/balloon/hinting/status", "/balloon/hinting/stop", "/mmds", "/mmds/config", "/cpu-config", "/serial", "/hotplug/memory", "/pmem/{id}"])
        {
            string feature = path.Split('/')[1];
            app.MapMethods(path, ["GET", "PUT", "PATCH"], (HttpContext c) =>
                Fail(vmm, c, new ApiFaultException($"The {feature} device is not supported by KvmSharp ({c.Request.Method} {path}).")))
                .ExcludeFromDescription();
        }

        // Firecracker answers an unknown path, and a known path with the wrong method, with a 400.
        app.MapFallback("{*path}", (HttpContext c) =>
            Fail(vmm, c, new ApiFaultException($"Invalid request method and/or path: {c.Request.Method} {c.Request.Path.Value?.TrimStart('/')}.")))
            .ExcludeFromDescription();
    }

    private static void Put<T>(WebApplication app, VmmController vmm, string pattern, string summary, Action<HttpContext, JsonElement> apply)
        where T : notnull => Body<T>(app.MapPut(pattern, Handler(vmm, apply)), summary);

    private static void Patch<T>(WebApplication app, VmmController vmm, string pattern, string summary, Action<HttpContext, JsonElement> apply)
        where T : notnull => Body<T>(app.MapPatch(pattern, Handler(vmm, apply)), summary);

    private static Delegate Handler(VmmController vmm, Action<HttpContext, JsonElement> apply) =>
        (Func<HttpContext, Task<IResult>>)(c => Handle(vmm, c, apply));

    private static void Body<T>(RouteHandlerBuilder route, string summary)
        where T : notnull =>
        route.Accepts<T>(Json).Produces(204).Produces<Fault>(400).WithSummary(summary);

    private static async Task<IResult> Handle(VmmController vmm, HttpContext context, Action<HttpContext, JsonElement> apply)
    {
        byte[] body;
        try
        {
            body = await ReadBody(context).ConfigureAwait(false);
        }
        catch (BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            long limit = context.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpMaxRequestBodySizeFeature>()?.MaxRequestBodySize ?? 0;
            string size = context.Request.ContentLength is long n ? n.ToString(CultureInfo.InvariantCulture) : "more";
            return Fail(vmm, context, new ApiFaultException(
                $"Request payload with size {size} is larger than the limit of {limit.ToString(CultureInfo.InvariantCulture)} allowed by server."));
        }

        vmm.Log.Info(Origin, $"The API server received a {context.Request.Method} request on \"{context.Request.Path}\".");
        vmm.Log.Debug(Origin, $"Request body: {Encoding.UTF8.GetString(body)}");
        try
        {
            apply(context, RequestReader.Parse(body));
            return Results.NoContent();
        }
        catch (ApiFaultException e)
        {
            return Fail(vmm, context, e);
        }
#pragma warning disable CA1031 // An unexpected failure is answered (500) and logged, never allowed to end the server.
        catch (Exception e)
#pragma warning restore CA1031
        {
            return Fail(vmm, context, new ApiFaultException($"Internal error: {e.GetType().Name}: {e.Message}", StatusCodes.Status500InternalServerError));
        }
    }

    private static async Task<byte[]> ReadBody(HttpContext context)
    {
        var reader = context.Request.BodyReader;
        var buffer = new ArrayBufferWriter<byte>();
        while (true)
        {
            ReadResult result = await reader.ReadAsync(context.RequestAborted).ConfigureAwait(false);
            foreach (var segment in result.Buffer)
            {
                buffer.Write(segment.Span);
            }

            reader.AdvanceTo(result.Buffer.End);
            if (result.IsCompleted)
            {
                break;
            }
        }

        return buffer.WrittenSpan.ToArray();
    }

    private static IResult Get(VmmController vmm, HttpContext context, Func<IResult> answer)
    {
        try
        {
            return answer();
        }
        catch (ApiFaultException e)
        {
            return Fail(vmm, context, e);
        }
    }

    private static string RouteId(HttpContext context, string name) => context.Request.RouteValues[name] as string ?? "";

    private static IResult Ok<T>(T value, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> type) =>
        new JsonBytesResult(JsonSerializer.SerializeToUtf8Bytes(value, type), StatusCodes.Status200OK);

    private static IResult Fail(VmmController vmm, HttpContext context, ApiFaultException fault)
    {
        vmm.Log.Error(Origin, $"{context.Request.Method} {context.Request.Path}: {fault.Message}");
        return new JsonBytesResult(JsonSerializer.SerializeToUtf8Bytes(new Fault(fault.Message), ApiJsonContext.Default.Fault), fault.StatusCode);
    }

    /// <summary>A JSON body with a Content-Length (as Firecracker's micro-http sends), not chunked.</summary>
    private sealed class JsonBytesResult(byte[] body, int statusCode) : IResult
    {
        public Task ExecuteAsync(HttpContext httpContext)
        {
            httpContext.Response.StatusCode = statusCode;
            httpContext.Response.ContentType = Json;
            httpContext.Response.ContentLength = body.Length;
            return httpContext.Response.Body.WriteAsync(body).AsTask();
        }
    }
}
