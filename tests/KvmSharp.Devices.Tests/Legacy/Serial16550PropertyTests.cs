using FsCheck;
using FsCheck.Fluent;
using KvmSharp.Devices.Legacy;

namespace KvmSharp.Devices.Tests.Legacy;

public class Serial16550PropertyTests
{
    /// <summary>One step of the host/guest interleaving: the host offers a chunk, or the guest drains up to N bytes.</summary>
    private sealed record Step(bool HostEnqueues, byte[] Chunk, int GuestReads);

    private static readonly Gen<Step> Steps =
        Gen.OneOf(
            Gen.Choose(0, 300).SelectMany(
                static length => Gen.ArrayOf(Gen.Choose(0, 255).Select(static b => (byte)b), length),
                static (_, chunk) => new Step(true, chunk, 0)),
            Gen.Choose(0, 40).Select(static n => new Step(false, [], n)));

    private static readonly Gen<(bool Fifos, byte Trigger, Step[] Steps)> Scenarios =
        Gen.Elements(false, true)
            .Zip(Gen.Elements((byte)0x00, (byte)0x40, (byte)0x80, (byte)0xC0))
            .Zip(Steps.ListOf().Select(static list => list.ToArray()), static (mode, steps) => (mode.Item1, mode.Item2, steps));

    [Fact]
    public void GuestReceivesExactlyTheAcceptedBytes_InOrder_UnderAnyInterleaving()
    {
        Prop.ForAll(Scenarios.ToArbitrary(), static scenario =>
        {
            var uart = new Serial16550(new MemoryStream(), new RecordingIrqLine());
            byte fcr = scenario.Fifos ? (byte)(0x01 | scenario.Trigger) : (byte)0;
            uart.Write(2, [fcr]);
            var accepted = new List<byte>();
            var received = new List<byte>();
            byte[] one = new byte[1];

            void Drain(int limit)
            {
                for (int i = 0; i < limit; i++)
                {
                    uart.Read(5, one);
                    if ((one[0] & 0x01) == 0)
                    {
                        return;
                    }

                    uart.Read(0, one);
                    received.Add(one[0]);
                }
            }

            foreach (var step in scenario.Steps)
            {
                if (step.HostEnqueues)
                {
                    int n = uart.Enqueue(step.Chunk);
                    accepted.AddRange(step.Chunk.AsSpan(0, n));
                }
                else
                {
                    Drain(step.GuestReads);
                }
            }

            Drain(int.MaxValue);
            uart.Read(5, one);
            bool noOverrun = (one[0] & 0x02) == 0;
            return noOverrun && received.SequenceEqual(accepted) && uart.PendingInputCount == 0;
        }).QuickCheckThrowOnFailure();
    }
}
