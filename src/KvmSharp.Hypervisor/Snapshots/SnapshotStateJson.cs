using System.Text.Json;

namespace KvmSharp.Hypervisor.Snapshots;

/// <summary>
/// Devices save their state as plain records (CONVENTIONS.md: <c>Save()</c> returns a record, <c>Restore(record)</c>
/// takes it); a section's payload is that record as UTF-8 JSON, so a state file can be read with any JSON tool and the
/// same state always gives the same bytes (properties in declaration order, byte arrays as base64).
/// </summary>
public static class SnapshotStateJson
{
    private static readonly JsonSerializerOptions Options = new()
    {
        WriteIndented = false,
        IncludeFields = false,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        UnmappedMemberHandling = System.Text.Json.Serialization.JsonUnmappedMemberHandling.Disallow,
        RespectNullableAnnotations = true,
        RespectRequiredConstructorParameters = true,
    };

    public static SnapshotSection ToSection<T>(string id, int version, T state)
        where T : class
    {
        ArgumentNullException.ThrowIfNull(state);
        return new SnapshotSection(id, version, JsonSerializer.SerializeToUtf8Bytes(state, Options));
    }

    /// <summary>The record in <paramref name="section"/>; throws <see cref="SnapshotStateException"/> if it is not one.</summary>
    public static T FromSection<T>(SnapshotSection section, int expectedVersion)
        where T : class
    {
        ArgumentNullException.ThrowIfNull(section);
        if (section.Version != expectedVersion)
        {
            throw new SnapshotStateException(
                $"The snapshot's '{section.Id}' state is version {section.Version}; this build of KvmSharp reads version {expectedVersion}.");
        }

        try
        {
            return JsonSerializer.Deserialize<T>(section.Payload.Span, Options)
                ?? throw new SnapshotStateException($"The snapshot's '{section.Id}' state is empty.");
        }
        catch (JsonException e)
        {
            throw new SnapshotStateException($"The snapshot's '{section.Id}' state is not readable: {e.Message}");
        }
    }
}
