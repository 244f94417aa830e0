using System.Buffers.Binary;
using System.Numerics;

namespace KvmSharp.Hypervisor.Snapshots;

/// <summary>
/// A running CRC-32C (Castagnoli, the polynomial SSE4.2's CRC32 instruction computes) over bytes given in pieces:
/// <see cref="SnapshotFile.Crc32C"/> over a whole state file, the migration stream over everything it sends.
/// </summary>
public struct Crc32CAccumulator
{
    private uint _state;

    public static Crc32CAccumulator Create() => new() { _state = ~0u };

    public readonly uint Value => ~_state;

    public void Add(ReadOnlySpan<byte> data)
    {
        while (data.Length >= 8)
        {
            _state = BitOperations.Crc32C(_state, BinaryPrimitives.ReadUInt64LittleEndian(data));
            data = data[8..];
        }

        foreach (byte b in data)
        {
            _state = BitOperations.Crc32C(_state, b);
        }
    }
}
