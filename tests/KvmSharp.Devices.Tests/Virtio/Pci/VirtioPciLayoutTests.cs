using KvmSharp.Devices.Bus;
using KvmSharp.Devices.Pci;
using KvmSharp.Devices.Tests.Pci;
using KvmSharp.Devices.Virtio.Pci;

namespace KvmSharp.Devices.Tests.Virtio.Pci;

public class VirtioPciLayoutTests
{
    [Fact]
    public void Identity_IsAModernVirtioFunction()
    {
        var h = new VirtioPciHarness();

        Assert.Equal(0x1042_1AF4u, h.ConfigRead(0x00, 4));
        Assert.Equal(0x0180_0001u, h.ConfigRead(0x08, 4));
        Assert.Equal(0x1100_1AF4u, h.ConfigRead(0x2C, 4));
        Assert.Equal(0u, h.ConfigRead(PciRegisters.HeaderType, 1));
        Assert.Equal(0x010Au, h.ConfigRead(PciRegisters.InterruptLine, 2));
        Assert.Equal("virtio-blk", h.Transport.Name);
    }

    [Theory]
    [InlineData(1, 0x1041, 0x02_00_00)]
    [InlineData(2, 0x1042, 0x01_80_00)]
    [InlineData(3, 0x1043, 0x07_80_00)]
    [InlineData(4, 0x1044, 0xFF_00_00)]
    [InlineData(18, 0x1052, 0xFF_00_00)]
    public void DeviceIdAndClass_FollowTheDeviceType(ushort type, ushort pciDeviceId, uint classCode)
    {
        var transport = new VirtioPciTransport(new FakeVirtioDevice(deviceId: type), new RecordingMsiDelivery());
        var id = new byte[4];
        var cls = new byte[4];

        transport.ReadConfig(0x00, id);
        transport.ReadConfig(0x08, cls);

        Assert.Equal(pciDeviceId, BitConverter.ToUInt16(id, 2));
        Assert.Equal(classCode, BitConverter.ToUInt32(cls) >> 8);
        Assert.Equal(classCode, transport.Identity.ClassCode);
    }

    [Fact]
    public void ClassCode_CanBeOverridden()
    {
        var transport = new VirtioPciTransport(new FakeVirtioDevice(deviceId: 2), new RecordingMsiDelivery(), classCode: 0x01_00_00);

        Assert.Equal(0x01_00_00u, transport.Identity.ClassCode);
    }

    [Fact]
    public void CapabilityWalk_FindsEveryVirtioStructure_AtExactOffsets()
    {
        var h = new VirtioPciHarness();
        var headers = new List<(int Offset, uint Header)>();

        Assert.Equal(PciRegisters.StatusCapabilitiesList, h.ConfigRead(PciRegisters.Status, 2) & PciRegisters.StatusCapabilitiesList);
        for (int cap = (int)h.ConfigRead(0x34, 1); cap != 0; cap = (int)h.ConfigRead(cap + 1, 1))
        {
            headers.Add((cap, h.ConfigRead(cap, 4)));
        }

        // MSI-X: ID 0x11, next, message control (3 vectors - 1). Vendor: cap_vndr 0x09, cap_next, cap_len, cfg_type.
        Assert.Equal(
            new (int, uint)[]
            {
                (0x40, 0x0002_4C11),
                (0x4C, 0x0110_5C09),
                (0x5C, 0x0214_7009),
                (0x70, 0x0310_8009),
                (0x80, 0x0410_9009),
                (0x90, 0x0514_0009),
            },
            headers);

        // MSI-X table at BAR0 + 0x4000, PBA at BAR0 + 0x4030.
        Assert.Equal(0x4000u, h.ConfigRead(0x44, 4));
        Assert.Equal(0x4030u, h.ConfigRead(0x48, 4));

        // bar, offset, length of COMMON, NOTIFY, ISR, DEVICE, PCI_CFG.
        Assert.Equal(
            new (uint, uint, uint)[] { (0, 0x0000, 0x38), (0, 0x3000, 8), (0, 0x1000, 1), (0, 0x2000, 8), (0, 0, 0) },
            headers.Skip(1).Select(c => (h.ConfigRead(c.Offset + 4, 1), h.ConfigRead(c.Offset + 8, 4), h.ConfigRead(c.Offset + 12, 4))));
        Assert.Equal(4u, h.ConfigRead(0x5C + 16, 4));
        Assert.Equal(0x90, h.Transport.PciCfgCapabilityOffset);
    }

