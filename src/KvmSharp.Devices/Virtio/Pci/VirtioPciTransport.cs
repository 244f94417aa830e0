using System.Buffers.Binary;
using System.Numerics;
using KvmSharp.Devices.Bus;
using KvmSharp.Devices.Pci;
using static KvmSharp.Devices.Virtio.Pci.VirtioPciRegisters;

namespace KvmSharp.Devices.Virtio.Pci;

/// <summary>
/// The virtio 1.x modern PCI transport (virtio 1.1, 4.1) for any <see cref="IVirtioDevice"/>: a PCI function
/// 1AF4:(1040 + device ID), revision 1, with one 32-bit memory BAR holding the common configuration, ISR, device
/// configuration and notification structures and the MSI-X table and PBA, found through vendor capabilities.
/// </summary>
/// <remarks>
/// <para>BAR0 (size a power of two, at least 32 KiB):</para>
/// <code>
/// 0x0000 common configuration (0x38 bytes)   0x1000 ISR status (1 byte, read to clear)
/// 0x2000 device configuration (ConfigSize)   0x3000 notifications: queue n at 0x3000 + 4n
/// 0x4000 MSI-X table (16 bytes x (queues + 1)), then the PBA
/// </code>
/// <para>Capabilities from 0x40: MSI-X, then the COMMON, NOTIFY (notify_off_multiplier 4), ISR, DEVICE (only when the
/// device has configuration) and PCI_CFG vendor capabilities (ID 0x09).</para>
/// <para>Device status (2.1, 3.1): the driver's bits are sticky until it writes 0. FEATURES_OK sticks only if the
/// driver accepted no feature the device does not offer and accepted VERSION_1; DRIVER_OK after FEATURES_OK activates
/// the device with the queue layouts the driver wrote (an enabled queue with misaligned rings sets
/// DEVICE_NEEDS_RESET instead). Writing 0 resets the device and every transport register: queues disabled with
/// their maximum size, vectors NO_VECTOR, features cleared, ISR 0.</para>
/// <para>Interrupts (4.1.5): with MSI-X enabled a queue interrupt sends the queue's vector and a configuration
/// change the configuration vector (none for NO_VECTOR); with MSI-X disabled they set ISR bit 0 or bit 1 and assert
/// INTx, which a read of the ISR deasserts.</para>
/// <para>Threads: register accesses come from vCPU threads, interrupts from the device's threads, notifications from
/// vCPU threads or a notification worker (<see cref="IVirtioNotifyBinder"/>). Registers are guarded by the function's
/// lock; the device is always called without it (it may interrupt from inside QueueNotify or Activate). Guest
/// mistakes are counted, never thrown, and register accesses allocate nothing (activation allocates its interrupt
/// binding once).</para>
/// </remarks>
public sealed class VirtioPciTransport : PciFunction
{
    private readonly IVirtioDevice _device;
    private readonly MsixCapability _msix;
    private readonly QueueRegisters[] _queues;
    private readonly VirtQueueLayout[] _activationLayouts;
    private readonly ulong _deviceFeatures;
    private readonly uint _pendingBitArrayOffset;
    private readonly int _pciCfgCapability;
    private readonly BarRegion _bar;

    private uint _deviceFeatureSelect;
    private uint _driverFeatureSelect;
    private ulong _driverFeatures;
    private bool _unofferedFeaturesWritten;
    private ushort _configVector = NoVector;
    private byte _status;
    private byte _generation;
    private ushort _queueSelect;
    private byte _isr;
    private bool _activated;
    private long _epoch;
    private IVirtioNotifyBinder? _binder;

    private long _notifications;
    private long _invalidNotifications;
    private long _notificationsWithoutBusMaster;
    private long _invalidRegisterWrites;
    private long _refusedFeatures;
    private long _staleInterrupts;
    private long _ignoredBarAccesses;

