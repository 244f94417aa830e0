using KvmSharp.Emulator.Cpu;
using KvmSharp.Emulator.Decoding;
using KvmSharp.Emulator.Execution;

namespace KvmSharp.Emulator.Tests.Integer;

/// <summary>
/// Exact results the host cannot give: #DE from AAM 0, #BR from BOUND, #UD for what 64-bit mode or our CPUID
/// leaves out (MOVBE, PUSHA, BCD, SALC), TZCNT/LZCNT encodings behaving as BSF/BSR, prefetch hints that never
/// fault, and XLAT with a segment override.
/// </summary>
public sealed class MiscSemanticsTests
{
    private const ulong Window = 0x100_0000;
    private const ulong Next = GuestMachine.CodeBase;

    [Fact]
    public void Aam0_RaisesDivideError_AndLeavesAxAndFlags()
    {
        using var m = StringSemanticsTests.Flat32();
        m.Load([0xD4, 0x00]); // aam 0
        m.State.Rax = 0x1234;
        m.State.RFlags = Flags.Reserved1 | Flags.CF | Flags.ZF;

        Assert.Equal(new StepResult(StepStatus.Exception, CpuException.DivideError), m.Interpreter.Step());
        Assert.Equal((0x1234UL, Flags.Reserved1 | Flags.CF | Flags.ZF, Next), (m.State.Rax, m.State.RFlags, m.State.Rip));
    }

    [Theory]
    [InlineData("620B", -5, 10, -6)]        // bound ecx, [ebx]: below
    [InlineData("620B", -5, 10, 11)]        // above
    [InlineData("620B", 10, -5, 0)]         // an empty range refuses everything
    [InlineData("66620B", -300, 300, 301)]  // bound cx, [ebx]
    [InlineData("66620B", 0, 0x7FFF, -1)]
    public void Bound_OutOfRange_RaisesBoundRange_WithNothingChanged(string hex, int lower, int upper, int index)
    {
        using var m = StringSemanticsTests.Flat32();
        bool word = hex.StartsWith("66", StringComparison.Ordinal);
        m.Load(Convert.FromHexString(hex));
        if (word)
        {
            m.Memory.Write(0x30_0000, (short)lower);
            m.Memory.Write(0x30_0002, (short)upper);
        }
        else
        {
            m.Memory.Write(0x30_0000, lower);
            m.Memory.Write(0x30_0004, upper);
        }

        m.State.Rbx = 0x30_0000;
        m.State.Rcx = word ? 0xABCD_0000 | (ushort)index : (uint)index;
        ulong rcx = m.State.Rcx;

        Assert.Equal(new StepResult(StepStatus.Exception, CpuException.BoundRange), m.Interpreter.Step());
        Assert.Equal((rcx, Next), (m.State.Rcx, m.State.Rip));
    }

    [Fact]
    public void Bound_WithinRange_IsANop_AndReadsBothBoundsFirst()
    {
        using var m = StringSemanticsTests.Flat32();
        m.Load([0x62, 0x0B]); // bound ecx, [ebx]
        m.State.Segment(SegmentName.Ds).Limit = 0x30_0005; // the upper bound's last bytes are past the limit
        m.State.Rbx = 0x30_0000;
        m.State.Rcx = 0;

        Assert.Equal(new StepResult(StepStatus.Exception, CpuException.GeneralProtection), m.Interpreter.Step());

        m.State.Segment(SegmentName.Ds).Limit = 0xFFFF_FFFF;
        m.RunTo(Next + 2);
    }

    [Theory]
    [InlineData("60")]       // pusha
    [InlineData("61")]       // popa
    [InlineData("620B")]     // bound (EVEX in 64-bit mode)
    [InlineData("27")]       // daa
    [InlineData("2F")]       // das
    [InlineData("37")]       // aaa
    [InlineData("3F")]       // aas
    [InlineData("D40A")]     // aam
    [InlineData("D50A")]     // aad
    [InlineData("D6")]       // salc
    [InlineData("0F38F011")] // movbe edx, [rcx]: MOVBE is not advertised
    [InlineData("0F38F111")] // movbe [rcx], edx
    [InlineData("0F0DC8")]   // prefetchw with a register operand
    public void InvalidIn64BitMode_OrNotAdvertised_RaisesInvalidOpcode(string hex)
    {
        using var m = new GuestMachine(longMode: true, Window, 0x4000);
        m.Load(Convert.FromHexString(hex));
        m.State.Rcx = Window;

        Assert.Equal(new StepResult(StepStatus.Exception, CpuException.InvalidOpcode), m.Interpreter.Step());
        Assert.Equal(Next, m.State.Rip);
    }

