using System.Text;
using KvmSharp.Devices.Bus;
using KvmSharp.Devices.Legacy;

namespace KvmSharp.Devices.Tests.Legacy;

public class FwCfgTests
{
    private readonly FwCfg _fwCfg = new();
    private readonly IoDispatcher _io = new();

    public FwCfgTests() => _io.Ports.Register(FwCfg.SelectorPort, FwCfg.PortCount, _fwCfg, "fw_cfg");

    [Fact]
    public void Signature_ReadsQemu_ThenZeros()
    {
        Select(0x0000);

        Assert.Equal(new byte[] { 0x51, 0x45, 0x4D, 0x55, 0x00, 0x00 }, ReadData(6));
        Assert.Equal(0L, _io.Ports.UnhandledReads + _io.Ports.UnhandledWrites);
    }

    [Fact]
    public void Id_AdvertisesTheTraditionalInterfaceOnly()
    {
        Select(0x0001);
        Assert.Equal(new byte[] { 0x01, 0x00, 0x00, 0x00 }, ReadData(4));
    }

    [Fact]
    public void RamSize_IsU64LittleEndian()
    {
        _fwCfg.SetRamSize(0x1_2345_6789);
        Select(0x0003);
        Assert.Equal(new byte[] { 0x89, 0x67, 0x45, 0x23, 0x01, 0x00, 0x00, 0x00, 0x00 }, ReadData(9));
    }

    [Fact]
    public void CpuCounts_AreU16LittleEndian()
    {
        Select(0x0005);
        Assert.Equal(new byte[] { 0x01, 0x00 }, ReadData(2));

        _fwCfg.SetCpuCount(4, 0x102);
        Select(0x0005);
        Assert.Equal(new byte[] { 0x04, 0x00 }, ReadData(2));
        Select(0x000F);
        Assert.Equal(new byte[] { 0x02, 0x01 }, ReadData(2));
        Assert.Throws<ArgumentOutOfRangeException>(() => _fwCfg.SetCpuCount(0));
        Assert.Throws<ArgumentOutOfRangeException>(() => _fwCfg.SetCpuCount(4, 2));
    }

    [Fact]
    public void FileDirectory_IsEmptyAtFirst()
    {
        Select(0x0019);
        Assert.Equal(new byte[] { 0, 0, 0, 0, 0 }, ReadData(5));
    }

    [Fact]
    public void FileDirectory_ListsFilesSortedByName_WithKeysFrom0x20_InExactBytes()
    {
        _fwCfg.AddFile("etc/b", [1, 2, 3]);
        _fwCfg.AddFile("etc/a", [9, 8, 7, 6, 5]);

        var expected = new byte[4 + (2 * 64)];
        expected[3] = 2;
        WriteEntry(expected.AsSpan(4, 64), size: 5, key: 0x20, "etc/a");
        WriteEntry(expected.AsSpan(68, 64), size: 3, key: 0x21, "etc/b");
        Select(0x0019);
        Assert.Equal(expected, ReadData(expected.Length));
        Assert.Equal(0x00, ReadData(1)[0]);

        Select(0x0020);
        Assert.Equal(new byte[] { 9, 8, 7, 6, 5, 0 }, ReadData(6));
        Select(0x0021);
        Assert.Equal(new byte[] { 1, 2, 3, 0 }, ReadData(4));
        Assert.Equal((ushort)0x21, _fwCfg.GetFileKey("etc/b"));
        Assert.Null(_fwCfg.GetFileKey("etc/c"));
        Assert.Equal(2, _fwCfg.FileCount);
    }

    [Fact]
    public void FileDirectory_UsesStrcmpOrder_UppercaseBeforeLowercase()
    {
        _fwCfg.AddFile("opt/z", [1]);
        _fwCfg.AddFile("etc/e820", [2]);
        _fwCfg.AddFile("opt/Z", [3]);

        Assert.Equal((ushort)0x20, _fwCfg.GetFileKey("etc/e820"));
        Assert.Equal((ushort)0x21, _fwCfg.GetFileKey("opt/Z"));
        Assert.Equal((ushort)0x22, _fwCfg.GetFileKey("opt/z"));
    }

