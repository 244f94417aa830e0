using FsCheck;
using FsCheck.Fluent;
using KvmSharp.Devices.Bus;
using KvmSharp.Devices.Interrupts;
using KvmSharp.Devices.InterruptControllers;

namespace KvmSharp.Devices.Tests.InterruptControllers;

public class GuestNonsensePropertyTests
{
    /// <summary>One guest or platform action: an access to one of the devices, a line change, time passing, or an INTA.</summary>
    private sealed record Step(int Kind, int Target, ulong Offset, byte[] Data, long Ticks);

    private static readonly Gen<Step> Steps =
        Gen.Choose(0, 7).SelectMany(
            static kind => Gen.Choose(0, 6).Zip(Gen.Choose(0, 0x1010)).Zip(
                Gen.Choose(0, 9).SelectMany(static n => Gen.ArrayOf(Gen.Choose(0, 255).Select(static b => (byte)b), n)))
                .Zip(Gen.Choose(0, 200_000)),
            static (kind, rest) => new Step(kind, rest.Item1.Item1.Item1, (ulong)rest.Item1.Item1.Item2, rest.Item1.Item2, rest.Item2));

    /// <summary>The devices a step reaches, with the span of offsets worth trying for each.</summary>
    private static (IBusDevice Device, ulong Span) Device(InterruptFabric f, Pit8254 pit, int target) => target switch
    {
        0 => (f.Pic.Master, 3),
        1 => (f.Pic.Slave, 3),
        2 => (f.Pic.Elcr, 3),
        3 => (pit, 5),
        4 => (pit.PortB, 2),
        5 => (f.IoApic, 0x50),
        _ => (f.Lapic, 0x1010),
    };

    [Fact]
    public void AnySequenceOfAccesses_NeverThrows_AndLeavesNoDeadlineInThePast()
    {
        Prop.ForAll(Steps.ListOf().Select(static l => l.ToArray()).ToArbitrary(), static steps =>
        {
            var f = new InterruptFabric(cpus: 2);
            var pit = new Pit8254(f.Time, new GsiIrqLine(f.Router, 0));
            f.Lapic.ConfigureVirtualWire();
            foreach (var step in steps)
            {
                var (device, span) = Device(f, pit, step.Target);
                ulong offset = step.Offset % span;
                switch (step.Kind)
                {
                    case 0:
                    case 1:
                        device.Write(offset, step.Data);
                        break;
                    case 2:
                        device.Read(offset, new byte[step.Data.Length]);
                        break;
                    case 3:
                        f.Router.SetLevel((uint)(step.Offset % 30), step.Data.Length % 2 == 0);
                        break;
                    case 4:
                        f.Router.SignalMsi(0xFEE0_0000 | (step.Offset << 2), BitConverter.ToUInt32([.. step.Data, 0, 0, 0, 0]));
                        break;
                    case 5:
                        f.Advance(step.Ticks);
                        pit.Poll(f.Now);
                        f.Lapic.Poll(f.Now);
                        if (pit.NextDeadline <= f.Now || f.Lapic.NextDeadline <= f.Now)
                        {
                            return false;
                        }

                        break;
                    case 6:
                        if (f.Lapic.HasPendingInterrupt)
                        {
                            f.Lapic.TakeNmi();
                            int vector = f.Lapic.AcknowledgeInterrupt();
                            if ((uint)vector > 0xFF)
                            {
                                return false;
                            }
                        }

                        break;
                    default:
                        f.Lapic.TscDeadline = f.ReadTsc() + (ulong)step.Ticks;
                        f.Lapic.TryWriteApicBaseMsr(BitConverter.ToUInt64([.. step.Data, 0, 0, 0, 0, 0, 0, 0, 0]));
                        break;
                }
            }

            return true;
        }).QuickCheckThrowOnFailure();
    }
}
