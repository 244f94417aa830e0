using KvmSharp.Devices.Bus;
using KvmSharp.Devices.Pci;

namespace KvmSharp.Devices.Tests.Pci;

public class PciBarTests
{
    private readonly IoBus _mmio = IoBus.CreateMmioBus();
    private readonly PciBus _bus;
    private readonly Conf1 _conf;

    public PciBarTests()
    {
        _bus = new PciBus(_mmio, new RecordingMsiSink());
        _conf = Conf1.For(_bus);
    }

    private byte MmioByte(ulong address)
    {
        var data = new byte[1];
        _mmio.Read(address, data);
        return data[0];
    }

    [Fact]
    public void Sizing_AllOnesReadsBackTheSizeMask_AndUnimplementedBarsReadZero()
    {
        _bus.Add(new TestPciFunction(bar0Size: 0x4000));
        uint original = _conf.Read(1, 0x10, 4);

        _conf.Write(1, 0x04, 2, 0);
        _conf.Write(1, 0x10, 4, 0xFFFF_FFFF);
        uint mask = _conf.Read(1, 0x10, 4);
        _conf.Write(1, 0x14, 4, 0xFFFF_FFFF);
        uint absent = _conf.Read(1, 0x14, 4);
        _conf.Write(1, 0x10, 4, original);

        Assert.Equal(0xE000_0000u, original);
        Assert.Equal(0xFFFF_C000u, mask);
        Assert.Equal(0u, absent);
        Assert.Equal(0xE000_0000u, _conf.Read(1, 0x10, 4));
    }

    [Fact]
    public void Placement_AlignsEachBarToItsSize_InAddOrder()
    {
        var a = new TestPciFunction(bar0Size: 0x1000);
        var b = new TestPciFunction(bar0Size: 0x8000);
        var c = new TestPciFunction(bar0Size: 0x1000);
        c.AddBar(2, 0x100);

        Assert.Equal(1, _bus.Add(a));
        Assert.Equal(2, _bus.Add(b));
        Assert.Equal(3, _bus.Add(c));

        Assert.Equal(0xE000_0000u, a.GetBarAddress(0));
        Assert.Equal(0xE000_8000u, b.GetBarAddress(0));
        Assert.Equal(0xE001_0000u, c.GetBarAddress(0));
        Assert.Equal(0xE001_1000u, c.GetBarAddress(2));
        Assert.Equal(0xE001_1100UL, _bus.NextBarAddress);
        Assert.Equal(PciRegisters.CommandMemorySpace, _conf.Read(3, 0x04, 2));
        Assert.True(c.MemoryDecodingEnabled);
        Assert.Equal(0xE001_1000UL, c.GetDecodedBarAddress(2));
    }

    [Fact]
    public void FirmwareEnablesMemoryDecoding_AndTheBarDecodes()
    {
        var function = new TestPciFunction(tag: 0x30);
        _bus.Add(function);

        Assert.Equal(PciRegisters.CommandMemorySpace, _conf.Read(1, 0x04, 2));
        Assert.Equal(RecordingDevice.Expected(0x30, 0x10), MmioByte(0xE000_0010));
        Assert.Equal(0x10UL, function.Registers.LastOffset);
        Assert.True(_mmio.TryFind(0xE000_0FFF, out var range));
        Assert.Equal("pci 00:01.0 test BAR0", range.Name);
    }

    [Fact]
    public void MemorySpaceBit_GatesDecoding()
    {
        var function = new TestPciFunction(tag: 0x30);
        _bus.Add(function);

        _conf.Write(1, 0x04, 2, 0);
        byte off = MmioByte(0xE000_0010);
        _mmio.Write(0xE000_0020, [1]);
        int writesWhileOff = function.Registers.WriteCount;
        _conf.Write(1, 0x04, 2, PciRegisters.CommandMemorySpace);
        byte on = MmioByte(0xE000_0010);

        Assert.Equal(0xFF, off);
        Assert.Equal(0, writesWhileOff);
        Assert.Equal(RecordingDevice.Expected(0x30, 0x10), on);
        Assert.Equal(
            new (int, ulong?, ulong?)[] { (0, 0xE000_0000UL, null), (0, null, 0xE000_0000UL) },
            function.DecodingChanges.Skip(1));
    }

    [Fact]
    public void MovingABar_MovesItsDecoding()
    {
        var function = new TestPciFunction(tag: 0x30);
        _bus.Add(function);

        _conf.Write(1, 0x10, 4, 0xE010_0000);

        Assert.Equal(0xFF, MmioByte(0xE000_0010));
        Assert.Equal(RecordingDevice.Expected(0x30, 0x10), MmioByte(0xE010_0010));
        Assert.Equal(0xE010_0000UL, function.GetDecodedBarAddress(0));
        Assert.Equal((0, (ulong?)0xE000_0000UL, (ulong?)0xE010_0000UL), function.DecodingChanges[^1]);
    }

