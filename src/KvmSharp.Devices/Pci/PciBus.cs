using KvmSharp.Devices.Bus;
using KvmSharp.Devices.Interrupts;
using KvmSharp.Hypervisor;

namespace KvmSharp.Devices.Pci;

/// <summary>
/// PCI bus 0 of the PC and the firmware work a BIOS would do for it: the host bridge at 00:00.0, device numbers
/// 1-31 for added functions (function 0 only), BARs placed in the MMIO window and decoding enabled, and each INTx pin
/// wired to a GSI whose number goes in the interrupt line register. Configuration space is reached through
/// <see cref="ConfigIo"/> (ports 0xCF8-0xCFF).
/// </summary>
/// <remarks>
/// <para>The window [<see cref="DefaultMmioWindowStart"/>, <see cref="DefaultMmioWindowEnd"/>) lies in the MMIO
/// hole below 4 GiB, clear of the boot timer (0xD000_0000), the IOAPIC (0xFEC0_0000), the LAPIC (0xFEE0_0000) and
/// VT-x's TSS pages (0xFFFB_C000), and outside every E820 entry, so Linux keeps the BAR addresses it finds there
/// (docs/pci.md). BARs are placed in the order functions are added, each aligned to its size.</para>
/// <para>Building the bus (<see cref="Add"/>) happens before the vCPUs run and is not thread-safe; configuration
/// accesses afterwards are, and allocate nothing.</para>
/// </remarks>
public sealed class PciBus
{
    public const ulong DefaultMmioWindowStart = 0xE000_0000;

    /// <summary>End (exclusive) of the default BAR window.</summary>
    public const ulong DefaultMmioWindowEnd = 0xFE00_0000;

    /// <summary>Devices on a bus (5-bit device number, 3.2.2.3.2).</summary>
    public const int DeviceCount = 32;

    /// <summary>The GSIs INTx pins get, in turn: ISA IRQs no PC device of this machine uses (see docs/machine.md).</summary>
    public static readonly IReadOnlyList<uint> DefaultIntxGsis = [10, 11, 5];

    private readonly PciFunction?[] _devices = new PciFunction?[DeviceCount];
    private readonly IoBus _mmio;
    private readonly IInterruptSink _interrupts;
    private readonly uint[] _intxGsis;
    private ulong _nextBarAddress;
    private readonly List<(int Device, uint Gsi)> _intxRoutes = [];
    private long _absentReads;

    /// <summary>A bus with the default window and INTx GSIs.</summary>
    public PciBus(IoBus mmio, IInterruptSink interrupts)
        : this(mmio, interrupts, DefaultMmioWindowStart, DefaultMmioWindowEnd, DefaultIntxGsis)
    {
    }

    /// <param name="mmio">The MMIO bus BARs decode on.</param>
    /// <param name="interrupts">Where INTx pins go (a GSI each).</param>
    /// <param name="windowStart">First address BARs may be placed at.</param>
    /// <param name="windowEnd">End (exclusive) of the BAR window; at most 4 GiB (BARs are 32-bit).</param>
    /// <param name="intxGsis">GSIs given to INTx pins in turn (shared once all are used).</param>
    public PciBus(IoBus mmio, IInterruptSink interrupts, ulong windowStart, ulong windowEnd, IReadOnlyList<uint> intxGsis)
    {
        ArgumentNullException.ThrowIfNull(mmio);
        ArgumentNullException.ThrowIfNull(interrupts);
        ArgumentNullException.ThrowIfNull(intxGsis);
        if (windowStart >= windowEnd || windowEnd > 1UL << 32)
        {
            throw new ArgumentOutOfRangeException(nameof(windowEnd), $"The PCI window 0x{windowStart:x}-0x{windowEnd:x} must be non-empty and below 4 GiB (32-bit BARs).");
        }

        if (intxGsis.Count == 0)
        {
            throw new ArgumentException("Give INTx at least one GSI.", nameof(intxGsis));
        }

        _mmio = mmio;
        _interrupts = interrupts;
        _intxGsis = [.. intxGsis];
        MmioWindowStart = windowStart;
        MmioWindowEnd = windowEnd;
        _nextBarAddress = windowStart;
        ConfigIo = new PciConfigIo(this);
        HostBridge = new PciHostBridge();
        _devices[0] = HostBridge;
        HostBridge.Attach(0, mmio, null, 0);
    }

    /// <summary>The CONFIG_ADDRESS/CONFIG_DATA ports; see <see cref="RegisterConfigPorts"/>.</summary>
    public PciConfigIo ConfigIo { get; }