    [Fact]
    public void AddFile_Accepts55ByteNames_AndRejectsLongerDuplicateOrNulNames()
    {
        string longest = new('n', 55);
        _fwCfg.AddFile(longest, []);
        Select(0x0019);
        byte[] dir = ReadData(4 + 64);
        Assert.Equal((byte)'n', dir[4 + 8 + 54]);
        Assert.Equal(0x00, dir[4 + 8 + 55]);

        var tooLong = Assert.Throws<ArgumentException>(() => _fwCfg.AddFile(new string('n', 56), []));
        Assert.StartsWith("fw_cfg file name 'nnnn", tooLong.Message, StringComparison.Ordinal);
        var duplicate = Assert.Throws<ArgumentException>(() => _fwCfg.AddFile(longest, [1]));
        Assert.StartsWith("fw_cfg already has a file named", duplicate.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => _fwCfg.AddFile("a\0b", []));
        Assert.Throws<ArgumentException>(() => _fwCfg.AddFile("", []));
        Assert.Equal(1, _fwCfg.FileCount);
    }

    [Fact]
    public void UnknownAndArchLocalKeys_ReadAsZeros_AndTheWriteChannelBitIsIgnored()
    {
        Select(0x0123);
        Assert.Equal(new byte[4], ReadData(4));
        Select(0x8000);
        Assert.Equal(new byte[4], ReadData(4));
        Select(0x4000);
        Assert.Equal("QEMU"u8.ToArray(), ReadData(4));
    }

    [Fact]
    public void SelectingAgain_RewindsTheOffset()
    {
        Select(0x0000);
        ReadData(2);
        Select(0x0000);
        Assert.Equal((byte)'Q', ReadData(1)[0]);
    }

    [Fact]
    public void DataWritesAndByteSelectorWrites_AreIgnored_WideReadsReturnZeros()
    {
        Select(0x0000);
        _io.PortWrite(0x511, [0xAA]);
        _io.PortWrite(0x510, [0x01]);
        Assert.Equal((byte)'Q', ReadData(1)[0]);

        byte[] wide = [0xFF, 0xFF];
        _io.PortRead(0x510, wide);
        Assert.Equal(new byte[2], wide);
        Assert.Equal((byte)'E', ReadData(1)[0]);

        // A byte read at the selector port reads data, as QEMU's combined x86 region does.
        byte[] one = new byte[1];
        _io.PortRead(0x510, one);
        Assert.Equal((byte)'M', one[0]);
    }

    [Fact]
    public void SaveAndRestore_KeepTheSelectionAndOffset()
    {
        _fwCfg.AddFile("etc/x", Encoding.ASCII.GetBytes("hello"));
        Select(0x0020);
        ReadData(2);
        FwCfgState saved = _fwCfg.Save();
        Assert.Equal(new FwCfgState(0x0020, 2), saved);

        var copy = new FwCfg();
        copy.AddFile("etc/x", Encoding.ASCII.GetBytes("hello"));
        copy.Restore(saved);
        byte[] one = new byte[1];
        copy.Read(1, one);
        Assert.Equal((byte)'l', one[0]);
    }

    [Fact]
    public void SelectAndRead_AllocateNothing()
    {
        Span<byte> b = stackalloc byte[1];
        for (int i = 0; i < 100; i++)
        {
            _fwCfg.Write(0, [0x00, 0x00]);
            _fwCfg.Read(1, b);
        }

        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 10_000; i++)
        {
            _fwCfg.Write(0, [(byte)(i & 0x1F), 0x00]);
            _fwCfg.Read(1, b);
            _fwCfg.Read(1, b);
        }

        Assert.Equal(0L, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    private static void WriteEntry(Span<byte> entry, uint size, ushort key, string name)
    {
        entry[0] = (byte)(size >> 24);
        entry[1] = (byte)(size >> 16);
        entry[2] = (byte)(size >> 8);
        entry[3] = (byte)size;
        entry[4] = (byte)(key >> 8);
        entry[5] = (byte)key;
        Encoding.ASCII.GetBytes(name).CopyTo(entry[8..]);
    }

    private void Select(ushort key) => _io.PortWrite(0x510, [(byte)key, (byte)(key >> 8)]);

    private byte[] ReadData(int count)
    {
        var bytes = new byte[count];
        for (int i = 0; i < count; i++)
        {
            _io.PortRead(0x511, bytes.AsSpan(i, 1));
        }

        return bytes;
    }
}
