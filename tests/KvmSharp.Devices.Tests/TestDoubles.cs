using KvmSharp.Devices.Interrupts;
using KvmSharp.Hypervisor;

namespace KvmSharp.Devices.Tests;

/// <summary>An interrupt line that records every level change (not repeated levels) and counts all calls.</summary>
internal sealed class RecordingIrqLine : IIrqLine
{
    public List<bool> Transitions { get; } = [];

    public int Calls { get; private set; }

    public bool Level { get; private set; }

    public void SetLevel(bool high)
    {
        Calls++;
        if (high != Level)
        {
            Level = high;
            Transitions.Add(high);
        }
    }
}

/// <summary>An interrupt sink that records every call it receives.</summary>
internal sealed class RecordingInterruptSink : IInterruptSink
{
    public List<(uint Gsi, bool Level)> Levels { get; } = [];

    public Exception? FailNext { get; set; }

    public void SetLevel(uint gsi, bool level)
    {
        if (FailNext is { } failure)
        {
            FailNext = null;
            throw failure;
        }

        Levels.Add((gsi, level));
    }

    public void SignalMsi(ulong address, uint data) => throw new NotSupportedException();
}

/// <summary>A clock that moves only when told: wall time and the timestamp counter advance together.</summary>
internal sealed class FakeTimeProvider(DateTimeOffset start) : TimeProvider
{
    private long _elapsedTicks;

    public DateTimeOffset Now { get; private set; } = start;

    public override long TimestampFrequency => TimeSpan.TicksPerSecond;

    public void Advance(TimeSpan by)
    {
        Now += by;
        _elapsedTicks += by.Ticks;
    }

    public void SetUtcNow(DateTimeOffset now)
    {
        _elapsedTicks += (now - Now).Ticks;
        Now = now;
    }

    public override DateTimeOffset GetUtcNow() => Now;

    public override long GetTimestamp() => _elapsedTicks;
}