    /// <param name="device">The device to expose; its queue count, sizes and configuration size fix the layout.</param>
    /// <param name="msiDelivery">Where MSI-X messages go (see <see cref="IMsiDelivery"/>); the table has <see cref="MsixVectorCount"/> vectors.</param>
    /// <param name="classCode">PCI class code; <see cref="DefaultClassCode"/> of the device type when null.</param>
    public VirtioPciTransport(IVirtioDevice device, IMsiDelivery msiDelivery, uint? classCode = null)
        : base(
            DeviceName(device),
            new PciIdentity(
                VendorId,
                (ushort)(DeviceIdBase + device.DeviceId),
                classCode ?? DefaultClassCode(device.DeviceId),
                ModernRevision,
                SubsystemVendorId,
                SubsystemId),
            usesIntx: true)
    {
        ArgumentNullException.ThrowIfNull(msiDelivery);
        if (device.QueueCount is < 1 or > MaxQueues)
        {
            throw new ArgumentOutOfRangeException(nameof(device), device.QueueCount, $"A virtio PCI device has 1 to {MaxQueues} queues.");
        }

        if (device.MaxQueueSize is 0 or > 32768 || !BitOperations.IsPow2((uint)device.MaxQueueSize))
        {
            throw new ArgumentOutOfRangeException(nameof(device), device.MaxQueueSize, "The maximum queue size must be a power of two from 1 to 32768.");
        }

        if (device.ConfigSize is < 0 or > (int)RegionSize)
        {
            throw new ArgumentOutOfRangeException(nameof(device), device.ConfigSize, $"Device configuration must fit in {RegionSize} bytes.");
        }

        _device = device;
        _deviceFeatures = device.DeviceFeatures;
        _queues = new QueueRegisters[device.QueueCount];
        _activationLayouts = new VirtQueueLayout[device.QueueCount];
        ResetQueues();

        int vectors = MsixVectorCount(device);
        _pendingBitArrayOffset = MsixTableOffset + (uint)(vectors * MsixCapability.EntrySize);
        uint end = _pendingBitArrayOffset + (uint)(((vectors + 63) / 64) * 8);
        BarSize = Math.Max(0x8000u, BitOperations.RoundUpToPowerOf2(end));
        _bar = new BarRegion(this);
        AddMemoryBar(Bar, BarSize, _bar);
        _msix = AddMsixCapability(vectors, Bar, MsixTableOffset, Bar, _pendingBitArrayOffset, msiDelivery);

        AddVirtioCapability(CapCommonCfg, CapSize, CommonCfgOffset, CommonCfgLength);
        int notify = AddVirtioCapability(CapNotifyCfg, NotifyCapSize, NotifyOffset, (uint)device.QueueCount * NotifyOffMultiplier);
        Config.SetDword(notify + CapNotifyOffMultiplier, NotifyOffMultiplier);
        AddVirtioCapability(CapIsrCfg, CapSize, IsrOffset, 1);
        if (device.ConfigSize > 0)
        {
            AddVirtioCapability(CapDeviceCfg, CapSize, DeviceCfgOffset, (uint)device.ConfigSize);
        }

        // The PCI_CFG window (4.1.4.8): bar, offset, length and the data bytes are the driver's to write.
        _pciCfgCapability = AddVirtioCapability(CapPciCfg, PciCfgCapSize, 0, 0);
        Config.SetWritable(_pciCfgCapability + CapBar, 1, 0xFF);
        Config.SetWritable(_pciCfgCapability + CapOffset, 4, 0xFFFF_FFFF);
        Config.SetWritable(_pciCfgCapability + CapLength, 4, 0xFFFF_FFFF);
        Config.SetWritable(_pciCfgCapability + CapPciCfgData, 4, 0xFFFF_FFFF);
    }

    /// <summary>The device behind the transport.</summary>
    public IVirtioDevice Device => _device;

    /// <summary>Size of BAR0.</summary>
    public uint BarSize { get; }

    /// <summary>The MSI-X capability (one vector per queue plus one for configuration changes).</summary>
    public MsixCapability MsixCapability => _msix;

    /// <summary>Offset of the PCI_CFG access capability in configuration space.</summary>
    public int PciCfgCapabilityOffset => _pciCfgCapability;

    /// <summary>The device status byte as the driver reads it.</summary>
    public byte DeviceStatus
    {
        get
        {
            lock (Sync)
            {
                return _status;
            }
        }
    }

    /// <summary>Whether the device is activated (DRIVER_OK accepted and not reset since).</summary>
    public bool IsActivated
    {
        get
        {
            lock (Sync)
            {
                return _activated;
            }
        }
    }

    /// <summary>The features the driver accepted (valid once FEATURES_OK stuck).</summary>
    public ulong DriverFeatures
    {
        get
        {
            lock (Sync)
            {
                return _driverFeatures;
            }
        }
    }

    /// <summary>Whether the driver has set Bus Master Enable in the Command register, letting the function do DMA.</summary>
    public bool BusMasterEnabled
    {
        get
        {
            lock (Sync)
            {
                return BusMasterEnabledLocked;
            }
        }
    }

    private bool BusMasterEnabledLocked => (Config.GetWord(PciRegisters.Command) & PciRegisters.CommandBusMaster) != 0;

