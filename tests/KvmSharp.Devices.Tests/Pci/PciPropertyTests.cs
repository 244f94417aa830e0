using FsCheck;
using FsCheck.Fluent;
using KvmSharp.Devices.Bus;
using KvmSharp.Devices.Pci;
using KvmSharp.Devices.Tests.Virtio.Pci;
using KvmSharp.Devices.Virtio.Pci;

namespace KvmSharp.Devices.Tests.Pci;

public class PciPropertyTests
{
    private enum Kind
    {
        SelectRegister,
        PortWrite,
        PortRead,
        BarWrite,
        BarRead,
        WindowWrite,
        WindowRead,
        DeviceEvent,
    }

    /// <summary>One guest or device action; the fields mean what <see cref="Kind"/> says.</summary>
    private sealed record Op(Kind Kind, int Device, int Register, int Width, ulong Value, int Offset);

    private static readonly Gen<int> Widths = Gen.Elements(1, 2, 4, 8, 3);

    // Values biased to the interesting ones: all ones (BAR sizing), small numbers (queue indexes, status bits),
    // anything.
    private static readonly Gen<ulong> Values = Gen.OneOf(
        Gen.Constant(ulong.MaxValue),
        Gen.Choose(0, 300).Select(static v => (ulong)v),
        Gen.Elements(0x8000UL, 0xFFFFUL, 0xE000_0000UL, 0xE000_8000UL, 0x8000_0000UL, 0xFEE0_0000UL, 1UL, 0x0BUL, 0x0FUL),
        Gen.Choose(int.MinValue, int.MaxValue).Zip(Gen.Choose(int.MinValue, int.MaxValue), static (a, b) => ((ulong)(uint)a << 32) | (uint)b));

    private static readonly Gen<Op> Ops =
        Gen.Elements(Enum.GetValues<Kind>())
            .Zip(Gen.Choose(0, 3))
            .Zip(Gen.OneOf(Gen.Choose(0, 0x40), Gen.Choose(0, 0xFF), Gen.Elements(0x04, 0x10, 0x42, 0x90, 0x94, 0x98, 0x9C, 0xA0)))
            .Zip(Widths)
            .Zip(Values)
            .Zip(Gen.OneOf(Gen.Choose(0, 0x40), Gen.Choose(0, 0x9000), Gen.Elements(0x1000, 0x3000, 0x3004, 0x4000, 0x400C, 0x4030, 0x7FFF)))
            .Select(static t => new Op(t.Item1.Item1.Item1.Item1.Item1, t.Item1.Item1.Item1.Item1.Item2, t.Item1.Item1.Item1.Item2, t.Item1.Item1.Item2, t.Item1.Item2, t.Item2));

    [Fact]
    public void RandomConfigurationAndBarAccesses_NeverThrow_AndKeepTheInvariants()
    {
        var scenarios = Gen.Choose(0, 2).Zip(Ops.ArrayOf(), static (start, ops) => (Start: start, Ops: ops));
        Prop.ForAll(scenarios.ToArbitrary(), static scenario =>
        {
            var (start, ops) = scenario;
            var mmio = IoBus.CreateMmioBus();
            var ports = IoBus.CreatePortBus();
            var sink = new RecordingMsiSink();
            var bus = new PciBus(mmio, sink);
            bus.RegisterConfigPorts(ports);
            var device = new FakeVirtioDevice();
            var transport = new VirtioPciTransport(device, new DirectMsiDelivery(sink));
            var plain = new TestPciFunction(msixVectors: 4, delivery: new DirectMsiDelivery(sink));
            mmio.Register(0xE010_0000, 0x1000, new RecordingDevice(9), "neighbour");
            bus.Add(transport);
            bus.Add(plain);
            transport.SetNotifyBinder(new RecordingBinder());
            var functions = new PciFunction[] { bus.HostBridge, transport, plain, transport };
            if (start > 0)
            {
                // A driver got the device running first (with MSI-X on in the second variant), so the random
                // accesses also meet an active device.
                StartDriver(mmio, ports, msix: start == 2);
            }

            foreach (var op in ops)
            {
                Run(op, ports, mmio, functions, transport, device);
            }

            return Invariants(ports, transport);
        }).QuickCheckThrowOnFailure();
    }

