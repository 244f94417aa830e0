using System.Buffers.Binary;
using KvmSharp.Devices.InterruptControllers;

namespace KvmSharp.Devices.Tests.InterruptControllers;

/// <summary>An APIC bus stand-in that records messages and answers with a configurable acceptor count.</summary>
internal sealed class RecordingApicDelivery : IApicDelivery
{
    public List<ApicMessage> Messages { get; } = [];

    public int Acceptors { get; set; } = 1;

    public int Deliver(in ApicMessage message)
    {
        Messages.Add(message);
        return Acceptors;
    }
}

public class IoApicTests
{
    private readonly RecordingApicDelivery _bus = new();
    private readonly IoApic _ioApic;

    public IoApicTests() => _ioApic = new IoApic(_bus);

    private void Select(byte index) => _ioApic.Write(0x00, BitConverter.GetBytes((uint)index));

    private uint ReadIndirect(byte index)
    {
        Select(index);
        byte[] data = new byte[4];
        _ioApic.Read(0x10, data);
        return BinaryPrimitives.ReadUInt32LittleEndian(data);
    }

    private void WriteIndirect(byte index, uint value)
    {
        Select(index);
        _ioApic.Write(0x10, BitConverter.GetBytes(value));
    }

    private void Program(int pin, uint low, byte destination = 0)
    {
        WriteIndirect((byte)(0x11 + (2 * pin)), (uint)destination << 24);
        WriteIndirect((byte)(0x10 + (2 * pin)), low);
    }

    [Fact]
    public void IdVersionArbitration()
    {
        Assert.Equal(0x0000_0000u, ReadIndirect(0x00));
        Assert.Equal(0x0017_0020u, ReadIndirect(0x01));

        WriteIndirect(0x00, 0xFAFF_FFFF);
        Assert.Equal(0x0A00_0000u, ReadIndirect(0x00));
        Assert.Equal(0x0A00_0000u, ReadIndirect(0x02));

        WriteIndirect(0x01, 0);
        WriteIndirect(0x02, 0);
        Assert.Equal(0x0017_0020u, ReadIndirect(0x01));
        Assert.Equal(0x0A00_0000u, ReadIndirect(0x02));
    }

    [Fact]
    public void RedirectionEntries_ResetMasked_ReadOnlyBitsIgnoreWrites()
    {
        for (int pin = 0; pin < 24; pin++)
        {
            Assert.Equal(0x0001_0000u, ReadIndirect((byte)(0x10 + (2 * pin))));
            Assert.Equal(0u, ReadIndirect((byte)(0x11 + (2 * pin))));
        }

        WriteIndirect(0x16, 0xFFFF_FFFF);
        WriteIndirect(0x17, 0xFFFF_FFFF);
        Assert.Equal(0x0001_AFFFu, ReadIndirect(0x16));
        Assert.Equal(0xFF00_0000u, ReadIndirect(0x17));
        Assert.Equal(0xFF00_0000_0001_AFFFUL, _ioApic.GetRedirectionEntry(3));
    }

    [Fact]
    public void EdgePin_DeliversOnRisingEdgeOnly()
    {
        Program(4, 0x0000_0034, destination: 0);

        _ioApic.SetPin(4, true);
        _ioApic.SetPin(4, true);
        Assert.Equal([new ApicMessage(0x34, ApicDeliveryMode.Fixed, false, 0, false)], _bus.Messages);

        _ioApic.SetPin(4, false);
        Assert.Single(_bus.Messages);
        _ioApic.SetPin(4, true);
        Assert.Equal(2, _bus.Messages.Count);
        Assert.Equal(0u, ReadIndirect(0x18) & (1u << 14)); // no remote IRR for edge
    }

    [Fact]
    public void EdgePin_EdgeWhileMaskedIsLost()
    {
        Program(4, 0x0001_0034);
        _ioApic.SetPin(4, true);
        Program(4, 0x0000_0034);

        Assert.Empty(_bus.Messages);
    }

    [Fact]
    public void LevelPin_RemoteIrrBlocksUntilEoi_StillAssertedRedelivers()
    {
        Program(9, 0x0000_A039, destination: 1); // level, active low, vector 0x39

        _ioApic.SetPin(9, true);
        Assert.Equal([new ApicMessage(0x39, ApicDeliveryMode.Fixed, false, 1, true)], _bus.Messages);
        Assert.Equal(0x0000_E039u, ReadIndirect(0x22)); // remote IRR set

        _ioApic.SetPin(9, true);
        Assert.Single(_bus.Messages);

        _ioApic.EndOfInterrupt(0x38); // another vector: no effect
        Assert.Single(_bus.Messages);

        _ioApic.EndOfInterrupt(0x39);
        Assert.Equal(2, _bus.Messages.Count);
        Assert.Equal(0x0000_E039u, ReadIndirect(0x22));

        _ioApic.SetPin(9, false);
        _ioApic.EndOfInterrupt(0x39);
        Assert.Equal(2, _bus.Messages.Count);
        Assert.Equal(0x0000_A039u, ReadIndirect(0x22));
    }

