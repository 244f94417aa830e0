using KvmSharp.Devices.Bus;
using KvmSharp.Devices.Pci;

namespace KvmSharp.Devices.Tests.Pci;

public class MsixTests
{
    private const ulong Bar = 0xE000_0000;
    private const ulong Table = Bar + TestPciFunction.MsixTableOffset;
    private const ulong Pba = Bar + TestPciFunction.MsixPbaOffset;

    private readonly IoBus _mmio = IoBus.CreateMmioBus();
    private readonly RecordingMsiDelivery _delivery = new();
    private readonly TestPciFunction _function;
    private readonly MsixCapability _msix;
    private readonly Conf1 _conf;
    private readonly int _control;

    public MsixTests()
    {
        var bus = new PciBus(_mmio, new RecordingMsiSink());
        _function = new TestPciFunction(msixVectors: 3, delivery: _delivery);
        bus.Add(_function);
        _conf = Conf1.For(bus);
        _msix = _function.MsixCap!;
        _control = _msix.CapabilityOffset + MsixCapability.MessageControlOffset;
    }

    private void WriteDword(ulong address, uint value) => _mmio.Write(address, BitConverter.GetBytes(value));

    private uint ReadDword(ulong address)
    {
        var data = new byte[4];
        _mmio.Read(address, data);
        return BitConverter.ToUInt32(data);
    }

    private ulong ReadQword(ulong address)
    {
        var data = new byte[8];
        _mmio.Read(address, data);
        return BitConverter.ToUInt64(data);
    }

    private void Program(int vector, ulong address, uint data, bool masked)
    {
        ulong entry = Table + (ulong)(vector * MsixCapability.EntrySize);
        WriteDword(entry + 0, (uint)address);
        WriteDword(entry + 4, (uint)(address >> 32));
        WriteDword(entry + 8, data);
        WriteDword(entry + 12, masked ? 1u : 0u);
    }

    private void SetControl(ushort value) => _conf.Write(1, _control, 2, value);

    [Fact]
    public void Capability_DescribesTableAndPba()
    {
        Assert.Equal(0x40, _msix.CapabilityOffset);
        Assert.Equal(0x0002_0011u, _conf.Read(1, 0x40, 4));
        Assert.Equal(0x800u, _conf.Read(1, 0x44, 4));
        Assert.Equal(0xC00u, _conf.Read(1, 0x48, 4));
    }

    [Fact]
    public void MessageControl_OnlyEnableAndFunctionMaskAreWritable()
    {
        SetControl(0xFFFF);

        Assert.Equal(0xC002u, _conf.Read(1, _control, 2));
        Assert.True(_msix.Enabled);
        Assert.True(_msix.FunctionMasked);
        _conf.Write(1, 0x44, 4, 0xFFFF_FFFF);
        Assert.Equal(0x800u, _conf.Read(1, 0x44, 4));
    }

    [Fact]
    public void Table_StartsMasked_WithZeroMessages()
    {
        for (int vector = 0; vector < 3; vector++)
        {
            ulong entry = Table + (ulong)(vector * 16);
            Assert.Equal(0UL, ReadQword(entry));
            Assert.Equal(0u, ReadDword(entry + 8));
            Assert.Equal(1u, ReadDword(entry + 12));
        }

        Assert.Equal(0UL, ReadQword(Pba));
    }

    [Fact]
    public void TableWrites_ReadBack_AndVectorControlKeepsOnlyTheMaskBit()
    {
        Program(1, 0x0000_0001_FEE0_100CUL, 0x0000_4041, masked: true);
        WriteDword(Table + 16 + 12, 0xFFFF_FFFF);

        Assert.Equal(0xFEE0_100Cu, ReadDword(Table + 16));
        Assert.Equal(1u, ReadDword(Table + 16 + 4));
        Assert.Equal(0x4041u, ReadDword(Table + 16 + 8));
        Assert.Equal(1u, ReadDword(Table + 16 + 12));
        Assert.Equal((0x0000_0001_FEE0_100CUL, 0x4041u, true), _msix.GetEntry(1));
    }

    [Fact]
    public void MaskedVector_SetsItsPendingBit_AndUnmaskDeliversExactlyOnce()
    {
        Program(1, 0xFEE0_1000, 0x4041, masked: true);
        SetControl(MsixCapability.ControlEnable);

        Assert.True(_msix.TrySignal(1));
        Assert.Empty(_delivery.Sent);
        Assert.Equal(0b010UL, ReadQword(Pba));
        Assert.True(_msix.IsPending(1));

        WriteDword(Table + 16 + 12, 0);

        Assert.Equal([(1, 0xFEE0_1000UL, 0x4041u)], _delivery.Sent);
        Assert.Equal(0UL, ReadQword(Pba));
        Assert.Equal(1, _msix.Pended);
        Assert.Equal(1, _msix.Delivered);

        WriteDword(Table + 16 + 12, 1);
        WriteDword(Table + 16 + 12, 0);
        Assert.Single(_delivery.Sent);
    }

    [Fact]
    public void UnmaskedVector_DeliversImmediately()
    {
        Program(0, 0xFEE0_0000, 0x0031, masked: false);
        Program(2, 0xFEE0_3000, 0x0033, masked: false);
        SetControl(MsixCapability.ControlEnable);

        _msix.TrySignal(2);
        _msix.TrySignal(0);
        _msix.TrySignal(2);

        Assert.Equal([(2, 0xFEE0_3000UL, 0x33u), (0, 0xFEE0_0000UL, 0x31u), (2, 0xFEE0_3000UL, 0x33u)], _delivery.Sent);
    }

