using KvmSharp.Devices.Pci;
using KvmSharp.Devices.Virtio;
using KvmSharp.Devices.Virtio.Pci;
using static KvmSharp.Devices.Virtio.Pci.VirtioPciRegisters;

namespace KvmSharp.Devices.Tests.Virtio.Pci;

public class VirtioPciLifecycleTests
{
    private readonly VirtioPciHarness _h = new();

    [Fact]
    public void FeaturesOk_Sticks_WhenTheDriverAcceptsOfferedFeaturesWithVersion1()
    {
        Assert.True(_h.Negotiate(VirtioFeatures.Version1 | VirtioFeatures.EventIndex));

        Assert.Equal(StatusAcknowledge | StatusDriver | StatusFeaturesOk, _h.Status);
        Assert.Equal(VirtioFeatures.Version1 | VirtioFeatures.EventIndex, _h.Transport.DriverFeatures);
        _h.WriteBar(DriverFeatureSelect, 4, 0);
        Assert.Equal((ulong)(uint)VirtioFeatures.EventIndex, _h.ReadBar(DriverFeature, 4));
    }

    [Fact]
    public void FeaturesOk_IsRefused_ForAFeatureTheDeviceDoesNotOffer()
    {
        bool stuck = _h.Negotiate(VirtioFeatures.Version1 | VirtioFeatures.RingPacked);

        Assert.False(stuck);
        Assert.Equal(StatusAcknowledge | StatusDriver, _h.Status);
        Assert.Equal(1, _h.Transport.RefusedFeatureNegotiations);
    }

    [Fact]
    public void FeaturesOk_IsRefused_WithoutVersion1()
    {
        Assert.False(_h.Negotiate(VirtioFeatures.EventIndex));
        Assert.Equal(1, _h.Transport.RefusedFeatureNegotiations);
    }

    [Fact]
    public void FeaturesOk_IsRefused_ForBitsAbove63()
    {
        _h.SetStatus(StatusAcknowledge | StatusDriver);
        _h.WriteDriverFeatures(VirtioFeatures.Version1);
        _h.WriteBar(DriverFeatureSelect, 4, 2);
        _h.WriteBar(DriverFeature, 4, 1);
        _h.AddStatus(StatusFeaturesOk);

        Assert.Equal(0, _h.Status & StatusFeaturesOk);
        Assert.Equal(0UL, _h.ReadBar(DriverFeature, 4));
    }

    [Fact]
    public void RefusedDriver_CanRetryWithFewerFeatures()
    {
        Assert.False(_h.Negotiate(VirtioFeatures.Version1 | (1UL << 40)));
        _h.WriteDriverFeatures(VirtioFeatures.Version1);
        _h.AddStatus(StatusFeaturesOk);

        Assert.Equal(StatusFeaturesOk, _h.Status & StatusFeaturesOk);
    }

    [Fact]
    public void FeaturesAfterFeaturesOk_AreFrozen()
    {
        Assert.True(_h.Negotiate(VirtioFeatures.Version1));

        _h.WriteDriverFeatures(VirtioFeatures.Version1 | VirtioFeatures.EventIndex);

        Assert.Equal(VirtioFeatures.Version1, _h.Transport.DriverFeatures);
        Assert.Equal(2, _h.Transport.InvalidRegisterWrites);
    }

    [Fact]
    public void DriverOk_ActivatesTheDevice_WithTheExactLayouts()
    {
        Assert.True(_h.Negotiate(VirtioFeatures.Version1 | VirtioFeatures.EventIndex));
        _h.SetupQueue(0, 128, 0x1_0010_0000, 0x10_0800, 0x10_1000, vector: 1);
        _h.SetupQueue(1, 64, 0x20_0000, 0x20_0400, 0x20_0800, vector: 2, enable: false);
        Assert.Empty(_h.Device.Activations);

        _h.AddStatus(StatusDriverOk);

        var activation = Assert.Single(_h.Device.Activations);
        Assert.Equal(VirtioFeatures.Version1 | VirtioFeatures.EventIndex, activation.Features);
        Assert.Equal(
            new[]
            {
                new VirtQueueLayout(128, 0x1_0010_0000, 0x10_0800, 0x10_1000, true),
                new VirtQueueLayout(64, 0x20_0000, 0x20_0400, 0x20_0800, false),
            },
            activation.Queues);
        Assert.Equal(StatusAcknowledge | StatusDriver | StatusFeaturesOk | StatusDriverOk, _h.Status);
        Assert.True(_h.Transport.IsActivated);
        Assert.NotNull(_h.Device.Interrupt);

        _h.AddStatus(StatusDriverOk);
        Assert.Single(_h.Device.Activations);
    }

    [Fact]
    public void DriverOk_WithoutFeaturesOk_DoesNotActivate_AndDoesNotStick()
    {
        _h.SetStatus(StatusAcknowledge | StatusDriver);
        _h.SetupQueue(0, 128, 0x10_0000, 0x10_0800, 0x10_1000, vector: NoVector);

        _h.AddStatus(StatusDriverOk);

        Assert.Empty(_h.Device.Activations);
        Assert.Equal(StatusAcknowledge | StatusDriver, _h.Status);
        Assert.False(_h.Transport.IsActivated);
    }

