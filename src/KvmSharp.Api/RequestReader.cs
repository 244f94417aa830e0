using System.Globalization;
using System.Text.Json;

namespace KvmSharp.Api;

/// <summary>
/// Reads one JSON object of a request as Firecracker's serde structs with <c>deny_unknown_fields</c> do: every field
/// the caller does not take is an error, as are a missing required field, a wrong type and an unknown enum string.
/// Each error is an <see cref="ApiFaultException"/> whose message names the field, in serde's words.
/// </summary>
internal sealed class RequestReader
{
    public const string Prefix = "An error occurred when deserializing the json body of a request: ";

    private readonly JsonElement _element;
    private readonly string _context;
    private readonly List<string> _known = [];

    public RequestReader(JsonElement element, string context)
    {
        _element = element;
        _context = context;
        if (element.ValueKind != JsonValueKind.Object)
        {
            throw Error($"invalid type: {Describe(element)}, expected struct {context}");
        }
    }

    /// <summary>Parses <paramref name="body"/>; malformed JSON is a 400 with the parser's position.</summary>
    public static JsonElement Parse(ReadOnlySpan<byte> body)
    {
        if (body.IsEmpty)
        {
            throw new ApiFaultException("The request body is empty: send a JSON object.");
        }

        try
        {
            var reader = new Utf8JsonReader(body, new JsonReaderOptions { CommentHandling = JsonCommentHandling.Disallow, MaxDepth = 32 });
            return JsonElement.ParseValue(ref reader);
        }
        catch (JsonException e)
        {
            string where = e.LineNumber is long line
                ? string.Create(CultureInfo.InvariantCulture, $" at line {line + 1} column {(e.BytePositionInLine ?? 0) + 1}")
                : "";
            throw new ApiFaultException($"{Prefix}the body is not valid JSON{where}.");
        }
    }

    public string RequiredString(string name) => String(name) ?? throw Missing(name);

    public string? String(string name)
    {
        var value = Take(name);
        if (value is not { } v || v.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        return v.ValueKind == JsonValueKind.String ? v.GetString()! : throw WrongType(name, v, "a string");
    }

    public bool RequiredBool(string name) => Bool(name) ?? throw Missing(name);

    public bool? Bool(string name)
    {
        var value = Take(name);
        if (value is not { } v || v.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        return v.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw WrongType(name, v, "a boolean"),
        };
    }

    public int RequiredInt(string name, int minimum, int maximum) => Int(name, minimum, maximum) ?? throw Missing(name);

    public int? Int(string name, int minimum, int maximum)
    {
        var value = Take(name);
        if (value is not { } v || v.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        if (v.ValueKind != JsonValueKind.Number || !v.TryGetInt64(out long n))
        {
            throw WrongType(name, v, "an integer");
        }

        if (n < minimum || n > maximum)
        {
            throw Error(string.Create(CultureInfo.InvariantCulture,
                $"invalid value: integer `{n}` for field `{name}`, expected an integer from {minimum} to {maximum}"));
        }

        return (int)n;
    }

    public T RequiredEnum<T>(string name)
        where T : struct, Enum => Enum<T>(name) ?? throw Missing(name);

    public T? Enum<T>(string name)
        where T : struct, Enum
    {
        var value = Take(name);
        if (value is not { } v || v.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        if (v.ValueKind != JsonValueKind.String)
        {
            throw WrongType(name, v, "a string");
        }

        string text = v.GetString()!;
        foreach (var (wire, member) in EnumNames<T>.All)
        {
            if (wire == text)
            {
                return member;
            }
        }

        throw Error($"unknown variant `{text}` for field `{name}`, expected one of {Quoted(EnumNames<T>.All.Select(p => p.Wire))}");
    }

    /// <summary>A nested object, or null when absent.</summary>
    public RequestReader? Object(string name, string context)
    {
        var value = Take(name);
        return value is not { } v || v.ValueKind == JsonValueKind.Null ? null : new RequestReader(v, context);
    }

    /// <summary>An array of objects, or null when absent.</summary>
    public IReadOnlyList<RequestReader>? Objects(string name, string context)
    {
        var value = Take(name);
        if (value is not { } v || v.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        if (v.ValueKind != JsonValueKind.Array)
        {
            throw WrongType(name, v, "a sequence");
        }

        var items = new List<RequestReader>();
        foreach (var item in v.EnumerateArray())
        {
            items.Add(new RequestReader(item, context));
        }

        return items;
    }

    /// <summary>A Firecracker field KvmSharp does not implement: allowed only when absent or null.</summary>
    public void Unsupported(string name, string? why = null)
    {
        var value = Take(name);
        if (value is { } v && v.ValueKind != JsonValueKind.Null)
        {
            throw new ApiFaultException($"`{name}` is not supported by KvmSharp{(why is null ? "" : ": " + why)}.");
        }
    }

    /// <summary>Whether the body has <paramref name="name"/> (without taking it).</summary>
    public bool Has(string name) => _element.TryGetProperty(name, out var v) && v.ValueKind != JsonValueKind.Null;

    /// <summary>Rejects every field not taken; call after reading all of them.</summary>
    public void End()
    {
        foreach (var property in _element.EnumerateObject())
        {
            if (!_known.Contains(property.Name))
            {
                throw Error(_known.Count == 0
                    ? $"unknown field `{property.Name}`, there are no fields"
                    : $"unknown field `{property.Name}`, expected one of {Quoted(_known)}");
            }
        }
    }

    private JsonElement? Take(string name)
    {
        _known.Add(name);
        return _element.TryGetProperty(name, out var value) ? value : null;
    }

    private static string Quoted(IEnumerable<string> names) => string.Join(", ", names.Select(n => $"`{n}`"));

    private static string Describe(JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.String => $"string \"{value.GetString()}\"",
        JsonValueKind.Number => $"number {value.GetRawText()}",
        JsonValueKind.True or JsonValueKind.False => $"boolean `{value.GetRawText()}`",
        JsonValueKind.Array => "sequence",
        JsonValueKind.Object => "map",
        _ => "null",
    };

    private ApiFaultException Missing(string name) => Error($"missing field `{name}` in {_context}");

    private static ApiFaultException WrongType(string name, JsonElement value, string expected) =>
        Error($"invalid type: {Describe(value)} for field `{name}`, expected {expected}");

    private static ApiFaultException Error(string detail) => new(Prefix + detail + ".");

    /// <summary>An enum's wire strings ([JsonStringEnumMemberName] or the member name).</summary>
    private static class EnumNames<T>
        where T : struct, Enum
    {
        public static readonly (string Wire, T Member)[] All = Build();

        private static (string, T)[] Build()
        {
            var names = System.Enum.GetNames<T>();
            var values = System.Enum.GetValues<T>();
            var result = new (string, T)[names.Length];
            for (int i = 0; i < names.Length; i++)
            {
                var field = typeof(T).GetField(names[i])!;
                var attribute = (System.Text.Json.Serialization.JsonStringEnumMemberNameAttribute?)Attribute.GetCustomAttribute(
                    field, typeof(System.Text.Json.Serialization.JsonStringEnumMemberNameAttribute));
                result[i] = (attribute?.Name ?? names[i], values[i]);
            }

            return result;
        }
    }
}
