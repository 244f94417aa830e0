using System.Buffers.Binary;
using KvmSharp.Devices.Bus;

namespace KvmSharp.Devices.InterruptControllers;

/// <summary>
/// An I/O APIC with 24 input pins, modelled on the Intel 82093AA datasheet (290566: 3.0 "Register Description",
/// 3.2.4 "I/O Redirection Table Registers") with the version-0x20 EOI register at +0x40 of later chipset IOAPICs
/// (Intel ICH/PCH datasheets, "EOI Register"), which Linux uses for IOAPICs of version 0x20 or more.
/// </summary>
/// <remarks>
/// <para>MMIO: IOREGSEL at +0x00 (bits 7-0 select a register), IOWIN at +0x10 (the selected 32-bit register), EOI at
/// +0x40 (write a vector: every level-triggered entry with that vector has its remote IRR cleared). Indirect
/// registers: 0x00 ID (bits 27-24), 0x01 version (0x00170020: version 0x20, 24 entries), 0x02 arbitration (bits 27-24,
/// read-only, follows the ID), 0x10-0x3F the redirection table, two registers per pin (low dword first). An index
/// beyond the table reads all ones and takes no writes (as KVM's IOAPIC answers).</para>
/// <para>Redirection entries: vector, delivery mode (fixed, lowest priority, SMI, NMI, INIT, ExtINT), destination
/// mode, delivery status (always 0: messages are delivered at once), polarity (stored; <see cref="SetPin"/>'s level
/// means asserted, as in KVM and QEMU), remote IRR (read-only), trigger mode, mask, destination (bits 63-56). An edge
/// pin delivers on a rising edge of an unmasked pin; an edge on a masked pin is lost (82093AA: "not delivered or held
/// pending"). A level pin delivers while it is asserted, unmasked and remote IRR is 0; accepted delivery sets remote
/// IRR, and an EOI with the entry's vector (broadcast by a LAPIC, or written to the EOI register) clears it and
/// delivers again if the pin is still asserted. Unmasking an asserted level pin delivers it. Writing an entry as edge
/// triggered clears its remote IRR (Linux's EOI for version-0x11 IOAPICs relies on this).</para>
/// <para>Accesses: registers are 32-bit, but reads of 1, 2, 4 or 8 bytes inside a register return its bytes (the
/// rest read 0), and writes of 1, 2, 4 or 8 bytes at a register's first byte write the value zero-extended to 32
/// bits, as KVM accepts them; other accesses read 0 and write nothing. Thread-safe under the interrupt fabric's lock;
/// allocation-free.</para>
/// </remarks>
public sealed class IoApic : IBusDevice
{
    public const ulong DefaultBaseAddress = 0xFEC0_0000;

    /// <summary>The MMIO window the IOAPIC decodes (one page, as QEMU maps it).</summary>
    public const ulong MmioSize = 0x1000;

    public const int PinCount = 24;

    /// <summary>The version field: 0x20, the ICH/PCH IOAPIC with the EOI register (QEMU's default).</summary>
    public const byte VersionNumber = 0x20;

    /// <summary>The version register: maximum redirection entry 23 in bits 23-16, version in bits 7-0.</summary>
    public const uint VersionRegisterValue = ((PinCount - 1) << 16) | VersionNumber;

    // MMIO offsets.
    public const int RegisterSelectOffset = 0x00;
    public const int WindowOffset = 0x10;
    public const int EoiOffset = 0x40;

    // Indirect registers.
    public const byte IdIndex = 0x00;
    public const byte VersionIndex = 0x01;
    public const byte ArbitrationIndex = 0x02;
    public const byte RedirectionTableIndex = 0x10;

    public const uint IdMask = 0x0F00_0000;

    // Redirection entry bits (82093AA 3.2.4).
    public const ulong EntryVectorMask = 0xFF;
    public const int EntryDeliveryModeShift = 8;
    public const ulong EntryLogicalDestination = 1UL << 11;
    public const ulong EntryDeliveryStatus = 1UL << 12;
    public const ulong EntryActiveLow = 1UL << 13;
    public const ulong EntryRemoteIrr = 1UL << 14;
    public const ulong EntryLevelTriggered = 1UL << 15;
    public const ulong EntryMasked = 1UL << 16;
    public const int EntryDestinationShift = 56;

