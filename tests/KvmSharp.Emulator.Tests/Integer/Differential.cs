using System.Text;
using KvmSharp.Emulator.Execution;

namespace KvmSharp.Emulator.Tests.Integer;

/// <summary>
/// Runs one instruction natively (<see cref="NativeMachine"/>) and in the interpreter (<see cref="GuestMachine"/>)
/// from the same registers and window contents, and compares every general-purpose register (the low 32 bits of
/// the eight legacy ones in 32-bit mode), CF/PF/AF/ZF/SF/OF and DF, and the window: the data area in full, the
/// stack area from the final RSP up (below it a signal frame may land natively; the interpreter must leave it as
/// it was). The host may run a different encoding (<c>hostCode</c>) where the host CPU has features we do not
/// advertise (TZCNT is BSF here).
/// </summary>
internal sealed class Differential : IDisposable
{
    public const ulong ComparedFlags = Flags.Arithmetic | Flags.DF;

    private static readonly byte[] RandomBlock = CreateRandomBlock();

    private readonly byte[] _hostWindow = new byte[NativeMachine.WindowSize];
    private readonly byte[] _guestWindow = new byte[NativeMachine.WindowSize];

    public Differential(bool longMode)
    {
        LongMode = longMode;
        Guest = new GuestMachine(longMode, NativeMachine.WindowAddress, NativeMachine.WindowSize);
    }

    public bool LongMode { get; }

    public GuestMachine Guest { get; }

    public static ulong Window => NativeMachine.WindowAddress;

    /// <summary>The default RSP: 4 KiB below the window's top, so POPA/LEAVE may read above it.</summary>
    public static ulong StackPointer => Window + NativeMachine.WindowSize - 4096;

    /// <summary>Registers with RSP at <see cref="StackPointer"/> and the others from <paramref name="random"/>.</summary>
    public static RegisterFile RandomRegisters(Random random, bool longMode)
    {
        var registers = new RegisterFile { Flags = Flags.Reserved1 | ((ulong)random.NextInt64() & Flags.Arithmetic) };
        for (int r = 0; r < 16; r++)
        {
            registers.Gpr[r] = longMode ? (ulong)random.NextInt64() ^ ((ulong)random.Next(2) << 63) : r < 8 ? (uint)random.NextInt64() : 0;
        }

        registers.Gpr[4] = StackPointer;
        return registers;
    }

    /// <summary>A window-sized buffer (allocate once per test: it is a quarter megabyte).</summary>
    public static byte[] NewWindow() => new byte[NativeMachine.WindowSize];

    /// <summary>Fills <paramref name="window"/> with random bytes (a random slice of one random block) and returns it.</summary>
    public static byte[] RandomWindow(Random random, byte[] window)
    {
        int start = random.Next(0, NativeMachine.WindowSize / 8) * 8;
        RandomBlock.AsSpan(start, NativeMachine.WindowSize).CopyTo(window);
        return window;
    }

