using KvmSharp.Devices.Bus;
using KvmSharp.Devices.Pci;
using KvmSharp.Hypervisor;

namespace KvmSharp.Devices.Tests.Pci;

/// <summary>An interrupt sink that records GSI levels and MSIs in order.</summary>
internal sealed class RecordingMsiSink : IInterruptSink
{
    public List<(uint Gsi, bool Level)> Levels { get; } = [];

    public List<(ulong Address, uint Data)> Messages { get; } = [];

    public void SetLevel(uint gsi, bool level) => Levels.Add((gsi, level));

    public void SignalMsi(ulong address, uint data) => Messages.Add((address, data));
}

/// <summary>An MSI delivery that records (vector, address, data) of every message.</summary>
internal sealed class RecordingMsiDelivery : IMsiDelivery
{
    public List<(int Vector, ulong Address, uint Data)> Sent { get; } = [];

    public void Deliver(int vector, ulong address, uint data) => Sent.Add((vector, address, data));
}

/// <summary>
/// A plain PCI function for tests: BAR0 of <paramref name="bar0Size"/> bytes whose first half is a
/// <see cref="RecordingDevice"/> and, with <paramref name="msixVectors"/> > 0, an MSI-X table at BAR0 + 0x800 and its
/// PBA at BAR0 + 0xC00.
/// </summary>
internal sealed class TestPciFunction : PciFunction
{
    public const uint MsixTableOffset = 0x800;
    public const uint MsixPbaOffset = 0xC00;

    public TestPciFunction(uint bar0Size = 0x1000, int msixVectors = 0, IMsiDelivery? delivery = null, bool usesIntx = true, byte tag = 0x5A)
        : base("test", new PciIdentity(0x1234, 0x5678, 0xFF_00_00, 3, 0x1AF4, 0x1100), usesIntx)
    {
        Registers = new RecordingDevice(tag);
        Region = new Bar0(this);
        if (bar0Size != 0)
        {
            AddMemoryBar(0, bar0Size, Region);
        }

        if (msixVectors > 0)
        {
            MsixCap = AddMsixCapability(msixVectors, 0, MsixTableOffset, 0, MsixPbaOffset, delivery ?? new RecordingMsiDelivery());
        }
    }

    public RecordingDevice Registers { get; }

    public IBusDevice Region { get; }

    public MsixCapability? MsixCap { get; }

    public List<(int Index, ulong? Previous, ulong? Current)> DecodingChanges { get; } = [];

    public void RequestInterrupt(bool requested) => SetInterruptRequest(requested);

    public void AddBar(int index, uint size) => AddMemoryBar(index, size, Region);

    public int AddVendorCapability(int length) => Config.AddCapability(PciRegisters.CapabilityIdVendorSpecific, length);

    public PciFunctionState Save() => SaveFunction();

    public void Restore(PciFunctionState state) => RestoreFunction(state);

    protected override void OnBarDecodingChanged(int index, ulong? previous, ulong? current) =>
        DecodingChanges.Add((index, previous, current));

    private sealed class Bar0(TestPciFunction owner) : IBusDevice
    {
        public void Read(ulong offset, Span<byte> data)
        {
            if (owner.MsixCap is { } msix && offset >= MsixPbaOffset)
            {
                msix.ReadPendingBits(offset - MsixPbaOffset, data);
            }
            else if (owner.MsixCap is { } table && offset >= MsixTableOffset)
            {
                table.ReadTable(offset - MsixTableOffset, data);
            }
            else
            {
                owner.Registers.Read(offset, data);
            }
        }

        public void Write(ulong offset, ReadOnlySpan<byte> data)
        {
            if (owner.MsixCap is { } msix && offset >= MsixPbaOffset)
            {
                return;
            }

            if (owner.MsixCap is { } table && offset >= MsixTableOffset)
            {
                table.WriteTable(offset - MsixTableOffset, data);
            }
            else
            {
                owner.Registers.Write(offset, data);
            }
        }
    }
}

/// <summary>Guest-side helpers: configuration mechanism #1 through the port bus, like Linux's pci_conf1_read/write.</summary>
internal sealed class Conf1(IoBus ports)
{
    public IoBus Ports { get; } = ports;

    public static Conf1 For(PciBus bus)
    {
        var ports = IoBus.CreatePortBus();
        bus.RegisterConfigPorts(ports);
        return new Conf1(ports);
    }

    public uint Read(int device, int register, int width, int bus = 0, int function = 0)
    {
        OutL(0xCF8, PciConfigIo.EncodeAddress(bus, device, function, register));
        var data = new byte[width];
        Ports.Read(0xCFCUL + (ulong)(register & (width == 4 ? 0 : width == 2 ? 2 : 3)), data);
        uint value = 0;
        for (int i = width - 1; i >= 0; i--)
        {
            value = (value << 8) | data[i];
        }

        return value;
    }

    public void Write(int device, int register, int width, uint value, int bus = 0, int function = 0)
    {
        OutL(0xCF8, PciConfigIo.EncodeAddress(bus, device, function, register));
        var data = new byte[width];
        for (int i = 0; i < width; i++)
        {
            data[i] = (byte)(value >> (8 * i));
        }

        Ports.Write(0xCFCUL + (ulong)(register & (width == 4 ? 0 : width == 2 ? 2 : 3)), data);
    }

    public void OutL(ushort port, uint value) => Ports.Write(port, BitConverter.GetBytes(value));

    public uint InL(ushort port)
    {
        var data = new byte[4];
        Ports.Read(port, data);
        return BitConverter.ToUInt32(data);
    }
}
