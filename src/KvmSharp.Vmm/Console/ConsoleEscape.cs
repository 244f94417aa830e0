namespace KvmSharp.Vmm.Console;

/// <summary>What the user asked for with the escape key.</summary>
public enum EscapeCommand
{
    None,

    /// <summary>Ctrl-A X: end the VM.</summary>
    Quit,

    /// <summary>Ctrl-A H: print the escape keys.</summary>
    Help,
}

/// <summary>
/// QEMU's console escapes on an interactive terminal: Ctrl-A X quits, Ctrl-A H prints help, Ctrl-A Ctrl-A
/// sends one Ctrl-A to the guest; any other byte after Ctrl-A is passed through with it. Stateful across
/// reads (the two keys may arrive in different reads).
/// </summary>
public sealed class ConsoleEscape
{
    public const byte CtrlA = 0x01;

    private bool _pending;

    public const string HelpText = "Ctrl-A X: quit    Ctrl-A H: this help    Ctrl-A Ctrl-A: send Ctrl-A";

    /// <summary>Copies guest-bound bytes of <paramref name="input"/> to <paramref name="guest"/>; returns the command seen, if any.</summary>
    public EscapeCommand Filter(ReadOnlySpan<byte> input, List<byte> guest)
    {
        ArgumentNullException.ThrowIfNull(guest);
        var command = EscapeCommand.None;
        foreach (byte b in input)
        {
            if (!_pending)
            {
                if (b == CtrlA)
                {
                    _pending = true;
                }
                else
                {
                    guest.Add(b);
                }

                continue;
            }

            _pending = false;
            switch (b)
            {
                case (byte)'x' or (byte)'X':
                    return EscapeCommand.Quit;
                case (byte)'h' or (byte)'H':
                    command = EscapeCommand.Help;
                    break;
                case CtrlA:
                    guest.Add(CtrlA);
                    break;
                default:
                    guest.Add(CtrlA);
                    guest.Add(b);
                    break;
            }
        }

        return command;
    }
}
