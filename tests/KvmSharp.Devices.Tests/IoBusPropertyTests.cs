using FsCheck;
using FsCheck.Fluent;
using KvmSharp.Devices.Bus;

namespace KvmSharp.Devices.Tests;

public class IoBusPropertyTests
{
    /// <summary>A range placed <paramref name="Gap"/> addresses after the previous one's end.</summary>
    private readonly record struct Placement(int Gap, int Length);

    private sealed record Layout(Placement[] Placements, int[] RegistrationOrder);

    private static readonly Gen<Layout> Layouts =
        Gen.Choose(0, 40)
            .Zip(Gen.Choose(1, 64), static (gap, length) => new Placement(gap, length))
            .NonEmptyListOf()
            .Select(static list => list.ToArray())
            .SelectMany(
                static placements => Gen.Shuffle(Enumerable.Range(0, placements.Length).ToArray()),
                static (placements, order) => new Layout(placements, order));

    [Fact]
    public void ManyRanges_RegisteredInAnyOrder_AreEachRoutedAtBothEnds_AndGapsStayUnknown()
    {
        Prop.ForAll(Layouts.ToArbitrary(), static layout =>
        {
            // High addresses so the arithmetic is exercised well above 32 bits.
            const ulong Base = 0xFFFF_FF00_0000_0000;
            var bus = IoBus.CreateMmioBus();
            int count = layout.Placements.Length;
            var starts = new ulong[count];
            var devices = new RecordingDevice[count];
            ulong cursor = Base;
            for (int i = 0; i < count; i++)
            {
                cursor += (ulong)layout.Placements[i].Gap;
                starts[i] = cursor;
                cursor += (ulong)layout.Placements[i].Length;
                devices[i] = new RecordingDevice((byte)i);
            }

            foreach (int i in layout.RegistrationOrder)
            {
                bus.Register(starts[i], (ulong)layout.Placements[i].Length, devices[i]);
            }

            long expectedUnhandled = 0;
            Span<byte> data = stackalloc byte[1];
            for (int i = 0; i < count; i++)
            {
                ulong last = (ulong)layout.Placements[i].Length - 1;
                if (!bus.Read(starts[i], data) || data[0] != RecordingDevice.Expected((byte)i, 0) || devices[i].LastOffset != 0)
                {
                    return false;
                }

                if (!bus.Read(starts[i] + last, data) || data[0] != RecordingDevice.Expected((byte)i, last) || devices[i].LastOffset != last)
                {
                    return false;
                }

                if (layout.Placements[i].Gap > 0)
                {
                    expectedUnhandled++;
                    if (bus.Read(starts[i] - 1, data) || data[0] != 0xFF)
                    {
                        return false;
                    }
                }

                if (devices[i].ReadCount != 2)
                {
                    return false;
                }
            }

            expectedUnhandled++;
            return !bus.Read(cursor, data) && bus.UnhandledReads == expectedUnhandled && bus.Ranges.Length == count;
        }).QuickCheckThrowOnFailure();
    }

    [Fact]
    public void RegisteringAnyRangeThatTouchesAnExistingOne_Fails_AndAnyDisjointOneSucceeds()
    {
        var bus = IoBus.CreatePortBus();
        bus.Register(0x100, 0x10, new RecordingDevice(1), "fixed");
        var candidates = Gen.Choose(0xC0, 0x140).Zip(Gen.Choose(1, 0x60), static (start, length) => (Start: (ulong)start, Length: (ulong)length));

        Prop.ForAll(candidates.ToArbitrary(), candidate =>
        {
            ulong last = candidate.Start + candidate.Length - 1;
            bool overlaps = candidate.Start <= 0x10F && last >= 0x100;
            var device = new RecordingDevice(2);
            try
            {
                bus.Register(candidate.Start, candidate.Length, device);
            }
            catch (BusConflictException ex)
            {
                return overlaps && ex.Existing.Name == "fixed" && bus.Ranges.Length == 1;
            }

            bool ok = !overlaps && bus.Ranges.Length == 2;
            bus.Unregister(device);
            return ok;
        }).QuickCheckThrowOnFailure();
    }
}
