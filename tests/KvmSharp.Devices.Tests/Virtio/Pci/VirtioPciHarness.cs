using KvmSharp.Devices.Bus;
using KvmSharp.Devices.Pci;
using KvmSharp.Devices.Tests.Pci;
using KvmSharp.Devices.Virtio;
using KvmSharp.Devices.Virtio.Pci;
using static KvmSharp.Devices.Virtio.Pci.VirtioPciRegisters;

namespace KvmSharp.Devices.Tests.Virtio.Pci;

/// <summary>
/// A PCI bus with one virtio transport at 00:01.0 and a guest-side driver view: configuration space through the
/// 0xCF8/0xCFC ports, BAR0 through the MMIO bus, as Linux's virtio_pci_modern reaches them.
/// </summary>
internal sealed class VirtioPciHarness
{
    public const int Slot = 1;
    public const ulong Bar0 = 0xE000_0000;

    public VirtioPciHarness(FakeVirtioDevice? device = null, bool msixToSink = false)
    {
        Device = device ?? new FakeVirtioDevice();
        Mmio = IoBus.CreateMmioBus();
        Sink = new RecordingMsiSink();
        Bus = new PciBus(Mmio, Sink);
        Conf = Conf1.For(Bus);
        IMsiDelivery delivery = msixToSink ? new DirectMsiDelivery(Sink) : Msi;
        Transport = new VirtioPciTransport(Device, delivery);
        Bus.Add(Transport);

        // As a driver does before using the device (Linux's pci_set_master): without it notifications are dropped.
        ConfigWrite(0x04, 2, ConfigRead(0x04, 2) | PciRegisters.CommandBusMaster);
    }

    public FakeVirtioDevice Device { get; }

    public IoBus Mmio { get; }

    public RecordingMsiSink Sink { get; }

    public RecordingMsiDelivery Msi { get; } = new();

    public PciBus Bus { get; }

    public Conf1 Conf { get; }

    public VirtioPciTransport Transport { get; }

    public uint ConfigRead(int register, int width) => Conf.Read(Slot, register, width);

    public void ConfigWrite(int register, int width, uint value) => Conf.Write(Slot, register, width, value);

    public ulong ReadBar(ulong offset, int width)
    {
        var data = new byte[width];
        Mmio.Read(Bar0 + offset, data);
        ulong value = 0;
        for (int i = width - 1; i >= 0; i--)
        {
            value = (value << 8) | data[i];
        }

        return value;
    }

    public void WriteBar(ulong offset, int width, ulong value)
    {
        var data = new byte[width];
        for (int i = 0; i < width; i++)
        {
            data[i] = (byte)(value >> (8 * i));
        }

        Mmio.Write(Bar0 + offset, data);
    }

    public byte Status => (byte)ReadBar(VirtioPciRegisters.DeviceStatus, 1);

    public void SetStatus(byte value) => WriteBar(VirtioPciRegisters.DeviceStatus, 1, value);

    public void AddStatus(byte bits) => SetStatus((byte)(Status | bits));

    public void WriteDriverFeatures(ulong features)
    {
        WriteBar(DriverFeatureSelect, 4, 0);
        WriteBar(DriverFeature, 4, (uint)features);
        WriteBar(DriverFeatureSelect, 4, 1);
        WriteBar(DriverFeature, 4, (uint)(features >> 32));
    }

    /// <summary>ACKNOWLEDGE, DRIVER, the features, FEATURES_OK; returns whether FEATURES_OK stuck.</summary>
    public bool Negotiate(ulong features)
    {
        SetStatus(0);
        AddStatus(StatusAcknowledge);
        AddStatus(StatusDriver);
        WriteDriverFeatures(features);
        AddStatus(StatusFeaturesOk);
        return (Status & StatusFeaturesOk) != 0;
    }

    /// <summary>Sets up queue <paramref name="queue"/> as Linux's vp_modern setup_vq does (64-bit addresses as two halves).</summary>
    public void SetupQueue(int queue, ushort size, ulong desc, ulong driver, ulong device, ushort vector, bool enable = true)
    {
        WriteBar(QueueSelect, 2, (ushort)queue);
        WriteBar(QueueSize, 2, size);
        WriteBar(QueueDescLow, 4, (uint)desc);
        WriteBar(QueueDescHigh, 4, (uint)(desc >> 32));
        WriteBar(QueueDriverLow, 4, (uint)driver);
        WriteBar(QueueDriverHigh, 4, (uint)(driver >> 32));
        WriteBar(QueueDeviceLow, 4, (uint)device);
        WriteBar(QueueDeviceHigh, 4, (uint)(device >> 32));
        WriteBar(QueueMsixVector, 2, vector);
        if (enable)
        {
            WriteBar(QueueEnable, 2, 1);
        }
    }

    /// <summary>Negotiates VERSION_1 | EVENT_IDX, sets up queue 0 and turns DRIVER_OK on.</summary>
    public void Start(ushort queue0Vector = NoVector, ushort configVector = NoVector)
    {
        Assert.True(Negotiate(FakeVirtioDevice.OfferedFeatures & (VirtioFeatures.Version1 | VirtioFeatures.EventIndex)));
        WriteBar(ConfigMsixVector, 2, configVector);
        SetupQueue(0, 128, 0x10_0000, 0x10_0800, 0x10_1000, queue0Vector);
        AddStatus(StatusDriverOk);
    }

    /// <summary>Turns MSI-X on and programs vector n with address 0xFEE0_0000 | (n &lt;&lt; 12), data 0x40 + n, unmasked.</summary>
    public void EnableMsix()
    {
        int vectors = Transport.MsixCapability.VectorCount;
        for (int n = 0; n < vectors; n++)
        {
            ulong entry = MsixTableOffset + (ulong)(n * 16);
            WriteBar(entry, 4, 0xFEE0_0000u | ((uint)n << 12));
            WriteBar(entry + 4, 4, 0);
            WriteBar(entry + 8, 4, 0x40u + (uint)n);
            WriteBar(entry + 12, 4, 0);
        }

        ConfigWrite(Transport.MsixCapability.CapabilityOffset + MsixCapability.MessageControlOffset, 2, MsixCapability.ControlEnable);
    }
}
