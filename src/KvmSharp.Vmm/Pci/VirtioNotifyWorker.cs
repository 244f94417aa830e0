using KvmSharp.Devices.EventLoop;
using KvmSharp.Devices.Virtio.Pci;
using KvmSharp.Kvm;
using KvmSharp.Native;

namespace KvmSharp.Vmm.Pci;

/// <summary>
/// Queue notifications on KVM without a VM exit to user space: for every queue of every attached virtio PCI
/// transport an eventfd is bound with KVM_IOEVENTFD to the queue's notification address (a 2-byte MMIO write, what
/// Linux's vp_notify does), and one thread ("virtio-notify") waits on all of them with epoll and calls
/// <see cref="VirtioPciTransport.NotifyQueue"/>. The bindings follow BAR0 as the guest moves it or turns decoding
/// off (the transport calls <see cref="IVirtioNotifyBinder"/>). Writes of other widths still exit and reach the
/// transport's MMIO handler, so both paths kick the queue.
/// </summary>
/// <remarks>
/// Use: create after the transports are on the PCI bus, <see cref="Attach"/> each, <see cref="Start"/>, and
/// <see cref="Dispose"/> after the vCPUs stopped. An exception on the worker thread (a device failure) ends the loop
/// and goes to the failure callback, which should stop the machine; it is never swallowed. The loop allocates
/// nothing per notification.
/// </remarks>
public sealed class VirtioNotifyWorker : IDisposable
{
    /// <summary>Bytes of the guest write an ioeventfd matches: the 16-bit queue index (virtio 1.1, 4.1.4.4).</summary>
    public const uint NotifyWriteLength = 2;

    private const ulong StopToken = ulong.MaxValue;
    private const ulong WakeToken = ulong.MaxValue - 1;

    private readonly IKvmInterruptWiring _wiring;
    private readonly Action<Exception> _onFailure;
    private readonly Epoll _epoll = new();
    private readonly EventFd _stop = new();
    private readonly EventFd _wake = new();
    private readonly WorkerPause _pause = new();
    private readonly List<QueueEventFd> _queues = [];
    private readonly List<Binder> _binders = [];
    private Thread? _thread;
    private long _wakeups;
    private bool _disposed;

    /// <param name="vm">The VM whose MMIO writes are bound.</param>
    /// <param name="onFailure">Called on the worker thread with the exception that ended the loop.</param>
    public VirtioNotifyWorker(KvmVm vm, Action<Exception> onFailure)
        : this(new KvmVmWiring(vm ?? throw new ArgumentNullException(nameof(vm))), onFailure)
    {
    }

    internal VirtioNotifyWorker(IKvmInterruptWiring wiring, Action<Exception> onFailure)
    {
        ArgumentNullException.ThrowIfNull(onFailure);
        _wiring = wiring;
        _onFailure = onFailure;
        _epoll.Add(_stop.Descriptor, Epoll.Readable, StopToken);
        _epoll.Add(_wake.Descriptor, Epoll.Readable, WakeToken);
    }

    /// <summary>Notifications the worker passed to transports.</summary>
    public long Wakeups => Interlocked.Read(ref _wakeups);

    /// <summary>Whether the worker is paused (between <see cref="Pause"/> and <see cref="Resume"/>).</summary>
    public bool IsPaused => _pause.Requested;

    /// <summary>
    /// Stops passing notifications on and returns once none is being handled (a device's QueueNotify in progress has
    /// returned, so a block request it popped is completed). Kicks the guest makes meanwhile stay counted in their
    /// eventfds and are passed on after <see cref="Resume"/>. Any thread but the worker's.
    /// </summary>
    public void Pause() => _pause.Pause(_thread is not null, _wake);

    /// <summary>Passes notifications on again, the ones that arrived while paused first.</summary>
    public void Resume() => _pause.Resume();

    /// <summary>Creates the eventfds of <paramref name="transport"/>'s queues and makes it report its notification addresses here.</summary>
    public void Attach(VirtioPciTransport transport)
    {
        ArgumentNullException.ThrowIfNull(transport);
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_thread is not null)
        {
            throw new InvalidOperationException("Attach every transport before starting the notification worker.");
        }

        var eventFds = new EventFd[transport.Device.QueueCount];
        for (int q = 0; q < eventFds.Length; q++)
        {
            eventFds[q] = new EventFd();
            _epoll.Add(eventFds[q].Descriptor, Epoll.Readable, (ulong)_queues.Count);
            _queues.Add(new QueueEventFd(transport, q, eventFds[q]));
        }

        var binder = new Binder(this, eventFds);
        _binders.Add(binder);
        transport.SetNotifyBinder(binder);
        binder.Transport = transport;
    }

    /// <summary>Starts the worker thread.</summary>
    public void Start()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_thread is not null)
        {
            throw new InvalidOperationException("The notification worker is already running.");
        }

        _thread = new Thread(Loop) { Name = "virtio-notify", IsBackground = true };
        _thread.Start();
    }

    /// <summary>Stops the thread, unbinds every ioeventfd and closes the eventfds.</summary>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        _pause.End();
        _stop.Signal();
        _thread?.Join();
        foreach (var binder in _binders)
        {
            binder.Transport?.SetNotifyBinder(null);
        }

        foreach (var queue in _queues)
        {
            queue.EventFd.Dispose();
        }

        _stop.Dispose();
        _wake.Dispose();
        _epoll.Dispose();
    }

    private void Loop()
    {
        try
        {
            Span<EpollEvent> ready = stackalloc EpollEvent[16];
            while (true)
            {
                if (_pause.ParkIfRequested())
                {
                    continue;
                }

                int n = _epoll.Wait(ready, -1);

                // A pause leaves the rest of the batch ready in epoll: the eventfds keep their counts.
                for (int i = 0; i < n && !_pause.Requested; i++)
                {
                    ulong token = ready[i].Token;
                    if (token == StopToken)
                    {
                        return;
                    }

                    if (token == WakeToken)
                    {
                        _wake.Consume();
                        continue;
                    }

                    var queue = _queues[(int)token];
                    if (queue.EventFd.Consume() != 0)
                    {
                        Interlocked.Increment(ref _wakeups);
                        queue.Transport.NotifyQueue(queue.Queue);
                    }
                }
            }
        }
        catch (Exception e)
        {
            _pause.End();
            _onFailure(e);
        }
        finally
        {
            _pause.End();
        }
    }

    private sealed record QueueEventFd(VirtioPciTransport Transport, int Queue, EventFd EventFd);

    /// <summary>One transport's queues: binds and unbinds their eventfds at the addresses the transport reports.</summary>
    private sealed class Binder(VirtioNotifyWorker worker, EventFd[] eventFds) : IVirtioNotifyBinder
    {
        public VirtioPciTransport? Transport { get; set; }

        public void Bind(int queue, ulong address) => worker._wiring.AddIoeventfd(eventFds[queue], address, NotifyWriteLength);

        public void Unbind(int queue, ulong address) => worker._wiring.RemoveIoeventfd(eventFds[queue], address, NotifyWriteLength);
    }
}
