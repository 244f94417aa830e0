using KvmSharp.Native;

namespace KvmSharp.Devices.EventLoop;

/// <summary>Something the event loop calls when one of its descriptors is ready.</summary>
public interface IEventHandler
{
    /// <summary>Called on the loop thread with the epoll events that fired (<see cref="Epoll.Readable"/>, ...).</summary>
    void OnEvents(uint events);
}

/// <summary>
/// The device backends' event loop: one host thread waiting in epoll on the descriptors devices register (a TAP
/// device or a passt socket, the eventfd a device's queue notifications ring), calling each one's handler. Packet
/// I/O runs here, never on a vCPU thread: a vCPU's notification only signals an eventfd.
/// </summary>
/// <remarks>
/// Level-triggered: a handler that cannot make progress (no guest buffers) takes its descriptor out of the wait set
/// with <see cref="Modify"/> and puts it back when it can. Registrations are made before <see cref="Start"/>;
/// <see cref="Modify"/> may be called from any thread. An exception from a handler ends the loop and goes to the
/// failure callback (a device bug or a host failure should stop the machine, never pass silently). Tests drive a
/// loop that was not started with <see cref="RunOnce"/>. The loop allocates nothing per event.
/// </remarks>
public sealed class DeviceEventLoop : IDisposable
{
    private const ulong StopToken = ulong.MaxValue;
    private const ulong WakeToken = ulong.MaxValue - 1;

    private readonly string _threadName;
    private readonly Action<Exception> _onFailure;
    private readonly Epoll _epoll = new();
    private readonly EventFd _stop = new();
    private readonly EventFd _wake = new();
    private readonly WorkerPause _pause = new();
    private readonly List<(FileDescriptor Fd, IEventHandler Handler)> _registrations = [];
    private readonly HashSet<int> _removed = [];
    private readonly EpollEvent[] _ready = new EpollEvent[32];
    private Thread? _thread;
    private volatile bool _stopping;
    private bool _disposed;
    private long _wakeups;

    /// <param name="threadName">The loop thread's name (shown by top -H and in dumps).</param>
    /// <param name="onFailure">Called on the loop thread with the exception that ended the loop.</param>
    public DeviceEventLoop(string threadName, Action<Exception> onFailure)
    {
        ArgumentNullException.ThrowIfNull(threadName);
        ArgumentNullException.ThrowIfNull(onFailure);
        _threadName = threadName;
        _onFailure = onFailure;
        _epoll.Add(_stop.Descriptor, Epoll.Readable, StopToken);
        _epoll.Add(_wake.Descriptor, Epoll.Readable, WakeToken);
    }

    /// <summary>Handler calls made.</summary>
    public long Wakeups => Interlocked.Read(ref _wakeups);

    /// <summary>Whether the loop thread is running.</summary>
    public bool IsRunning => _thread is not null && !_stopping;

    /// <summary>Whether the loop is paused (between <see cref="Pause"/> and <see cref="Resume"/>).</summary>
    public bool IsPaused => _pause.Requested;

    /// <summary>
    /// Stops calling handlers and returns once none is running (the one in progress finishes first): while paused,
    /// ready descriptors stay ready (level-triggered; an eventfd keeps its count), so <see cref="Resume"/> handles
    /// them. Call from any thread but the loop's. A loop that was not started just stops dispatching in
    /// <see cref="RunOnce"/>.
    /// </summary>
    public void Pause()
    {
        if (Thread.CurrentThread == _thread)
        {
            throw new InvalidOperationException("The event loop cannot pause itself from one of its handlers.");
        }

        _pause.Pause(_thread is not null, _wake);
    }

    /// <summary>Lets the loop call handlers again; what became ready while paused is handled next.</summary>
    public void Resume() => _pause.Resume();

