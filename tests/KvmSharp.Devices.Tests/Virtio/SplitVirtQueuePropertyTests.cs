using FsCheck;
using FsCheck.Fluent;
using KvmSharp.Devices.Virtio;
using KvmSharp.Memory;

namespace KvmSharp.Devices.Tests.Virtio;

/// <summary>
/// Random rings — random descriptor addresses, lengths, flags and links, random indirect tables, random heads and
/// available indices — never make the queue throw or write outside its used ring, and every chain it hands out
/// lies wholly inside guest RAM.
/// </summary>
[Collection(VirtioTestCollection.Name)]
public sealed class SplitVirtQueuePropertyTests
{
    private const ulong Gap = 0x10_0000;
    private const ulong RingBase = 0x1000;
    private static readonly ulong[] IndirectTables = [0x8000, 0x8400];

    private sealed record Descriptor(ulong Address, uint Length, ushort Flags, ushort Next);

    private sealed record Scenario(ushort Size, ulong Features, Descriptor[] Table, Descriptor[][] Indirect, ushort[] Heads, ushort AvailableIndex);

    private static readonly Gen<ulong> Addresses = Gen.Frequency(
        (6, Gen.Choose(0, 0x3FF).Select(static k => 0x10000UL + ((ulong)k * 0x100))),
        (2, Gen.Elements(IndirectTables)),
        (1, Gen.Elements(0x18_0000UL, 0xF_FFF0UL, 0xFFFF_FFFF_FFFF_FFF8UL, 0x2F_FFFFUL, 0x20_0000UL, 0UL)));

    private static readonly Gen<uint> Lengths = Gen.Frequency(
        (5, Gen.Elements(0u, 1u, 16u, 32u, 48u, 64u, 0x100u)),
        (2, Gen.Choose(0, 0x4000).Select(static n => (uint)n)),
        (1, Gen.Elements(17u, 0xFFFF_FFFFu, 0x8000_0000u)));

    private static Gen<Descriptor> Descriptors(int maxNext) =>
        from address in Addresses
        from length in Lengths
        from flags in Gen.Choose(0, 7)
        from next in Gen.Choose(0, maxNext)
        select new Descriptor(address, length, (ushort)flags, (ushort)next);

    private static readonly Gen<Scenario> Scenarios =
        from size in Gen.Elements((ushort)1, (ushort)2, (ushort)4, (ushort)8, (ushort)16)
        from features in Gen.Elements(0UL, VirtioFeatures.EventIndex, VirtioFeatures.IndirectDescriptors, VirtioFeatures.EventIndex | VirtioFeatures.IndirectDescriptors)
        from table in Descriptors(size + 1).ArrayOf(size)
        from indirect in Descriptors(18).ArrayOf(16).ArrayOf(IndirectTables.Length)
        from heads in Gen.Frequency((9, Gen.Choose(0, size - 1)), (1, Gen.Choose(size, size + 3))).Select(static h => (ushort)h).ArrayOf(size)
        from available in Gen.Frequency((9, Gen.Choose(0, size)), (1, Gen.Choose(size + 1, 0xFFFF)))
        select new Scenario(size, VirtioFeatures.Version1 | features, table, indirect, heads, (ushort)available);

    [Fact]
    public void RandomRings_NeverThrow_AndOnlyEverYieldChainsInsideRam()
    {
        Prop.ForAll(Scenarios.ToArbitrary(), static scenario => Run(scenario)).Check(Config.QuickThrowOnFailure.WithMaxTest(500));
    }

    private static bool Run(Scenario s)
    {
        using var memory = GuestMemory.Create([new MemoryRange(0, Gap), new MemoryRange(0x20_0000, 0x10_0000)]);
        var driver = new DriverQueue(memory, RingBase, s.Size);
        for (int i = 0; i < s.Table.Length; i++)
        {
            var d = s.Table[i];
            driver.WriteDescriptor(i, d.Address, d.Length, d.Flags, d.Next);
        }

        for (int t = 0; t < IndirectTables.Length; t++)
        {
            for (int i = 0; i < s.Indirect[t].Length; i++)
            {
                var d = s.Indirect[t][i];
                driver.WriteDescriptorAt(IndirectTables[t], i, d.Address, d.Length, d.Flags, d.Next);
            }
        }

        for (int i = 0; i < s.Heads.Length; i++)
        {
            memory.Write(driver.AvailableRing + 4 + (2UL * (uint)i), s.Heads[i]);
        }

        driver.SetAvailableIndex(s.AvailableIndex);
        var before = new byte[Gap];
        memory.Read(0, before);

        var interrupt = new RecordingVirtioInterrupt();
        var queue = new SplitVirtQueue(memory, driver.Layout, s.Features, 0, interrupt);
        int popped = 0;
        while (queue.TryPop(out var chain))
        {
            if (chain.Readable.Length + chain.Writable.Length > s.Size || chain.HeadIndex >= s.Size)
            {
                return false;
            }

            ulong readable = 0;
            foreach (var segment in chain.Readable)
            {
                readable += segment.Length;
                if (!memory.IsValidRange(segment.Address, segment.Length))
                {
                    return false;
                }
            }

            foreach (var segment in chain.Writable)
            {
                if (!memory.IsValidRange(segment.Address, segment.Length))
                {
                    return false;
                }
            }

            if (readable != chain.ReadableLength)
            {
                return false;
            }

            queue.AddUsed(chain.HeadIndex, 0);
            popped++;
        }

        queue.EnableNotifications();
        queue.NotifyIfNeeded();

        bool accounted = queue.IsBroken
            ? interrupt.NeedsResetCalls == 1 && queue.Counters.RingErrors == 1
            : interrupt.NeedsResetCalls == 0 && popped + queue.Counters.MalformedChains == s.AvailableIndex && driver.UsedIndex == s.AvailableIndex;

        var after = new byte[Gap];
        memory.Read(0, after);
        for (ulong i = 0; i < Gap; i++)
        {
            if (before[i] != after[i] && (i < driver.UsedRing || i >= driver.End))
            {
                return false;
            }
        }

        return accounted;
    }
}