    /// <summary>Notifications passed to the device.</summary>
    public long Notifications => Interlocked.Read(ref _notifications);

    /// <summary>Notifications dropped: queue index out of range, queue not enabled, or device not activated.</summary>
    public long InvalidNotifications => Interlocked.Read(ref _invalidNotifications);

    /// <summary>Notifications dropped because the driver had not set Bus Master Enable (or had cleared it).</summary>
    public long NotificationsWithoutBusMaster => Interlocked.Read(ref _notificationsWithoutBusMaster);

    /// <summary>Register writes ignored: invalid queue size, frozen queue fields, features after FEATURES_OK, DRIVER_OK out of order.</summary>
    public long InvalidRegisterWrites => Interlocked.Read(ref _invalidRegisterWrites);

    /// <summary>FEATURES_OK writes refused (unoffered features, or no VERSION_1).</summary>
    public long RefusedFeatureNegotiations => Interlocked.Read(ref _refusedFeatures);

    /// <summary>Interrupts from a device through the binding of an activation a reset has ended, or for a queue it does not have.</summary>
    public long StaleInterrupts => Interlocked.Read(ref _staleInterrupts);

    /// <summary>BAR accesses outside every structure or straddling two.</summary>
    public long IgnoredBarAccesses => Interlocked.Read(ref _ignoredBarAccesses);

    /// <summary>MSI-X vectors the transport needs for <paramref name="device"/>: one per queue and one for configuration changes.</summary>
    public static int MsixVectorCount(IVirtioDevice device)
    {
        ArgumentNullException.ThrowIfNull(device);
        return device.QueueCount + 1;
    }

    /// <summary>
    /// The class code given to a device type: network 0x020000 (ethernet), block 0x018000 (mass storage, other),
    /// console 0x078000 (communication, other, as QEMU), anything else 0xFF0000 (no defined class).
    /// </summary>
    public static uint DefaultClassCode(ushort virtioDeviceId) => virtioDeviceId switch
    {
        1 => 0x02_00_00,
        2 => 0x01_80_00,
        3 => 0x07_80_00,
        _ => 0xFF_00_00,
    };

    /// <summary>Where a guest write kicks <paramref name="queue"/> now: BAR0 + 0x3000 + 4 x queue, or null while BAR0 does not decode.</summary>
    public ulong? GetNotifyAddress(int queue)
    {
        if ((uint)queue >= (uint)_queues.Length)
        {
            return null;
        }

        ulong? bar = GetDecodedBarAddress(Bar);
        return bar is { } b ? b + NotifyOffset + ((ulong)queue * NotifyOffMultiplier) : null;
    }

    /// <summary>
    /// Installs (or removes, with null) the binder told about notification addresses; it is told the current ones
    /// at once, and the previous binder is told to unbind them.
    /// </summary>
    public void SetNotifyBinder(IVirtioNotifyBinder? binder)
    {
        lock (Sync)
        {
            ulong? bar = GetDecodedBarAddress(Bar);
            if (_binder is not null && bar is { } old)
            {
                ForEachQueue(_binder, old, bind: false);
            }

            _binder = binder;
            if (binder is not null && bar is { } current)
            {
                ForEachQueue(binder, current, bind: true);
            }
        }
    }

    /// <summary>
    /// A driver kick of <paramref name="queue"/>, from the notification structure or from a notification worker:
    /// passed to the device when the queue is enabled, the device activated and Bus Master Enable set in the
    /// Command register (without it the function may not read or write memory, so it cannot touch the rings:
    /// PCI Local Bus 3.0, 6.2.2); otherwise counted and dropped.
    /// </summary>
    public void NotifyQueue(int queue)
    {
        bool live;
        bool busMaster;
        lock (Sync)
        {
            busMaster = BusMasterEnabledLocked;
            live = busMaster && (uint)queue < (uint)_queues.Length && _activated && _queues[queue].Enabled;
        }

        if (!live)
        {
            Interlocked.Increment(ref busMaster ? ref _invalidNotifications : ref _notificationsWithoutBusMaster);
            return;
        }

        Interlocked.Increment(ref _notifications);
        _device.QueueNotify(queue);
    }

