using KvmSharp.Emulator.Cpu;
using KvmSharp.Emulator.Execution;

namespace KvmSharp.Emulator.Tests.Integer;

/// <summary>
/// XADD/CMPXCHG/CMPXCHG8B/CMPXCHG16B where the host cannot be compared: CMPXCHG16B alignment, the write cycle
/// a failing compare still makes (so a read-only page faults and nothing changes), and LOCK on register forms.
/// </summary>
public sealed class ExchangeSemanticsTests
{
    private const ulong Window = 0x100_0000;
    private const ulong ReadOnlyPage = Window + 0x1000;
    private const ulong Next = GuestMachine.CodeBase;
    private const ulong Initial = 0x0123_4567_89AB_CDEF;

    [Theory]
    [InlineData("480FC70E")]   // cmpxchg16b [rsi]
    [InlineData("F0480FC70E")] // lock cmpxchg16b [rsi]
    public void Cmpxchg16b_OnAnOperandNotAlignedTo16Bytes_RaisesGeneralProtection_AndChangesNothing(string hex)
    {
        using var m = new GuestMachine(longMode: true, Window, 0x4000);
        m.Load(Convert.FromHexString(hex));
        m.Memory.Write(GuestMachine.WindowPhysical + 0x108, Initial);
        m.State.Rsi = Window + 0x108;
        m.State.Rax = Initial; // the compare would succeed
        m.State.Rdx = 0;
        m.State.Rbx = 0x1111;
        m.State.Rcx = 0x2222;
        ulong flags = m.State.RFlags;

        Assert.Equal(new StepResult(StepStatus.Exception, CpuException.GeneralProtection), m.Interpreter.Step());

        Assert.Equal(Initial, m.Memory.Read<ulong>(GuestMachine.WindowPhysical + 0x108));
        Assert.Equal((Next, Initial, flags), (m.State.Rip, m.State.Rax, m.State.RFlags));
    }

    [Fact]
    public void Cmpxchg8b_NeedsNoAlignment()
    {
        using var m = new GuestMachine(longMode: true, Window, 0x4000);
        m.Load([0x0F, 0xC7, 0x0E]); // cmpxchg8b [rsi]
        m.Memory.Write(GuestMachine.WindowPhysical + 0x103, Initial);
        m.State.Rsi = Window + 0x103;
        m.State.Rax = Initial & 0xFFFF_FFFF;
        m.State.Rdx = Initial >> 32;
        m.State.Rbx = 0xAAAA_BBBB;
        m.State.Rcx = 0xCCCC_DDDD;

        m.RunTo(Next + 3);

        Assert.Equal(0xCCCC_DDDD_AAAA_BBBBUL, m.Memory.Read<ulong>(GuestMachine.WindowPhysical + 0x103));
        Assert.Equal(Flags.ZF, m.State.RFlags & Flags.ZF);
    }

    /// <summary>A read-only page faults for every form, whether the compare would succeed or fail.</summary>
    [Theory]
    [InlineData("480FB10B", true)]    // cmpxchg [rbx], rcx
    [InlineData("480FB10B", false)]
    [InlineData("F00FB00B", false)]   // lock cmpxchg [rbx], cl
    [InlineData("0FC70B", true)]      // cmpxchg8b [rbx]
    [InlineData("0FC70B", false)]
    [InlineData("480FC70B", false)]   // cmpxchg16b [rbx]
    [InlineData("480FC10B", false)]   // xadd [rbx], rcx
    public void ReadOnlyDestination_FaultsWithAWriteError_AndNothingChanges(string hex, bool equal)
    {
        using var m = new GuestMachine(longMode: true, Window, 0x4000);
        m.SetWindowPage(ReadOnlyPage - Window, PageTableEntryPresentOnly);
        m.Load(Convert.FromHexString(hex));
        m.Memory.Write(GuestMachine.WindowPhysical + 0x1000, Initial);
        m.Memory.Write(GuestMachine.WindowPhysical + 0x1008, ~Initial);
        m.State.Rbx = ReadOnlyPage;
        m.State.Rax = equal ? (hex.Contains("C7", StringComparison.Ordinal) && !hex.StartsWith("48", StringComparison.Ordinal) ? Initial & 0xFFFF_FFFF : Initial) : 0x5555;
        m.State.Rdx = equal ? Initial >> 32 : 0x6666;
        m.State.Rcx = 0x7777;
        m.State.RFlags = Flags.Reserved1 | Flags.CF;
        var before = m.GetRegisters();

        var result = m.Interpreter.Step();

        Assert.Equal(new StepResult(StepStatus.Exception, CpuException.PageFault(3)), result); // present, write
        Assert.Equal(ReadOnlyPage, m.State.Cr2);
        Assert.Equal(Initial, m.Memory.Read<ulong>(GuestMachine.WindowPhysical + 0x1000));
        Assert.Equal(before.Gpr, m.GetRegisters().Gpr);
        Assert.Equal(before.Flags, m.State.RFlags);
    }

    [Theory]
    [InlineData("F00FC1CA")]   // lock xadd edx, ecx
    [InlineData("F00FB1CA")]   // lock cmpxchg edx, ecx
    [InlineData("F00FC7C9")]   // lock with a register CMPXCHG8B encoding
    [InlineData("F0480FC1C9")] // lock xadd rcx, rcx
    public void Lock_OnARegisterForm_IsInvalid(string hex)
    {
        using var m = new GuestMachine(longMode: true, Window, 0x4000);
        m.Load(Convert.FromHexString(hex));

        Assert.Equal(new StepResult(StepStatus.Exception, CpuException.InvalidOpcode), m.Interpreter.Step());
    }

    [Fact]
    public void Cmpxchg8b_InProtectedMode_ComparesEdxEax()
    {
        using var m = StringSemanticsTests.Flat32();
        m.Load([0xF0, 0x0F, 0xC7, 0x0E]); // lock cmpxchg8b [esi]
        m.Memory.Write(0x30_0000, Initial);
        m.State.Rsi = 0x30_0000;
        m.State.Rax = 1;
        m.State.Rdx = 2;

        m.RunTo(Next + 4);

        Assert.Equal((Initial & 0xFFFF_FFFF, Initial >> 32), (m.State.Rax, m.State.Rdx));
        Assert.Equal(0UL, m.State.RFlags & Flags.ZF);
        Assert.Equal(Initial, m.Memory.Read<ulong>(0x30_0000));
    }

    private const ulong PageTableEntryPresentOnly = KvmSharp.Emulator.Mmu.PageTableEntry.Present;
}
