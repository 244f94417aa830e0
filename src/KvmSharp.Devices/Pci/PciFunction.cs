using System.Numerics;
using KvmSharp.Devices.Bus;
using KvmSharp.Devices.Interrupts;

namespace KvmSharp.Devices.Pci;

/// <summary>
/// One PCI function with a type 0 header (PCI Local Bus Specification 3.0, chapter 6): its configuration space,
/// 32-bit memory BARs that decode on the MMIO bus while the command register's Memory Space bit is set, an optional
/// MSI-X capability, and an optional INTx pin wired to a GSI. Concrete devices (the host bridge, the virtio
/// transport) derive from it and add BARs and capabilities in their constructor, before <see cref="PciBus.Add"/>.
/// </summary>
/// <remarks>
/// <para>BARs (6.2.5.1): a BAR of size S (a power of two, at least 16) keeps address bits 31:log2(S) writable and the
/// rest read-only 0, so the guest's sizing write of all ones reads back ~(S-1) with the type bits (32-bit,
/// non-prefetchable memory: 0). Whenever the command register or a BAR changes, the function moves its MMIO
/// registrations to match: a BAR decodes at its address while Memory Space is on, and nowhere while it is off. A
/// BAR the guest places over a range another device holds does not decode (counted in <see cref="BarConflicts"/>);
/// the guest made the mistake, so nothing throws.</para>
/// <para>INTx (6.2.2, 6.2.3, 6.8.2): the device model requests its interrupt with <see cref="SetInterruptRequest"/>;
/// status bit 3 shows the request, and the pin is asserted while the request stands, the command register's
/// Interrupt Disable bit is clear and MSI-X is not enabled.</para>
/// <para>Threads: every configuration and BAR access, and every interrupt request, runs under the function's
/// reentrant <see cref="Sync"/> lock. Hooks marked so run outside it, so a derived class may call into its device
/// model there without holding the lock. Accesses allocate nothing, except that moving a BAR re-registers it on the
/// MMIO bus (a copy-on-write array), which the guest does at boot and when it re-enables decoding.</para>
/// </remarks>
public abstract class PciFunction
{
    private readonly Lock _sync = new();
    private readonly BarSlot[] _bars = new BarSlot[PciRegisters.BarCount];
    private IoBus? _mmio;
    private IIrqLine? _intx;
    private MsixCapability? _msix;
    private bool _interruptRequested;
    private long _barConflicts;

    protected PciFunction(string name, PciIdentity identity, bool usesIntx)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        if (identity.ClassCode > 0xFF_FFFF)
        {
            throw new ArgumentOutOfRangeException(nameof(identity), $"Class code 0x{identity.ClassCode:x} is wider than 24 bits.");
        }

        Name = name;
        Identity = identity;
        UsesIntx = usesIntx;
        var config = Config;
        config.SetWord(PciRegisters.VendorId, identity.VendorId);
        config.SetWord(PciRegisters.DeviceId, identity.DeviceId);
        config.SetByte(PciRegisters.RevisionId, identity.RevisionId);
        config.SetByte(PciRegisters.ClassCode, (byte)identity.ClassCode);
        config.SetByte(PciRegisters.ClassCode + 1, (byte)(identity.ClassCode >> 8));
        config.SetByte(PciRegisters.ClassCode + 2, (byte)(identity.ClassCode >> 16));
        config.SetWord(PciRegisters.SubsystemVendorId, identity.SubsystemVendorId);
        config.SetWord(PciRegisters.SubsystemId, identity.SubsystemId);
        config.SetByte(PciRegisters.InterruptPin, usesIntx ? PciRegisters.InterruptPinA : (byte)0);
        config.SetByte(PciRegisters.InterruptLine, PciRegisters.InterruptLineUnknown);