    [Fact]
    public void Movbe_IsCountedAsAnUndefinedOpcode()
    {
        using var m = new GuestMachine(longMode: true, Window, 0x4000);
        m.Load([0x0F, 0x38, 0xF0, 0x11]);
        m.State.Rcx = Window;

        m.Interpreter.Step();

        Assert.Equal(1, m.Interpreter.UndefinedOpcodes[OpcodeMap.Map0F38, 0xF0]);
    }

    [Theory]
    [InlineData("F30FBCD1", 0UL, 0xDEAD_BEEF_1234_5678UL, Flags.ZF | Flags.PF)]                 // tzcnt edx, ecx: 0 -> as BSF, EDX kept whole
    [InlineData("F30FBCD1", 0x8000_0000UL, 31UL, 0UL)]                                           // bit 31
    [InlineData("F30FBDD1", 0x0001_0000UL, 16UL, 0UL)]                                           // lzcnt would give 15; BSR gives 16
    [InlineData("66F30FBDD1", 0x0000_0001UL, 0xDEAD_BEEF_1234_0000UL, Flags.PF)]               // 16-bit: only DX written (index 0: PF)
    [InlineData("F3480FBDD1", 0UL, 0xDEAD_BEEF_1234_5678UL, Flags.ZF | Flags.PF)]               // lzcnt rdx, rcx: 0
    public void TzcntAndLzcntEncodings_ExecuteAsBsfAndBsr(string hex, ulong source, ulong rdx, ulong flags)
    {
        using var m = new GuestMachine(longMode: true, Window, 0x4000);
        m.Load(Convert.FromHexString(hex));
        m.State.Rcx = source;
        m.State.Rdx = 0xDEAD_BEEF_1234_5678;
        m.State.RFlags = Flags.Reserved1 | Flags.CF | Flags.OF;

        m.RunTo(Next + (ulong)(hex.Length / 2));

        Assert.Equal(rdx, m.State.Rdx);
        Assert.Equal(flags, m.State.RFlags & Flags.Arithmetic); // CF cleared, as BSF/BSR do; TZCNT would set it for 0
    }

    [Theory]
    [InlineData("0F0D08")]   // prefetch /1 (prefetchw) [rax]
    [InlineData("0F0D00")]   // prefetch /0 [rax]
    [InlineData("0F0D10")]   // prefetchwt1 [rax]
    [InlineData("0F0D38")]   // prefetch /7 [rax]
    [InlineData("0F1800")]   // prefetchnta [rax]
    [InlineData("0F1818")]   // prefetcht2 [rax]
    [InlineData("0F1F00")]   // nop [rax]
    [InlineData("0F1938")]   // hint-space NOP
    public void PrefetchHintsAndNops_NeverFault_EvenOnANonCanonicalAddress(string hex)
    {
        using var m = new GuestMachine(longMode: true, Window, 0x4000);
        m.Load(Convert.FromHexString(hex));
        m.State.Rax = 0x8000_0000_0000_0000;

        m.RunTo(Next + 3);
    }

    [Fact]
    public void Xlat_UsesTheSegmentOverride_AndAZeroExtendedAl()
    {
        using var m = StringSemanticsTests.Flat32();
        StringSemanticsTests.Rebase(m, SegmentName.Fs, 0x31_0000);
        m.Memory.Write(0x31_0000 + 0x100 + 0xF0, (byte)0x5C);
        m.Load([0x64, 0xD7]); // xlat with FS
        m.State.Rbx = 0x100;
        m.State.Rax = 0x1234_56F0;

        m.RunTo(Next + 2);

        Assert.Equal(0x1234_565CUL, m.State.Rax);
    }

    [Fact]
    public void Xlat_With16BitAddresses_WrapsBxPlusAl()
    {
        using var m = StringSemanticsTests.Flat32();
        StringSemanticsTests.Rebase(m, SegmentName.Ds, 0x30_0000);
        m.Memory.Write(0x30_0010, (byte)0xA7);
        m.Load([0x67, 0xD7]); // xlat, 16-bit addresses: [BX + AL] within 64 KiB
        m.State.Rbx = 0x7777_FFF0;
        m.State.Rax = 0x20;

        m.RunTo(Next + 2);

        Assert.Equal(0xA7UL, m.State.Rax);
    }
}
