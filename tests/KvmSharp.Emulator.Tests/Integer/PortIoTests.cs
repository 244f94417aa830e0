using KvmSharp.Emulator.Cpu;
using KvmSharp.Emulator.Decoding;
using KvmSharp.Emulator.Execution;
using KvmSharp.Hypervisor;

namespace KvmSharp.Emulator.Tests.Integer;

/// <summary>
/// IN, OUT, INS and OUTS through a recording <see cref="IVcpuIo"/>: port numbers, access widths, data and order,
/// how AL/AX/EAX are written, REP and DF, and the I/O permission check at CPL 3 (IOPL, then the TSS bitmap)
/// coming before any memory access or device access.
/// </summary>
public sealed class PortIoTests
{
    private const ulong Window = 0x100_0000;
    private const ulong Next = GuestMachine.CodeBase;
    private const ulong Tss = 0x9_0000;
    private const ushort AllowedPort = 0x3F8;
    private const ushort DeniedPort = 0x3F9;

    [Theory]
    [InlineData("E460", 0xFFFF_FFFF_FFFF_FF40UL, "PortRead 0x60 40")]             // in al, 0x60
    [InlineData("66E571", 0xFFFF_FFFF_FFFF_4140UL, "PortRead 0x71 4041")]         // in ax, 0x71
    [InlineData("E571", 0x4342_4140UL, "PortRead 0x71 40414243")]                 // in eax, 0x71: zero-extends
    [InlineData("48E571", 0x4342_4140UL, "PortRead 0x71 40414243")]               // REX.W does not widen it
    [InlineData("EC", 0xFFFF_FFFF_FFFF_FF40UL, "PortRead 0x3F8 40")]              // in al, dx
    [InlineData("ED", 0x4342_4140UL, "PortRead 0x3F8 40414243")]                  // in eax, dx
    public void In_WritesTheAccumulatorAtItsWidth(string hex, ulong rax, string access)
    {
        var io = new RecordingIo();
        using var m = new GuestMachine(longMode: true, Window, 0x4000, io);
        m.Load(Convert.FromHexString(hex));
        m.State.Rax = ulong.MaxValue;
        m.State.Rdx = 0xAAAA_0000_0000_03F8; // only DX names the port

        m.RunTo(Next + (ulong)(hex.Length / 2));

        Assert.Equal(rax, m.State.Rax);
        Assert.Equal([access], io.Accesses.Select(a => a.ToString()));
    }

