using KvmSharp.Devices.Bus;
using KvmSharp.Devices.Pci;

namespace KvmSharp.Devices.Tests.Pci;

public class PciConfigIoTests
{
    private static (PciBus Bus, Conf1 Conf) NewBus()
    {
        var bus = new PciBus(IoBus.CreateMmioBus(), new RecordingMsiSink());
        return (bus, Conf1.For(bus));
    }

    [Fact]
    public void HostBridge_Identity_ReadsAtEveryWidth()
    {
        var (_, conf) = NewBus();

        Assert.Equal(0x0D57_8086u, conf.Read(0, 0x00, 4));
        Assert.Equal(0x8086u, conf.Read(0, 0x00, 2));
        Assert.Equal(0x0D57u, conf.Read(0, 0x02, 2));
        Assert.Equal(0x86u, conf.Read(0, 0x00, 1));
        Assert.Equal(0x80u, conf.Read(0, 0x01, 1));
        Assert.Equal(0x57u, conf.Read(0, 0x02, 1));
        Assert.Equal(0x0Du, conf.Read(0, 0x03, 1));
        Assert.Equal(0x0600_0000u, conf.Read(0, 0x08, 4));
        Assert.Equal(0x00u, conf.Read(0, PciRegisters.HeaderType, 1));
    }

    [Fact]
    public void LinuxSanityCheck_ReadsHostBridgeClassWord_At0x0A()
    {
        var (_, conf) = NewBus();

        // pci_sanity_check: read(0, 0, devfn 0, PCI_CLASS_DEVICE (0x0A), 2) == PCI_CLASS_BRIDGE_HOST (0x0600).
        Assert.Equal(0x0600u, conf.Read(0, 0x0A, 2));
    }

    [Fact]
    public void DataPortLanes_SelectTheByteWithinTheDword()
    {
        var (_, conf) = NewBus();
        conf.OutL(0xCF8, PciConfigIo.EncodeAddress(0, 0, 0, 0x00));
        var one = new byte[1];
        var two = new byte[2];

        conf.Ports.Read(0xCFF, one);
        Assert.Equal(0x0D, one[0]);
        conf.Ports.Read(0xCFE, two);
        Assert.Equal(new byte[] { 0x57, 0x0D }, two);

        // An unaligned word at lane 1 reads bytes 1 and 2 of the dword.
        conf.Ports.Read(0xCFD, two);
        Assert.Equal(new byte[] { 0x80, 0x57 }, two);
    }

    [Fact]
    public void AbsentDevicesFunctionsAndBuses_ReadAllOnes_AndIgnoreWrites()
    {
        var (bus, conf) = NewBus();

        Assert.Equal(0xFFFF_FFFFu, conf.Read(31, 0x00, 4));
        Assert.Equal(0xFFFFu, conf.Read(5, 0x00, 2));
        Assert.Equal(0xFFu, conf.Read(1, 0x3C, 1));
        Assert.Equal(0xFFFF_FFFFu, conf.Read(0, 0x00, 4, function: 1));
        Assert.Equal(0xFFFF_FFFFu, conf.Read(0, 0x00, 4, bus: 1));
        conf.Write(0, 0x04, 2, 0xFFFF, bus: 1);

        Assert.Equal(0u, conf.Read(0, 0x04, 2));
        Assert.Equal(5, bus.AbsentReads);
    }

    [Fact]
    public void ConfigAddress_IsDwordOnly_AndItsReservedBitsReadZero()
    {
        var (_, conf) = NewBus();

        conf.OutL(0xCF8, 0xFFFF_FFFF);
        Assert.Equal(0x80FF_FFFCu, conf.InL(0xCF8));

        var one = new byte[1];
        conf.Ports.Write(0xCFB, [0x01]);
        conf.Ports.Read(0xCF8, one);
        var two = new byte[2];
        conf.Ports.Read(0xCFA, two);

        Assert.Equal(0xFF, one[0]);
        Assert.Equal(new byte[] { 0xFF, 0xFF }, two);
        Assert.Equal(0x80FF_FFFCu, conf.InL(0xCF8));
    }

    [Fact]
    public void LinuxConf1Probe_SeesItsAddressBack()
    {
        var (_, conf) = NewBus();

        // pci_check_type1: outb(0x01, 0xCFB); tmp = inl(0xCF8); outl(0x80000000, 0xCF8); inl(0xCF8) == 0x80000000.
        conf.Ports.Write(0xCFB, [0x01]);
        uint saved = conf.InL(0xCF8);
        conf.OutL(0xCF8, 0x8000_0000);
        Assert.Equal(0x8000_0000u, conf.InL(0xCF8));
        conf.OutL(0xCF8, saved);

        Assert.Equal(0u, saved);
        Assert.Equal(0u, conf.InL(0xCF8));
    }

    [Fact]
    public void EnableBitClear_DataReadsAllOnes_AndWritesVanish()
    {
        var (bus, conf) = NewBus();
        var device = new TestPciFunction();
        bus.Add(device);
        conf.OutL(0xCF8, PciConfigIo.EncodeAddress(0, 1, 0, 0x3C) & ~PciConfigIo.AddressEnable);

        conf.Ports.Write(0xCFC, [0x42]);
        var data = new byte[4];
        conf.Ports.Read(0xCFC, data);

        Assert.Equal(new byte[] { 0xFF, 0xFF, 0xFF, 0xFF }, data);
        Assert.Equal(10u, conf.Read(1, 0x3C, 1));
    }

    [Fact]
    public void DwordStraddlingTheEndOfTheDataPorts_IsNotDecoded()
    {
        var (_, conf) = NewBus();
        conf.OutL(0xCF8, PciConfigIo.EncodeAddress(0, 0, 0, 0));
        var data = new byte[4];

        conf.Ports.Read(0xCFD, data);

        Assert.Equal(new byte[] { 0xFF, 0xFF, 0xFF, 0xFF }, data);
        Assert.Equal(1, conf.Ports.UnhandledReads);
    }

    [Fact]
    public void WritableFields_TakeWritesThroughTheDataPort_AtTheirLane()
    {
        var (bus, conf) = NewBus();
        bus.Add(new TestPciFunction());

        conf.Write(1, PciRegisters.InterruptLine, 1, 0x0B);
        conf.Write(1, PciRegisters.LatencyTimer, 1, 0x40);
        conf.Write(1, PciRegisters.CacheLineSize, 1, 0x10);

        Assert.Equal(0x0Bu, conf.Read(1, 0x3C, 1));
        Assert.Equal(0x0000_4010u, conf.Read(1, 0x0C, 4));
        Assert.Equal(0x0000_010Bu, conf.Read(1, 0x3C, 4));
    }

    [Fact]
    public void SaveRestore_KeepsConfigAddress()
    {
        var (source, sourceConf) = NewBus();
        sourceConf.OutL(0xCF8, 0x8000_0810);
        var (target, targetConf) = NewBus();

        var state = source.ConfigIo.Save();
        target.ConfigIo.Restore(state);

        Assert.Equal(new PciConfigIoState(0x8000_0810), state);
        Assert.Equal(0x8000_0810u, targetConf.InL(0xCF8));
    }
}
