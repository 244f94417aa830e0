using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;

namespace KvmSharp.Api.Tests;

/// <summary>A real <see cref="ApiServer"/> on a UNIX socket in a temporary directory, a fake host, and a client.</summary>
internal sealed class ApiFixture : IAsyncDisposable
{
    private ApiFixture(string directory, ApiServer server, FakeVmHost host)
    {
        Directory = directory;
        Server = server;
        Host = host;
        Client = CreateClient(server.SocketPath!);
    }

    public string Directory { get; }

    public string SocketPath => Server.SocketPath!;

    public ApiServer Server { get; }

    public FakeVmHost Host { get; }

    public HttpClient Client { get; }

    public string Kernel => File(Path.Combine(Directory, "vmlinux"));

    public string Disk => File(Path.Combine(Directory, "rootfs.ext4"));

    public static async Task<ApiFixture> StartAsync(ApiServerOptions? options = null)
    {
        string directory = Path.Combine(Path.GetTempPath(), "kvmsharp-api-" + Guid.NewGuid().ToString("N")[..12]);
        System.IO.Directory.CreateDirectory(directory);
        var host = new FakeVmHost();
        var server = await ApiServer.StartAsync(Path.Combine(directory, "api.sock"), host, options ?? new ApiServerOptions { VmmVersion = "0.1.0" }, TestContext.Current.CancellationToken);
        return new ApiFixture(directory, server, host);
    }

    public static HttpClient CreateClient(string socketPath)
    {
        var handler = new SocketsHttpHandler
        {
            ConnectCallback = async (_, token) =>
            {
                var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                try
                {
                    await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), token);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            },
        };
        return new HttpClient(handler) { BaseAddress = new Uri("http://localhost") };
    }

    public Task<HttpResponseMessage> Put(string path, string json) => Send(HttpMethod.Put, path, json);

    public Task<HttpResponseMessage> Patch(string path, string json) => Send(HttpMethod.Patch, path, json);

    public async Task<HttpResponseMessage> Send(HttpMethod method, string path, string? json)
    {
        using var request = new HttpRequestMessage(method, path);
        if (json is not null)
        {
            request.Content = new StringContent(json, Encoding.UTF8);
            request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        }

        return await Client.SendAsync(request, TestContext.Current.CancellationToken);
    }

    public async Task<JsonElement> GetJson(string path)
    {
        using var response = await Client.GetAsync(path, TestContext.Current.CancellationToken);
        Assert.Equal(200, (int)response.StatusCode);
        return JsonDocument.Parse(await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken)).RootElement.Clone();
    }

    /// <summary>Sends and asserts 204 with no body.</summary>
    public async Task NoContent(HttpMethod method, string path, string json)
    {
        using var response = await Send(method, path, json);
        string body = await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
        Assert.True((int)response.StatusCode == 204, $"{method} {path}: {(int)response.StatusCode} {body}");
        Assert.Equal("", body);
    }

    /// <summary>Sends and returns the fault_message of the 400 that must come back.</summary>
    public async Task<string> Fault(HttpMethod method, string path, string? json, int status = 400)
    {
        using var response = await Send(method, path, json);
        string body = await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
        Assert.True((int)response.StatusCode == status, $"{method} {path}: {(int)response.StatusCode} {body}");
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        using var document = JsonDocument.Parse(body);
        Assert.Single(document.RootElement.EnumerateObject());
        return document.RootElement.GetProperty("fault_message").GetString()!;
    }

    /// <summary>machine-config, boot-source, rootfs drive (Firecracker's getting-started order), then InstanceStart.</summary>
    public async Task Boot()
    {
        await NoContent(HttpMethod.Put, "/machine-config", """{"vcpu_count": 2, "mem_size_mib": 256}""");
        await NoContent(HttpMethod.Put, "/boot-source", $$"""{"kernel_image_path": "{{Kernel}}", "boot_args": "console=ttyS0 reboot=k"}""");
        await NoContent(HttpMethod.Put, "/drives/rootfs", $$"""{"drive_id": "rootfs", "path_on_host": "{{Disk}}", "is_root_device": true, "is_read_only": false}""");
        await NoContent(HttpMethod.Put, "/actions", """{"action_type": "InstanceStart"}""");
    }

    private static string File(string path)
    {
        if (!System.IO.File.Exists(path))
        {
            System.IO.File.WriteAllBytes(path, new byte[4096]);
        }

        return path;
    }

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await Server.DisposeAsync();
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
