namespace KvmSharp.Devices.Bus;

/// <summary>A device range was registered over a range another device already holds.</summary>
public sealed class BusConflictException : Exception
{
    public BusConflictException(string message, ulong start, ulong last, BusRange existing)
        : base(message)
    {
        Start = start;
        Last = last;
        Existing = existing;
    }

    /// <summary>First address of the rejected range.</summary>
    public ulong Start { get; }

    /// <summary>Last address (inclusive) of the rejected range.</summary>
    public ulong Last { get; }

    /// <summary>The registered range the rejected one overlaps.</summary>
    public BusRange Existing { get; }
}