    [Fact]
    public void DriverOk_WithMisalignedRings_SetsNeedsReset_InsteadOfActivating()
    {
        Assert.True(_h.Negotiate(VirtioFeatures.Version1));
        _h.SetupQueue(0, 128, 0x10_0008, 0x10_0800, 0x10_1000, vector: NoVector);

        _h.AddStatus(StatusDriverOk);

        Assert.Empty(_h.Device.Activations);
        Assert.Equal(StatusDeviceNeedsReset, _h.Status & StatusDeviceNeedsReset);
        Assert.Equal((ulong)IsrConfig, _h.ReadBar(IsrOffset, 1));
    }

    [Fact]
    public void WritingZero_ResetsTheDeviceAndEveryTransportRegister()
    {
        _h.Start(queue0Vector: 1, configVector: 0);
        _h.WriteBar(QueueSelect, 2, 1);
        _h.WriteBar(DeviceFeatureSelect, 4, 1);
        int resetsBefore = _h.Device.Resets;

        _h.SetStatus(0);

        // Every write of 0 resets the device, activated or not (its configuration may have been written).
        Assert.Equal(resetsBefore + 1, _h.Device.Resets);
        Assert.Equal(0, _h.Status);
        Assert.False(_h.Transport.IsActivated);
        Assert.Equal(0UL, _h.Transport.DriverFeatures);
        Assert.Equal(0UL, _h.ReadBar(QueueSelect, 2));
        Assert.Equal(0UL, _h.ReadBar(DeviceFeatureSelect, 4));
        Assert.Equal((ulong)NoVector, _h.ReadBar(ConfigMsixVector, 2));
        Assert.Equal(256UL, _h.ReadBar(QueueSize, 2));
        Assert.Equal((ulong)NoVector, _h.ReadBar(QueueMsixVector, 2));
        Assert.Equal(0UL, _h.ReadBar(QueueEnable, 2));
        Assert.Equal(0UL, _h.ReadBar(QueueDescLow, 8));
        Assert.Equal(0UL, _h.ReadBar(QueueDriverLow, 8));
        Assert.Equal(0UL, _h.ReadBar(QueueDeviceLow, 8));
    }

    [Fact]
    public void AfterReset_TheOldInterruptBindingIsStale_AndTheDeviceCanStartAgain()
    {
        _h.Start();
        var oldInterrupt = _h.Device.Interrupt!;
        _h.SetStatus(0);

        oldInterrupt.SignalQueue(0);
        oldInterrupt.SignalConfigChange();
        ulong isr = _h.ReadBar(IsrOffset, 1);
        _h.Start();

        Assert.Equal(0UL, isr);
        Assert.Equal(2, _h.Transport.StaleInterrupts);
        Assert.Equal(2, _h.Device.Activations.Count);
        Assert.NotSame(oldInterrupt, _h.Device.Interrupt);
    }

    [Fact]
    public void Notify_ReachesTheDevice_ForEnabledQueuesOfAnActiveDevice()
    {
        _h.WriteBar(NotifyOffset, 2, 0);
        _h.Start();

        _h.WriteBar(NotifyOffset, 2, 0);
        _h.WriteBar(NotifyOffset + 4, 2, 1);
        _h.WriteBar(NotifyOffset + 8, 2, 2);
        _h.WriteBar(NotifyOffset + 0x400, 2, 0);
        _h.Transport.NotifyQueue(-1);
        _h.Transport.NotifyQueue(0);

        Assert.Equal([0, 0], _h.Device.Notifies);
        Assert.Equal(2, _h.Transport.Notifications);
        Assert.Equal(5, _h.Transport.InvalidNotifications);
        Assert.Equal(0UL, _h.ReadBar(NotifyOffset, 2));
    }

    [Fact]
    public void Notify_WithoutBusMaster_IsCountedAndDropped_UntilTheDriverSetsItAgain()
    {
        _h.Start();
        uint command = _h.ConfigRead(0x04, 2);
        _h.ConfigWrite(0x04, 2, command & ~(uint)PciRegisters.CommandBusMaster);

        _h.WriteBar(NotifyOffset, 2, 0);
        _h.Transport.NotifyQueue(0);
        bool allowedWithout = _h.Device.Interrupt!.MemoryAccessAllowed;
        _h.ConfigWrite(0x04, 2, command);
        _h.WriteBar(NotifyOffset, 2, 0);

        Assert.False(allowedWithout);
        Assert.True(_h.Device.Interrupt!.MemoryAccessAllowed);
        Assert.Equal([0], _h.Device.Notifies);
        Assert.Equal(2, _h.Transport.NotificationsWithoutBusMaster);
        Assert.Equal(0, _h.Transport.InvalidNotifications);
        Assert.Equal(1, _h.Transport.Notifications);
    }