        // Bus Master is always writable (the function does DMA or at least must accept the bit); Memory Space
        // becomes writable with the first memory BAR, Interrupt Disable with an INTx pin.
        config.SetWritable(
            PciRegisters.Command,
            2,
            PciRegisters.CommandBusMaster | (usesIntx ? PciRegisters.CommandInterruptDisable : 0u));
        config.SetWriteOneToClear(PciRegisters.Status, 2, PciRegisters.StatusWriteOneToClear);
        config.SetWritable(PciRegisters.CacheLineSize, 1, 0xFF);
        config.SetWritable(PciRegisters.LatencyTimer, 1, 0xFF);
        config.SetWritable(PciRegisters.InterruptLine, 1, 0xFF);
    }

    /// <summary>Short name used in MMIO range names and messages ("virtio-blk").</summary>
    public string Name { get; }

    public PciIdentity Identity { get; }

    /// <summary>Whether the function has an INTx pin (interrupt pin register 1, INTA#).</summary>
    public bool UsesIntx { get; }

    /// <summary>Device number on bus 0 once the function is added to a <see cref="PciBus"/>; -1 before.</summary>
    public int DeviceNumber { get; private set; } = -1;

    /// <summary>Times a BAR could not decode because the guest placed it over a range another device holds.</summary>
    public long BarConflicts => Interlocked.Read(ref _barConflicts);

    /// <summary>The command register's Memory Space bit.</summary>
    public bool MemoryDecodingEnabled
    {
        get
        {
            lock (_sync)
            {
                return (Config.GetWord(PciRegisters.Command) & PciRegisters.CommandMemorySpace) != 0;
            }
        }
    }

    /// <summary>The level the function drives on its INTx pin now.</summary>
    public bool InterruptLevel { get; private set; }

    /// <summary>The function's lock (reentrant): derived classes take it around their register state.</summary>
    protected Lock Sync => _sync;

    /// <summary>The configuration space; derived classes set fields and masks in their constructor.</summary>
    protected PciConfigSpace Config { get; } = new();

    /// <summary>The MSI-X capability, once <see cref="AddMsixCapability"/> has added it.</summary>
    protected MsixCapability? Msix => _msix;

    /// <summary>Size of BAR <paramref name="index"/> in bytes, 0 when the function does not implement it.</summary>
    public uint GetBarSize(int index) => _bars[CheckBarIndex(index)]?.Size ?? 0;

    /// <summary>The BAR's programmed address (the register without its type bits).</summary>
    public uint GetBarAddress(int index)
    {
        CheckBarIndex(index);
        lock (_sync)
        {
            return Config.GetDword(PciRegisters.Bar0 + (4 * index)) & PciRegisters.BarMemoryAddressMask;
        }
    }

    /// <summary>Where BAR <paramref name="index"/> decodes on the MMIO bus now, or null (decoding off, BAR conflict, not attached).</summary>
    public ulong? GetDecodedBarAddress(int index)
    {
        CheckBarIndex(index);
        lock (_sync)
        {
            return _bars[index]?.Decoded;
        }
    }

    /// <summary>A configuration read of <paramref name="data"/>.Length bytes at <paramref name="register"/> (0-255).</summary>
    public void ReadConfig(int register, Span<byte> data)
    {
        if ((uint)register >= PciRegisters.ConfigSpaceSize)
        {
            data.Clear();
            return;
        }

        BeforeConfigRead(register, data.Length);
        lock (_sync)
        {
            Config.Read(register, data);
        }
    }

    /// <summary>
    /// A configuration write: applies the write masks, then follows what changed (BAR decoding, MSI-X control,
    /// the INTx pin), then calls <see cref="AfterConfigWrite"/> outside the lock.
    /// </summary>
    public void WriteConfig(int register, ReadOnlySpan<byte> data)
    {
        if ((uint)register >= PciRegisters.ConfigSpaceSize || data.IsEmpty)
        {
            return;
        }

        int end = register + data.Length;
        lock (_sync)
        {
            Config.Write(register, data);
            if (Overlaps(register, end, PciRegisters.Command, 1) || Overlaps(register, end, PciRegisters.Bar0, 4 * PciRegisters.BarCount))
            {
                UpdateDecoding();
            }

            if (_msix is not null && Overlaps(register, end, _msix.CapabilityOffset + MsixCapability.MessageControlOffset, 2))
            {
                _msix.ControlWritten();
            }

            UpdateInterruptPin();
        }

        AfterConfigWrite(register, data.Length);
    }

    /// <summary>Adds a 32-bit non-prefetchable memory BAR of <paramref name="size"/> bytes whose accesses go to <paramref name="region"/>.</summary>
    protected void AddMemoryBar(int index, uint size, IBusDevice region)
    {
        CheckBarIndex(index);
        ArgumentNullException.ThrowIfNull(region);
        if (size < 16 || !BitOperations.IsPow2(size))
        {
            throw new ArgumentOutOfRangeException(nameof(size), size, "A memory BAR is a power of two of at least 16 bytes (PCI 3.0, 6.2.5.1).");
        }

        if (_bars[index] is not null || DeviceNumber >= 0)
        {
            throw new InvalidOperationException($"BAR{index} of {Name} is already defined, or the function is already on a bus.");
        }

        _bars[index] = new BarSlot(size, region);
        Config.SetDword(PciRegisters.Bar0 + (4 * index), 0);
        Config.SetWritable(PciRegisters.Bar0 + (4 * index), 4, ~(size - 1) & PciRegisters.BarMemoryAddressMask);
        Config.SetWritable(
            PciRegisters.Command,
            2,
            Config.WritableMask(PciRegisters.Command) | ((uint)Config.WritableMask(PciRegisters.Command + 1) << 8) | PciRegisters.CommandMemorySpace);
    }

    /// <summary>Adds the MSI-X capability; the table and PBA must lie inside memory BARs the function defines.</summary>
    protected MsixCapability AddMsixCapability(int vectors, int tableBar, uint tableOffset, int pendingBar, uint pendingOffset, IMsiDelivery delivery)
    {
        if (_msix is not null)
        {
            throw new InvalidOperationException($"{Name} already has an MSI-X capability.");
        }

        var msix = new MsixCapability(Config, _sync, vectors, tableBar, tableOffset, pendingBar, pendingOffset, delivery);
        if ((ulong)tableOffset + (ulong)msix.TableLength > GetBarSize(tableBar)
            || (ulong)pendingOffset + (ulong)msix.PendingBitArrayLength > GetBarSize(pendingBar))
        {
            throw new ArgumentException($"The MSI-X table or PBA of {Name} does not fit in its BAR.");
        }

        _msix = msix;
        return msix;
    }

    /// <summary>The device model requests (or withdraws) its INTx interrupt.</summary>
    protected void SetInterruptRequest(bool requested)
    {
        lock (_sync)
        {
            _interruptRequested = requested;
            UpdateInterruptPin();
        }
    }

    /// <summary>Before a configuration read is served, outside the lock (the virtio PCI_CFG window fills its data here).</summary>
    protected virtual void BeforeConfigRead(int register, int length)
    {
    }

    /// <summary>After a configuration write was applied, outside the lock.</summary>
    protected virtual void AfterConfigWrite(int register, int length)
    {
    }

    /// <summary>A BAR started or stopped decoding, or moved; called under the lock, right after the MMIO bus changed.</summary>
    protected virtual void OnBarDecodingChanged(int index, ulong? previous, ulong? current)
    {
    }

    protected PciFunctionState SaveFunction()
    {
        lock (_sync)
        {
            return new PciFunctionState(Config.Snapshot(), _interruptRequested);
        }
    }

    /// <summary>Restores the configuration bytes, then re-establishes BAR decoding, MSI-X control and the INTx pin from them.</summary>
    protected void RestoreFunction(PciFunctionState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        lock (_sync)
        {
            Config.Restore(state.ConfigSpace);
            _interruptRequested = state.InterruptRequested;
            UpdateDecoding();
            _msix?.ControlWritten();
            UpdateInterruptPin();
        }
    }

    /// <summary>Connects the function to bus 0 as device <paramref name="deviceNumber"/>.</summary>
    internal void Attach(int deviceNumber, IoBus? mmio, IIrqLine? intx, byte interruptLine)
    {
        lock (_sync)
        {
            if (DeviceNumber >= 0)
            {
                throw new InvalidOperationException($"{Name} is already device {DeviceNumber} of a PCI bus.");
            }

            DeviceNumber = deviceNumber;
            _mmio = mmio;
            _intx = UsesIntx ? intx : null;
            if (UsesIntx)
            {
                Config.SetByte(PciRegisters.InterruptLine, interruptLine);
            }

            for (int i = 0; i < _bars.Length; i++)
            {
                if (_bars[i] is { } bar)
                {
                    bar.RangeName = $"pci 00:{deviceNumber:x2}.0 {Name} BAR{i}";
                }
            }
        }
    }

    /// <summary>Firmware's part: programs BAR <paramref name="index"/> with <paramref name="address"/> (aligned to its size).</summary>
    internal void AssignBar(int index, uint address)
    {
        lock (_sync)
        {
            Config.SetDword(PciRegisters.Bar0 + (4 * index), address & ~(_bars[index]!.Size - 1));
            UpdateDecoding();
        }
    }

    /// <summary>Firmware's part: turns on memory decoding, as a BIOS does after it assigned the BARs.</summary>
    internal void EnableMemoryDecoding()
    {
        lock (_sync)
        {
            Config.SetWord(PciRegisters.Command, (ushort)(Config.GetWord(PciRegisters.Command) | PciRegisters.CommandMemorySpace));
            UpdateDecoding();
        }
    }

    private static bool Overlaps(int start, int end, int field, int length) => start < field + length && field < end;

    private static int CheckBarIndex(int index)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, PciRegisters.BarCount);
        return index;
    }

    private void UpdateDecoding()
    {
        bool memoryOn = (Config.GetWord(PciRegisters.Command) & PciRegisters.CommandMemorySpace) != 0;
        for (int i = 0; i < _bars.Length; i++)
        {
            var bar = _bars[i];
            if (bar is null)
            {
                continue;
            }

            ulong? wanted = memoryOn && _mmio is not null
                ? Config.GetDword(PciRegisters.Bar0 + (4 * i)) & PciRegisters.BarMemoryAddressMask
                : null;
            if (wanted == bar.Requested)
            {
                continue;
            }

            bar.Requested = wanted;
            ulong? previous = bar.Decoded;
            if (previous is { } old)
            {
                _mmio!.Unregister(old);
                bar.Decoded = null;
            }

            if (wanted is { } address)
            {
                if (_mmio!.TryRegister(address, bar.Size, bar.Region, bar.RangeName, out _))
                {
                    bar.Decoded = address;
                }
                else
                {
                    Interlocked.Increment(ref _barConflicts);
                }
            }

            if (previous != bar.Decoded)
            {
                OnBarDecodingChanged(i, previous, bar.Decoded);
            }
        }
    }

    private void UpdateInterruptPin()
    {
        bool requested = _interruptRequested && !(_msix?.Enabled ?? false);
        ushort status = Config.GetWord(PciRegisters.Status);
        status = requested ? (ushort)(status | PciRegisters.StatusInterrupt) : (ushort)(status & ~PciRegisters.StatusInterrupt);
        Config.SetWord(PciRegisters.Status, status);
        bool level = requested && (Config.GetWord(PciRegisters.Command) & PciRegisters.CommandInterruptDisable) == 0;
        if (level != InterruptLevel)
        {
            InterruptLevel = level;
            _intx?.SetLevel(level);
        }
    }

    private sealed class BarSlot(uint size, IBusDevice region)
    {
        public uint Size { get; } = size;

        public IBusDevice Region { get; } = region;

        public string RangeName { get; set; } = "pci BAR";

        /// <summary>Where the configuration says the BAR should decode (null: nowhere).</summary>
        public ulong? Requested { get; set; }

        /// <summary>Where it does decode (null when nowhere, or when the wanted range was taken).</summary>
        public ulong? Decoded { get; set; }
    }
}
