using System.Text;
using KvmSharp.Devices.Bus;
using KvmSharp.Devices.Legacy;

namespace KvmSharp.Devices.Tests;

public class DebugConsoleTests
{
    [Fact]
    public void OutbToPortE9_AppendsTheBytesToTheStream()
    {
        var output = new MemoryStream();
        var io = new IoDispatcher();
        var console = new DebugConsole(output);
        io.Ports.Register(DebugConsole.DefaultPort, 1, console, "debugcon");

        foreach (byte b in "Hi!\n"u8)
        {
            io.PortWrite(0xE9, [b]);
        }

        Assert.Equal(new byte[] { (byte)'H', (byte)'i', (byte)'!', (byte)'\n' }, output.ToArray());
        Assert.Equal(4L, console.BytesWritten);
    }

    [Fact]
    public void InbFromPortE9_ReturnsE9_SoGuestsCanDetectIt()
    {
        var io = new IoDispatcher();
        io.Ports.Register(DebugConsole.DefaultPort, 1, new DebugConsole(new MemoryStream()));

        Span<byte> data = stackalloc byte[1];
        io.PortRead(0xE9, data);

        Assert.Equal(0xE9, data[0]);
        Assert.Equal(0L, io.Ports.UnhandledReads);
    }

    [Fact]
    public void Readback_IsConfigurable_AndFillsEveryByteOfARead()
    {
        var console = new DebugConsole(new MemoryStream(), readback: 0x42);
        byte[] data = new byte[4];

        console.Read(0, data);

        Assert.Equal(0x42, console.Readback);
        Assert.Equal(new byte[] { 0x42, 0x42, 0x42, 0x42 }, data);
    }

    [Fact]
    public void WideWrite_HandedToTheDevice_AppendsEveryByteInOrder()
    {
        var output = new MemoryStream();
        var console = new DebugConsole(output);

        console.Write(0, "ok\r\n"u8);

        Assert.Equal("ok\r\n", Encoding.ASCII.GetString(output.ToArray()));
    }

    [Fact]
    public void WordWriteToTheOnePortRange_StraddlesIt_AndIsDropped()
    {
        var output = new MemoryStream();
        var io = new IoDispatcher();
        io.Ports.Register(DebugConsole.DefaultPort, 1, new DebugConsole(output));

        io.PortWrite(0xE9, [0x41, 0x42]);

        Assert.Equal(0L, output.Length);
        Assert.Equal(1L, io.Ports.UnhandledWrites);
    }

    [Fact]
    public void Stream_IsFlushedAfterEachNewline_AndWhenAsked_ButNotPerByte()
    {
        var output = new FlushCountingStream();
        var console = new DebugConsole(output);

        console.Write(0, "a"u8);
        console.Write(0, "b"u8);
        Assert.Equal(0, output.FlushCount);

        console.Write(0, "\n"u8);
        Assert.Equal(1, output.FlushCount);

        console.Write(0, "$ "u8);
        Assert.Equal(1, output.FlushCount);
        console.Flush();
        Assert.Equal(2, output.FlushCount);
        Assert.Equal("ab\n$ ", Encoding.ASCII.GetString(output.ToArray()));
    }

    [Fact]
    public void Write_AllocatesNothing()
    {
        var console = new DebugConsole(new FlushCountingStream(capacity: 1 << 20));
        ReadOnlySpan<byte> x = "x"u8;
        ReadOnlySpan<byte> newline = "\n"u8;
        for (int i = 0; i < 100; i++)
        {
            console.Write(0, x);
            console.Write(0, newline);
        }

        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 10_000; i++)
        {
            console.Write(0, x);
            console.Write(0, newline);
        }

        long after = GC.GetAllocatedBytesForCurrentThread();
        Assert.Equal(0L, after - before);
        Assert.Equal(20_200L, console.BytesWritten);
    }

    [Fact]
    public void Constructor_RejectsAReadOnlyStream()
    {
        using var readOnly = new MemoryStream([1, 2, 3], writable: false);

        var ex = Assert.Throws<ArgumentException>(() => new DebugConsole(readOnly));
        Assert.StartsWith("The debug console needs a writable output stream.", ex.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentNullException>(() => new DebugConsole(null!));
    }

    private sealed class FlushCountingStream(int capacity = 0) : MemoryStream(capacity)
    {
        public int FlushCount { get; private set; }

        public override void Flush()
        {
            FlushCount++;
            base.Flush();
        }
    }
}
