namespace KvmSharp.Devices.Pci;

/// <summary>
/// The MSI-X capability of one function (PCI Local Bus Specification 3.0, 6.8.2): the 12-byte capability in
/// configuration space, the vector table (16 bytes per vector) and the pending bit array, both in a memory BAR of
/// the function, which forwards accesses there to <see cref="ReadTable"/>/<see cref="WriteTable"/> and
/// <see cref="ReadPendingBits"/>.
/// </summary>
/// <remarks>
/// <para>Capability layout (6.8.2.1, Figure 6-10): +0 ID 0x11, +1 next, +2 Message Control (table size - 1 in bits
/// 10:0, function mask bit 14, enable bit 15; only bits 14-15 writable), +4 table offset | BIR, +8 PBA offset | BIR.
/// Table entry (6.8.2.6-6.8.2.9): +0 address low, +4 address high, +8 data, +12 vector control (bit 0 mask; the
/// reserved bits read 0). Every vector starts masked with address and data 0 (6.8.2.9).</para>
/// <para>An event on a vector (<see cref="TrySignal"/>) sends the vector's message when MSI-X is enabled and neither
/// the function nor the vector is masked; when masked it sets the vector's pending bit instead, and the message goes
/// out (and the bit clears) as soon as both masks are clear (6.8.2.9 "Pending Bits"). With MSI-X disabled nothing
/// is sent or recorded: the function signals through INTx instead.</para>
/// <para>Shares its function's lock (a reentrant <see cref="Lock"/>), so config-space writes, table accesses and
/// events are serialized; deliveries happen under it. Accesses and events allocate nothing.</para>
/// </remarks>
public sealed class MsixCapability
{
    /// <summary>Length of the capability structure in configuration space.</summary>
    public const int CapabilityLength = 12;

    public const int MessageControlOffset = 2;
    public const int TableOffsetOffset = 4;
    public const int PendingBitArrayOffsetOffset = 8;

    // Message Control (6.8.2.3).
    public const ushort ControlTableSizeMask = 0x07FF;
    public const ushort ControlFunctionMask = 1 << 14;
    public const ushort ControlEnable = 1 << 15;

    /// <summary>Bits 2:0 of the table and PBA offset registers name the BAR (BIR, 6.8.2.4); the rest is a QWORD-aligned offset.</summary>
    public const uint BarIndicatorMask = 0x7;

    /// <summary>Most vectors a function may have: table size is 11 bits, N - 1 (6.8.2.3).</summary>
    public const int MaxVectors = 2048;

    // Table entry (6.8.2.6-6.8.2.9).
    public const int EntrySize = 16;
    public const int EntryAddressLow = 0;
    public const int EntryAddressHigh = 4;
    public const int EntryData = 8;
    public const int EntryVectorControl = 12;
    public const uint VectorControlMask = 1 << 0;

    private readonly PciConfigSpace _config;
    private readonly Lock _sync;
    private readonly IMsiDelivery _delivery;

    // Four dwords per vector, in table order.
    private readonly uint[] _table;
    private readonly ulong[] _pending;
    private bool _enabled;
    private bool _functionMasked;
    private long _delivered;
    private long _pended;
    private long _outOfRange;

    internal MsixCapability(PciConfigSpace config, Lock sync, int vectorCount, int tableBar, uint tableOffset, int pendingBar, uint pendingOffset, IMsiDelivery delivery)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(vectorCount, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(vectorCount, MaxVectors);
        ArgumentOutOfRangeException.ThrowIfNegative(tableBar);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(tableBar, PciRegisters.BarCount);
        ArgumentOutOfRangeException.ThrowIfNegative(pendingBar);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(pendingBar, PciRegisters.BarCount);
        if ((tableOffset & 7) != 0 || (pendingOffset & 7) != 0)
        {
            throw new ArgumentException($"The MSI-X table (0x{tableOffset:x}) and PBA (0x{pendingOffset:x}) offsets must be QWORD aligned.");
        }

        ArgumentNullException.ThrowIfNull(delivery);
        _config = config;
        _sync = sync;
        _delivery = delivery;
        VectorCount = vectorCount;
        TableBar = tableBar;
        TableOffset = tableOffset;
        PendingBitArrayBar = pendingBar;
        PendingBitArrayOffset = pendingOffset;
        _table = new uint[vectorCount * 4];
        _pending = new ulong[(vectorCount + 63) / 64];
        InitializeTable();

        CapabilityOffset = config.AddCapability(PciRegisters.CapabilityIdMsix, CapabilityLength);
        config.SetWord(CapabilityOffset + MessageControlOffset, (ushort)(vectorCount - 1));
        config.SetWritable(CapabilityOffset + MessageControlOffset, 2, ControlFunctionMask | ControlEnable);
        config.SetDword(CapabilityOffset + TableOffsetOffset, tableOffset | (uint)tableBar);
        config.SetDword(CapabilityOffset + PendingBitArrayOffsetOffset, pendingOffset | (uint)pendingBar);
    }

