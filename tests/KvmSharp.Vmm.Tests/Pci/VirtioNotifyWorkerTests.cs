using KvmSharp.Devices.Bus;
using KvmSharp.Devices.Pci;
using KvmSharp.Devices.Virtio.Pci;
using KvmSharp.Vmm.Pci;

namespace KvmSharp.Vmm.Tests.Pci;

public class VirtioNotifyWorkerTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);

    private readonly RecordingWiring _wiring = new();
    private readonly KickRecordingDevice _device = new();
    private readonly VirtioPciTransport _transport;
    private readonly IoBus _mmio = IoBus.CreateMmioBus();
    private readonly PciBus _bus;

    public VirtioNotifyWorkerTests()
    {
        _bus = new PciBus(_mmio, new NullInterruptSink());
        _transport = new VirtioPciTransport(_device, new DirectMsiDelivery(new NullInterruptSink()));
        _bus.Add(_transport);
    }

    private void StartDriver()
    {
        void W(ulong offset, int width, ulong value) => _mmio.Write(0xE000_0000 + offset, BitConverter.GetBytes(value).AsSpan(0, width));
        _transport.WriteConfig(PciRegisters.Command, [(byte)(PciRegisters.CommandMemorySpace | PciRegisters.CommandBusMaster), 0]);
        W(0x14, 1, 0);
        W(0x14, 1, 3);
        W(0x08, 4, 1);
        W(0x0C, 4, 1);
        W(0x14, 1, 0x0B);
        foreach (ulong queue in new ulong[] { 0, 1 })
        {
            W(0x16, 2, queue);
            W(0x20, 8, 0x10_0000 + (queue * 0x1000));
            W(0x28, 8, 0x10_0400 + (queue * 0x1000));
            W(0x30, 8, 0x10_0800 + (queue * 0x1000));
            W(0x1C, 2, 1);
        }

        W(0x14, 1, 0x0F);
        Assert.True(_transport.IsActivated);
    }

    [Fact]
    public void Attach_BindsAnIoeventfdPerQueue_AndFollowsTheBar()
    {
        using var worker = new VirtioNotifyWorker(_wiring, _ => { });

        worker.Attach(_transport);
        _transport.WriteConfig(PciRegisters.Bar0, BitConverter.GetBytes(0xE010_0000u));
        _transport.WriteConfig(PciRegisters.Command, [0, 0]);

        Assert.Equal(
            [
                "ioeventfd 0xe0003000/2", "ioeventfd 0xe0003004/2",
                "ioeventfd- 0xe0003000/2", "ioeventfd- 0xe0003004/2", "ioeventfd 0xe0103000/2", "ioeventfd 0xe0103004/2",
                "ioeventfd- 0xe0103000/2", "ioeventfd- 0xe0103004/2",
            ],
            _wiring.Calls);
        Assert.Empty(_wiring.Ioeventfds);
    }

    [Fact]
    public void SignalledEventFd_KicksItsQueue_OnTheWorkerThread()
    {
        StartDriver();
        using var worker = new VirtioNotifyWorker(_wiring, e => Assert.Fail(e.ToString()));
        worker.Attach(_transport);
        worker.Start();

        // What KVM does when the guest writes the queue index at the notification address.
        _wiring.Ioeventfds[0xE000_3004].Signal();
        Assert.True(_device.Kicked.Wait(Patience));
        _wiring.Ioeventfds[0xE000_3000].Signal();
        Assert.True(_device.Kicked.Wait(Patience));

        Assert.Equal([1, 0], _device.Kicks);
        Assert.Equal(2, worker.Wakeups);
        Assert.Equal(2, _transport.Notifications);
    }

    [Fact]
    public void Dispose_StopsTheThread_AndUnbindsEverything()
    {
        var worker = new VirtioNotifyWorker(_wiring, _ => { });
        worker.Attach(_transport);
        worker.Start();

        worker.Dispose();

        Assert.Empty(_wiring.Ioeventfds);
        Assert.Equal("ioeventfd- 0xe0003004/2", _wiring.Calls[^1]);
        Assert.Throws<ObjectDisposedException>(() => worker.Start());
    }

    [Fact]
    public void DeviceFailure_EndsTheLoop_AndReachesTheFailureCallback()
    {
        StartDriver();
        _device.FailOnQueue = 0;
        Exception? failure = null;
        using var failed = new ManualResetEventSlim();
        using var worker = new VirtioNotifyWorker(_wiring, e =>
        {
            failure = e;
            failed.Set();
        });
        worker.Attach(_transport);
        worker.Start();

        _wiring.Ioeventfds[0xE000_3000].Signal();

        Assert.True(failed.Wait(Patience));
        Assert.IsType<IOException>(failure);
        Assert.Equal("Backend of queue 0 failed.", failure!.Message);
    }

    [Fact]
    public void AttachAfterStart_IsRefused()
    {
        using var worker = new VirtioNotifyWorker(_wiring, _ => { });
        worker.Start();

        var e = Assert.Throws<InvalidOperationException>(() => worker.Attach(_transport));
        Assert.Equal("Attach every transport before starting the notification worker.", e.Message);
    }
}