    /// <summary>Device 0.</summary>
    public PciHostBridge HostBridge { get; }

    public ulong MmioWindowStart { get; }

    public ulong MmioWindowEnd { get; }

    /// <summary>Where the next BAR would be placed (before alignment).</summary>
    public ulong NextBarAddress => _nextBarAddress;

    /// <summary>Configuration reads that found no function (the guest's bus scan makes many).</summary>
    public long AbsentReads => Interlocked.Read(ref _absentReads);

    /// <summary>Registers <see cref="ConfigIo"/> at 0xCF8-0xCFF of <paramref name="ports"/>.</summary>
    public void RegisterConfigPorts(IoBus ports)
    {
        ArgumentNullException.ThrowIfNull(ports);
        ports.Register(PciConfigIo.AddressPort, PciConfigIo.PortCount, ConfigIo, "pci conf1 (CONFIG_ADDRESS/CONFIG_DATA)");
    }

    /// <summary>
    /// Puts <paramref name="function"/> at the lowest free device number, places its BARs in the window (each aligned
    /// to its size), turns its memory decoding on and wires its INTx pin. Returns the device number. Throws
    /// <see cref="InvalidOperationException"/> when the bus or the window is full.
    /// </summary>
    public int Add(PciFunction function)
    {
        ArgumentNullException.ThrowIfNull(function);
        int device = Array.IndexOf(_devices, null);
        if (device < 0)
        {
            throw new InvalidOperationException($"PCI bus 0 has no free device number for {function.Name}: all {DeviceCount} are in use. Remove a device.");
        }

        ulong next = _nextBarAddress;
        Span<ulong> placed = stackalloc ulong[PciRegisters.BarCount];
        for (int i = 0; i < PciRegisters.BarCount; i++)
        {
            uint size = function.GetBarSize(i);
            if (size == 0)
            {
                continue;
            }

            ulong address = (next + size - 1) & ~((ulong)size - 1);
            if (address + size > MmioWindowEnd)
            {
                throw new InvalidOperationException(
                    $"BAR{i} of {function.Name} (0x{size:x} bytes) does not fit in the PCI window 0x{MmioWindowStart:x}-0x{MmioWindowEnd:x}. Add fewer devices.");
            }

            placed[i] = address;
            next = address + size;
        }

        IIrqLine? intx = null;
        byte line = PciRegisters.InterruptLineUnknown;
        uint? gsi = function.UsesIntx ? _intxGsis[_intxRoutes.Count % _intxGsis.Length] : null;
        if (gsi is { } pinGsi)
        {
            intx = new GsiIrqLine(_interrupts, pinGsi);
            line = pinGsi < PciRegisters.InterruptLineUnknown ? (byte)pinGsi : PciRegisters.InterruptLineUnknown;
        }

        function.Attach(device, _mmio, intx, line);
        for (int i = 0; i < PciRegisters.BarCount; i++)
        {
            if (function.GetBarSize(i) != 0)
            {
                function.AssignBar(i, (uint)placed[i]);
            }
        }

        function.EnableMemoryDecoding();
        if (gsi is { } wired)
        {
            _intxRoutes.Add((device, wired));
        }

        _nextBarAddress = next;
        Volatile.Write(ref _devices[device], function);
        return device;
    }

    /// <summary>Each device whose INTA pin is wired, with the GSI it drives, in the order they were added (the firmware's routing table).</summary>
    public IReadOnlyList<(int Device, uint Gsi)> IntxRoutes => _intxRoutes;

    /// <summary>The function at <paramref name="device"/> (0-31), or null.</summary>
    public PciFunction? GetDevice(int device) =>
        (uint)device < DeviceCount ? Volatile.Read(ref _devices[device]) : null;

    /// <summary>A configuration read; an absent bus, device or function reads all ones.</summary>
    public void ReadConfig(int bus, int device, int function, int register, Span<byte> data)
    {
        var target = Find(bus, device, function);
        if (target is null)
        {
            data.Fill(0xFF);
            Interlocked.Increment(ref _absentReads);
            return;
        }

        target.ReadConfig(register, data);
    }

    /// <summary>A configuration write; to an absent function it is dropped.</summary>
    public void WriteConfig(int bus, int device, int function, int register, ReadOnlySpan<byte> data) =>
        Find(bus, device, function)?.WriteConfig(register, data);

    private PciFunction? Find(int bus, int device, int function)
    {
        // Every function here is single-function (header type bit 7 clear): functions 1-7 do not exist.
        if (bus != 0 || function != 0 || (uint)device >= DeviceCount)
        {
            return null;
        }

        return Volatile.Read(ref _devices[device]);
    }
}
