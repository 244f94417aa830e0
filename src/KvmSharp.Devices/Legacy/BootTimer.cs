using KvmSharp.Devices.Bus;

namespace KvmSharp.Devices.Legacy;

/// <summary>
/// A boot-time marker like Firecracker's boot timer (src/vmm/src/devices/pseudo/boot_timer.rs): when the guest
/// writes the byte 123 (MAGIC_VALUE_SIGNAL_GUEST_BOOT_COMPLETE) to the port, typically from its init, the device
/// records the time elapsed since the VM started. The first such write counts; later ones and other values are
/// ignored. Reads return 0. Thread-safe; accesses allocate nothing.
/// </summary>
public sealed class BootTimer : IBusDevice
{
    /// <summary>The port in KvmSharp's machine.</summary>
    public const ushort DefaultPort = 0x3F0;

    /// <summary>Firecracker's MAGIC_VALUE_SIGNAL_GUEST_BOOT_COMPLETE.</summary>
    public const byte BootCompleteMagic = 123;

    private const long NotRecorded = -1;

    private readonly TimeProvider _time;
    private readonly long _startTimestamp;
    private readonly Action<TimeSpan>? _onBootComplete;
    private long _bootTicks = NotRecorded;

    /// <summary>A timer whose start is now.</summary>
    public BootTimer(TimeProvider time, Action<TimeSpan>? onBootComplete = null)
        : this(time, (time ?? throw new ArgumentNullException(nameof(time))).GetTimestamp(), onBootComplete)
    {
    }

    /// <param name="time">The clock <paramref name="startTimestamp"/> comes from.</param>
    /// <param name="startTimestamp">When the VM started, from <see cref="TimeProvider.GetTimestamp"/>.</param>
    /// <param name="onBootComplete">Called once, on the vCPU thread, with the boot time.</param>
    public BootTimer(TimeProvider time, long startTimestamp, Action<TimeSpan>? onBootComplete = null)
    {
        ArgumentNullException.ThrowIfNull(time);
        _time = time;
        _startTimestamp = startTimestamp;
        _onBootComplete = onBootComplete;
    }

    /// <summary>Time from the start to the guest's boot-complete signal, or null before it.</summary>
    public TimeSpan? BootTime
    {
        get
        {
            long ticks = Interlocked.Read(ref _bootTicks);
            return ticks == NotRecorded ? null : TimeSpan.FromTicks(ticks);
        }
    }

    public void Read(ulong offset, Span<byte> data) => data.Clear();

    public void Write(ulong offset, ReadOnlySpan<byte> data)
    {
        if (offset != 0 || data.IsEmpty || data[0] != BootCompleteMagic)
        {
            return;
        }

        TimeSpan elapsed = _time.GetElapsedTime(_startTimestamp);
        long ticks = Math.Max(elapsed.Ticks, 0);
        if (Interlocked.CompareExchange(ref _bootTicks, ticks, NotRecorded) == NotRecorded)
        {
            _onBootComplete?.Invoke(TimeSpan.FromTicks(ticks));
        }
    }
}