    [Fact]
    public void IsrAndIntx_QueueInterrupt_ReadClearsAndLowersTheLine()
    {
        _h.Start();

        _h.Device.Interrupt!.SignalQueue(0);
        bool levelBefore = _h.Transport.InterruptLevel;
        ulong first = _h.ReadBar(IsrOffset, 1);
        ulong second = _h.ReadBar(IsrOffset, 1);

        Assert.True(levelBefore);
        Assert.Equal((ulong)IsrQueue, first);
        Assert.Equal(0UL, second);
        Assert.Equal([(10u, true), (10u, false)], _h.Sink.Levels);
        Assert.Empty(_h.Msi.Sent);
    }

    [Fact]
    public void IsrAndIntx_ConfigChange_SetsBit1_AndBumpsTheGeneration()
    {
        _h.Start();
        ulong generation = _h.ReadBar(ConfigGeneration, 1);

        _h.Device.Interrupt!.SignalConfigChange();
        _h.Device.Interrupt.SignalQueue(0);

        Assert.Equal(generation + 1, _h.ReadBar(ConfigGeneration, 1));
        Assert.Equal((ulong)(IsrQueue | IsrConfig), _h.ReadBar(IsrOffset, 4));
        Assert.False(_h.Transport.InterruptLevel);
        Assert.Equal([(10u, true), (10u, false)], _h.Sink.Levels);
    }

    [Fact]
    public void IsrReadAtAnotherOffset_DoesNotClear()
    {
        _h.Start();
        _h.Device.Interrupt!.SignalQueue(0);

        Assert.Equal(0UL, _h.ReadBar(IsrOffset + 1, 1));
        Assert.Equal((ulong)IsrQueue, _h.ReadBar(IsrOffset, 1));
    }

    [Fact]
    public void InterruptFromInsideQueueNotify_IsDelivered()
    {
        _h.Start();
        _h.Device.OnNotify = q => _h.Device.Interrupt!.SignalQueue(q);

        _h.WriteBar(NotifyOffset, 2, 0);

        Assert.Equal((ulong)IsrQueue, _h.ReadBar(IsrOffset, 1));
    }

    [Fact]
    public void Msix_QueueAndConfigInterrupts_SendTheirVectors_AndLeaveIsrAlone()
    {
        _h.EnableMsix();
        _h.Start(queue0Vector: 1, configVector: 0);

        _h.Device.Interrupt!.SignalQueue(0);
        _h.Device.Interrupt.SignalConfigChange();
        _h.Device.Interrupt.SignalQueue(1);

        Assert.Equal([(1, 0xFEE0_1000UL, 0x41u), (0, 0xFEE0_0000UL, 0x40u)], _h.Msi.Sent);
        Assert.Equal(0UL, _h.ReadBar(IsrOffset, 1));
        Assert.Empty(_h.Sink.Levels);
        Assert.Equal(1, _h.Transport.MsixCapability.OutOfRange);
    }

    [Fact]
    public void Msix_ThroughDirectDelivery_ReachesTheSinkWithExactAddressAndData()
    {
        var h = new VirtioPciHarness(msixToSink: true);
        h.EnableMsix();
        h.Start(queue0Vector: 2, configVector: 0);

        h.Device.Interrupt!.SignalQueue(0);

        Assert.Equal([(0xFEE0_2000UL, 0x42u)], h.Sink.Messages);
    }

    [Fact]
    public void Msix_MaskedQueueVector_IsPending_UntilUnmasked()
    {
        _h.EnableMsix();
        _h.Start(queue0Vector: 1);
        _h.WriteBar(MsixTableOffset + 16 + 12, 4, 1);

        _h.Device.Interrupt!.SignalQueue(0);
        ulong pba = _h.ReadBar(_h.Transport.MsixCapability.PendingBitArrayOffset, 8);
        _h.WriteBar(MsixTableOffset + 16 + 12, 4, 0);

        Assert.Equal(0b010UL, pba);
        Assert.Equal([(1, 0xFEE0_1000UL, 0x41u)], _h.Msi.Sent);
    }

    [Fact]
    public void NeedsReset_SetsTheBit_AndSendsAConfigInterrupt()
    {
        _h.Start();

        _h.Device.Interrupt!.NeedsReset();

        Assert.Equal(StatusDeviceNeedsReset, _h.Status & StatusDeviceNeedsReset);
        Assert.Equal((ulong)IsrConfig, _h.ReadBar(IsrOffset, 1));
        _h.SetStatus(0);
        Assert.Equal(0, _h.Status);
    }

    [Fact]
    public void InterruptDisable_GatesIntx_WhileStatusBit3ShowsTheRequest()
    {
        _h.Start();
        uint command = _h.ConfigRead(0x04, 2);
        _h.ConfigWrite(0x04, 2, command | PciRegisters.CommandInterruptDisable);

        _h.Device.Interrupt!.SignalQueue(0);

        Assert.Empty(_h.Sink.Levels);
        Assert.Equal(PciRegisters.StatusInterrupt, _h.ConfigRead(0x06, 2) & PciRegisters.StatusInterrupt);
    }
}