    private static void StartDriver(IoBus mmio, IoBus ports, bool msix)
    {
        const ulong bar = 0xE000_0000;
        void W(ulong offset, int width, ulong value) => mmio.Write(bar + offset, BitConverter.GetBytes(value).AsSpan(0, width));
        W(0x14, 1, 0);
        W(0x14, 1, 1);
        W(0x14, 1, 3);
        W(0x08, 4, 1);
        W(0x0C, 4, 1);
        W(0x14, 1, 0x0B);
        W(0x16, 2, 0);
        W(0x18, 2, 64);
        W(0x1A, 2, 1);
        W(0x20, 8, 0x10_0000);
        W(0x28, 8, 0x10_0400);
        W(0x30, 8, 0x10_0800);
        W(0x1C, 2, 1);
        W(0x14, 1, 0x0F);
        if (msix)
        {
            W(0x4010, 4, 0xFEE0_0000);
            W(0x4018, 4, 0x41);
            W(0x401C, 4, 0);
            ports.Write(0xCF8, BitConverter.GetBytes(PciConfigIo.EncodeAddress(0, 1, 0, 0x40)));
            ports.Write(0xCFE, BitConverter.GetBytes((ushort)MsixCapability.ControlEnable));
        }
    }

    private static void Run(Op op, IoBus ports, IoBus mmio, PciFunction[] functions, VirtioPciTransport transport, FakeVirtioDevice device)
    {
        var bytes = BitConverter.GetBytes(op.Value).AsSpan(0, op.Width);
        Span<byte> scratch = stackalloc byte[8];
        var target = functions[op.Device];
        int window = transport.PciCfgCapabilityOffset;
        switch (op.Kind)
        {
            case Kind.SelectRegister:
                ports.Write(0xCF8, BitConverter.GetBytes(PciConfigIo.EncodeAddress(0, op.Device, 0, op.Register)));
                break;
            case Kind.PortWrite:
                ports.Write(0xCF8 + (ulong)(op.Offset % 8), bytes);
                break;
            case Kind.PortRead:
                ports.Read(0xCF8 + (ulong)(op.Offset % 8), scratch[..op.Width]);
                break;
            case Kind.BarWrite:
            case Kind.BarRead:
                ulong? bar = target.GetDecodedBarAddress(0);
                ulong address = (bar ?? 0xE000_0000) + (ulong)op.Offset;
                if (op.Kind == Kind.BarWrite)
                {
                    mmio.Write(address, bytes);
                }
                else
                {
                    mmio.Read(address, scratch[..op.Width]);
                }

                break;
            case Kind.WindowWrite:
                transport.WriteConfig(window + 4 + (op.Register % 16), bytes[..Math.Min(op.Width, 4)]);
                break;
            case Kind.WindowRead:
                transport.ReadConfig(window + 16 + (op.Register % 4), scratch[..Math.Min(op.Width, 4)]);
                break;
            case Kind.DeviceEvent:
                var interrupt = device.Interrupt;
                switch (op.Register % 4)
                {
                    case 0:
                        interrupt?.SignalQueue((int)(op.Value % 4));
                        break;
                    case 1:
                        interrupt?.SignalConfigChange();
                        break;
                    case 2:
                        interrupt?.NeedsReset();
                        break;
                    default:
                        transport.NotifyQueue((int)(op.Value % 4) - 1);
                        break;
                }

                break;
        }
    }

    private static bool Invariants(IoBus ports, VirtioPciTransport transport)
    {
        var address = new byte[4];
        ports.Read(0xCF8, address);
        uint configAddress = BitConverter.ToUInt32(address);

        var identity = new byte[4];
        transport.ReadConfig(0, identity);
        byte status = transport.DeviceStatus;

        return (configAddress & ~PciConfigIo.AddressStoredMask) == 0
            && BitConverter.ToUInt32(identity) == 0x1042_1AF4
            && (status & ~(VirtioPciRegisters.StatusDriverBits | VirtioPciRegisters.StatusDeviceNeedsReset)) == 0
            && (!transport.IsActivated || (status & VirtioPciRegisters.StatusDriverOk) != 0);
    }

    [Fact]
    public void StartedDriver_ActivatesTheDevice()
    {
        var mmio = IoBus.CreateMmioBus();
        var ports = IoBus.CreatePortBus();
        var sink = new RecordingMsiSink();
        var bus = new PciBus(mmio, sink);
        bus.RegisterConfigPorts(ports);
        var device = new FakeVirtioDevice();
        var transport = new VirtioPciTransport(device, new DirectMsiDelivery(sink));
        bus.Add(transport);

        StartDriver(mmio, ports, msix: true);
        device.Interrupt!.SignalQueue(0);

        Assert.True(transport.IsActivated);
        Assert.Equal([(0xFEE0_0000UL, 0x41u)], sink.Messages);
    }
}