    public VirtioPciTransportState Save()
    {
        lock (Sync)
        {
            var queues = new VirtioPciQueueState[_queues.Length];
            for (int i = 0; i < queues.Length; i++)
            {
                ref readonly var q = ref _queues[i];
                queues[i] = new VirtioPciQueueState(q.Size, q.Vector, q.Enabled, q.DescriptorTable, q.AvailableRing, q.UsedRing);
            }

            return new VirtioPciTransportState(
                SaveFunction(),
                _msix.Save(),
                _deviceFeatureSelect,
                _driverFeatureSelect,
                _driverFeatures,
                _unofferedFeaturesWritten,
                _configVector,
                _status,
                _generation,
                _queueSelect,
                _isr,
                _activated,
                queues);
        }
    }

    /// <summary>
    /// Restores a saved state into this transport (same device type and queue count). A device that was active is
    /// activated again with the saved layouts; its own state (ring positions) is the device's business.
    /// </summary>
    public void Restore(VirtioPciTransportState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        if (state.Queues.Length != _queues.Length)
        {
            throw new ArgumentException($"The saved transport has {state.Queues.Length} queues; this device has {_queues.Length}.", nameof(state));
        }

        bool wasActive;
        lock (Sync)
        {
            wasActive = _activated;
            _activated = false;
            _epoch++;
        }

        if (wasActive)
        {
            _device.Reset();
        }

        VirtioInterruptBinding? binding = null;
        lock (Sync)
        {
            // The table first: restoring Message Control (with the configuration space) may send pending messages.
            _msix.Restore(state.Msix);
            RestoreFunction(state.Function);
            _deviceFeatureSelect = state.DeviceFeatureSelect;
            _driverFeatureSelect = state.DriverFeatureSelect;
            _driverFeatures = state.DriverFeatures;
            _unofferedFeaturesWritten = state.UnofferedFeaturesWritten;
            _configVector = state.ConfigMsixVector;
            _status = state.DeviceStatus;
            _generation = state.ConfigGeneration;
            _queueSelect = state.QueueSelect;
            _isr = state.Isr;
            for (int i = 0; i < _queues.Length; i++)
            {
                var q = state.Queues[i];
                _queues[i] = new QueueRegisters
                {
                    Size = q.Size,
                    Vector = q.MsixVector,
                    Enabled = q.Enabled,
                    DescriptorTable = q.DescriptorTable,
                    AvailableRing = q.AvailableRing,
                    UsedRing = q.UsedRing,
                };
            }

            SetInterruptRequest(_isr != 0);
            if (state.Activated)
            {
                binding = PrepareActivation();
            }
        }

        if (binding is not null)
        {
            Activate(binding);
        }
    }

    protected override void OnBarDecodingChanged(int index, ulong? previous, ulong? current)
    {
        if (index != Bar || _binder is null)
        {
            return;
        }

        if (previous is { } old)
        {
            ForEachQueue(_binder, old, bind: false);
        }

        if (current is { } now)
        {
            ForEachQueue(_binder, now, bind: true);
        }
    }

    protected override void BeforeConfigRead(int register, int length)
    {
        int data = _pciCfgCapability + CapPciCfgData;
        if (register >= data + 4 || data >= register + length || !TryGetPciCfgWindow(out uint offset, out int width))
        {
            return;
        }

        // 4.1.4.9: a read of pci_cfg_data reads cap.length bytes of the BAR at cap.offset into it.
        Span<byte> bytes = stackalloc byte[4];
        bytes.Clear();
        _bar.Read(offset, bytes[..width]);
        lock (Sync)
        {
            for (int i = 0; i < 4; i++)
            {
                Config.SetByte(data + i, bytes[i]);
            }
        }
    }

    protected override void AfterConfigWrite(int register, int length)
    {
        int data = _pciCfgCapability + CapPciCfgData;
        if (register >= data + 4 || data >= register + length || !TryGetPciCfgWindow(out uint offset, out int width))
        {
            return;
        }

        // 4.1.4.9: a write of pci_cfg_data writes its first cap.length bytes to the BAR at cap.offset.
        Span<byte> bytes = stackalloc byte[4];
        lock (Sync)
        {
            for (int i = 0; i < 4; i++)
            {
                bytes[i] = Config.GetByte(data + i);
            }
        }

        _bar.Write(offset, bytes[..width]);
    }

    private static string DeviceName(IVirtioDevice device)
    {
        ArgumentNullException.ThrowIfNull(device);
        return device.DeviceId switch
        {
            1 => "virtio-net",
            2 => "virtio-blk",
            3 => "virtio-console",
            4 => "virtio-rng",
            _ => $"virtio-{device.DeviceId}",
        };
    }

