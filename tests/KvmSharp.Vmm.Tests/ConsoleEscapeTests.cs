using KvmSharp.Vmm.Console;

namespace KvmSharp.Vmm.Tests;

public class ConsoleEscapeTests
{
    [Fact]
    public void PlainBytes_PassThrough()
    {
        var escape = new ConsoleEscape();
        var guest = new List<byte>();

        Assert.Equal(EscapeCommand.None, escape.Filter("ls\r"u8, guest));
        Assert.Equal("ls\r"u8.ToArray(), guest);
    }

    [Fact]
    public void CtrlAX_Quits_EvenAcrossReads()
    {
        var escape = new ConsoleEscape();
        var guest = new List<byte>();

        Assert.Equal(EscapeCommand.None, escape.Filter([(byte)'a', ConsoleEscape.CtrlA], guest));
        Assert.Equal(EscapeCommand.Quit, escape.Filter("x"u8, guest));
        Assert.Equal([(byte)'a'], guest);
    }

    [Fact]
    public void CtrlACtrlA_SendsOneCtrlA_AndOtherKeysPassWithIt()
    {
        var escape = new ConsoleEscape();
        var guest = new List<byte>();

        var command = escape.Filter([ConsoleEscape.CtrlA, ConsoleEscape.CtrlA, ConsoleEscape.CtrlA, (byte)'q', ConsoleEscape.CtrlA, (byte)'h'], guest);

        Assert.Equal(EscapeCommand.Help, command);
        Assert.Equal([ConsoleEscape.CtrlA, ConsoleEscape.CtrlA, (byte)'q'], guest);
    }
}