    /// <summary>Registers <paramref name="fd"/> for <paramref name="events"/> (0: registered but not waited on); returns its token for <see cref="Modify"/>.</summary>
    public int Register(FileDescriptor fd, uint events, IEventHandler handler)
    {
        ArgumentNullException.ThrowIfNull(fd);
        ArgumentNullException.ThrowIfNull(handler);
        if (_thread is not null)
        {
            throw new InvalidOperationException("Register every descriptor before starting the event loop.");
        }

        lock (_registrations)
        {
            int token = _registrations.Count;
            _epoll.Add(fd, events, (ulong)token);
            _registrations.Add((fd, handler));
            return token;
        }
    }

    /// <summary>Changes what the loop waits for on a registered descriptor; any thread. Ignored once it was removed.</summary>
    public void Modify(int token, uint events)
    {
        lock (_registrations)
        {
            var (fd, _) = _registrations[token];
            if (_disposed || _removed.Contains(token) || fd.IsClosed)
            {
                return;
            }

            _epoll.Modify(fd, events, (ulong)token);
        }
    }

    /// <summary>
    /// Stops waiting on a registered descriptor for good: epoll reports a hang-up even with no events asked for, so a
    /// descriptor whose peer is gone must leave the wait set or the loop would spin. Any thread.
    /// </summary>
    public void Remove(int token)
    {
        lock (_registrations)
        {
            var (fd, _) = _registrations[token];
            if (!_removed.Add(token) || _disposed || fd.IsClosed)
            {
                return;
            }

            _epoll.Remove(fd);
        }
    }

    /// <summary>Starts the loop thread.</summary>
    public void Start()
    {
        if (_thread is not null)
        {
            throw new InvalidOperationException("The event loop is already running.");
        }

        _thread = new Thread(Run) { Name = _threadName, IsBackground = true };
        _thread.Start();
    }

    /// <summary>
    /// Waits up to <paramref name="timeoutMs"/> for ready descriptors and calls their handlers once; returns how many
    /// handlers ran. For tests and for callers that own the thread; not while <see cref="Start"/>ed.
    /// </summary>
    public int RunOnce(int timeoutMs)
    {
        if (_thread is not null)
        {
            throw new InvalidOperationException("The event loop runs on its own thread; RunOnce is for a loop that was not started.");
        }

        return _pause.Requested ? 0 : Dispatch(timeoutMs);
    }

    /// <summary>Stops and joins the loop thread. Call after the vCPUs stopped, before the devices are closed (their later Modify calls are ignored).</summary>
    public void Dispose()
    {
        _stopping = true;
        _pause.End();
        if (_thread is { } thread)
        {
            _stop.Signal();
            thread.Join();
            _thread = null;
        }

        lock (_registrations)
        {
            _disposed = true;
            _epoll.Dispose();
        }

        _stop.Dispose();
        _wake.Dispose();
    }

    private void Run()
    {
        try
        {
            while (!_stopping)
            {
                if (!_pause.ParkIfRequested())
                {
                    Dispatch(-1);
                }
            }
        }
        catch (Exception e)
        {
            _stopping = true;
            _pause.End();
            _onFailure(e);
        }
        finally
        {
            _pause.End();
        }
    }

    private int Dispatch(int timeoutMs)
    {
        int n = _epoll.Wait(_ready, timeoutMs);
        int handled = 0;
        for (int i = 0; i < n && !_stopping && !_pause.Requested; i++)
        {
            var ready = _ready[i];
            if (ready.Token == StopToken)
            {
                continue;
            }

            if (ready.Token == WakeToken)
            {
                _wake.Consume();
                continue;
            }

            IEventHandler handler;
            lock (_registrations)
            {
                if (_removed.Contains((int)ready.Token))
                {
                    continue; // removed after this wait returned
                }

                handler = _registrations[(int)ready.Token].Handler;
            }

            handler.OnEvents(ready.Events);
            handled++;
            Interlocked.Increment(ref _wakeups);
        }

        return handled;
    }
}