    /// <summary>Common configuration fields: the start and width of the field holding byte <paramref name="offset"/> (&lt; 0x38).</summary>
    private static (int Start, int Width) CommonField(int offset) => offset switch
    {
        < ConfigMsixVector => (offset & ~3, 4),
        < VirtioPciRegisters.DeviceStatus => (offset & ~1, 2),
        < QueueSelect => (offset, 1),
        < QueueDescLow => (offset & ~1, 2),
        _ => (offset & ~3, 4),
    };

    private static bool IsAligned(ulong address, ulong alignment) => (address & (alignment - 1)) == 0;

    private int AddVirtioCapability(byte type, int length, uint offset, uint size)
    {
        int cap = Config.AddCapability(PciRegisters.CapabilityIdVendorSpecific, length);
        Config.SetByte(cap + CapLengthField, (byte)length);
        Config.SetByte(cap + CapCfgType, type);
        Config.SetByte(cap + CapBar, Bar);
        Config.SetDword(cap + CapOffset, offset);
        Config.SetDword(cap + CapLength, size);
        return cap;
    }

    private void ForEachQueue(IVirtioNotifyBinder binder, ulong bar, bool bind)
    {
        for (int q = 0; q < _queues.Length; q++)
        {
            ulong address = bar + NotifyOffset + ((ulong)q * NotifyOffMultiplier);
            if (bind)
            {
                binder.Bind(q, address);
            }
            else
            {
                binder.Unbind(q, address);
            }
        }
    }

    private bool TryGetPciCfgWindow(out uint offset, out int width)
    {
        byte bar;
        uint length;
        lock (Sync)
        {
            bar = Config.GetByte(_pciCfgCapability + CapBar);
            offset = Config.GetDword(_pciCfgCapability + CapOffset);
            length = Config.GetDword(_pciCfgCapability + CapLength);
        }

        width = (int)length;
        if (bar == Bar && length is 1 or 2 or 4 && (offset & (length - 1)) == 0 && (ulong)offset + length <= BarSize)
        {
            return true;
        }

        Interlocked.Increment(ref _ignoredBarAccesses);
        return false;
    }

    private void ResetQueues()
    {
        for (int i = 0; i < _queues.Length; i++)
        {
            _queues[i] = new QueueRegisters { Size = _device.MaxQueueSize, Vector = NoVector };
        }
    }

    private ushort CheckVector(uint vector) =>
        vector == NoVector || vector < (uint)_msix.VectorCount ? (ushort)vector : NoVector;

    // ---- Common configuration ----

    private void ReadCommon(int offset, Span<byte> data)
    {
        lock (Sync)
        {
            for (int i = 0; i < data.Length; i++)
            {
                int at = offset + i;
                if (at >= CommonCfgLength)
                {
                    data[i] = 0;
                    continue;
                }

                var (start, _) = CommonField(at);
                data[i] = (byte)(ReadCommonField(start) >> (8 * (at - start)));
            }
        }
    }

    private void WriteCommon(int offset, ReadOnlySpan<byte> data)
    {
        var action = StatusAction.None;
        VirtioInterruptBinding? binding = null;
        lock (Sync)
        {
            int i = 0;
            while (i < data.Length)
            {
                int at = offset + i;
                if (at >= CommonCfgLength)
                {
                    break;
                }

                var (start, width) = CommonField(at);
                uint value = ReadCommonField(start);
                int covered = 0;
                for (int b = 0; b < width; b++)
                {
                    int index = start + b - offset;
                    if ((uint)index < (uint)data.Length)
                    {
                        value = (value & ~(0xFFu << (8 * b))) | ((uint)data[index] << (8 * b));
                        covered++;
                    }
                }

                var result = WriteCommonField(start, value);
                if (result != StatusAction.None)
                {
                    action = result;
                }

                i += covered;
            }

            if (action == StatusAction.Activate)
            {
                binding = PrepareActivation();
                if (binding is null)
                {
                    action = StatusAction.None;
                }
            }
        }

        if (action == StatusAction.Reset)
        {
            _device.Reset();
            lock (Sync)
            {
                // Interrupts the device raised while it stopped belong to the old session.
                _isr = 0;
                SetInterruptRequest(false);
            }
        }
        else if (binding is not null)
        {
            Activate(binding);
        }
    }

