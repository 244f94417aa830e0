using KvmSharp.Devices.Virtio;
using KvmSharp.Devices.Virtio.Pci;
using static KvmSharp.Devices.Virtio.Pci.VirtioPciRegisters;

namespace KvmSharp.Devices.Tests.Virtio.Pci;

/// <summary>A notify binder that records its calls.</summary>
internal sealed class RecordingBinder : IVirtioNotifyBinder
{
    public List<string> Calls { get; } = [];

    public void Bind(int queue, ulong address) => Calls.Add($"bind {queue} 0x{address:x}");

    public void Unbind(int queue, ulong address) => Calls.Add($"unbind {queue} 0x{address:x}");
}

public class VirtioPciWindowAndBinderTests
{
    private readonly VirtioPciHarness _h = new();

    private int Cap => _h.Transport.PciCfgCapabilityOffset;

    private void SetWindow(uint bar, uint offset, uint length)
    {
        _h.ConfigWrite(Cap + CapBar, 1, bar);
        _h.ConfigWrite(Cap + CapOffset, 4, offset);
        _h.ConfigWrite(Cap + CapLength, 4, length);
    }

    [Fact]
    public void PciCfgWindow_ReadsAndWritesBar0_ThroughConfigurationSpace()
    {
        _h.SetStatus(StatusAcknowledge);

        SetWindow(0, DeviceStatus, 1);
        uint status = _h.ConfigRead(Cap + CapPciCfgData, 1);
        _h.ConfigWrite(Cap + CapPciCfgData, 1, StatusAcknowledge | StatusDriver);
        SetWindow(0, NumQueues, 2);
        uint queues = _h.ConfigRead(Cap + CapPciCfgData, 2);
        SetWindow(0, DeviceCfgOffset, 4);
        uint config = _h.ConfigRead(Cap + CapPciCfgData, 4);

        Assert.Equal(StatusAcknowledge, status);
        Assert.Equal(StatusAcknowledge | StatusDriver, _h.Status);
        Assert.Equal(2u, queues);
        Assert.Equal(0xC3C2_C1C0u, config);
    }

    [Fact]
    public void PciCfgWindow_WorksWithMemoryDecodingOff()
    {
        _h.ConfigWrite(0x04, 2, 0);
        SetWindow(0, DeviceFeature, 4);

        Assert.Equal(0x3000_0200u, _h.ConfigRead(Cap + CapPciCfgData, 4));
        Assert.Equal(0xFFUL, _h.ReadBar(DeviceFeature, 1));
    }

    [Fact]
    public void PciCfgWindow_ReadOfIsr_ClearsIt()
    {
        _h.Start();
        _h.Device.Interrupt!.SignalQueue(0);
        SetWindow(0, IsrOffset, 1);

        uint isr = _h.ConfigRead(Cap + CapPciCfgData, 1);

        Assert.Equal((uint)IsrQueue, isr);
        Assert.Equal(0UL, _h.ReadBar(IsrOffset, 1));
    }

    [Fact]
    public void PciCfgWindow_KicksAQueue()
    {
        _h.Start();
        SetWindow(0, NotifyOffset, 2);

        _h.ConfigWrite(Cap + CapPciCfgData, 2, 0);

        Assert.Equal([0], _h.Device.Notifies);
    }

    [Theory]
    [InlineData(1, 0x14u, 1u)]
    [InlineData(0, 0x15u, 2u)]
    [InlineData(0, 0x14u, 3u)]
    [InlineData(0, 0x8000u, 1u)]
    [InlineData(0, 0xFFFF_FFFCu, 4u)]
    public void PciCfgWindow_BadBarOffsetOrLength_DoesNothing(uint bar, uint offset, uint length)
    {
        _h.SetStatus(StatusAcknowledge);
        SetWindow(bar, offset, length);

        _h.ConfigWrite(Cap + CapPciCfgData, 4, 0xFFFF_FFFF);
        uint read = _h.ConfigRead(Cap + CapPciCfgData, 4);

        Assert.Equal(StatusAcknowledge, _h.Status);
        Assert.Equal(0xFFFF_FFFFu, read);
        Assert.Equal(2, _h.Transport.IgnoredBarAccesses);
    }