    /// <summary>Bits software can write: all but delivery status and remote IRR, and the destination byte.</summary>
    public const ulong EntryWritableMask = 0xFF00_0000_0001_AFFFUL;

    /// <summary>What an index outside the register set reads.</summary>
    public const uint InvalidIndexValue = 0xFFFF_FFFF;

    private readonly Lock _sync;
    private readonly IApicDelivery _delivery;
    private readonly ulong[] _entries = new ulong[PinCount];

    private uint _pinLevels;
    private byte _registerSelect;
    private uint _id;

    /// <summary>An IOAPIC with a lock of its own (for use without the rest of the interrupt fabric).</summary>
    public IoApic(IApicDelivery delivery, byte id = 0)
        : this(new Lock(), delivery, id)
    {
    }

    /// <param name="sync">The interrupt fabric's lock.</param>
    /// <param name="delivery">Where messages go (the <see cref="ApicBus"/>).</param>
    /// <param name="id">The IOAPIC ID the MADT announces (0-15).</param>
    public IoApic(Lock sync, IApicDelivery delivery, byte id = 0)
    {
        _sync = sync ?? throw new ArgumentNullException(nameof(sync));
        ArgumentNullException.ThrowIfNull(delivery);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(id, (byte)15);
        _delivery = delivery;
        _id = (uint)id << 24;
        for (int pin = 0; pin < PinCount; pin++)
        {
            _entries[pin] = EntryMasked;
        }
    }

    /// <summary>The fabric lock this IOAPIC takes.</summary>
    internal Lock Sync => _sync;

    /// <summary>Pins whose line is asserted (bit n = pin n).</summary>
    public uint PinLevels
    {
        get
        {
            lock (_sync)
            {
                return _pinLevels;
            }
        }
    }

    /// <summary>Redirection entry <paramref name="pin"/> as the guest reads it.</summary>
    public ulong GetRedirectionEntry(int pin)
    {
        lock (_sync)
        {
            return _entries[pin];
        }
    }

    /// <summary>Drives input <paramref name="pin"/> (true = asserted); pins beyond the table are ignored.</summary>
    public void SetPin(int pin, bool level)
    {
        if ((uint)pin >= PinCount)
        {
            return;
        }

        lock (_sync)
        {
            uint mask = 1u << pin;
            bool wasHigh = (_pinLevels & mask) != 0;
            _pinLevels = level ? _pinLevels | mask : _pinLevels & ~mask;
            ulong entry = _entries[pin];
            if (!level || (entry & EntryMasked) != 0)
            {
                return;
            }

            if ((entry & EntryLevelTriggered) != 0)
            {
                ServiceLevel(pin);
            }
            else if (!wasHigh)
            {
                Send(entry);
            }
        }
    }

    /// <summary>
    /// An EOI for <paramref name="vector"/> (a LAPIC's broadcast or the EOI register): every level-triggered entry with
    /// that vector and remote IRR set has it cleared, and is delivered again if its pin is still asserted.
    /// </summary>
    public void EndOfInterrupt(byte vector)
    {
        lock (_sync)
        {
            for (int pin = 0; pin < PinCount; pin++)
            {
                ulong entry = _entries[pin];
                if ((entry & EntryVectorMask) != vector || (entry & EntryRemoteIrr) == 0 || (entry & EntryLevelTriggered) == 0)
                {
                    continue;
                }

                _entries[pin] = entry & ~EntryRemoteIrr;
                ServiceLevel(pin);
            }
        }
    }

    /// <summary>Captures the registers and pin levels.</summary>
    public IoApicState Save()
    {
        lock (_sync)
        {
            return new IoApicState(_id, _registerSelect, (ulong[])_entries.Clone(), _pinLevels);
        }
    }

    /// <summary>
    /// Restores a state from <see cref="Save"/>. Nothing is delivered: messages the saved IOAPIC sent are in the saved
    /// LAPICs. Throws <see cref="ArgumentException"/> when the table does not have <see cref="PinCount"/> entries.
    /// </summary>
    public void Restore(IoApicState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        if (state.RedirectionEntries is not { Length: PinCount })
        {
            throw new ArgumentException($"An IOAPIC state must hold {PinCount} redirection entries. Restore a state saved by this IOAPIC model.", nameof(state));
        }

        lock (_sync)
        {
            _id = state.Id & IdMask;
            _registerSelect = state.RegisterSelect;
            _pinLevels = state.PinLevels & ((1u << PinCount) - 1);
            for (int pin = 0; pin < PinCount; pin++)
            {
                _entries[pin] = state.RedirectionEntries[pin] & (EntryWritableMask | EntryRemoteIrr);
            }
        }
    }

