using KvmSharp.Devices.Virtio;
using KvmSharp.Devices.Virtio.Pci;
using static KvmSharp.Devices.Virtio.Pci.VirtioPciRegisters;

namespace KvmSharp.Devices.Tests.Virtio.Pci;

public class VirtioPciCommonConfigTests
{
    private readonly VirtioPciHarness _h = new();

    [Fact]
    public void DeviceFeatures_ReadThroughTheSelector()
    {
        _h.WriteBar(DeviceFeatureSelect, 4, 0);
        ulong low = _h.ReadBar(DeviceFeature, 4);
        _h.WriteBar(DeviceFeatureSelect, 4, 1);
        ulong high = _h.ReadBar(DeviceFeature, 4);
        _h.WriteBar(DeviceFeatureSelect, 4, 2);
        ulong beyond = _h.ReadBar(DeviceFeature, 4);

        Assert.Equal(0x3000_0200UL, low);
        Assert.Equal(0x0000_0001UL, high);
        Assert.Equal(0UL, beyond);
        Assert.Equal(2UL, _h.ReadBar(DeviceFeatureSelect, 4));
    }

    [Fact]
    public void QueueRegisters_StartAtTheirResetValues()
    {
        Assert.Equal(2UL, _h.ReadBar(NumQueues, 2));
        Assert.Equal((ulong)NoVector, _h.ReadBar(ConfigMsixVector, 2));
        for (int q = 0; q < 2; q++)
        {
            _h.WriteBar(QueueSelect, 2, (ulong)q);
            Assert.Equal(256UL, _h.ReadBar(QueueSize, 2));
            Assert.Equal((ulong)NoVector, _h.ReadBar(QueueMsixVector, 2));
            Assert.Equal(0UL, _h.ReadBar(QueueEnable, 2));
            Assert.Equal((ulong)q, _h.ReadBar(QueueNotifyOff, 2));
            Assert.Equal(0UL, _h.ReadBar(QueueDescLow, 8));
        }
    }

    [Fact]
    public void QueueSelectPastTheLastQueue_ReadsZeroSize_AndIgnoresWrites()
    {
        _h.WriteBar(QueueSelect, 2, 2);
        _h.WriteBar(QueueSize, 2, 64);
        _h.WriteBar(QueueDescLow, 4, 0x1000);

        Assert.Equal(0UL, _h.ReadBar(QueueSize, 2));
        Assert.Equal(0UL, _h.ReadBar(QueueDescLow, 4));
        Assert.Equal(2UL, _h.ReadBar(QueueSelect, 2));
        Assert.Equal(2, _h.Transport.InvalidRegisterWrites);
    }

    [Fact]
    public void QueueSize_AcceptsOnlyPowersOfTwoUpToTheMaximum()
    {
        _h.WriteBar(QueueSelect, 2, 1);

        _h.WriteBar(QueueSize, 2, 100);
        _h.WriteBar(QueueSize, 2, 512);
        _h.WriteBar(QueueSize, 2, 0);
        ulong afterInvalid = _h.ReadBar(QueueSize, 2);
        _h.WriteBar(QueueSize, 2, 64);

        Assert.Equal(256UL, afterInvalid);
        Assert.Equal(64UL, _h.ReadBar(QueueSize, 2));
        Assert.Equal(3, _h.Transport.InvalidRegisterWrites);
    }

    [Fact]
    public void EnabledQueue_FreezesSizeAndAddresses_ButNotItsVector()
    {
        _h.SetupQueue(0, 64, 0x2000, 0x3000, 0x4000, vector: 0);

        _h.WriteBar(QueueSize, 2, 32);
        _h.WriteBar(QueueDescLow, 4, 0x9000);
        _h.WriteBar(QueueEnable, 2, 0);
        _h.WriteBar(QueueMsixVector, 2, 1);

        Assert.Equal(64UL, _h.ReadBar(QueueSize, 2));
        Assert.Equal(0x2000UL, _h.ReadBar(QueueDescLow, 8));
        Assert.Equal(1UL, _h.ReadBar(QueueEnable, 2));
        Assert.Equal(1UL, _h.ReadBar(QueueMsixVector, 2));
        Assert.Equal(3, _h.Transport.InvalidRegisterWrites);
    }