    [Fact]
    public void PciCfgWindow_ReachesTheLastByteOfTheBar()
    {
        SetWindow(0, 0x7FFF, 1);

        _h.ConfigWrite(Cap + CapPciCfgData, 4, 0xFFFF_FFFF);
        uint read = _h.ConfigRead(Cap + CapPciCfgData, 4);

        Assert.Equal(0u, read);
        Assert.Equal(0, _h.Transport.IgnoredBarAccesses);
    }

    [Fact]
    public void PciCfgCapability_OnlyItsWindowFieldsAreWritable()
    {
        _h.ConfigWrite(Cap, 4, 0xFFFF_FFFF);
        _h.ConfigWrite(Cap + 5, 1, 0xFF);

        Assert.Equal(0x0514_0009u, _h.ConfigRead(Cap, 4));
        Assert.Equal(0u, _h.ConfigRead(Cap + 5, 1));
    }

    [Fact]
    public void Binder_LearnsTheNotifyAddresses_AndFollowsTheBar()
    {
        var binder = new RecordingBinder();

        _h.Transport.SetNotifyBinder(binder);
        _h.ConfigWrite(0x10, 4, 0xE010_0000);
        _h.ConfigWrite(0x04, 2, 0);
        ulong? whileOff = _h.Transport.GetNotifyAddress(0);
        _h.ConfigWrite(0x04, 2, Devices.Pci.PciRegisters.CommandMemorySpace);
        _h.Transport.SetNotifyBinder(null);

        Assert.Null(whileOff);
        Assert.Equal(
            [
                "bind 0 0xe0003000", "bind 1 0xe0003004",
                "unbind 0 0xe0003000", "unbind 1 0xe0003004", "bind 0 0xe0103000", "bind 1 0xe0103004",
                "unbind 0 0xe0103000", "unbind 1 0xe0103004",
                "bind 0 0xe0103000", "bind 1 0xe0103004",
                "unbind 0 0xe0103000", "unbind 1 0xe0103004",
            ],
            binder.Calls);
    }

    [Fact]
    public void SaveRestore_CarriesTheRegisters_AndReactivatesTheDevice()
    {
        _h.EnableMsix();
        _h.Start(queue0Vector: 1, configVector: 0);
        _h.WriteBar(QueueSelect, 2, 1);
        _h.Device.Interrupt!.SignalConfigChange();
        var state = _h.Transport.Save();

        var device = new FakeVirtioDevice();
        var target = new VirtioPciTransport(device, new Tests.Pci.RecordingMsiDelivery());
        target.Restore(state);
        var again = target.Save();

        var activation = Assert.Single(device.Activations);
        Assert.Equal(VirtioFeatures.Version1 | VirtioFeatures.EventIndex, activation.Features);
        Assert.Equal(new VirtQueueLayout(128, 0x10_0000, 0x10_0800, 0x10_1000, true), activation.Queues[0]);
        Assert.True(target.IsActivated);
        Assert.Equal(StatusAcknowledge | StatusDriver | StatusFeaturesOk | StatusDriverOk, target.DeviceStatus);
        Assert.Equal(state.Function.ConfigSpace, again.Function.ConfigSpace);
        Assert.Equal(state.Msix.Table, again.Msix.Table);
        Assert.Equal(state.Queues, again.Queues);
        Assert.Equal(state with { Function = again.Function, Msix = again.Msix, Queues = again.Queues }, again);
        Assert.Equal((byte)1, again.ConfigGeneration);
        Assert.Equal((ushort)1, again.QueueSelect);
    }
}
