using System.Text.Json.Nodes;

namespace KvmSharp.Api.Tests;

/// <summary>
/// The OpenAPI document the server generates (GET /x/openapi/v1.json) is checked in as docs/api/openapi.json; this
/// test fails when they drift. After an intended API change, regenerate it:
/// <c>KVMSHARP_UPDATE_OPENAPI=1 dotnet test tests/KvmSharp.Api.Tests --filter OpenApiDocumentTests</c>.
/// </summary>
public sealed class OpenApiDocumentTests
{
    [Fact]
    public async Task GeneratedDocument_EqualsTheCheckedInOne()
    {
        await using var api = await ApiFixture.StartAsync();
        using var response = await api.Client.GetAsync("/x/openapi/v1.json", TestContext.Current.CancellationToken);
        Assert.Equal(200, (int)response.StatusCode);
        var generated = JsonNode.Parse(await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken))!;
        string text = generated.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }) + "\n";
        string checkedIn = Path.Combine(RepositoryRoot(), "docs", "api", "openapi.json");
        if (Environment.GetEnvironmentVariable("KVMSHARP_UPDATE_OPENAPI") == "1")
        {
            Directory.CreateDirectory(Path.GetDirectoryName(checkedIn)!);
            await File.WriteAllTextAsync(checkedIn, text, TestContext.Current.CancellationToken);
        }

        Assert.True(File.Exists(checkedIn), $"{checkedIn} is missing; generate it with KVMSHARP_UPDATE_OPENAPI=1.");
        Assert.Equal(await File.ReadAllTextAsync(checkedIn, TestContext.Current.CancellationToken), text);

        // The document describes Firecracker's resources and ours.
        var paths = generated["paths"]!.AsObject();
        foreach (string path in new[] { "/", "/machine-config", "/boot-source", "/drives/{drive_id}", "/network-interfaces/{iface_id}", "/actions", "/vm", "/snapshot/create", "/snapshot/load", "/x/stats" })
        {
            Assert.True(paths.ContainsKey(path), $"the OpenAPI document has no {path}");
        }
    }

    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "KvmSharp.slnx")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("KvmSharp.slnx not found above " + AppContext.BaseDirectory);
    }
}