    [Theory]
    [InlineData("E680", "PortWrite 0x80 88")]          // out 0x80, al
    [InlineData("66E780", "PortWrite 0x80 8877")]      // out 0x80, ax
    [InlineData("EE", "PortWrite 0x3F8 88")]           // out dx, al
    [InlineData("66EF", "PortWrite 0x3F8 8877")]       // out dx, ax
    [InlineData("EF", "PortWrite 0x3F8 88776655")]     // out dx, eax
    [InlineData("48EF", "PortWrite 0x3F8 88776655")]   // REX.W: still four bytes
    public void Out_WritesTheAccumulatorsLowBytes(string hex, string access)
    {
        var io = new RecordingIo();
        using var m = new GuestMachine(longMode: true, Window, 0x4000, io);
        m.Load(Convert.FromHexString(hex));
        m.State.Rax = 0x1122_3344_5566_7788;
        m.State.Rdx = 0xAAAA_0000_0000_03F8;

        m.RunTo(Next + (ulong)(hex.Length / 2));

        Assert.Equal([access], io.Accesses.Select(a => a.ToString()));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void RepInsw_ReadsThePortOncePerElement_IntoEsDi_InTheDfDirection(bool down)
    {
        var io = new RecordingIo();
        using var m = new GuestMachine(longMode: true, Window, 0x4000, io);
        m.Load([0xF3, 0x66, 0x6D]); // rep insw
        m.State.Rdx = AllowedPort;
        m.State.Rdi = Window + 0x100;
        m.State.Rcx = 3;
        m.State.RFlags = Flags.Reserved1 | (down ? Flags.DF : 0);

        m.RunTo(Next + 3);

        Assert.Equal(["PortRead 0x3F8 4041", "PortRead 0x3F8 4243", "PortRead 0x3F8 4445"], io.Accesses.Select(a => a.ToString()));
        Assert.Equal(down ? Window + 0x100 - 6 : Window + 0x106, m.State.Rdi);
        Assert.Equal(0UL, m.State.Rcx);
        ulong first = GuestMachine.WindowPhysical + 0x100;
        Assert.Equal((ushort)0x4140, m.Memory.Read<ushort>(first));
        Assert.Equal((ushort)0x4342, m.Memory.Read<ushort>(down ? first - 2 : first + 2));
        Assert.Equal((ushort)0x4544, m.Memory.Read<ushort>(down ? first - 4 : first + 4));
    }

    [Fact]
    public void RepOutsd_WritesEachElement_FromTheOverriddenSourceSegment()
    {
        var io = new RecordingIo();
        using var m = new GuestMachine(longMode: true, Window, 0x4000, io);
        m.Load([0x64, 0xF3, 0x6F]); // rep outsd with FS
        m.State.FsBase = Window;
        m.Memory.Write(GuestMachine.WindowPhysical + 0x20, 0x0807_0605_0403_0201UL);
        m.State.Rdx = 0x10_0CF8; // port 0xCF8
        m.State.Rsi = 0x20;
        m.State.Rcx = 2;

        m.RunTo(Next + 3);

        Assert.Equal(["PortWrite 0xCF8 01020304", "PortWrite 0xCF8 05060708"], io.Accesses.Select(a => a.ToString()));
        Assert.Equal(0x28UL, m.State.Rsi);
    }

    [Fact]
    public void RepIns_WithAZeroCount_TouchesNoPort()
    {
        var io = new RecordingIo();
        using var m = new GuestMachine(longMode: true, Window, 0x4000, io);
        m.Load([0xF3, 0x6C]); // rep insb
        m.State.Rdi = Window;
        m.State.Rcx = 0;

        m.RunTo(Next + 2);

        Assert.Empty(io.Accesses);
    }

    [Fact]
    public void Ins_WhoseDestinationFaults_DoesNotReadThePort()
    {
        var io = new RecordingIo();
        using var m = new GuestMachine(longMode: true, Window, 0x4000, io);
        m.SetWindowPage(0x2000, 0);
        m.Load([0xF3, 0x6C]); // rep insb
        m.State.Rdx = AllowedPort;
        m.State.Rdi = Window + 0x1FFE;
        m.State.Rcx = 4;

        var result = m.Interpreter.Step();

        Assert.Equal(new StepResult(StepStatus.Exception, CpuException.PageFault(2)), result);
        Assert.Equal(2, io.Accesses.Count); // the two bytes before the unmapped page, no third read
        Assert.Equal((2UL, Window + 0x2000), (m.State.Rcx, m.State.Rdi));
    }

    [Fact]
    public void Cpl3_WithIoplBelowIt_AndNoUsableTss_RaisesGeneralProtection_WithoutTouchingThePort()
    {
        var io = new RecordingIo();
        using var m = new GuestMachine(longMode: true, Window, 0x4000, io, cpl: 3);
        m.Load([0xEC]); // in al, dx
        m.State.Rdx = AllowedPort;

        Assert.Equal(new StepResult(StepStatus.Exception, CpuException.GeneralProtection), m.Interpreter.Step());
        Assert.Empty(io.Accesses);
    }

    [Fact]
    public void Cpl3_WithIopl3_MayUseAnyPort()
    {
        var io = new RecordingIo();
        using var m = new GuestMachine(longMode: true, Window, 0x4000, io, cpl: 3);
        m.Load([0xEE]); // out dx, al
        m.State.Rdx = DeniedPort;
        m.State.RFlags = Flags.Reserved1 | Flags.Iopl;

        m.RunTo(Next + 1);

        Assert.Equal(["PortWrite 0x3F9 00"], io.Accesses.Select(a => a.ToString()));
    }

    [Theory]
    [InlineData("EC", AllowedPort, true)]      // in al, dx: bit clear
    [InlineData("EC", DeniedPort, false)]      // bit set
    [InlineData("66ED", AllowedPort, false)]   // in ax, dx: 0x3F8 and 0x3F9, one of them denied
    [InlineData("EE", 0x3F7, true)]            // out dx, al
    [InlineData("EF", 0x3F5, false)]           // out dx, eax: ports 0x3F5-0x3F8, and 0x3F6 is denied for this case
    [InlineData("EC", 0x400, false)]           // past the bitmap the TSS limit covers
    public void Cpl3_UsesTheTssBitmap(string hex, ushort port, bool allowed)
    {
        var io = new RecordingIo();
        using var m = Cpl3WithBitmap(io);
        m.Load(Convert.FromHexString(hex));
        m.State.Rdx = port;
        if (port == 0x3F5)
        {
            SetBitmapBit(m, 0x3F6); // a four-byte access is refused when any of its ports is
        }

        var result = m.Interpreter.Step();

        if (allowed)
        {
            Assert.Equal(StepStatus.Executed, result.Status);
            Assert.Single(io.Accesses);
        }
        else
        {
            Assert.Equal(new StepResult(StepStatus.Exception, CpuException.GeneralProtection), result);
            Assert.Empty(io.Accesses);
        }
    }

    [Fact]
    public void Cpl3_RefusedOuts_RaisesGeneralProtection_BeforeItsSourceCouldFault()
    {
        var io = new RecordingIo();
        using var m = Cpl3WithBitmap(io);
        m.SetWindowPage(0x2000, 0);
        m.Load([0x6E]); // outsb
        m.State.Rdx = DeniedPort;
        m.State.Rsi = Window + 0x2000;

        Assert.Equal(new StepResult(StepStatus.Exception, CpuException.GeneralProtection), m.Interpreter.Step());
        Assert.Empty(io.Accesses);
        Assert.Equal(Window + 0x2000, m.State.Rsi);
    }

    [Fact]
    public void Cpl3_AllowedRepOutsb_WritesEveryElement()
    {
        var io = new RecordingIo();
        using var m = Cpl3WithBitmap(io);
        m.Load([0xF3, 0x6E]); // rep outsb
        m.Memory.Write(GuestMachine.WindowPhysical, 0x33_2211U);
        m.State.Rdx = AllowedPort;
        m.State.Rsi = Window;
        m.State.Rcx = 3;

        m.RunTo(Next + 2);

        Assert.Equal(["PortWrite 0x3F8 11", "PortWrite 0x3F8 22", "PortWrite 0x3F8 33"], io.Accesses.Select(a => a.ToString()));
    }

    [Fact]
    public void RefusedPort_AfterAnEarlierPageFault_IsStillGeneralProtection()
    {
        var io = new RecordingIo();
        using var m = Cpl3WithBitmap(io);
        m.SetWindowPage(0x2000, 0);
        m.Load([0x88, 0x03, 0xEC]); // mov [rbx], al; in al, dx
        m.State.Rbx = Window + 0x2000;
        m.State.Rdx = DeniedPort;

        Assert.Equal(new StepResult(StepStatus.Exception, CpuException.PageFault(6)), m.Interpreter.Step());
        m.State.Rip = Next + 2;
        Assert.Equal(new StepResult(StepStatus.Exception, CpuException.GeneralProtection), m.Interpreter.Step());
    }

    [Fact]
    public void ProtectedMode32_InAndOut_AtCpl0()
    {
        var io = new RecordingIo();
        using var m = new GuestMachine(longMode: false, GuestMachine.WindowPhysical, 0x1000, io);
        m.Load([0x66, 0xE5, 0x40, 0xE6, 0x43]); // in ax, 0x40; out 0x43, al
        m.State.Rax = 0x1234_5678;

        m.RunTo(Next + 5);

        Assert.Equal(0x1234_4140UL, m.State.Rax);
        Assert.Equal(["PortRead 0x40 4041", "PortWrite 0x43 40"], io.Accesses.Select(a => a.ToString()));
    }

    /// <summary>
    /// A CPL 3 machine with IOPL 0 and a 64-bit TSS at <see cref="Tss"/> whose I/O bitmap (at offset 0x68) covers
    /// ports 0-0x3FF and denies only <see cref="DeniedPort"/>.
    /// </summary>
    private static GuestMachine Cpl3WithBitmap(RecordingIo io)
    {
        var m = new GuestMachine(longMode: true, Window, 0x4000, io, cpl: 3);
        m.Memory.Fill(Tss, 0x68 + 0x81, 0);
        m.Memory.Write(Tss + 0x66, (ushort)0x68);
        m.Memory.Write(Tss + 0x68 + 0x80, (byte)0xFF);
        m.State.Tr = new SegmentRegister { Base = Tss, Limit = 0x68 + 0x80, Type = 9, Present = 1, Selector = 0x40 };
        SetBitmapBit(m, DeniedPort);
        return m;
    }

    private static void SetBitmapBit(GuestMachine m, ushort port)
    {
        ulong address = Tss + 0x68 + (ulong)(port >> 3);
        m.Memory.Write(address, (byte)(m.Memory.Read<byte>(address) | (1 << (port & 7))));
    }
}
