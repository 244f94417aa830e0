using KvmSharp.Devices.Bus;
using KvmSharp.Devices.Pci;

namespace KvmSharp.Devices.Tests.Pci;

public class PciIntxTests
{
    private readonly RecordingMsiSink _sink = new();
    private readonly PciBus _bus;
    private readonly Conf1 _conf;

    public PciIntxTests()
    {
        _bus = new PciBus(IoBus.CreateMmioBus(), _sink);
        _conf = Conf1.For(_bus);
    }

    private uint Status(int device) => _conf.Read(device, PciRegisters.Status, 2);

    [Fact]
    public void Request_RaisesTheGsi_AndSetsStatusBit3()
    {
        var function = new TestPciFunction();
        _bus.Add(function);

        function.RequestInterrupt(true);
        uint asserted = Status(1);
        function.RequestInterrupt(false);

        Assert.Equal(PciRegisters.StatusInterrupt, asserted);
        Assert.Equal(0u, Status(1));
        Assert.Equal([(10u, true), (10u, false)], _sink.Levels);
    }

    [Fact]
    public void InterruptDisable_MasksThePin_ButNotTheStatusBit()
    {
        var function = new TestPciFunction();
        _bus.Add(function);
        function.RequestInterrupt(true);

        _conf.Write(1, PciRegisters.Command, 2, PciRegisters.CommandMemorySpace | PciRegisters.CommandInterruptDisable);
        uint statusWhileDisabled = Status(1);
        bool levelWhileDisabled = function.InterruptLevel;
        _conf.Write(1, PciRegisters.Command, 2, PciRegisters.CommandMemorySpace);

        Assert.Equal(PciRegisters.StatusInterrupt, statusWhileDisabled);
        Assert.False(levelWhileDisabled);
        Assert.True(function.InterruptLevel);
        Assert.Equal([(10u, true), (10u, false), (10u, true)], _sink.Levels);
    }

    [Fact]
    public void RequestWhileDisabled_RaisesNothingUntilEnabled()
    {
        var function = new TestPciFunction();
        _bus.Add(function);
        _conf.Write(1, PciRegisters.Command, 2, PciRegisters.CommandInterruptDisable);

        function.RequestInterrupt(true);
        int levelsWhileDisabled = _sink.Levels.Count;
        _conf.Write(1, PciRegisters.Command + 1, 1, 0);

        Assert.Equal(0, levelsWhileDisabled);
        Assert.Equal([(10u, true)], _sink.Levels);
    }

    [Fact]
    public void Gsis_AreHandedOutInTurn_AndShared()
    {
        var functions = new TestPciFunction[4];
        for (int i = 0; i < functions.Length; i++)
        {
            functions[i] = new TestPciFunction(bar0Size: 0);
            _bus.Add(functions[i]);
        }

        _bus.Add(new TestPciFunction(bar0Size: 0, usesIntx: false));
        var last = new TestPciFunction(bar0Size: 0);
        _bus.Add(last);

        Assert.Equal(10u, _conf.Read(1, PciRegisters.InterruptLine, 1));
        Assert.Equal(11u, _conf.Read(2, PciRegisters.InterruptLine, 1));
        Assert.Equal(5u, _conf.Read(3, PciRegisters.InterruptLine, 1));
        Assert.Equal(10u, _conf.Read(4, PciRegisters.InterruptLine, 1));
        Assert.Equal(0xFFu, _conf.Read(5, PciRegisters.InterruptLine, 1));
        Assert.Equal(11u, _conf.Read(6, PciRegisters.InterruptLine, 1));

        functions[2].RequestInterrupt(true);
        last.RequestInterrupt(true);
        Assert.Equal([(5u, true), (11u, true)], _sink.Levels);
    }

    [Fact]
    public void MsixEnabled_SilencesIntx_AndStatusBit3()
    {
        var function = new TestPciFunction(msixVectors: 2);
        _bus.Add(function);
        int control = function.MsixCap!.CapabilityOffset + MsixCapability.MessageControlOffset;
        function.RequestInterrupt(true);

        _conf.Write(1, control, 2, MsixCapability.ControlEnable);
        uint statusWithMsix = Status(1) & PciRegisters.StatusInterrupt;
        _conf.Write(1, control, 2, 0);

        Assert.Equal(0u, statusWithMsix);
        Assert.Equal(PciRegisters.StatusInterrupt, Status(1) & PciRegisters.StatusInterrupt);
        Assert.Equal([(10u, true), (10u, false), (10u, true)], _sink.Levels);
    }
}
