using KvmSharp.Devices.Bus;

namespace KvmSharp.Devices.Legacy;

/// <summary>
/// The Bochs/QEMU debug console ("debugcon", the "port E9 hack"): a one-port, write-only character sink that
/// firmware and test kernels print to with a single OUT instruction, before any UART is set up. (SeaBIOS and
/// OVMF print to the same device placed at port 0x402, so register a second instance there to see them.)
/// </summary>
/// <remarks>
/// Behaviour follows QEMU's hw/char/debugcon.c: a write sends the low byte of the value to the character backend
/// (debugcon_ioport_write), and a read returns the "readback" property, 0xe9 by default (debugcon_ioport_read;
/// properties "iobase" = 0xe9, "readback" = 0xe9). Guests probe for the device by reading the port and comparing
/// with 0xe9, the convention Bochs' "port E9 hack" started. QEMU's region is one byte wide with one-byte
/// accesses, so registered at one port here, a 2- or 4-byte access straddles the range and the bus answers it as
/// unknown; if a caller does hand this model several bytes, it appends them all, in order.
/// Output goes to an injected stream, flushed after each newline and on <see cref="Flush"/>.
/// </remarks>
public sealed class DebugConsole : IBusDevice
{
    /// <summary>The conventional port (QEMU's "iobase" default, Bochs' hard-wired port).</summary>
    public const ushort DefaultPort = 0xE9;

    /// <summary>What QEMU's debugcon returns on a read by default (its "readback" property).</summary>
    public const byte DefaultReadback = 0xE9;

    private const byte LineFeed = (byte)'\n';

    private readonly Stream _output;
    private readonly Lock _outputLock = new();
    private long _bytesWritten;

    public DebugConsole(Stream output, byte readback = DefaultReadback)
    {
        ArgumentNullException.ThrowIfNull(output);
        if (!output.CanWrite)
        {
            throw new ArgumentException("The debug console needs a writable output stream.", nameof(output));
        }

        _output = output;
        Readback = readback;
    }

    /// <summary>The byte every read returns.</summary>
    public byte Readback { get; }

    /// <summary>Bytes the guest has written so far.</summary>
    public long BytesWritten => Interlocked.Read(ref _bytesWritten);

    public void Read(ulong offset, Span<byte> data) => data.Fill(Readback);

    public void Write(ulong offset, ReadOnlySpan<byte> data)
    {
        // Several vCPUs may print at once; the lock keeps each access's bytes together in the output.
        lock (_outputLock)
        {
            _output.Write(data);
            if (data.Contains(LineFeed))
            {
                _output.Flush();
            }
        }

        Interlocked.Add(ref _bytesWritten, data.Length);
    }

    /// <summary>Pushes output not yet followed by a newline (a prompt, say) to the stream's sink.</summary>
    public void Flush()
    {
        lock (_outputLock)
        {
            _output.Flush();
        }
    }
}