    public void Read(ulong offset, Span<byte> data)
    {
        lock (_sync)
        {
            uint value;
            ulong register;
            if (offset < RegisterSelectOffset + 4)
            {
                register = RegisterSelectOffset;
                value = _registerSelect;
            }
            else if (offset - WindowOffset < 4)
            {
                register = WindowOffset;
                value = ReadIndirect(_registerSelect);
            }
            else
            {
                data.Clear();
                return;
            }

            // Bytes of the register from `offset` on; any byte past the register's four reads 0.
            int shift = (int)(offset - register);
            for (int i = 0; i < data.Length; i++)
            {
                int byteIndex = shift + i;
                data[i] = byteIndex < 4 ? (byte)(value >> (8 * byteIndex)) : (byte)0;
            }
        }
    }

    public void Write(ulong offset, ReadOnlySpan<byte> data)
    {
        uint value;
        switch (data.Length)
        {
            case 1:
                value = data[0];
                break;
            case 2:
                value = BinaryPrimitives.ReadUInt16LittleEndian(data);
                break;
            case 4:
            case 8:
                value = BinaryPrimitives.ReadUInt32LittleEndian(data);
                break;
            default:
                return;
        }

        lock (_sync)
        {
            switch (offset)
            {
                case RegisterSelectOffset:
                    _registerSelect = (byte)value;
                    break;
                case WindowOffset:
                    WriteIndirect(_registerSelect, value);
                    break;
                case EoiOffset:
                    EndOfInterrupt((byte)value);
                    break;
            }
        }
    }

    private uint ReadIndirect(byte index)
    {
        switch (index)
        {
            case IdIndex:
            case ArbitrationIndex:
                return _id;
            case VersionIndex:
                return VersionRegisterValue;
        }

        int pin = (index - RedirectionTableIndex) >> 1;
        if (index < RedirectionTableIndex || pin >= PinCount)
        {
            return InvalidIndexValue;
        }

        ulong entry = _entries[pin];
        return (index & 1) == 0 ? (uint)entry : (uint)(entry >> 32);
    }

    private void WriteIndirect(byte index, uint value)
    {
        if (index == IdIndex)
        {
            _id = value & IdMask;
            return;
        }

        int pin = (index - RedirectionTableIndex) >> 1;
        if (index < RedirectionTableIndex || pin >= PinCount)
        {
            return; // version, arbitration and reserved indices are read-only
        }

        ulong old = _entries[pin];
        ulong written = (index & 1) == 0
            ? (old & 0xFFFF_FFFF_0000_0000UL) | value
            : (old & 0x0000_0000_FFFF_FFFFUL) | ((ulong)value << 32);
        ulong entry = (written & EntryWritableMask) | (old & EntryRemoteIrr);
        if ((entry & EntryLevelTriggered) == 0)
        {
            entry &= ~EntryRemoteIrr;
        }

        _entries[pin] = entry;
        if ((entry & (EntryLevelTriggered | EntryMasked)) == EntryLevelTriggered && (_pinLevels & (1u << pin)) != 0)
        {
            ServiceLevel(pin);
        }
    }

    /// <summary>Delivers an asserted, unmasked level pin unless its previous message awaits EOI.</summary>
    private void ServiceLevel(int pin)
    {
        ulong entry = _entries[pin];
        if ((entry & (EntryRemoteIrr | EntryMasked)) != 0 || (_pinLevels & (1u << pin)) == 0)
        {
            return;
        }

        if (Send(entry) > 0)
        {
            _entries[pin] |= EntryRemoteIrr;
        }
    }

    private int Send(ulong entry)
    {
        var message = new ApicMessage(
            (byte)entry,
            (ApicDeliveryMode)((entry >> EntryDeliveryModeShift) & 7),
            (entry & EntryLogicalDestination) != 0,
            (byte)(entry >> EntryDestinationShift),
            (entry & EntryLevelTriggered) != 0);
        return _delivery.Deliver(message);
    }
}