    private uint ReadCommonField(int start)
    {
        switch (start)
        {
            case DeviceFeatureSelect:
                return _deviceFeatureSelect;
            case DeviceFeature:
                return _deviceFeatureSelect switch
                {
                    0 => (uint)_deviceFeatures,
                    1 => (uint)(_deviceFeatures >> 32),
                    _ => 0,
                };
            case DriverFeatureSelect:
                return _driverFeatureSelect;
            case DriverFeature:
                return _driverFeatureSelect switch
                {
                    0 => (uint)_driverFeatures,
                    1 => (uint)(_driverFeatures >> 32),
                    _ => 0,
                };
            case ConfigMsixVector:
                return _configVector;
            case NumQueues:
                return (uint)_queues.Length;
            case VirtioPciRegisters.DeviceStatus:
                return _status;
            case ConfigGeneration:
                return _generation;
            case QueueSelect:
                return _queueSelect;
        }

        // Per-queue fields: a queue_select past the last queue reads 0 (queue_size 0: no such queue).
        if (_queueSelect >= _queues.Length)
        {
            return 0;
        }

        ref readonly var q = ref _queues[_queueSelect];
        return start switch
        {
            QueueSize => q.Size,
            QueueMsixVector => q.Vector,
            QueueEnable => q.Enabled ? 1u : 0u,
            QueueNotifyOff => _queueSelect,
            QueueDescLow => (uint)q.DescriptorTable,
            QueueDescHigh => (uint)(q.DescriptorTable >> 32),
            QueueDriverLow => (uint)q.AvailableRing,
            QueueDriverHigh => (uint)(q.AvailableRing >> 32),
            QueueDeviceLow => (uint)q.UsedRing,
            QueueDeviceHigh => (uint)(q.UsedRing >> 32),
            _ => 0,
        };
    }

    private StatusAction WriteCommonField(int start, uint value)
    {
        switch (start)
        {
            case DeviceFeatureSelect:
                _deviceFeatureSelect = value;
                return StatusAction.None;
            case DriverFeatureSelect:
                _driverFeatureSelect = value;
                return StatusAction.None;
            case DriverFeature:
                WriteDriverFeatures(value);
                return StatusAction.None;
            case ConfigMsixVector:
                _configVector = CheckVector(value);
                return StatusAction.None;
            case VirtioPciRegisters.DeviceStatus:
                return WriteStatus((byte)value);
            case QueueSelect:
                _queueSelect = (ushort)value;
                return StatusAction.None;
            case DeviceFeature or NumQueues or ConfigGeneration or QueueNotifyOff:
                return StatusAction.None;
        }

        if (_queueSelect >= _queues.Length)
        {
            Interlocked.Increment(ref _invalidRegisterWrites);
            return StatusAction.None;
        }

        ref var q = ref _queues[_queueSelect];
        if (start == QueueMsixVector)
        {
            q.Vector = CheckVector(value);
            return StatusAction.None;
        }

        // Size, enable and ring addresses are frozen once the queue is enabled (4.1.4.3.2) or the device runs.
        if (q.Enabled || _activated)
        {
            Interlocked.Increment(ref _invalidRegisterWrites);
            return StatusAction.None;
        }

        switch (start)
        {
            case QueueSize:
                if (value is 0 || value > _device.MaxQueueSize || !BitOperations.IsPow2(value))
                {
                    Interlocked.Increment(ref _invalidRegisterWrites);
                }
                else
                {
                    q.Size = (ushort)value;
                }

                break;
            case QueueEnable:
                // Only 1 enables; the driver must not write 0 (4.1.4.3.2), so a 0 changes nothing.
                if (value == 1)
                {
                    q.Enabled = true;
                }
                else
                {
                    Interlocked.Increment(ref _invalidRegisterWrites);
                }

                break;
            case QueueDescLow:
                q.DescriptorTable = (q.DescriptorTable & 0xFFFF_FFFF_0000_0000) | value;
                break;
            case QueueDescHigh:
                q.DescriptorTable = (q.DescriptorTable & 0xFFFF_FFFF) | ((ulong)value << 32);
                break;
            case QueueDriverLow:
                q.AvailableRing = (q.AvailableRing & 0xFFFF_FFFF_0000_0000) | value;
                break;
            case QueueDriverHigh:
                q.AvailableRing = (q.AvailableRing & 0xFFFF_FFFF) | ((ulong)value << 32);
                break;
            case QueueDeviceLow:
                q.UsedRing = (q.UsedRing & 0xFFFF_FFFF_0000_0000) | value;
                break;
            case QueueDeviceHigh:
                q.UsedRing = (q.UsedRing & 0xFFFF_FFFF) | ((ulong)value << 32);
                break;
        }

        return StatusAction.None;
    }

