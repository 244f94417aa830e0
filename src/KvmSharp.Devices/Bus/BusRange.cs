namespace KvmSharp.Devices.Bus;

/// <summary>An inclusive address range [Start, Last] of a bus and the device registered there.</summary>
public readonly record struct BusRange(ulong Start, ulong Last, IBusDevice Device, string Name)
{
    /// <summary>Number of addresses in the range; 0 stands for the whole 2^64 space (not registrable).</summary>
    public ulong Length => Last - Start + 1;

    public override string ToString() => $"0x{Start:x}-0x{Last:x} {Name}";
}