    [Fact]
    public void DeviceWithoutConfiguration_HasNoDeviceCapability()
    {
        var transport = new VirtioPciTransport(new FakeVirtioDevice(deviceId: 4, queueCount: 1, configSize: 0), new RecordingMsiDelivery());
        var types = new List<byte>();
        var one = new byte[1];

        transport.ReadConfig(0x34, one);
        for (int cap = one[0]; cap != 0;)
        {
            var header = new byte[4];
            transport.ReadConfig(cap, header);
            if (header[0] == PciRegisters.CapabilityIdVendorSpecific)
            {
                types.Add(header[3]);
            }

            cap = header[1];
        }

        Assert.Equal(new byte[] { 1, 2, 3, 5 }, types);
    }

    [Fact]
    public void Bar0_Is32KiB_AndSizesLikeAnyBar()
    {
        var h = new VirtioPciHarness();

        h.ConfigWrite(0x04, 2, 0);
        h.ConfigWrite(0x10, 4, 0xFFFF_FFFF);
        uint mask = h.ConfigRead(0x10, 4);
        h.ConfigWrite(0x10, 4, 0xE000_0000);

        Assert.Equal(0x8000u, h.Transport.BarSize);
        Assert.Equal(0xFFFF_8000u, mask);
        Assert.Equal(3, h.Transport.MsixCapability.VectorCount);
    }

    [Fact]
    public void ManyQueues_GrowTheBar()
    {
        var transport = new VirtioPciTransport(new FakeVirtioDevice(queueCount: 1024), new RecordingMsiDelivery());

        // 1025 vectors: table 0x4000-0x8010, PBA 17 QWORDs to 0x8098.
        Assert.Equal(0x1_0000u, transport.BarSize);
        Assert.Equal(1025, transport.MsixCapability.VectorCount);
        Assert.Equal(0x8010u, transport.MsixCapability.PendingBitArrayOffset);
    }

    [Fact]
    public void ImpossibleDevices_AreRejectedWhenBuilt()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new VirtioPciTransport(new FakeVirtioDevice(queueCount: 0), new RecordingMsiDelivery()));
        Assert.Throws<ArgumentOutOfRangeException>(() => new VirtioPciTransport(new FakeVirtioDevice(queueCount: 1025), new RecordingMsiDelivery()));
        Assert.Throws<ArgumentOutOfRangeException>(() => new VirtioPciTransport(new FakeVirtioDevice(maxQueueSize: 100), new RecordingMsiDelivery()));
        Assert.Throws<ArgumentOutOfRangeException>(() => new VirtioPciTransport(new FakeVirtioDevice(configSize: 4097), new RecordingMsiDelivery()));
    }

    [Fact]
    public void OnTheBus_Bar0LandsInTheWindow_AndDecodes()
    {
        var mmio = IoBus.CreateMmioBus();
        var bus = new PciBus(mmio, new RecordingMsiSink());
        bus.Add(new TestPciFunction(bar0Size: 0x1000));
        var transport = new VirtioPciTransport(new FakeVirtioDevice(), new RecordingMsiDelivery());

        Assert.Equal(2, bus.Add(transport));

        Assert.Equal(0xE000_8000u, transport.GetBarAddress(0));
        Assert.True(mmio.TryFind(0xE000_FFFF, out var range));
        Assert.Equal("pci 00:02.0 virtio-blk BAR0", range.Name);
        Assert.Equal(0xE000_B004UL, transport.GetNotifyAddress(1));
        Assert.Null(transport.GetNotifyAddress(2));
    }
}
