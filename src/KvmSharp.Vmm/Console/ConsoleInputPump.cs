using KvmSharp.Native;

namespace KvmSharp.Vmm.Console;

/// <summary>
/// Moves bytes from a host fd (stdin) to the guest's console device on its own thread ("console-input").
/// With <c>interactive</c> the Ctrl-A escapes apply. When the device's input buffer is full the pump waits
/// and retries, so a fast sender (a pipe) is throttled to the guest's pace instead of losing bytes.
/// </summary>
public sealed class ConsoleInputPump : IDisposable
{
    private const int PollMs = 50;

    private readonly int _fd;
    private readonly Func<ReadOnlyMemory<byte>, int> _deliver;
    private readonly Action _quit;
    private readonly Action<string> _message;
    private readonly ConsoleEscape? _escape;
    private readonly Thread _thread;
    private volatile bool _stopping;

    /// <param name="fd">Host descriptor to read (0 for stdin).</param>
    /// <param name="deliver">Offers bytes to the guest device; returns how many it took.</param>
    /// <param name="quit">Called on Ctrl-A X.</param>
    /// <param name="message">Shows a line to the user (help text).</param>
    public ConsoleInputPump(int fd, bool interactive, Func<ReadOnlyMemory<byte>, int> deliver, Action quit, Action<string> message)
    {
        _fd = fd;
        _deliver = deliver;
        _quit = quit;
        _message = message;
        _escape = interactive ? new ConsoleEscape() : null;
        _thread = new Thread(Pump) { Name = "console-input", IsBackground = true };
    }

    /// <summary>Set when the host side reached end of input (a pipe closed).</summary>
    public bool ReachedEnd { get; private set; }

    public void Start() => _thread.Start();

    public void Dispose()
    {
        _stopping = true;
        if (_thread.IsAlive && Thread.CurrentThread != _thread)
        {
            _thread.Join(TimeSpan.FromSeconds(2));
        }
    }

    private void Pump()
    {
        var buffer = new byte[512];
        var guestBytes = new List<byte>(512);
        while (!_stopping)
        {
            int n = RawInput.Read(_fd, buffer, PollMs);
            if (n < 0)
            {
                ReachedEnd = true;
                return;
            }

            if (n == 0)
            {
                continue;
            }

            guestBytes.Clear();
            var command = EscapeCommand.None;
            if (_escape is null)
            {
                guestBytes.AddRange(buffer.AsSpan(0, n));
            }
            else
            {
                command = _escape.Filter(buffer.AsSpan(0, n), guestBytes);
            }

            if (command == EscapeCommand.Quit)
            {
                _quit();
                return;
            }

            if (command == EscapeCommand.Help)
            {
                _message(ConsoleEscape.HelpText);
            }

            Deliver(guestBytes.ToArray());
        }
    }

    private void Deliver(ReadOnlyMemory<byte> bytes)
    {
        while (!bytes.IsEmpty && !_stopping)
        {
            int taken = _deliver(bytes);
            bytes = bytes[taken..];
            if (!bytes.IsEmpty)
            {
                Thread.Sleep(1);
            }
        }
    }
}