    /// <summary>Runs both and returns null when they agree, else a description of every difference.</summary>
    /// <param name="vendorIgnoredFlags">Flags not compared because the host's vendor may set them differently (<see cref="HostCpu"/>; 0 on Intel).</param>
    /// <param name="vendorIgnoredUpperHalves">Bit r set: the upper 32 bits of register r are not compared, for the same reason.</param>
    public string? Compare(byte[] code, RegisterFile input, byte[] window, byte[]? hostCode = null, ulong vendorIgnoredFlags = 0, int vendorIgnoredUpperHalves = 0)
    {
        ulong rsp = input.Gpr[4];
        if (rsp < Window + NativeMachine.StackAreaOffset + 16384 || rsp > Window + NativeMachine.WindowSize)
        {
            throw new ArgumentException("RSP must stay in the window's stack area: a signal may arrive during the native run.", nameof(input));
        }

        var hostWindow = _hostWindow;
        var host = NativeMachine.Run(hostCode ?? code, !LongMode, input, window, hostWindow);

        Guest.Load(code);
        Guest.SetRegisters(input);
        Guest.WriteWindow(window);
        string? failure = null;
        try
        {
            Guest.RunTo(GuestMachine.CodeBase + (ulong)code.Length);
        }
        catch (InvalidOperationException e)
        {
            failure = e.Message;
        }

        var guest = Guest.GetRegisters();
        var guestWindow = _guestWindow;
        Guest.ReadWindow(guestWindow);
        var report = new StringBuilder();
        if (failure != null)
        {
            report.AppendLine(failure);
        }

        int registers = LongMode ? 16 : 8;
        ulong mask = LongMode ? ulong.MaxValue : 0xFFFF_FFFF;
        for (int r = 0; r < registers; r++)
        {
            ulong compared = (vendorIgnoredUpperHalves & (1 << r)) != 0 ? mask & 0xFFFF_FFFF : mask;
            if (((host.Gpr[r] ^ guest.Gpr[r]) & compared) != 0)
            {
                report.AppendLine(CultureInvariant($"{RegisterName(r)}: host 0x{host.Gpr[r] & mask:X} interpreter 0x{guest.Gpr[r] & mask:X} (in 0x{input.Gpr[r]:X})"));
            }
        }

        if (((host.Flags ^ guest.Flags) & ComparedFlags & ~vendorIgnoredFlags) != 0)
        {
            report.AppendLine(CultureInvariant($"flags: host 0x{host.Flags & ComparedFlags:X} interpreter 0x{guest.Flags & ComparedFlags:X} (in 0x{input.Flags:X})"));
        }

        int stackFrom = (int)Math.Clamp((long)((host.Gpr[4] & mask) - Window), NativeMachine.StackAreaOffset, NativeMachine.WindowSize);
        CompareBytes(report, "memory", hostWindow, guestWindow, 0, stackFrom);
        CompareBytes(report, "interpreter memory below the final RSP", window, guestWindow, NativeMachine.StackAreaOffset, stackFrom);
        if (report.Length == 0)
        {
            return null;
        }

        return CultureInvariant($"{Convert.ToHexString(code)} from {Describe(input)}:\n{report}");
    }

    public void Dispose() => Guest.Dispose();

    private static byte[] CreateRandomBlock()
    {
        var block = new byte[NativeMachine.WindowSize * 2];
        new Random(20240611).NextBytes(block);
        return block;
    }

    public static string Describe(RegisterFile registers)
    {
        var text = new StringBuilder();
        for (int r = 0; r < 16; r++)
        {
            text.Append(CultureInvariant($"{RegisterName(r)}=0x{registers.Gpr[r]:X} "));
        }

        return text.Append(CultureInvariant($"flags=0x{registers.Flags:X}")).ToString();
    }

    private static void CompareBytes(StringBuilder report, string what, byte[] expected, byte[] actual, int from, int to)
    {
        if (from >= to || expected.AsSpan(from, to - from).SequenceEqual(actual.AsSpan(from, to - from)))
        {
            return;
        }

        int shown = 0;
        for (int i = from; i < to; i++)
        {
            if (expected[i] != actual[i])
            {
                if (shown++ < 8)
                {
                    report.AppendLine(CultureInvariant($"{what} at window+0x{i:X}: expected 0x{expected[i]:X2} got 0x{actual[i]:X2}"));
                }
            }
        }

        if (shown > 8)
        {
            report.AppendLine(CultureInvariant($"{what}: {shown} bytes differ in all"));
        }
    }

    private static string RegisterName(int r) => r switch
    {
        0 => "rax", 1 => "rcx", 2 => "rdx", 3 => "rbx", 4 => "rsp", 5 => "rbp", 6 => "rsi", 7 => "rdi",
        _ => "r" + r.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };

    private static string CultureInvariant(FormattableString text) => FormattableString.Invariant(text);
}
