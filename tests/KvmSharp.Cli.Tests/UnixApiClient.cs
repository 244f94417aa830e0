using System.Text;

namespace KvmSharp.Cli.Tests;

/// <summary>Synchronous, asserting calls to a VMM's API over its UNIX socket (ctl's HttpClient underneath), as Firecracker's test client makes them.</summary>
internal sealed class UnixApiClient : IDisposable
{
    private readonly HttpClient _http;

    public UnixApiClient(string socketPath)
    {
        SocketPath = socketPath;
        _http = Commands.ApiClient.CreateHttpClient(socketPath, TestTime.Scaled(TimeSpan.FromMinutes(3)));
    }

    public string SocketPath { get; }

    /// <summary>Waits until the server answers GET /machine-config (firecracker-go-sdk's waitForSocket).</summary>
    public void WaitUntilServing(TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            try
            {
                if (File.Exists(SocketPath) && Send(HttpMethod.Get, "machine-config", null).Status == 200)
                {
                    return;
                }
            }
            catch (HttpRequestException)
            {
            }

            Assert.True(DateTime.UtcNow < deadline, $"the API on {SocketPath} did not answer within {timeout.TotalSeconds:0} s");
            Thread.Sleep(50);
        }
    }

    public (int Status, string Body) Send(HttpMethod method, string path, string? json)
    {
        using var request = new HttpRequestMessage(method, path);
        if (json is not null)
        {
            request.Content = new StringContent(json, Encoding.UTF8, "application/json");
        }

        using var response = _http.Send(request);
        using var reader = new StreamReader(response.Content.ReadAsStream());
        return ((int)response.StatusCode, reader.ReadToEnd());
    }

    /// <summary>A PUT or PATCH that must answer 204 (Firecracker's Resource.put).</summary>
    public void Expect204(HttpMethod method, string path, string json)
    {
        var (status, body) = Send(method, path, json);
        Assert.True(status == 204, $"{method} /{path} {json} answered {status}: {body}");
    }

    public string Get(string path)
    {
        var (status, body) = Send(HttpMethod.Get, path, null);
        Assert.True(status == 200, $"GET /{path} answered {status}: {body}");
        return body;
    }

    public void Dispose() => _http.Dispose();
}
