using KvmSharp.Devices.Bus;
using KvmSharp.Devices.Pci;
using KvmSharp.Devices.Tests.Pci;
using KvmSharp.Devices.Virtio;
using KvmSharp.Devices.Virtio.Pci;
using static KvmSharp.Devices.Virtio.Pci.VirtioPciRegisters;

namespace KvmSharp.Devices.Tests.Virtio.Pci;

public class VirtioPciAllocationTests
{
    /// <summary>A device that interrupts from inside QueueNotify and only counts, so any allocation is the transport's.</summary>
    private sealed class CountingDevice : IVirtioDevice
    {
        public IVirtioInterrupt? Interrupt;
        public long Kicks;

        public ushort DeviceId => 2;

        public ulong DeviceFeatures => VirtioFeatures.Version1;

        public int QueueCount => 2;

        public ushort MaxQueueSize => 256;

        public int ConfigSize => 8;

        public void ReadConfig(uint offset, Span<byte> data) => data.Fill(0x11);

        public void WriteConfig(uint offset, ReadOnlySpan<byte> data)
        {
        }

        public void Activate(ulong negotiatedFeatures, ReadOnlySpan<VirtQueueLayout> queues, IVirtioInterrupt interrupt) => Interrupt = interrupt;

        public void QueueNotify(int queue)
        {
            Kicks++;
            Interrupt?.SignalQueue(queue);
        }

        public void Reset()
        {
        }

        public void Dispose()
        {
        }
    }

    private sealed class NullDelivery : IMsiDelivery
    {
        public long Count;

        public void Deliver(int vector, ulong address, uint data) => Count++;
    }

    [Fact]
    public void ConfigurationBarAndInterruptPaths_DoNotAllocate()
    {
        var mmio = IoBus.CreateMmioBus();
        var ports = IoBus.CreatePortBus();
        var bus = new PciBus(mmio, new RecordingMsiSink());
        bus.RegisterConfigPorts(ports);
        var device = new CountingDevice();
        var delivery = new NullDelivery();
        var transport = new VirtioPciTransport(device, delivery);
        bus.Add(transport);
        const ulong bar = 0xE000_0000;

        byte[] b1 = new byte[1];
        byte[] b2 = new byte[2];
        byte[] b4 = new byte[4];
        byte[] b8 = new byte[8];

        void W(ulong offset, uint value, byte[] buffer)
        {
            for (int i = 0; i < buffer.Length; i++)
            {
                buffer[i] = (byte)(value >> (8 * i));
            }

            mmio.Write(bar + offset, buffer);
        }

        // Driver start with MSI-X: vector 1 for queue 0, INTx path for queue 1 when MSI-X is off later.
        transport.WriteConfig(PciRegisters.Command, [(byte)(PciRegisters.CommandMemorySpace | PciRegisters.CommandBusMaster), 0]);
        W(DeviceStatus, 0, b1);
        W(DeviceStatus, 3, b1);
        W(DriverFeatureSelect, 1, b4);
        W(DriverFeature, 1, b4);
        W(DeviceStatus, 0x0B, b1);
        W(QueueSelect, 0, b2);
        W(QueueMsixVector, 1, b2);
        W(QueueEnable, 1, b2);
        W(DeviceStatus, 0x0F, b1);
        W(MsixTableOffset + 16, 0xFEE0_1000, b4);
        W(MsixTableOffset + 28, 0, b4);

        void Round()
        {
            // Configuration space through the ports: identity, status, a capability, the PCI_CFG window data.
            ports.Write(0xCF8, [0x00, 0x08, 0x00, 0x80]);
            ports.Read(0xCFC, b4);
            ports.Read(0xCFE, b2);
            ports.Write(0xCFC, b1);
            transport.ReadConfig(0x40, b4);
            transport.ReadConfig(transport.PciCfgCapabilityOffset + 16, b4);
            transport.WriteConfig(PciRegisters.InterruptLine, b1);

            // Common configuration, device configuration, ISR, MSI-X table and PBA, notify (device interrupts back).
            mmio.Read(bar + NumQueues, b2);
            mmio.Read(bar + DeviceFeature, b4);
            mmio.Read(bar + QueueDescLow, b8);
            W(QueueSelect, 1, b2);
            W(QueueSelect, 0, b2);
            mmio.Read(bar + DeviceCfgOffset, b8);
            mmio.Read(bar + IsrOffset, b1);
            mmio.Read(bar + MsixTableOffset + 16, b8);
            mmio.Read(bar + transport.MsixCapability.PendingBitArrayOffset, b8);
            W(NotifyOffset, 0, b2);
            transport.NotifyQueue(0);
            device.Interrupt!.SignalConfigChange();
        }

        ports.Write(0xCF8, [0x40, 0x08, 0x00, 0x80]);
        ports.Write(0xCFE, [0x00, 0x80]);
        for (int i = 0; i < 100; i++)
        {
            Round();
        }

        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 1000; i++)
        {
            Round();
        }

        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal(0, allocated);
        Assert.Equal(2200, device.Kicks);
        Assert.Equal(2200, delivery.Count);
    }
}
