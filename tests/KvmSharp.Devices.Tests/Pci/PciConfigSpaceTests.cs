using KvmSharp.Devices.Bus;
using KvmSharp.Devices.Pci;

namespace KvmSharp.Devices.Tests.Pci;

public class PciConfigSpaceTests
{
    private static byte[] ReadBytes(PciFunction function, int register, int length)
    {
        var data = new byte[length];
        function.ReadConfig(register, data);
        return data;
    }

    private static uint ReadDword(PciFunction function, int register) => BitConverter.ToUInt32(ReadBytes(function, register, 4));

    private static ushort ReadWord(PciFunction function, int register) => BitConverter.ToUInt16(ReadBytes(function, register, 2));

    [Fact]
    public void Identity_IsReadOnly()
    {
        var function = new TestPciFunction();
        var before = ReadBytes(function, 0, 0x40);

        function.WriteConfig(0x00, [0xFF, 0xFF, 0xFF, 0xFF]);
        function.WriteConfig(0x08, [0xFF, 0xFF, 0xFF, 0xFF]);
        function.WriteConfig(0x2C, [0xFF, 0xFF, 0xFF, 0xFF]);
        function.WriteConfig(0x34, [0xFF]);
        function.WriteConfig(0x3D, [0xFF]);

        Assert.Equal(before, ReadBytes(function, 0, 0x40));
        Assert.Equal(0x5678_1234u, ReadDword(function, 0x00));
        Assert.Equal(0xFF00_0003u, ReadDword(function, 0x08));
        Assert.Equal(0x1100_1AF4u, ReadDword(function, 0x2C));
    }

    [Fact]
    public void CommandRegister_KeepsOnlyTheImplementedBits()
    {
        var function = new TestPciFunction();
        var bridge = new PciHostBridge();
        var noIntx = new TestPciFunction(bar0Size: 0, usesIntx: false);

        function.WriteConfig(PciRegisters.Command, [0xFF, 0xFF]);
        bridge.WriteConfig(PciRegisters.Command, [0xFF, 0xFF]);
        noIntx.WriteConfig(PciRegisters.Command, [0xFF, 0xFF]);

        // Memory Space (a memory BAR), Bus Master, Interrupt Disable (an INTx pin).
        Assert.Equal(0x0406, ReadWord(function, PciRegisters.Command));
        Assert.Equal(0x0007, ReadWord(bridge, PciRegisters.Command));
        Assert.Equal(0x0004, ReadWord(noIntx, PciRegisters.Command));
    }

    [Fact]
    public void StatusErrorBits_ClearOnWriteOfOne_OthersReadOnly()
    {
        var space = new PciConfigSpace();
        space.SetWord(PciRegisters.Status, PciRegisters.StatusDetectedParityError | PciRegisters.StatusReceivedMasterAbort | PciRegisters.StatusCapabilitiesList);
        space.SetWriteOneToClear(PciRegisters.Status, 2, PciRegisters.StatusWriteOneToClear);

        space.Write(PciRegisters.Status, [0x00, 0x00]);
        Assert.Equal(0xA010, space.GetWord(PciRegisters.Status));

        space.Write(PciRegisters.Status, [0x10, 0x80]);
        Assert.Equal(0x2010, space.GetWord(PciRegisters.Status));

        space.Write(PciRegisters.Status + 1, [0xFF]);
        Assert.Equal(0x0010, space.GetWord(PciRegisters.Status));
    }

    [Fact]
    public void StatusOfAFunction_IgnoresGuestAttemptsToSetBits()
    {
        var function = new TestPciFunction(msixVectors: 2);

        function.WriteConfig(PciRegisters.Status, [0xFF, 0xFF]);

        Assert.Equal(PciRegisters.StatusCapabilitiesList, ReadWord(function, PciRegisters.Status));
    }

    [Fact]
    public void WritableAndReadOnlyBitsMix_WithinOneByte()
    {
        var space = new PciConfigSpace();
        space.SetByte(0x50, 0b1010_0000);
        space.SetWritable(0x50, 1, 0b0000_1111);

        space.Write(0x50, [0b0101_0110]);

        Assert.Equal(0b1010_0110, space.GetByte(0x50));
    }