    /// <summary>Offset of the capability in configuration space.</summary>
    public int CapabilityOffset { get; }

    public int VectorCount { get; }

    public int TableBar { get; }

    public uint TableOffset { get; }

    /// <summary>Bytes of the vector table.</summary>
    public int TableLength => VectorCount * EntrySize;

    public int PendingBitArrayBar { get; }

    public uint PendingBitArrayOffset { get; }

    /// <summary>Bytes of the pending bit array: one bit per vector in QWORDs.</summary>
    public int PendingBitArrayLength => _pending.Length * 8;

    /// <summary>Message Control's MSI-X Enable bit.</summary>
    public bool Enabled
    {
        get
        {
            lock (_sync)
            {
                return _enabled;
            }
        }
    }

    /// <summary>Message Control's Function Mask bit.</summary>
    public bool FunctionMasked
    {
        get
        {
            lock (_sync)
            {
                return _functionMasked;
            }
        }
    }

    /// <summary>Messages handed to the delivery.</summary>
    public long Delivered => Interlocked.Read(ref _delivered);

    /// <summary>Events that found their vector masked and set its pending bit.</summary>
    public long Pended => Interlocked.Read(ref _pended);

    /// <summary>Events for a vector number the table does not have (a virtio NO_VECTOR, for one); nothing is sent.</summary>
    public long OutOfRange => Interlocked.Read(ref _outOfRange);

    /// <summary>The pending bit of <paramref name="vector"/>.</summary>
    public bool IsPending(int vector)
    {
        lock (_sync)
        {
            return (uint)vector < (uint)VectorCount && (_pending[vector >> 6] & (1UL << (vector & 63))) != 0;
        }
    }

    /// <summary>
    /// An interrupt event on <paramref name="vector"/>. Returns false when MSI-X is disabled (the caller signals
    /// through INTx); true when the message was sent, made pending, or dropped for a vector the table lacks.
    /// </summary>
    public bool TrySignal(int vector)
    {
        lock (_sync)
        {
            if (!_enabled)
            {
                return false;
            }

            if ((uint)vector >= (uint)VectorCount)
            {
                Interlocked.Increment(ref _outOfRange);
                return true;
            }

            if (_functionMasked || (_table[(vector * 4) + 3] & VectorControlMask) != 0)
            {
                _pending[vector >> 6] |= 1UL << (vector & 63);
                Interlocked.Increment(ref _pended);
                return true;
            }

            Send(vector);
            return true;
        }
    }

    /// <summary>Reads table bytes at <paramref name="offset"/> from the table's start; bytes past its end read 0.</summary>
    public void ReadTable(ulong offset, Span<byte> data)
    {
        lock (_sync)
        {
            for (int i = 0; i < data.Length; i++)
            {
                ulong at = offset + (ulong)i;
                data[i] = at < (ulong)TableLength ? (byte)(_table[(int)(at >> 2)] >> (8 * (int)(at & 3))) : (byte)0;
            }
        }
    }

    /// <summary>
    /// Writes table bytes (any width; the guest uses aligned DWORDs or QWORDs). Vector control keeps only its mask
    /// bit. A vector that is pending and now unmasked sends its message.
    /// </summary>
    public void WriteTable(ulong offset, ReadOnlySpan<byte> data)
    {
        lock (_sync)
        {
            for (int i = 0; i < data.Length; i++)
            {
                ulong at = offset + (ulong)i;
                if (at >= (ulong)TableLength)
                {
                    break;
                }

                int word = (int)(at >> 2);
                int shift = 8 * (int)(at & 3);
                uint value = (_table[word] & ~(0xFFu << shift)) | ((uint)data[i] << shift);
                if ((word & 3) == 3)
                {
                    value &= VectorControlMask;
                }

                _table[word] = value;
            }

            if (offset < (ulong)TableLength && data.Length > 0)
            {
                int first = (int)(offset / EntrySize);
                int last = (int)Math.Min((offset + (ulong)data.Length - 1) / EntrySize, (ulong)(VectorCount - 1));
                for (int vector = first; vector <= last; vector++)
                {
                    SendIfPendingAndUnmasked(vector);
                }
            }
        }
    }

