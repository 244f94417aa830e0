using System.Globalization;
using System.Runtime.CompilerServices;

namespace KvmSharp.Api;

/// <summary>
/// The log PUT /logger configures, in Firecracker's line format:
/// <c>2026-12-07T18:52:00.123456789 [anonymous-instance:fc_api:INFO:api_server] message</c>
/// (the level with <c>show_level</c>, the origin with <c>show_log_origin</c>; <c>module</c> keeps only lines whose
/// origin starts with it). Until configured, lines go to <see cref="ApiServerOptions.Log"/> if given.
/// </summary>
internal sealed class ApiLog : IDisposable
{
    private readonly Lock _lock = new();
    private readonly string _instanceId;
    private readonly TextWriter? _fallback;
    private TextWriter? _writer;
    private Logger _config = new();

    public ApiLog(string instanceId, TextWriter? fallback)
    {
        _instanceId = instanceId;
        _fallback = fallback;
    }

    public Logger? Configured { get; private set; }

    /// <summary>Opens <c>log_path</c> (a file, appended, or a FIFO) and applies the settings; throws <see cref="ApiFaultException"/>.</summary>
    public void Configure(Logger config)
    {
        TextWriter? writer = null;
        if (config.LogPath is not null)
        {
            try
            {
                var stream = new FileStream(config.LogPath, FileMode.OpenOrCreate, FileAccess.Write, FileShare.ReadWrite, 1, FileOptions.None);
                if (stream.CanSeek)
                {
                    stream.Seek(0, SeekOrigin.End);
                }

                writer = new StreamWriter(stream) { AutoFlush = true };
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new ApiFaultException($"Cannot open the log file '{config.LogPath}': {e.Message}");
            }
        }

        lock (_lock)
        {
            if (writer is not null)
            {
                _writer?.Dispose();
                _writer = writer;
            }

            _config = config;
            Configured = config;
        }
    }

    public void Error(string origin, string message) => Write(LogLevel.Error, origin, message);

    public void Warning(string origin, string message) => Write(LogLevel.Warning, origin, message);

    public void Info(string origin, string message) => Write(LogLevel.Info, origin, message);

    public void Debug(string origin, string message) => Write(LogLevel.Debug, origin, message);

    public void Write(LogLevel level, string origin, string message, [CallerMemberName] string caller = "")
    {
        lock (_lock)
        {
            var target = _writer ?? _fallback;
            if (target is null || level == LogLevel.Off || level > _config.Level || _config.Level == LogLevel.Off)
            {
                return;
            }

            if (_config.Module is { } module && !origin.StartsWith(module, StringComparison.Ordinal))
            {
                return;
            }

            var now = DateTime.UtcNow;
            string stamp = now.ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff", CultureInfo.InvariantCulture) + "00";
            string tag = _instanceId + ":fc_api";
            if (_config.ShowLevel)
            {
                tag += ":" + LevelName(level);
            }

            if (_config.ShowLogOrigin)
            {
                tag += ":" + origin + ":" + caller;
            }

            try
            {
                target.WriteLine($"{stamp} [{tag}] {message}");
            }
            catch (IOException)
            {
                // A reader that went away (a FIFO closed) must not fail the request that logged.
            }
        }
    }

    private static string LevelName(LogLevel level) => level switch
    {
        LogLevel.Error => "ERROR",
        LogLevel.Warning => "WARN",
        LogLevel.Info => "INFO",
        LogLevel.Debug => "DEBUG",
        _ => "TRACE",
    };

    public void Dispose()
    {
        lock (_lock)
        {
            _writer?.Dispose();
            _writer = null;
        }
    }
}
