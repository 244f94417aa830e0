using System.Buffers.Binary;
using KvmSharp.Devices.Bus;

namespace KvmSharp.Devices.Legacy;

/// <summary>
/// QEMU's isa-debug-exit device: a guest (a test kernel, typically) ends the VM with a status of its choosing by
/// writing to one port. Behaviour follows QEMU's hw/misc/debugexit.c: a write of value v, of any width up to 4
/// bytes inside the device's "iosize" ports, exits with status (v &lt;&lt; 1) | 1 (debug_exit_write), so a guest
/// can never produce status 0; a read returns 0 (debug_exit_read).
/// </summary>
/// <remarks>
/// QEMU's properties are "iobase" (default 0x501) and "iosize" (default 2); test kernels conventionally use
/// iobase=0xf4,iosize=0x04, which is this model's default. The status is handed to an injected callback, which
/// decides what exiting means (request the vCPUs to stop and let the process exit with the status; a process exit
/// status keeps only its low 8 bits, as QEMU's exit() does). The status is computed in 32 bits and wraps.
/// Thread-safe; accesses allocate nothing.
/// </remarks>
public sealed class DebugExit : IBusDevice
{
    /// <summary>Base port in KvmSharp's machine (the test-kernel convention).</summary>
    public const ushort DefaultPort = 0xF4;

    /// <summary>Ports the device decodes by default.</summary>
    public const int DefaultSize = 4;

    private readonly Action<int> _onExit;
    private int _lastStatus;
    private long _exitRequests;

    /// <param name="onExit">Called on the vCPU thread with (v &lt;&lt; 1) | 1 for each write of v.</param>
    /// <param name="iobase">The first port, for the machine's registration.</param>
    /// <param name="iosize">Ports the device decodes: 1, 2 or 4.</param>
    public DebugExit(Action<int> onExit, ushort iobase = DefaultPort, int iosize = DefaultSize)
    {
        ArgumentNullException.ThrowIfNull(onExit);
        if (iosize is not (1 or 2 or 4))
        {
            throw new ArgumentOutOfRangeException(nameof(iosize), iosize, "The debug-exit device decodes 1, 2 or 4 ports. Use one of those sizes.");
        }

        if (iobase > IoBus.PortSpaceLast + 1 - (ulong)iosize)
        {
            throw new ArgumentOutOfRangeException(nameof(iobase), iobase, $"The debug-exit device at 0x{iobase:x} with {iosize} ports would pass port 0xffff. Choose a lower base port.");
        }

        _onExit = onExit;
        IoBase = iobase;
        IoSize = iosize;
    }

    public ushort IoBase { get; }

    public int IoSize { get; }

    /// <summary>Writes seen so far.</summary>
    public long ExitRequests => Interlocked.Read(ref _exitRequests);

    /// <summary>The status of the last write; meaningful once <see cref="ExitRequests"/> is non-zero.</summary>
    public int LastStatus => Volatile.Read(ref _lastStatus);

    /// <summary>The status QEMU's debug-exit exits with for a written value.</summary>
    public static int StatusFor(uint value) => unchecked((int)((value << 1) | 1));

    public void Read(ulong offset, Span<byte> data) => data.Clear();

    public void Write(ulong offset, ReadOnlySpan<byte> data)
    {
        if (data.IsEmpty)
        {
            return;
        }

        // Little-endian over the access width (QEMU's region is DEVICE_LITTLE_ENDIAN); x86 writes at most 4 bytes.
        Span<byte> value = stackalloc byte[sizeof(uint)];
        value.Clear();
        data[..Math.Min(data.Length, sizeof(uint))].CopyTo(value);
        int status = StatusFor(BinaryPrimitives.ReadUInt32LittleEndian(value));
        Volatile.Write(ref _lastStatus, status);
        Interlocked.Increment(ref _exitRequests);
        _onExit(status);
    }
}
