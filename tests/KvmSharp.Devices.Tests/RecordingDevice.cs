using KvmSharp.Devices.Bus;

namespace KvmSharp.Devices.Tests;

/// <summary>
/// A device that remembers its last access and answers reads with bytes derived from its tag and the offset
/// (tag ^ (offset + i)), so a test can tell from the data alone which device answered and at which offset.
/// </summary>
internal sealed class RecordingDevice(byte tag) : IBusDevice
{
    public byte Tag { get; } = tag;

    public int ReadCount { get; private set; }

    public int WriteCount { get; private set; }

    public ulong LastOffset { get; private set; } = ulong.MaxValue;

    public int LastReadLength { get; private set; }

    public byte[] LastWritten { get; private set; } = [];

    public static byte Expected(byte tag, ulong offset) => (byte)(tag ^ (byte)offset);

    public void Read(ulong offset, Span<byte> data)
    {
        ReadCount++;
        LastOffset = offset;
        LastReadLength = data.Length;
        for (int i = 0; i < data.Length; i++)
        {
            data[i] = Expected(Tag, offset + (ulong)i);
        }
    }

    public void Write(ulong offset, ReadOnlySpan<byte> data)
    {
        WriteCount++;
        LastOffset = offset;
        LastWritten = data.ToArray();
    }
}