    /// <summary>Reads pending bit array bytes at <paramref name="offset"/>; bytes past its end read 0. The PBA is read-only.</summary>
    public void ReadPendingBits(ulong offset, Span<byte> data)
    {
        lock (_sync)
        {
            for (int i = 0; i < data.Length; i++)
            {
                ulong at = offset + (ulong)i;
                data[i] = at < (ulong)PendingBitArrayLength ? (byte)(_pending[(int)(at >> 3)] >> (8 * (int)(at & 7))) : (byte)0;
            }
        }
    }

    /// <summary>The message a vector holds now, as (address, data, masked).</summary>
    public (ulong Address, uint Data, bool Masked) GetEntry(int vector)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(vector);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(vector, VectorCount);
        lock (_sync)
        {
            int at = vector * 4;
            return (_table[at] | ((ulong)_table[at + 1] << 32), _table[at + 2], (_table[at + 3] & VectorControlMask) != 0);
        }
    }

    public MsixState Save()
    {
        lock (_sync)
        {
            return new MsixState((uint[])_table.Clone(), (ulong[])_pending.Clone());
        }
    }

    /// <summary>Restores the table and pending bits; Message Control comes back with the configuration space, restored first.</summary>
    public void Restore(MsixState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        if (state.Table.Length != _table.Length || state.PendingBits.Length != _pending.Length)
        {
            throw new ArgumentException($"The saved MSI-X state is for {state.Table.Length / 4} vectors; this function has {VectorCount}.", nameof(state));
        }

        lock (_sync)
        {
            state.Table.CopyTo(_table, 0);
            state.PendingBits.CopyTo(_pending, 0);
            for (int vector = 0; vector < VectorCount; vector++)
            {
                _table[(vector * 4) + 3] &= VectorControlMask;
            }

            ReadControl();
        }
    }

    /// <summary>
    /// Called by the function after a guest write reached Message Control: takes the new enable and function mask
    /// bits, and sends the pending messages that are no longer masked. Returns whether the enable bit changed.
    /// </summary>
    internal bool ControlWritten()
    {
        lock (_sync)
        {
            bool wasEnabled = _enabled;
            ReadControl();
            if (_enabled && !_functionMasked)
            {
                for (int vector = 0; vector < VectorCount; vector++)
                {
                    SendIfPendingAndUnmasked(vector);
                }
            }

            return wasEnabled != _enabled;
        }
    }

    private void InitializeTable()
    {
        Array.Clear(_table);
        for (int vector = 0; vector < VectorCount; vector++)
        {
            _table[(vector * 4) + 3] = VectorControlMask;
        }
    }

    private void ReadControl()
    {
        ushort control = _config.GetWord(CapabilityOffset + MessageControlOffset);
        _enabled = (control & ControlEnable) != 0;
        _functionMasked = (control & ControlFunctionMask) != 0;
    }

    private void SendIfPendingAndUnmasked(int vector)
    {
        ref ulong word = ref _pending[vector >> 6];
        ulong bit = 1UL << (vector & 63);
        if ((word & bit) == 0 || !_enabled || _functionMasked || (_table[(vector * 4) + 3] & VectorControlMask) != 0)
        {
            return;
        }

        word &= ~bit;
        Send(vector);
    }

    private void Send(int vector)
    {
        int at = vector * 4;
        _delivery.Deliver(vector, _table[at] | ((ulong)_table[at + 1] << 32), _table[at + 2]);
        Interlocked.Increment(ref _delivered);
    }
}

/// <summary>The saved state of an <see cref="MsixCapability"/>: the table as DWORDs (four per vector) and the pending bits.</summary>
public sealed record MsixState(uint[] Table, ulong[] PendingBits);
