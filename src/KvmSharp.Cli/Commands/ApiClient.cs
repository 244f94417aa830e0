using System.Net.Sockets;
using System.Text;
using System.Text.Json;

namespace KvmSharp.Cli.Commands;

/// <summary>A request to the API failed: no socket, or the server's <c>fault_message</c>. One line.</summary>
internal sealed class ApiClientException(string message) : Exception(message);

/// <summary>An HTTP client for the Firecracker-compatible API on a UNIX socket (what <c>kvmsharp ctl</c> talks to).</summary>
internal sealed class ApiClient : IDisposable
{
    private readonly HttpClient _http;
    private readonly string _socketPath;

    public ApiClient(string socketPath)
    {
        _socketPath = socketPath;
        _http = CreateHttpClient(socketPath, TimeSpan.FromMinutes(10));
    }

    /// <summary>An HttpClient whose every connection is a new connection to the UNIX socket <paramref name="socketPath"/>.</summary>
    internal static HttpClient CreateHttpClient(string socketPath, TimeSpan timeout)
    {
        var handler = new SocketsHttpHandler
        {
            ConnectCallback = async (_, token) =>
            {
                var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                try
                {
                    await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), token).ConfigureAwait(false);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            },
        };
        return new HttpClient(handler) { BaseAddress = new Uri("http://localhost/"), Timeout = timeout };
    }

    public async Task<JsonElement> GetAsync(string path, CancellationToken token)
    {
        using var response = await Send(HttpMethod.Get, path, null, token).ConfigureAwait(false);
        string body = await response.Content.ReadAsStringAsync(token).ConfigureAwait(false);
        if ((int)response.StatusCode != 200)
        {
            throw Fault(path, (int)response.StatusCode, body);
        }

        using var document = JsonDocument.Parse(body);
        return document.RootElement.Clone();
    }

    /// <summary>PUT or PATCH; anything but 204 is a failure (as Firecracker's own test client treats it).</summary>
    public async Task SendAsync(HttpMethod method, string path, string json, CancellationToken token)
    {
        using var response = await Send(method, path, json, token).ConfigureAwait(false);
        if ((int)response.StatusCode != 204)
        {
            throw Fault(path, (int)response.StatusCode, await response.Content.ReadAsStringAsync(token).ConfigureAwait(false));
        }
    }

    private async Task<HttpResponseMessage> Send(HttpMethod method, string path, string? json, CancellationToken token)
    {
        using var request = new HttpRequestMessage(method, path);
        if (json is not null)
        {
            request.Content = new StringContent(json, Encoding.UTF8, "application/json");
        }

        try
        {
            return await _http.SendAsync(request, token).ConfigureAwait(false);
        }
        catch (HttpRequestException e)
        {
            string reason = e.InnerException is SocketException s ? s.Message : e.Message;
            throw new ApiClientException($"Cannot reach the API on '{_socketPath}': {reason}. Is kvmsharp serve running with --api-sock {_socketPath}?");
        }
    }

    private static ApiClientException Fault(string path, int status, string body)
    {
        try
        {
            using var document = JsonDocument.Parse(body);
            if (document.RootElement.TryGetProperty("fault_message", out var message))
            {
                return new ApiClientException(message.GetString() ?? "");
            }
        }
        catch (JsonException)
        {
        }

        return new ApiClientException($"{path}: HTTP {status} {body}");
    }

    public void Dispose() => _http.Dispose();
}