    [Fact]
    public void EoiRegister_ClearsRemoteIrrLikeABroadcast()
    {
        Program(10, 0x0000_803A);
        _ioApic.SetPin(10, true);
        _ioApic.SetPin(10, false);
        Assert.Equal(0x0000_C03Au, ReadIndirect(0x24));

        _ioApic.Write(0x40, BitConverter.GetBytes(0x3Au));
        Assert.Equal(0x0000_803Au, ReadIndirect(0x24));
        Assert.Single(_bus.Messages);
    }

    [Fact]
    public void LevelPin_UnmaskingAnAssertedPinDelivers()
    {
        Program(11, 0x0001_803B);
        _ioApic.SetPin(11, true);
        Assert.Empty(_bus.Messages);

        Program(11, 0x0000_803B);
        Assert.Single(_bus.Messages);
        Assert.Equal(0x0000_C03Bu, ReadIndirect(0x26));
    }

    [Fact]
    public void LevelPin_NoAcceptorLeavesRemoteIrrClear_NextAssertTriesAgain()
    {
        _bus.Acceptors = 0;
        Program(12, 0x0000_803C);
        _ioApic.SetPin(12, true);
        Assert.Equal(0x0000_803Cu, ReadIndirect(0x28));

        _bus.Acceptors = 1;
        _ioApic.SetPin(12, true);
        Assert.Equal(2, _bus.Messages.Count);
        Assert.Equal(0x0000_C03Cu, ReadIndirect(0x28));
    }

    [Fact]
    public void SwitchingToEdge_ClearsRemoteIrr()
    {
        Program(13, 0x0000_803D);
        _ioApic.SetPin(13, true);
        Assert.Equal(0x0000_C03Du, ReadIndirect(0x2A));

        WriteIndirect(0x2A, 0x0000_003D); // Linux's EOI for old IOAPICs: edge, then level again
        WriteIndirect(0x2A, 0x0000_803D);
        Assert.Equal(0x0000_C03Du, ReadIndirect(0x2A)); // the still-asserted pin was delivered again
        Assert.Equal(2, _bus.Messages.Count);
    }

    [Fact]
    public void EntryFields_DecodeIntoTheMessage()
    {
        Program(20, 0x0000_0941, destination: 0x03); // lowest priority, logical, vector 0x41
        Program(21, 0x0000_0400);                    // NMI
        Program(22, 0x0000_0700);                    // ExtINT

        _ioApic.SetPin(20, true);
        _ioApic.SetPin(21, true);
        _ioApic.SetPin(22, true);

        Assert.Equal(
            [
                new ApicMessage(0x41, ApicDeliveryMode.LowestPriority, true, 0x03, false),
                new ApicMessage(0x00, ApicDeliveryMode.Nmi, false, 0, false),
                new ApicMessage(0x00, ApicDeliveryMode.ExtInt, false, 0, false),
            ],
            _bus.Messages);
    }

    [Fact]
    public void RegisterSelect_BeyondTable_ReadsAllOnes_WritesIgnored()
    {
        Assert.Equal(0xFFFF_FFFFu, ReadIndirect(0x40));
        Assert.Equal(0xFFFF_FFFFu, ReadIndirect(0xFF));
        Assert.Equal(0xFFFF_FFFFu, ReadIndirect(0x03));
        WriteIndirect(0x40, 0);
        Assert.Equal(0xFFFF_FFFFu, ReadIndirect(0x40));

        _ioApic.Write(0x00, BitConverter.GetBytes(0x1234_5678u));
        byte[] select = new byte[4];
        _ioApic.Read(0x00, select);
        Assert.Equal(new byte[] { 0x78, 0, 0, 0 }, select); // IOREGSEL holds 8 bits
    }

    [Fact]
    public void OddAccesses_AnsweredWithoutThrowing()
    {
        WriteIndirect(0x01, 0);
        Select(0x01);

        byte[] one = new byte[1];
        _ioApic.Read(0x12, one);
        Assert.Equal(0x17, one[0]); // byte 2 of the version register

        byte[] eight = new byte[8];
        _ioApic.Read(0x10, eight);
        Assert.Equal(new byte[] { 0x20, 0, 0x17, 0, 0, 0, 0, 0 }, eight);

        byte[] other = [0xAA, 0xAA, 0xAA, 0xAA];
        _ioApic.Read(0x20, other);
        Assert.Equal(new byte[4], other);

        byte[] window = new byte[4];
        _ioApic.Write(0x00, new byte[] { 0x10, 0, 0 }); // 3 bytes: dropped
        _ioApic.Write(0x01, new byte[] { 0x10 });          // not at a register's start: dropped
        _ioApic.Read(0x10, window);
        Assert.Equal(0x0017_0020u, BinaryPrimitives.ReadUInt32LittleEndian(window));

        _ioApic.Write(0x00, new byte[] { 0x10 });          // one byte to IOREGSEL: taken
        _ioApic.Read(0x10, window);
        Assert.Equal(0x0001_0000u, BinaryPrimitives.ReadUInt32LittleEndian(window));
        _ioApic.Read(0x10, Span<byte>.Empty);

        _ioApic.SetPin(24, true);
        _ioApic.SetPin(-1, true);
        Assert.Equal(0u, _ioApic.PinLevels);
    }
}