    [Fact]
    public void LinuxStyleSizing_WithDecodingOff_LeavesTheBarWhereItWas()
    {
        var function = new TestPciFunction();
        _bus.Add(function);
        int changesBefore = function.DecodingChanges.Count;

        // __pci_read_base: command &= ~MEMORY; BAR = ~0; read; BAR = original; command = original.
        uint command = _conf.Read(1, 0x04, 2);
        _conf.Write(1, 0x04, 2, command & ~(uint)PciRegisters.CommandMemorySpace);
        uint original = _conf.Read(1, 0x10, 4);
        _conf.Write(1, 0x10, 4, 0xFFFF_FFFF);
        uint size = ~(_conf.Read(1, 0x10, 4) & 0xFFFF_FFF0) + 1;
        _conf.Write(1, 0x10, 4, original);
        _conf.Write(1, 0x04, 2, command);

        Assert.Equal(0x1000u, size);
        Assert.Equal(0xE000_0000UL, function.GetDecodedBarAddress(0));
        Assert.Equal(changesBefore + 2, function.DecodingChanges.Count);
    }

    [Fact]
    public void BarOverAnotherDevice_DoesNotDecode_IsCounted_AndRecoversWhenMoved()
    {
        var function = new TestPciFunction(tag: 0x30);
        _bus.Add(function);
        var other = new RecordingDevice(0x77);
        _mmio.Register(0xE020_0800, 4, other, "other");

        _conf.Write(1, 0x10, 4, 0xE020_0000);
        byte overOther = MmioByte(0xE020_0800);
        byte beside = MmioByte(0xE020_0010);
        ulong? decodedDuringConflict = function.GetDecodedBarAddress(0);
        _conf.Write(1, 0x10, 4, 0xE030_0000);

        Assert.Equal(RecordingDevice.Expected(0x77, 0), overOther);
        Assert.Equal(0xFF, beside);
        Assert.Null(decodedDuringConflict);
        Assert.Equal(1, function.BarConflicts);
        Assert.Equal(0xE030_0000UL, function.GetDecodedBarAddress(0));
        Assert.Equal(RecordingDevice.Expected(0x30, 0x10), MmioByte(0xE030_0010));
    }

    [Fact]
    public void PartialBarWrites_ChangeOnlyTheWrittenBytes()
    {
        var function = new TestPciFunction();
        _bus.Add(function);

        _conf.Write(1, 0x12, 2, 0xE0AB);

        Assert.Equal(0xE0AB_0000u, function.GetBarAddress(0));
        Assert.Equal(0xE0AB_0000UL, function.GetDecodedBarAddress(0));
    }

    [Fact]
    public void FullWindow_AndFullBus_Throw_WithActionableMessages()
    {
        var small = new PciBus(IoBus.CreateMmioBus(), new RecordingMsiSink(), 0xE000_0000, 0xE000_2000, PciBus.DefaultIntxGsis);
        small.Add(new TestPciFunction(bar0Size: 0x1000));
        small.Add(new TestPciFunction(bar0Size: 0x1000));

        var full = Assert.Throws<InvalidOperationException>(() => small.Add(new TestPciFunction(bar0Size: 0x1000)));
        Assert.Equal("BAR0 of test (0x1000 bytes) does not fit in the PCI window 0xe0000000-0xe0002000. Add fewer devices.", full.Message);

        var noBars = new PciBus(IoBus.CreateMmioBus(), new RecordingMsiSink());
        for (int i = 1; i < PciBus.DeviceCount; i++)
        {
            Assert.Equal(i, noBars.Add(new TestPciFunction(bar0Size: 0)));
        }

        var busFull = Assert.Throws<InvalidOperationException>(() => noBars.Add(new TestPciFunction(bar0Size: 0)));
        Assert.Equal("PCI bus 0 has no free device number for test: all 32 are in use. Remove a device.", busFull.Message);
    }

    [Fact]
    public void BarDefinitions_AreCheckedWhenTheDeviceIsBuilt()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new TestPciFunction(bar0Size: 0x1800));
        Assert.Throws<ArgumentOutOfRangeException>(() => new TestPciFunction(bar0Size: 8));
    }

    [Fact]
    public void RestoredFunction_DecodesWhereTheSavedBarsSay()
    {
        var source = new TestPciFunction();
        _bus.Add(source);
        _conf.Write(1, 0x10, 4, 0xE040_0000);
        var state = source.Save();

        var mmio = IoBus.CreateMmioBus();
        var target = new TestPciFunction(tag: 0x31);
        new PciBus(mmio, new RecordingMsiSink()).Add(target);
        target.Restore(state);

        Assert.Equal(0xE040_0000UL, target.GetDecodedBarAddress(0));
        Assert.True(mmio.TryFind(0xE040_0000, out _));
        Assert.False(mmio.TryFind(0xE000_0000, out _));
    }
}