    [Fact]
    public void RingAddresses_TakeTwoHalvesOrOneQword()
    {
        _h.WriteBar(QueueSelect, 2, 1);
        _h.WriteBar(QueueDescLow, 4, 0x8765_4000);
        _h.WriteBar(QueueDescHigh, 4, 0x0000_0001);
        _h.WriteBar(QueueDriverLow, 8, 0x0000_0002_0000_1002);
        _h.WriteBar(QueueDeviceHigh, 4, 3);
        _h.WriteBar(QueueDeviceLow, 4, 0x44);

        Assert.Equal(0x0000_0001_8765_4000UL, _h.ReadBar(QueueDescLow, 8));
        Assert.Equal(0x0000_0002_0000_1002UL, _h.ReadBar(QueueDriverLow, 8));
        Assert.Equal(0x0000_0003_0000_0044UL, _h.ReadBar(QueueDeviceLow, 8));
        Assert.Equal(0x0000_0002UL, _h.ReadBar(QueueDriverHigh, 4));
    }

    [Fact]
    public void MsixVectors_BeyondTheTable_ReadBackNoVector()
    {
        _h.WriteBar(QueueSelect, 2, 0);
        _h.WriteBar(QueueMsixVector, 2, 2);
        ulong inTable = _h.ReadBar(QueueMsixVector, 2);
        _h.WriteBar(QueueMsixVector, 2, 3);
        ulong beyond = _h.ReadBar(QueueMsixVector, 2);
        _h.WriteBar(ConfigMsixVector, 2, 0);
        ulong config = _h.ReadBar(ConfigMsixVector, 2);
        _h.WriteBar(ConfigMsixVector, 2, 0x8000);

        Assert.Equal(2UL, inTable);
        Assert.Equal((ulong)NoVector, beyond);
        Assert.Equal(0UL, config);
        Assert.Equal((ulong)NoVector, _h.ReadBar(ConfigMsixVector, 2));
    }

    [Fact]
    public void ReadOnlyFields_IgnoreWrites()
    {
        _h.WriteBar(NumQueues, 2, 9);
        _h.WriteBar(DeviceFeature, 4, 0);
        _h.WriteBar(QueueNotifyOff, 2, 7);
        _h.WriteBar(ConfigGeneration, 1, 5);

        Assert.Equal(2UL, _h.ReadBar(NumQueues, 2));
        Assert.Equal(0x3000_0200UL, _h.ReadBar(DeviceFeature, 4));
        Assert.Equal(0UL, _h.ReadBar(QueueNotifyOff, 2));
        Assert.Equal(0UL, _h.ReadBar(ConfigGeneration, 1));
    }

    [Fact]
    public void StatusBits_AreStickyUntilReset_AndNeedsResetIsTheDevicesOwn()
    {
        _h.SetStatus(StatusAcknowledge);
        _h.SetStatus(StatusDriver);
        byte both = _h.Status;
        _h.SetStatus(StatusDeviceNeedsReset | StatusAcknowledge);

        Assert.Equal(StatusAcknowledge | StatusDriver, both);
        Assert.Equal(StatusAcknowledge | StatusDriver, _h.Status);
    }

    [Fact]
    public void AccessesBeyondTheStructure_ReadZero_AndAreDropped()
    {
        _h.WriteBar(0x38, 4, 0xFFFF_FFFF);
        _h.WriteBar(0xFFC, 4, 0xFFFF_FFFF);

        Assert.Equal(0UL, _h.ReadBar(0x38, 4));
        Assert.Equal(0UL, _h.ReadBar(0xFFC, 4));
    }

    [Fact]
    public void DeviceConfiguration_IsForwardedWithItsOffset()
    {
        ulong value = _h.ReadBar(DeviceCfgOffset + 2, 4);
        _h.WriteBar(DeviceCfgOffset + 4, 2, 0xBEEF);

        Assert.Equal(0xC5C4_C3C2UL, value);
        Assert.Equal((2u, 4), _h.Device.ConfigReads[^1]);
        Assert.Equal(4u, _h.Device.ConfigWrites[^1].Offset);
        Assert.Equal(new byte[] { 0xEF, 0xBE }, _h.Device.ConfigWrites[^1].Data);
    }

    [Fact]
    public void StraddlingAccesses_AreIgnoredAndCounted()
    {
        _h.WriteBar(0xFFE, 4, 0xFFFF_FFFF);
        ulong read = _h.ReadBar(0x2FFC, 8);

        Assert.Equal(0UL, read);
        Assert.Equal(2, _h.Transport.IgnoredBarAccesses);
        Assert.Empty(_h.Device.ConfigReads);
    }
}