    private void WriteDriverFeatures(uint value)
    {
        if ((_status & StatusFeaturesOk) != 0)
        {
            // The driver must not change features after FEATURES_OK (3.1.1); the device keeps what it accepted.
            Interlocked.Increment(ref _invalidRegisterWrites);
            return;
        }

        switch (_driverFeatureSelect)
        {
            case 0:
                _driverFeatures = (_driverFeatures & 0xFFFF_FFFF_0000_0000) | value;
                break;
            case 1:
                _driverFeatures = (_driverFeatures & 0xFFFF_FFFF) | ((ulong)value << 32);
                break;
            default:
                // Bits 64 and up: the device offers none, so accepting any must fail FEATURES_OK.
                _unofferedFeaturesWritten |= value != 0;
                break;
        }
    }

    private StatusAction WriteStatus(byte value)
    {
        if (value == 0)
        {
            ResetTransport();
            return StatusAction.Reset;
        }

        byte old = _status;
        byte next = (byte)(old | (value & StatusDriverBits));
        if ((next & StatusFeaturesOk) != 0 && (old & StatusFeaturesOk) == 0 && !FeaturesAcceptable())
        {
            next &= unchecked((byte)~StatusFeaturesOk);
            Interlocked.Increment(ref _refusedFeatures);
        }

        var action = StatusAction.None;
        if ((next & StatusDriverOk) != 0 && (old & StatusDriverOk) == 0)
        {
            if ((next & StatusFeaturesOk) == 0 || (old & StatusDeviceNeedsReset) != 0)
            {
                // DRIVER_OK before the features were accepted (3.1.1 step 8 before 5-6): the device cannot run.
                next &= unchecked((byte)~StatusDriverOk);
                Interlocked.Increment(ref _invalidRegisterWrites);
            }
            else
            {
                action = StatusAction.Activate;
            }
        }

        _status = next;
        return action;
    }

    private bool FeaturesAcceptable() =>
        (_driverFeatures & ~_deviceFeatures) == 0
        && (_driverFeatures & VirtioFeatures.Version1) != 0
        && !_unofferedFeaturesWritten;

    private void ResetTransport()
    {
        _status = 0;
        _activated = false;
        _epoch++;
        _deviceFeatureSelect = 0;
        _driverFeatureSelect = 0;
        _driverFeatures = 0;
        _unofferedFeaturesWritten = false;
        _configVector = NoVector;
        _queueSelect = 0;
        _isr = 0;
        ResetQueues();
        SetInterruptRequest(false);
    }

    /// <summary>Under the lock: checks the layouts and copies them for <see cref="Activate"/>; null when they cannot run.</summary>
    private VirtioInterruptBinding? PrepareActivation()
    {
        for (int i = 0; i < _queues.Length; i++)
        {
            ref readonly var q = ref _queues[i];
            if (q.Enabled && !(IsAligned(q.DescriptorTable, 16) && IsAligned(q.AvailableRing, 2) && IsAligned(q.UsedRing, 4)))
            {
                // Misaligned rings (2.6): the device cannot use them; tell the driver to reset (2.1.2).
                Interlocked.Increment(ref _invalidRegisterWrites);
                RaiseNeedsReset();
                return null;
            }

            _activationLayouts[i] = new VirtQueueLayout(q.Size, q.DescriptorTable, q.AvailableRing, q.UsedRing, q.Enabled);
        }

        _epoch++;
        return new VirtioInterruptBinding(this, _epoch);
    }

    private void Activate(VirtioInterruptBinding binding)
    {
        ulong features;
        lock (Sync)
        {
            features = _driverFeatures;
        }

        _device.Activate(features, _activationLayouts, binding);
        lock (Sync)
        {
            if (binding.Epoch == _epoch)
            {
                _activated = true;
            }
        }
    }

    private void RaiseNeedsReset()
    {
        _status |= StatusDeviceNeedsReset;
        if ((_status & StatusDriverOk) != 0)
        {
            SignalConfigLocked();
        }
    }

    private void SignalConfigLocked()
    {
        if (!_msix.TrySignal(_configVector))
        {
            _isr |= IsrConfig;
            SetInterruptRequest(true);
        }
    }

    private bool IsCurrent(long epoch)
    {
        if (epoch == _epoch)
        {
            return true;
        }

        Interlocked.Increment(ref _staleInterrupts);
        return false;
    }

    private void SignalQueue(long epoch, int queue)
    {
        lock (Sync)
        {
            if (!IsCurrent(epoch))
            {
                return;
            }

            if ((uint)queue >= (uint)_queues.Length)
            {
                Interlocked.Increment(ref _staleInterrupts);
                return;
            }

            if (!_msix.TrySignal(_queues[queue].Vector))
            {
                _isr |= IsrQueue;
                SetInterruptRequest(true);
            }
        }
    }