    [Fact]
    public void CapabilityList_ChainsFrom0x34_WithStatusBit4()
    {
        var function = new TestPciFunction(msixVectors: 4);
        int first = function.AddVendorCapability(16);
        int second = function.AddVendorCapability(5);

        Assert.Equal(PciRegisters.StatusCapabilitiesList, ReadWord(function, PciRegisters.Status) & PciRegisters.StatusCapabilitiesList);
        Assert.Equal(0x40, ReadBytes(function, 0x34, 1)[0]);
        Assert.Equal(new byte[] { 0x11, 0x4C }, ReadBytes(function, 0x40, 2));
        Assert.Equal(0x4C, first);
        Assert.Equal(new byte[] { 0x09, 0x5C }, ReadBytes(function, 0x4C, 2));
        Assert.Equal(0x5C, second);
        Assert.Equal(new byte[] { 0x09, 0x00 }, ReadBytes(function, 0x5C, 2));
    }

    [Fact]
    public void NoCapabilities_StatusBit4Clear_PointerZero()
    {
        var bridge = new PciHostBridge();

        Assert.Equal(0, ReadWord(bridge, PciRegisters.Status));
        Assert.Equal(0, ReadBytes(bridge, PciRegisters.CapabilitiesPointer, 1)[0]);
    }

    [Fact]
    public void CapabilityThatDoesNotFit_Throws()
    {
        var space = new PciConfigSpace();
        space.AddCapability(0x09, 0xB0);

        var ex = Assert.Throws<InvalidOperationException>(() => space.AddCapability(0x09, 0x20));
        Assert.Equal("A capability of 32 bytes (ID 0x09) does not fit in configuration space after offset 0xf0. Drop a capability from the device.", ex.Message);
    }

    [Fact]
    public void InterruptPinAndLine_AsTheBusWiresThem()
    {
        var bus = new PciBus(IoBus.CreateMmioBus(), new RecordingMsiSink());
        var withIntx = new TestPciFunction();
        var without = new TestPciFunction(usesIntx: false);
        Assert.Equal(0xFF, ReadBytes(withIntx, PciRegisters.InterruptLine, 1)[0]);

        bus.Add(withIntx);
        bus.Add(without);

        Assert.Equal(new byte[] { 10, 1 }, ReadBytes(withIntx, PciRegisters.InterruptLine, 2));
        Assert.Equal(new byte[] { 0xFF, 0 }, ReadBytes(without, PciRegisters.InterruptLine, 2));
        Assert.Equal(0, ReadBytes(bus.HostBridge, PciRegisters.InterruptPin, 1)[0]);
    }

    [Fact]
    public void IntxRoutes_ListEachWiredPin_WithItsGsi_InTheOrderAdded()
    {
        var bus = new PciBus(IoBus.CreateMmioBus(), new RecordingMsiSink());

        bus.Add(new TestPciFunction());
        bus.Add(new TestPciFunction(usesIntx: false));
        bus.Add(new TestPciFunction());
        bus.Add(new TestPciFunction());
        bus.Add(new TestPciFunction());

        // Devices 1, 3, 4, 5 have pins; GSIs 10, 11, 5 are given in turn and shared once used up.
        Assert.Equal([(1, 10u), (3, 11u), (4, 5u), (5, 10u)], bus.IntxRoutes);
    }

    [Fact]
    public void AccessesPastTheEnd_ReadZero_AndAreDropped()
    {
        var function = new TestPciFunction();

        function.WriteConfig(0x100, [1, 2, 3, 4]);
        function.WriteConfig(-1, [1]);
        var data = new byte[] { 9, 9 };
        function.ReadConfig(0x100, data);

        Assert.Equal(new byte[] { 0, 0 }, data);
    }

    [Fact]
    public void SaveRestore_CopiesConfigurationBytes()
    {
        var source = new TestPciFunction();
        source.WriteConfig(PciRegisters.InterruptLine, [0x0B]);
        source.WriteConfig(PciRegisters.LatencyTimer, [0x20]);
        var target = new TestPciFunction();

        var state = source.Save();
        target.Restore(state);

        Assert.Equal(256, state.ConfigSpace.Length);
        Assert.Equal(ReadBytes(source, 0, 256), ReadBytes(target, 0, 256));
        Assert.Equal(0x0B, ReadBytes(target, PciRegisters.InterruptLine, 1)[0]);
    }
}
