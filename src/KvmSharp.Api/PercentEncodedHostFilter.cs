using System.IO.Pipelines;
using Microsoft.AspNetCore.Connections;

namespace KvmSharp.Api;

/// <summary>
/// Firecracker's Python test framework (requests-unixsocket) sends the socket path, percent-encoded, as the Host header
/// (<c>Host: %2Ftmp%2Ffc.sock</c>). Kestrel rejects '%' in a Host value with a bare 400 before any application code
/// runs, and has no option to relax that check for origin-form requests. This connection middleware rewrites each '%'
/// in a Host header's value to '_' (same length, so framing is untouched) as bytes come in; the API never reads Host.
/// A request body cannot trigger it: a header line starts after CR LF, and JSON strings cannot hold a raw CR LF.
/// </summary>
internal static class PercentEncodedHostFilter
{
    public static ConnectionDelegate Wrap(ConnectionDelegate next) => async connection =>
    {
        var original = connection.Transport;
        var filtered = new Pipe(new PipeOptions(useSynchronizationContext: false));
        using var stop = new CancellationTokenSource();
        var pump = Pump(original.Input, filtered.Writer, stop.Token);
        connection.Transport = new FilteredDuplexPipe(filtered.Reader, original.Output);
        try
        {
            await next(connection).ConfigureAwait(false);
        }
        finally
        {
            connection.Transport = original;
            await stop.CancelAsync().ConfigureAwait(false);
            await pump.ConfigureAwait(false);
        }
    };

    private static async Task Pump(PipeReader input, PipeWriter output, CancellationToken token)
    {
        var scanner = new Scanner();
        try
        {
            while (true)
            {
                var result = await input.ReadAsync(token).ConfigureAwait(false);
                foreach (var segment in result.Buffer)
                {
                    var target = output.GetSpan(segment.Length)[..segment.Length];
                    segment.Span.CopyTo(target);
                    scanner.Rewrite(target);
                    output.Advance(segment.Length);
                }

                input.AdvanceTo(result.Buffer.End);
                var flush = await output.FlushAsync(token).ConfigureAwait(false);
                if (result.IsCompleted || flush.IsCompleted)
                {
                    break;
                }
            }

            await output.CompleteAsync().ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            await output.CompleteAsync().ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or ConnectionResetException or InvalidOperationException)
        {
            await output.CompleteAsync(e).ConfigureAwait(false);
        }
    }

    /// <summary>Finds "\nHost:" (any case) across chunk boundaries and rewrites '%' in the value up to CR or LF.</summary>
    internal sealed class Scanner
    {
        private static readonly byte[] Name = "\nhost:"u8.ToArray();
        private int _matched = 1; // the stream starts as if after a line break
        private bool _inValue;

        public void Rewrite(Span<byte> bytes)
        {
            for (int i = 0; i < bytes.Length; i++)
            {
                byte b = bytes[i];
                if (_inValue)
                {
                    if (b is (byte)'\r' or (byte)'\n')
                    {
                        _inValue = false;
                        _matched = b == '\n' ? 1 : 0;
                    }
                    else if (b == '%')
                    {
                        bytes[i] = (byte)'_';
                    }

                    continue;
                }

                byte lower = b is >= (byte)'A' and <= (byte)'Z' ? (byte)(b | 0x20) : b;
                if (lower == Name[_matched])
                {
                    _matched++;
                    if (_matched == Name.Length)
                    {
                        _inValue = true;
                        _matched = 0;
                    }
                }
                else
                {
                    _matched = b == '\n' ? 1 : 0;
                }
            }
        }
    }

    private sealed class FilteredDuplexPipe(PipeReader input, PipeWriter output) : IDuplexPipe
    {
        public PipeReader Input { get; } = input;

        public PipeWriter Output { get; } = output;
    }
}