    private void SignalConfigChange(long epoch)
    {
        lock (Sync)
        {
            if (IsCurrent(epoch))
            {
                _generation++;
                SignalConfigLocked();
            }
        }
    }

    private void SignalNeedsReset(long epoch)
    {
        lock (Sync)
        {
            if (IsCurrent(epoch))
            {
                RaiseNeedsReset();
            }
        }
    }

    private byte ReadIsr()
    {
        lock (Sync)
        {
            byte isr = _isr;
            _isr = 0;
            SetInterruptRequest(false);
            return isr;
        }
    }

    private enum StatusAction
    {
        None,
        Reset,
        Activate,
    }

    private struct QueueRegisters
    {
        public ushort Size;
        public ushort Vector;
        public bool Enabled;
        public ulong DescriptorTable;
        public ulong AvailableRing;
        public ulong UsedRing;
    }

    /// <summary>The <see cref="IVirtioInterrupt"/> of one activation; after a reset its calls are stale and ignored.</summary>
    private sealed class VirtioInterruptBinding(VirtioPciTransport transport, long epoch) : IVirtioInterrupt
    {
        public long Epoch { get; } = epoch;

        public void SignalQueue(int queue) => transport.SignalQueue(Epoch, queue);

        public void SignalConfigChange() => transport.SignalConfigChange(Epoch);

        public void NeedsReset() => transport.SignalNeedsReset(Epoch);

        public bool MemoryAccessAllowed => transport.BusMasterEnabled;
    }

    /// <summary>BAR0: dispatches an access to the structure that holds all of it.</summary>
    private sealed class BarRegion(VirtioPciTransport transport) : IBusDevice
    {
        public void Read(ulong offset, Span<byte> data)
        {
            var t = transport;
            if (data.IsEmpty)
            {
                return;
            }

            ulong last = offset + (ulong)data.Length - 1;

            if (last < CommonCfgOffset + RegionSize)
            {
                t.ReadCommon((int)offset, data);
            }
            else if (offset >= IsrOffset && last < IsrOffset + RegionSize)
            {
                data.Clear();
                if (offset == IsrOffset)
                {
                    data[0] = t.ReadIsr();
                }
            }
            else if (offset >= DeviceCfgOffset && last < DeviceCfgOffset + RegionSize)
            {
                t._device.ReadConfig((uint)(offset - DeviceCfgOffset), data);
            }
            else if (offset >= NotifyOffset && last < NotifyOffset + RegionSize)
            {
                data.Clear();
            }
            else if (offset >= t._pendingBitArrayOffset && last < t.BarSize)
            {
                t._msix.ReadPendingBits(offset - t._pendingBitArrayOffset, data);
            }
            else if (offset >= MsixTableOffset && last < t._pendingBitArrayOffset)
            {
                t._msix.ReadTable(offset - MsixTableOffset, data);
            }
            else
            {
                data.Clear();
                Interlocked.Increment(ref t._ignoredBarAccesses);
            }
        }

        public void Write(ulong offset, ReadOnlySpan<byte> data)
        {
            var t = transport;
            if (data.IsEmpty)
            {
                return;
            }

            ulong last = offset + (ulong)data.Length - 1;

            if (last < CommonCfgOffset + RegionSize)
            {
                t.WriteCommon((int)offset, data);
            }
            else if (offset >= DeviceCfgOffset && last < DeviceCfgOffset + RegionSize)
            {
                t._device.WriteConfig((uint)(offset - DeviceCfgOffset), data);
            }
            else if (offset >= NotifyOffset && last < NotifyOffset + RegionSize)
            {
                // 4.1.4.4: queue n's notification address is at queue_notify_off(n) x multiplier; the value written
                // (the queue index) carries nothing more without VIRTIO_F_NOTIFICATION_DATA.
                t.NotifyQueue((int)((offset - NotifyOffset) / NotifyOffMultiplier));
            }
            else if (offset >= MsixTableOffset && last < t._pendingBitArrayOffset)
            {
                t._msix.WriteTable(offset - MsixTableOffset, data);
            }
            else if ((offset >= IsrOffset && last < IsrOffset + RegionSize) || (offset >= t._pendingBitArrayOffset && last < t.BarSize))
            {
                // ISR status and the PBA are read-only.
            }
            else
            {
                Interlocked.Increment(ref t._ignoredBarAccesses);
            }
        }
    }
}
