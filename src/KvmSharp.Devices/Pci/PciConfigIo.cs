using System.Buffers.Binary;
using KvmSharp.Devices.Bus;

namespace KvmSharp.Devices.Pci;

/// <summary>
/// Configuration mechanism #1 (PCI Local Bus Specification 3.0, 3.2.2.3.2): CONFIG_ADDRESS at port 0xCF8 and
/// CONFIG_DATA at 0xCFC-0xCFF, registered as one 8-port range.
/// <code>
/// CONFIG_ADDRESS  bit 31 enable | 30:24 reserved (read 0) | 23:16 bus | 15:11 device | 10:8 function | 7:2 register | 1:0 read 0
/// </code>
/// CONFIG_ADDRESS is a 32-bit register: only a DWORD access at 0xCF8 reaches it. Narrower or unaligned accesses to
/// 0xCF8-0xCFB are ordinary I/O nobody decodes (reads all ones, writes vanish; Linux's probe writes a byte to 0xCFB
/// and expects CONFIG_ADDRESS unchanged). A CONFIG_DATA access of 1, 2 or 4 bytes at 0xCFC + n reaches configuration
/// byte (register + n) of the addressed function. With the enable bit clear, or for a function nobody implements,
/// reads return all ones and writes are dropped (a master abort).
/// </summary>
public sealed class PciConfigIo : IBusDevice
{
    public const ushort AddressPort = 0xCF8;
    public const ushort DataPort = 0xCFC;

    /// <summary>Ports from <see cref="AddressPort"/> to register: 0xCF8-0xCFF.</summary>
    public const int PortCount = 8;

    public const uint AddressEnable = 1u << 31;
    public const int AddressBusShift = 16;
    public const int AddressDeviceShift = 11;
    public const int AddressFunctionShift = 8;
    public const uint AddressRegisterMask = 0xFC;

    /// <summary>The bits of CONFIG_ADDRESS that hold what is written; reserved bits 30:24 and 1:0 read 0.</summary>
    public const uint AddressStoredMask = 0x80FF_FFFC;

    private const int DataOffset = DataPort - AddressPort;

    private readonly PciBus _bus;
    private uint _address;

    internal PciConfigIo(PciBus bus) => _bus = bus;

    /// <summary>CONFIG_ADDRESS as the guest last wrote it (reserved bits cleared).</summary>
    public uint Address => Volatile.Read(ref _address);

    /// <summary>The CONFIG_ADDRESS value that selects <paramref name="register"/> of bus:device.function, enable bit set.</summary>
    public static uint EncodeAddress(int bus, int device, int function, int register) =>
        AddressEnable | ((uint)bus << AddressBusShift) | ((uint)device << AddressDeviceShift)
        | ((uint)function << AddressFunctionShift) | ((uint)register & AddressRegisterMask);

    public void Read(ulong offset, Span<byte> data)
    {
        if (offset < DataOffset)
        {
            if (offset == 0 && data.Length == 4)
            {
                BinaryPrimitives.WriteUInt32LittleEndian(data, Volatile.Read(ref _address));
            }
            else
            {
                data.Fill(0xFF);
            }

            return;
        }

        uint address = Volatile.Read(ref _address);
        if ((address & AddressEnable) == 0)
        {
            data.Fill(0xFF);
            return;
        }

        _bus.ReadConfig(Bus(address), Device(address), Function(address), Register(address, offset), data);
    }

    public void Write(ulong offset, ReadOnlySpan<byte> data)
    {
        if (offset < DataOffset)
        {
            if (offset == 0 && data.Length == 4)
            {
                Volatile.Write(ref _address, BinaryPrimitives.ReadUInt32LittleEndian(data) & AddressStoredMask);
            }

            return;
        }

        uint address = Volatile.Read(ref _address);
        if ((address & AddressEnable) != 0)
        {
            _bus.WriteConfig(Bus(address), Device(address), Function(address), Register(address, offset), data);
        }
    }

    public PciConfigIoState Save() => new(Address);

    public void Restore(PciConfigIoState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        Volatile.Write(ref _address, state.ConfigAddress & AddressStoredMask);
    }

    private static int Bus(uint address) => (int)((address >> AddressBusShift) & 0xFF);

    private static int Device(uint address) => (int)((address >> AddressDeviceShift) & 0x1F);

    private static int Function(uint address) => (int)((address >> AddressFunctionShift) & 0x7);

    private static int Register(uint address, ulong offset) => (int)(address & AddressRegisterMask) + (int)(offset - DataOffset);
}