    [Fact]
    public void FunctionMask_HoldsEveryVector_UntilCleared()
    {
        Program(0, 0xFEE0_0000, 0x0031, masked: false);
        Program(1, 0xFEE0_1000, 0x0032, masked: true);
        Program(2, 0xFEE0_2000, 0x0033, masked: false);
        SetControl(MsixCapability.ControlEnable | MsixCapability.ControlFunctionMask);

        _msix.TrySignal(0);
        _msix.TrySignal(1);
        _msix.TrySignal(2);
        ulong pendingWhileMasked = ReadQword(Pba);
        SetControl(MsixCapability.ControlEnable);

        Assert.Equal(0b111UL, pendingWhileMasked);
        Assert.Equal([(0, 0xFEE0_0000UL, 0x31u), (2, 0xFEE0_2000UL, 0x33u)], _delivery.Sent);
        Assert.Equal(0b010UL, ReadQword(Pba));
    }

    [Fact]
    public void Disabled_ReturnsFalse_AndRecordsNothing()
    {
        Program(0, 0xFEE0_0000, 0x0031, masked: true);

        Assert.False(_msix.TrySignal(0));
        SetControl(MsixCapability.ControlEnable);
        WriteDword(Table + 12, 0);

        Assert.Empty(_delivery.Sent);
        Assert.Equal(0UL, ReadQword(Pba));
    }

    [Fact]
    public void VectorTheTableLacks_IsCounted_AndSendsNothing()
    {
        SetControl(MsixCapability.ControlEnable);

        Assert.True(_msix.TrySignal(0xFFFF));
        Assert.True(_msix.TrySignal(3));

        Assert.Equal(2, _msix.OutOfRange);
        Assert.Empty(_delivery.Sent);
    }

    [Fact]
    public void QwordAccess_CoversDataAndVectorControl()
    {
        Program(2, 0xFEE0_2000, 0x0033, masked: true);
        SetControl(MsixCapability.ControlEnable);
        _msix.TrySignal(2);

        // Data 0x44 and control 0 (unmasked) in one 8-byte write.
        _mmio.Write(Table + 32 + 8, BitConverter.GetBytes(0x0000_0000_0000_0044UL));

        Assert.Equal(0x0000_0000_0000_0044UL, ReadQword(Table + 32 + 8));
        Assert.Equal([(2, 0xFEE0_2000UL, 0x44u)], _delivery.Sent);
    }

    [Fact]
    public void PbaWrites_AreIgnored()
    {
        SetControl(MsixCapability.ControlEnable);
        _msix.TrySignal(0);

        _mmio.Write(Pba, BitConverter.GetBytes(0UL));
        _mmio.Write(Pba, BitConverter.GetBytes(ulong.MaxValue));

        Assert.Equal(1UL, ReadQword(Pba));
    }

    [Fact]
    public void AccessesPastTheTable_ReadZero_AndAreDropped()
    {
        WriteDword(Table + 48, 0x1234_5678);

        Assert.Equal(0u, ReadDword(Table + 48));
        Assert.Equal(0UL, ReadQword(Pba + 8));
    }

    [Fact]
    public void MaskedThenUnmasked_ThroughDirectDelivery_ReachesTheInterruptSinkOnce()
    {
        var mmio = IoBus.CreateMmioBus();
        var sink = new RecordingMsiSink();
        var function = new TestPciFunction(msixVectors: 2, delivery: new DirectMsiDelivery(sink));
        new PciBus(mmio, sink).Add(function);
        mmio.Write(Table + 16, BitConverter.GetBytes(0xFEE0_3008u));
        mmio.Write(Table + 16 + 8, BitConverter.GetBytes(0x0000_C051u));
        function.WriteConfig(function.MsixCap!.CapabilityOffset + MsixCapability.MessageControlOffset, BitConverter.GetBytes(MsixCapability.ControlEnable));

        function.MsixCap.TrySignal(1);
        function.MsixCap.TrySignal(1);
        int beforeUnmask = sink.Messages.Count;
        mmio.Write(Table + 16 + 12, BitConverter.GetBytes(0u));
        function.MsixCap.TrySignal(1);

        Assert.Equal(0, beforeUnmask);
        Assert.Equal([(0xFEE0_3008UL, 0xC051u), (0xFEE0_3008UL, 0xC051u)], sink.Messages);
        Assert.Empty(sink.Levels);
    }

    [Fact]
    public void DirectDelivery_SendsInterruptsToTheSink_AndDropsOtherAddresses()
    {
        var sink = new RecordingMsiSink();
        var direct = new DirectMsiDelivery(sink);

        direct.Deliver(0, 0xFEE0_1000, 0x4041);
        direct.Deliver(1, 0x0000_1000, 0x4042);
        direct.Deliver(2, 0x1_FEE0_0000, 0x4043);

        Assert.Equal([(0xFEE0_1000UL, 0x4041u), (0x1_FEE0_0000UL, 0x4043u)], sink.Messages);
        Assert.Equal(2, direct.Delivered);
        Assert.Equal(1, direct.Dropped);
    }

    [Fact]
    public void SaveRestore_KeepsTablePendingBitsAndControl()
    {
        Program(1, 0xFEE0_1000, 0x4041, masked: true);
        SetControl(MsixCapability.ControlEnable);
        _msix.TrySignal(1);
        var functionState = _function.Save();
        var msixState = _msix.Save();

        var delivery = new RecordingMsiDelivery();
        var target = new TestPciFunction(msixVectors: 3, delivery: delivery);
        target.Restore(functionState);
        target.MsixCap!.Restore(msixState);
        target.MsixCap.WriteTable(16 + 12, BitConverter.GetBytes(0u));

        Assert.True(target.MsixCap.Enabled);
        Assert.Equal([(1, 0xFEE0_1000UL, 0x4041u)], delivery.Sent);
    }
}
