using System.Buffers.Binary;

namespace KvmSharp.Devices.Pci;

/// <summary>
/// The 256 bytes of one function's conventional configuration space and, per byte, which bits a guest write may
/// change and which it clears by writing 1 (PCI Local Bus Specification 3.0, 6.1 and 6.2.3). Everything else is
/// read-only to the guest: the identity fields, the BARs' low type bits and the bits below a BAR's size (so writing
/// all ones to a BAR reads back the size mask, 6.2.5.1), the capability list.
/// </summary>
/// <remarks>
/// The machine side fills the space with <see cref="SetByte"/>, <see cref="SetWord"/> and <see cref="SetDword"/>,
/// which ignore the masks; the guest side goes through <see cref="Write"/>. Not thread-safe: its
/// <see cref="PciFunction"/> serializes access. Reads and writes allocate nothing.
/// </remarks>
public sealed class PciConfigSpace
{
    private readonly byte[] _bytes = new byte[PciRegisters.ConfigSpaceSize];
    private readonly byte[] _writable = new byte[PciRegisters.ConfigSpaceSize];
    private readonly byte[] _writeOneToClear = new byte[PciRegisters.ConfigSpaceSize];
    private int _lastCapability;
    private int _nextFree = PciRegisters.HeaderEnd;

    public byte GetByte(int offset) => _bytes[offset];

    public ushort GetWord(int offset) => BinaryPrimitives.ReadUInt16LittleEndian(_bytes.AsSpan(offset, 2));

    public uint GetDword(int offset) => BinaryPrimitives.ReadUInt32LittleEndian(_bytes.AsSpan(offset, 4));

    /// <summary>Sets bytes as the hardware does, ignoring the write masks.</summary>
    public void SetByte(int offset, byte value) => _bytes[offset] = value;

    public void SetWord(int offset, ushort value) => BinaryPrimitives.WriteUInt16LittleEndian(_bytes.AsSpan(offset, 2), value);

    public void SetDword(int offset, uint value) => BinaryPrimitives.WriteUInt32LittleEndian(_bytes.AsSpan(offset, 4), value);

    /// <summary>Makes the bits of <paramref name="mask"/> (little-endian, <paramref name="width"/> bytes) at <paramref name="offset"/> guest-writable.</summary>
    public void SetWritable(int offset, int width, uint mask) => SetMask(_writable, offset, width, mask);

    /// <summary>Makes the bits of <paramref name="mask"/> at <paramref name="offset"/> write-one-to-clear.</summary>
    public void SetWriteOneToClear(int offset, int width, uint mask) => SetMask(_writeOneToClear, offset, width, mask);

    /// <summary>The guest-writable bits of the byte at <paramref name="offset"/>.</summary>
    public byte WritableMask(int offset) => _writable[offset];

    /// <summary>The write-one-to-clear bits of the byte at <paramref name="offset"/>.</summary>
    public byte WriteOneToClearMask(int offset) => _writeOneToClear[offset];

    /// <summary>Offset of the most recently added capability, or 0 when there is none.</summary>
    public int LastCapability => _lastCapability;

    /// <summary>Copies bytes out; bytes past the end of configuration space read 0.</summary>
    public void Read(int offset, Span<byte> data)
    {
        for (int i = 0; i < data.Length; i++)
        {
            uint at = (uint)(offset + i);
            data[i] = at < PciRegisters.ConfigSpaceSize ? _bytes[at] : (byte)0;
        }
    }

    /// <summary>
    /// A guest write: in each byte, writable bits take the written value, write-one-to-clear bits written as 1
    /// clear, every other bit keeps its value. Bytes past the end of configuration space are dropped.
    /// </summary>
    public void Write(int offset, ReadOnlySpan<byte> data)
    {
        for (int i = 0; i < data.Length; i++)
        {
            uint at = (uint)(offset + i);
            if (at >= PciRegisters.ConfigSpaceSize)
            {
                return;
            }

            byte value = data[i];
            byte writable = _writable[at];
            byte current = (byte)((_bytes[at] & ~writable) | (value & writable));
            _bytes[at] = (byte)(current & ~(value & _writeOneToClear[at]));
        }
    }

    /// <summary>
    /// Appends a capability of <paramref name="length"/> bytes to the list (6.7): links it from the capabilities
    /// pointer (0x34) or the previous capability, sets the status register's capabilities-list bit, and returns its
    /// offset (dword aligned, from 0x40 up). The body is zero and read-only until the caller sets masks.
    /// </summary>
    public int AddCapability(byte id, int length)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(length, 2);
        int offset = _nextFree;
        if (offset + length > PciRegisters.ConfigSpaceSize)
        {
            throw new InvalidOperationException(
                $"A capability of {length} bytes (ID 0x{id:x2}) does not fit in configuration space after offset 0x{offset:x}. Drop a capability from the device.");
        }

        _bytes[offset] = id;
        _bytes[offset + PciRegisters.CapabilityNextPointer] = 0;
        if (_lastCapability == 0)
        {
            _bytes[PciRegisters.CapabilitiesPointer] = (byte)offset;
        }
        else
        {
            _bytes[_lastCapability + PciRegisters.CapabilityNextPointer] = (byte)offset;
        }

        SetWord(PciRegisters.Status, (ushort)(GetWord(PciRegisters.Status) | PciRegisters.StatusCapabilitiesList));
        _lastCapability = offset;
        _nextFree = (offset + length + 3) & ~3;
        return offset;
    }

    /// <summary>A copy of the 256 bytes (for a saved state).</summary>
    public byte[] Snapshot() => (byte[])_bytes.Clone();

    /// <summary>Replaces the 256 bytes with a saved copy; the masks stay those of this device model.</summary>
    public void Restore(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length != PciRegisters.ConfigSpaceSize)
        {
            throw new ArgumentException($"A saved configuration space has {PciRegisters.ConfigSpaceSize} bytes, not {bytes.Length}.", nameof(bytes));
        }

        bytes.CopyTo(_bytes);
    }

    private static void SetMask(byte[] masks, int offset, int width, uint mask)
    {
        if (width is not (1 or 2 or 4))
        {
            throw new ArgumentOutOfRangeException(nameof(width), width, "A register is 1, 2 or 4 bytes wide.");
        }

        for (int i = 0; i < width; i++)
        {
            masks[offset + i] = (byte)(mask >> (8 * i));
        }
    }
}
