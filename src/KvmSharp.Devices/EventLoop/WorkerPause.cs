using KvmSharp.Native;

namespace KvmSharp.Devices.EventLoop;

/// <summary>
/// Parks a worker thread between events for a pause or a snapshot: the controller calls <see cref="Pause"/>, which
/// returns once the worker has finished the event it was handling and stopped taking new ones; <see cref="Resume"/>
/// lets it go on. Events that arrive meanwhile are not taken (an eventfd keeps its count, a socket its data), so the
/// worker handles them after <see cref="Resume"/> and nothing is lost.
/// </summary>
/// <remarks>
/// The worker calls <see cref="ParkIfRequested"/> before each event and <see cref="End"/> when it exits (so a pause
/// never waits for a thread that is gone). Not reentrant: the worker thread must not call <see cref="Pause"/> itself.
/// No allocation; the check on the worker's path is one volatile read.
/// </remarks>
public sealed class WorkerPause
{
    private readonly object _gate = new();
    private volatile bool _requested;
    private bool _parked;
    private bool _ended;

    /// <summary>True from <see cref="Pause"/> until <see cref="Resume"/>: the worker must not take another event.</summary>
    public bool Requested => _requested;

    /// <summary>
    /// Asks the worker to stop taking events and waits until it has (or has exited); <paramref name="wake"/> is an
    /// eventfd the worker waits on, signalled to get it out of its wait. <paramref name="started"/> false means the
    /// worker thread does not run (yet): nothing is in progress, and it parks before its first event.
    /// </summary>
    public void Pause(bool started, EventFd wake)
    {
        ArgumentNullException.ThrowIfNull(wake);
        lock (_gate)
        {
            _requested = true;
        }

        if (!started)
        {
            return;
        }

        wake.Signal();
        lock (_gate)
        {
            while (_requested && !_parked && !_ended)
            {
                Monitor.Wait(_gate);
            }
        }
    }

    /// <summary>Lets the worker take events again.</summary>
    public void Resume()
    {
        lock (_gate)
        {
            _requested = false;
            Monitor.PulseAll(_gate);
        }
    }

    /// <summary>Worker side: parks while a pause is requested; true when it parked (the caller should wait for events afresh).</summary>
    public bool ParkIfRequested()
    {
        if (!_requested)
        {
            return false;
        }

        lock (_gate)
        {
            if (!_requested || _ended)
            {
                return false;
            }

            _parked = true;
            Monitor.PulseAll(_gate);
            while (_requested && !_ended)
            {
                Monitor.Wait(_gate);
            }

            _parked = false;
            return true;
        }
    }

    /// <summary>The worker exited, or is told to (on dispose): a parked worker wakes and pauses return.</summary>
    public void End()
    {
        lock (_gate)
        {
            _ended = true;
            Monitor.PulseAll(_gate);
        }
    }
}
