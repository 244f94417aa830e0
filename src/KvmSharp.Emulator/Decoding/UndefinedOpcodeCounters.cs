namespace KvmSharp.Emulator.Decoding;

/// <summary>
/// Counts the #UD raised per opcode (map * 256 + opcode byte), so an operator can see which
/// encodings a guest used that the emulator does not know. Thread-safe; no allocation after construction.
/// </summary>
public sealed class UndefinedOpcodeCounters
{
    private readonly long[] _counts = new long[4 * 256];

    /// <summary>Counts one #UD for the instruction's map and opcode byte.</summary>
    public void Record(in DecodedInstruction instruction) => Record(instruction.Map, instruction.Opcode);

    /// <summary>Counts one #UD for <paramref name="map"/> and <paramref name="opcode"/>.</summary>
    public void Record(OpcodeMap map, byte opcode) => Interlocked.Increment(ref _counts[((int)map & 3) * 256 + opcode]);

    /// <summary>The number of #UD counted for <paramref name="map"/> and <paramref name="opcode"/>.</summary>
    public long this[OpcodeMap map, byte opcode] => Volatile.Read(ref _counts[((int)map & 3) * 256 + opcode]);

    /// <summary>The total over all opcodes.</summary>
    public long Total
    {
        get
        {
            long total = 0;
            foreach (long count in _counts)
            {
                total += count;
            }

            return total;
        }
    }
}
