using KvmSharp.Emulator.Cpu;
using KvmSharp.Emulator.Decoding;
using KvmSharp.Emulator.Execution;
using KvmSharp.Hypervisor;

namespace KvmSharp.Emulator.Tests.Integer;

/// <summary>
/// What the host cannot be asked about: string instructions that fault part-way (#PF with CR2, #GP at a segment
/// limit), restart after the fault, run in batches across steps, touch MMIO element by element (and stop when a
/// device asks), wrap at the address size (16-bit in protected and real mode, 32-bit with 67 in 64-bit mode), and
/// take segment overrides on the source only.
/// </summary>
public sealed class StringSemanticsTests
{
    private const ulong Window = 0x100_0000;
    private const ulong Unmapped = Window + 0x2000;
    private const ulong Next = GuestMachine.CodeBase;

    public static TheoryData<string, int, bool> FaultCases => new()
    {
        // code, element size, DF
        { "F3A4", 1, false },    // rep movsb: the destination runs into the unmapped page
        { "F348A5", 8, false },  // rep movsq: an element straddles into it
        { "F3A5", 4, true },     // rep movsd, DF = 1: the source runs down into it
        { "F366AB", 2, false },  // rep stosw
        { "F3AC", 1, false },    // rep lodsb
        { "F3A6", 1, false },    // repe cmpsb (all equal so far)
        { "F3AF", 4, true },     // repe scasd, DF = 1
    };

    /// <summary>
    /// Every iteration is complete on its own: a #PF on element N leaves rSI/rDI/rCX after N - 1 elements, RIP at
    /// the instruction, CR2 at the faulting byte, the completed elements' effects in place; once the page is
    /// mapped the same instruction finishes the job.
    /// </summary>
    [Theory]
    [MemberData(nameof(FaultCases))]
    public void PageFault_PartWay_KeepsTheCompletedElements_AndTheInstructionRestarts(string hex, int size, bool down)
    {
        byte[] code = Convert.FromHexString(hex);
        bool movs = code[^1] is 0xA4 or 0xA5;
        bool sourceRuns = code[^1] is 0xA4 or 0xA5 or 0xAC or 0xAD or 0xA6 or 0xA7 && !movs || (movs && down);
        using var m = new GuestMachine(longMode: true, Window, 0x8000);
        m.Load(code);
        m.SetWindowPage(Unmapped - Window, 0);
        const int Completed = 5;
        const int Count = 40;

        // The running side approaches the unmapped page [Unmapped, Unmapped + 0x1000): from below it starts
        // Completed elements (plus 3 bytes when the element straddles) before it; from above, right over it.
        ulong straddle = size == 8 ? 4UL : 0;
        ulong runStart = down ? Unmapped + 0x1000 + ((Completed - 1) * (ulong)size) : Unmapped - (Completed * (ulong)size) - straddle;
        ulong otherStart = Window + 0x5000 + (down ? 0x800UL : 0);
        ulong rsi = sourceRuns ? runStart : otherStart;
        ulong rdi = sourceRuns ? otherStart : runStart;
        m.State.Rsi = rsi;
        m.State.Rdi = rdi;
        m.State.Rcx = Count;
        m.State.Rax = 0;
        m.State.RFlags = Flags.Reserved1 | (down ? Flags.DF : 0);
        for (ulong i = 0; i < 0x1000 && movs; i++)
        {
            // Data for the copies (CMPS/SCAS compare zeros with zeros, so REPE keeps going).
            m.Memory.Write(GuestMachine.WindowPhysical + 0x1000 + i, (byte)(i + 1));
            m.Memory.Write(GuestMachine.WindowPhysical + 0x5000 + i, (byte)(i + 0x81));
        }

        var result = m.Interpreter.Step();

        bool write = !sourceRuns && code[^1] is not (0xA6 or 0xA7 or 0xAE or 0xAF);
        ulong faultAddress = down ? Unmapped + 0x1000 - (ulong)size : Unmapped;
        Assert.Equal(new StepResult(StepStatus.Exception, CpuException.PageFault(write ? 2u : 0u)), result);
        Assert.Equal(faultAddress, m.State.Cr2);
        Assert.Equal(Next, m.State.Rip);
        Assert.Equal((ulong)(Count - Completed), m.State.Rcx);
        ulong moved = Completed * (ulong)size;
        bool usesRsi = code[^1] is 0xA4 or 0xA5 or 0xA6 or 0xA7 or 0xAC or 0xAD;
        bool usesRdi = code[^1] is not (0xAC or 0xAD);
        Assert.Equal(usesRsi ? (down ? rsi - moved : rsi + moved) : rsi, m.State.Rsi);
        Assert.Equal(usesRdi ? (down ? rdi - moved : rdi + moved) : rdi, m.State.Rdi);
        if (movs && !down)
        {
            // The five copied elements landed just below the unmapped page.
            var copied = new byte[Completed * size];
            m.Memory.Read(GuestMachine.WindowPhysical + (runStart - Window), copied);
            var expected = new byte[Completed * size];
            m.Memory.Read(GuestMachine.WindowPhysical + (otherStart - Window), expected);
            Assert.Equal(0x81, expected[0]);
            Assert.Equal(expected, copied);
        }

        m.SetWindowPage(Unmapped - Window, GuestMachine.PageFlags);
        m.RunTo(Next + (ulong)code.Length);
        Assert.Equal(0UL, m.State.Rcx);
    }

    [Fact]
    public void RepStos_RunsAtMostOneBatchPerStep_AndRestartsUntilRcxIsExhausted()
    {
        using var m = new GuestMachine(longMode: true, Window, 0x8000);
        m.Load([0xF3, 0xAA]); // rep stosb
        m.State.Rdi = Window;
        m.State.Rcx = 10_000;
        m.State.Rax = 0x5A;

        Assert.Equal(StepStatus.Executed, m.Interpreter.Step().Status);
        Assert.Equal((Next, 10_000UL - 4096, Window + 4096), (m.State.Rip, m.State.Rcx, m.State.Rdi));
        Assert.Equal(StepStatus.Executed, m.Interpreter.Step().Status);
        Assert.Equal((Next, 10_000UL - 8192, Window + 8192), (m.State.Rip, m.State.Rcx, m.State.Rdi));
        Assert.Equal(StepStatus.Executed, m.Interpreter.Step().Status);
        Assert.Equal((Next + 2, 0UL, Window + 10_000), (m.State.Rip, m.State.Rcx, m.State.Rdi));

        var bytes = new byte[10_001];
        m.Memory.Read(GuestMachine.WindowPhysical, bytes);
        Assert.All(bytes[..10_000], b => Assert.Equal(0x5A, b));
        Assert.NotEqual(0x5A, bytes[10_000]);
        Assert.Equal(3UL, m.Interpreter.InstructionsRetired);
    }

    [Fact]
    public void RepMovsq_CountsTheBatchInElements()
    {
        using var m = new GuestMachine(longMode: true, Window, 0x14000);
        m.Load([0xF3, 0x48, 0xA5]); // rep movsq
        m.State.Rsi = Window;
        m.State.Rdi = Window + 0xA000;
        m.State.Rcx = 5000; // 40000 bytes: more than one batch
        for (ulong i = 0; i < 5000; i++)
        {
            m.Memory.Write(GuestMachine.WindowPhysical + (i * 8), i * 0x0101_0101_0101_0101);
        }

        m.Interpreter.Step();
        Assert.Equal((Next, 5000UL - 4096, Window + (4096 * 8)), (m.State.Rip, m.State.Rcx, m.State.Rsi));

        m.RunTo(Next + 3);
        for (ulong i = 0; i < 5000; i += 499)
        {
            Assert.Equal(i * 0x0101_0101_0101_0101, m.Memory.Read<ulong>(GuestMachine.WindowPhysical + 0xA000 + (i * 8)));
        }
    }

    [Fact]
    public void RepeCmps_ThatStopsInTheSecondBatch_FinishesThere_WithZfClear()
    {
        using var m = new GuestMachine(longMode: true, Window, 0x8000);
        m.Load([0xF3, 0xA6]); // repe cmpsb
        m.State.Rsi = Window;
        m.State.Rdi = Window + 0x4000;
        m.State.Rcx = 10_000;
        m.Memory.Write(GuestMachine.WindowPhysical + 0x4000 + 4999, (byte)1); // element 5000 differs

        m.Interpreter.Step();
        Assert.Equal((Next, 10_000UL - 4096), (m.State.Rip, m.State.Rcx));
        m.Interpreter.Step();

        Assert.Equal(Next + 2, m.State.Rip);
        Assert.Equal(10_000UL - 5000, m.State.Rcx);
        Assert.Equal(Window + 5000, m.State.Rsi);
        Assert.Equal(0UL, m.State.RFlags & Flags.ZF);
        Assert.Equal(Flags.CF, m.State.RFlags & Flags.CF); // 0 - 1 borrows
    }

    [Fact]
    public void RepStosw_IntoMmio_WritesEachElementSeparately()
    {
        var io = new RecordingIo();
        using var m = new GuestMachine(longMode: true, Window, 0x8000, io);
        m.MapPage(0x200_0000, 0xD000_0000);
        m.Load([0xF3, 0x66, 0xAB]); // rep stosw
        m.State.Rdi = 0x200_0010;
        m.State.Rcx = 3;
        m.State.Rax = 0xBEEF;

        m.RunTo(Next + 3);

        Assert.Equal(["MmioWrite 0xD0000010 EFBE", "MmioWrite 0xD0000012 EFBE", "MmioWrite 0xD0000014 EFBE"], io.Accesses.Select(a => a.ToString()));
    }

    [Fact]
    public void RepMovsb_FromRamAcrossIntoMmio_CopiesTheRamPart_ThenOneWritePerByte()
    {
        var io = new RecordingIo();
        using var m = new GuestMachine(longMode: true, Window, 0x8000, io);
        m.MapPage(0x200_0000, 0x30_0000);     // RAM
        m.MapPage(0x200_1000, 0xD000_0000);   // MMIO right after it
        m.Load([0xF3, 0xA4]); // rep movsb
        m.Memory.Write(GuestMachine.WindowPhysical, 0x0807_0605_0403_0201UL);
        m.State.Rsi = Window;
        m.State.Rdi = 0x200_0FFD;
        m.State.Rcx = 6;

        m.RunTo(Next + 2);

        Assert.Equal(0x03_0201U, m.Memory.Read<uint>(0x30_0FFD) & 0xFF_FFFF);
        Assert.Equal(["MmioWrite 0xD0000000 04", "MmioWrite 0xD0000001 05", "MmioWrite 0xD0000002 06"], io.Accesses.Select(a => a.ToString()));
    }

    [Fact]
    public void RepMovsd_FromMmio_ReadsEachElementSeparately_InOrder()
    {
        var io = new RecordingIo();
        using var m = new GuestMachine(longMode: true, Window, 0x8000, io);
        m.MapPage(0x200_0000, 0xD000_0000);
        m.Load([0xF3, 0xA5]); // rep movsd
        m.State.Rsi = 0x200_0100;
        m.State.Rdi = Window + 0x100;
        m.State.Rcx = 2;

        m.RunTo(Next + 2);

        Assert.Equal(["MmioRead 0xD0000100 40414243", "MmioRead 0xD0000104 44454647"], io.Accesses.Select(a => a.ToString()));
        Assert.Equal(0x4746_4544_4342_4140UL, m.Memory.Read<ulong>(GuestMachine.WindowPhysical + 0x100));
    }

    [Fact]
    public void DeviceStop_PartWay_EndsTheStepWithIoStop_AndTheInstructionContinuesNextStep()
    {
        var io = new RecordingIo { StopAfterAccesses = 2 };
        using var m = new GuestMachine(longMode: true, Window, 0x8000, io);
        m.MapPage(0x200_0000, 0xD000_0000);
        m.Load([0xF3, 0xAA]); // rep stosb
        m.State.Rdi = 0x200_0000;
        m.State.Rcx = 5;

        Assert.Equal(StepStatus.IoStop, m.Interpreter.Step().Status);
        Assert.Equal((Next, 3UL, 0x200_0002UL), (m.State.Rip, m.State.Rcx, m.State.Rdi));

        io.StopAfterAccesses = int.MaxValue;
        Assert.Equal(StepStatus.Executed, m.Interpreter.Step().Status);
        Assert.Equal((Next + 2, 0UL), (m.State.Rip, m.State.Rcx));
        Assert.Equal(5, io.Accesses.Count);
    }

    [Fact]
    public void AddressSize32_In64BitMode_WrapsEdiAt4GiB_AndClearsTheUpperHalves()
    {
        using var m = new GuestMachine(longMode: true, Window, 0x8000);
        m.MapPage(0xFFFF_F000, 0x30_0000);
        m.Load([0x67, 0xF3, 0xAA]); // rep stosb, 32-bit addresses
        m.State.Rdi = 0xDEAD_BEEF_FFFF_FFFE;
        m.State.Rcx = 0x1234_5678_0000_0004;
        m.State.Rax = 0x77;

        m.RunTo(Next + 3);

        Assert.Equal(2UL, m.State.Rdi);
        Assert.Equal(0UL, m.State.Rcx);
        Assert.Equal(0x7777, m.Memory.Read<ushort>(0x30_0FFE));
        Assert.Equal(0x7777, m.Memory.Read<ushort>(0));
    }

    [Fact]
    public void AddressSize16_InProtectedMode_WrapsSiAndDiWithinTheirWords_AndKeepsTheUpperHalves()
    {
        using var m = Flat32();
        Rebase(m, SegmentName.Ds, 0x30_0000);
        Rebase(m, SegmentName.Es, 0x40_0000);
        m.Load([0x67, 0xF3, 0xA4]); // rep movsb, 16-bit addresses
        m.Memory.Write(0x30_FFFE, (ushort)0x2211);
        m.Memory.Write(0x30_0000, (ushort)0x4433);
        m.Memory.Write(0x31_0000, (ushort)0xEEEE); // beyond the wrap: never read
        m.State.Rsi = 0xABCD_FFFE;
        m.State.Rdi = 0x1234_7FFE;
        m.State.Rcx = 0x5555_0004;

        m.RunTo(Next + 3);

        Assert.Equal((0xABCD_0002UL, 0x1234_8002UL, 0x5555_0000UL), (m.State.Rsi, m.State.Rdi, m.State.Rcx));
        Assert.Equal(0x4433_2211U, m.Memory.Read<uint>(0x40_7FFE));
    }

    [Theory]
    [InlineData(false, 0xFFFC, 0x0004)]
    [InlineData(true, 0x0002, 0xFFFA)]
    public void AddressSize16_RepStos_WrapsAt64KiB_AndWritesNothingPastIt(bool down, int start, int end)
    {
        using var m = Flat32();
        Rebase(m, SegmentName.Es, 0x40_0000);
        m.Load([0x67, 0xF3, 0x66, 0xAB]); // rep stosw, 16-bit addresses
        m.State.Rdi = 0x9999_0000 | (uint)start;
        m.State.Rcx = 4;
        m.State.Rax = 0xA55A;
        m.State.RFlags = Flags.Reserved1 | (down ? Flags.DF : 0);

        m.RunTo(Next + 4);

        Assert.Equal(0x9999_0000UL | (uint)end, m.State.Rdi);
        ushort[] written = down ? [0x0002, 0x0000, 0xFFFE, 0xFFFC] : [0xFFFC, 0xFFFE, 0x0000, 0x0002];
        foreach (ushort offset in written)
        {
            Assert.Equal(0xA55A, m.Memory.Read<ushort>(0x40_0000UL + offset));
        }

        Assert.Equal(0, m.Memory.Read<ushort>(0x41_0000));
        Assert.Equal(0, m.Memory.Read<ushort>(0x40_0004));
        Assert.Equal(0, m.Memory.Read<ushort>(0x40_FFFA));
    }

    [Fact]
    public void RealMode_RepMovsw_WrapsSi_AndAWordAtFfffRaisesGeneralProtection()
    {
        using var m = RealMode(ds: 0x3000, es: 0x4000);
        m.Memory.Write(0x1_0000, (ReadOnlySpan<byte>)[0xF3, 0xA5, 0xA5]); // rep movsw; movsw
        m.Memory.Write(0x3_FFFE, (ushort)0x1111);
        m.Memory.Write(0x3_0000, (ushort)0x2222);
        m.State.Rsi = 0xFFFE;
        m.State.Rdi = 0;
        m.State.Rcx = 2;

        Assert.Equal(StepStatus.Executed, m.Interpreter.Step().Status);
        Assert.Equal((2UL, 2UL, 4UL, 0UL), (m.State.Rip, m.State.Rsi, m.State.Rdi, m.State.Rcx));
        Assert.Equal(0x2222_1111U, m.Memory.Read<uint>(0x4_0000));

        m.State.Rsi = 0xFFFF;
        Assert.Equal(new StepResult(StepStatus.Exception, CpuException.GeneralProtection), m.Interpreter.Step());
        Assert.Equal((2UL, 0xFFFFUL, 4UL), (m.State.Rip, m.State.Rsi, m.State.Rdi));
    }

    /// <summary>Real-mode segment bases are not page-aligned: page-bounded chunks follow linear addresses, not offsets.</summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void RealMode_RepMovsb_WithUnalignedSegmentBases_CopiesAcrossPageBoundaries(bool down)
    {
        using var m = RealMode(ds: 0x3012, es: 0x4FF0);
        m.Memory.Write(0x1_0000, (ReadOnlySpan<byte>)[0xF3, 0xA4]); // rep movsb
        var source = new byte[0x1300];
        new Random(7).NextBytes(source);
        m.Memory.Write(0x3_0120, source);
        m.State.Rsi = down ? 0x12FFUL : 0;
        m.State.Rdi = down ? 0x12FFUL : 0;
        m.State.Rcx = 0x1300;
        m.State.RFlags = Flags.Reserved1 | (down ? Flags.DF : 0);

        m.RunTo(2);

        var copied = new byte[0x1300];
        m.Memory.Read(0x4_FF00, copied);
        Assert.Equal(source, copied);
        Assert.Equal(down ? 0xFFFFUL : 0x1300UL, m.State.Rsi);
        Assert.Equal(0UL, m.State.Rcx);
    }

    /// <summary>A forward copy one byte onto itself replicates the first byte, as element-by-element hardware does, across pages too.</summary>
    [Theory]
    [InlineData("A4", 1)]   // movsb, destination one byte up
    [InlineData("A5", 3)]   // movsw (16-bit code), destination three bytes up
    public void RealMode_OverlappingForwardCopy_ReplicatesThePattern(string opcode, int distance)
    {
        using var m = RealMode(ds: 0x3012, es: 0x3012);
        m.Memory.Write(0x1_0000, (ReadOnlySpan<byte>)[0xF3, Convert.FromHexString(opcode)[0]]);
        var pattern = new byte[0x2000];
        new Random(8).NextBytes(pattern);
        m.Memory.Write(0x3_0120, pattern);
        int elementSize = opcode == "A4" ? 1 : 2;
        m.State.Rsi = 0x100;
        m.State.Rdi = 0x100 + (ulong)distance;
        m.State.Rcx = 0x1800 / (ulong)elementSize;

        m.RunTo(2);

        // Element by element: every byte at or above the destination repeats the byte `distance` below it.
        var result = new byte[0x1800 + distance];
        m.Memory.Read(0x3_0120 + 0x100, result);
        var expected = (byte[])result.Clone();
        Array.Copy(pattern, 0x100, expected, 0, distance);
        for (int i = distance; i < expected.Length; i++)
        {
            expected[i] = expected[i - distance];
        }

        Assert.Equal(expected, result);
    }

    [Fact]
    public void EsLimit_StopsRepStosdWithGeneralProtection_AfterTheElementsWithinIt()
    {
        using var m = Flat32();
        Rebase(m, SegmentName.Es, 0x40_0000);
        m.State.Segment(SegmentName.Es).Limit = 0x1003;
        m.State.Segment(SegmentName.Es).G = 0;
        m.Load([0xF3, 0xAB]); // rep stosd
        m.State.Rdi = 0xFF8;
        m.State.Rcx = 4;
        m.State.Rax = 0x1122_3344;

        Assert.Equal(new StepResult(StepStatus.Exception, CpuException.GeneralProtection), m.Interpreter.Step());

        Assert.Equal((Next, 1UL, 0x1004UL), (m.State.Rip, m.State.Rcx, m.State.Rdi));
        Assert.Equal(0x1122_3344U, m.Memory.Read<uint>(0x40_1000));
        Assert.Equal(0U, m.Memory.Read<uint>(0x40_1004));
    }

    [Fact]
    public void SegmentOverride_AppliesToTheSourceOnly_InProtectedMode()
    {
        using var m = Flat32();
        Rebase(m, SegmentName.Ds, 0x30_0000);
        Rebase(m, SegmentName.Fs, 0x31_0000);
        Rebase(m, SegmentName.Es, 0x32_0000);
        m.Memory.Write(0x30_0010, (byte)0xD5);
        m.Memory.Write(0x31_0010, (byte)0xF5);
        m.Load([0x64, 0xA4, 0x64, 0xAA]); // movsb with FS; stosb with FS (ignored: ES:EDI)
        m.State.Rsi = 0x10;
        m.State.Rdi = 0x20;
        m.State.Rax = 0x99;

        m.RunTo(Next + 4);

        Assert.Equal(0xF5, m.Memory.Read<byte>(0x32_0020));
        Assert.Equal(0x99, m.Memory.Read<byte>(0x32_0021));
        Assert.Equal(0, m.Memory.Read<byte>(0x31_0021));
    }

    [Fact]
    public void SegmentOverride_FsAddsItsBaseToTheSource_In64BitMode_AndEsIsIgnored()
    {
        using var m = new GuestMachine(longMode: true, Window, 0x8000);
        m.State.FsBase = Window + 0x1000;
        m.State.Segment(SegmentName.Es).Base = 0x5000; // ignored in 64-bit mode
        m.Memory.Write(GuestMachine.WindowPhysical + 0x1040, 0x1122_3344_5566_7788UL);
        m.Load([0x64, 0xF3, 0x48, 0xA5]); // rep movsq with FS
        m.State.Rsi = 0x40;
        m.State.Rdi = Window + 0x3000;
        m.State.Rcx = 1;

        m.RunTo(Next + 4);

        Assert.Equal(0x1122_3344_5566_7788UL, m.Memory.Read<ulong>(GuestMachine.WindowPhysical + 0x3000));
        Assert.Equal(0x48UL, m.State.Rsi);
    }

    [Fact]
    public void NonRepeated_StringInstruction_ThatFaults_ChangesNothing()
    {
        using var m = new GuestMachine(longMode: true, Window, 0x8000);
        m.SetWindowPage(Unmapped - Window, 0);
        m.Load([0x48, 0xA5]); // movsq
        m.State.Rsi = Window;
        m.State.Rdi = Unmapped - 4; // straddles into the unmapped page
        m.State.Rcx = 7;

        Assert.Equal(new StepResult(StepStatus.Exception, CpuException.PageFault(2)), m.Interpreter.Step());

        Assert.Equal((Window, Unmapped - 4, 7UL), (m.State.Rsi, m.State.Rdi, m.State.Rcx));
        Assert.Equal(0U, m.Memory.Read<uint>(GuestMachine.WindowPhysical + (Unmapped - Window) - 4));
    }

    [Fact]
    public void LockPrefix_OnAStringInstruction_IsInvalid()
    {
        using var m = new GuestMachine(longMode: true, Window, 0x8000);
        m.Load([0xF0, 0xA4]);

        Assert.Equal(new StepResult(StepStatus.Exception, CpuException.InvalidOpcode), m.Interpreter.Step());
    }

    /// <summary>A real-mode machine: CS = 0x1000 (code at <see cref="GuestMachine.CodeBase"/>, IP 0), DS and ES as given.</summary>
    internal static GuestMachine RealMode(ushort ds, ushort es)
    {
        var m = new GuestMachine(longMode: false, GuestMachine.WindowPhysical, 0x1000);
        m.State.Cr0 = 0;
        m.State.Segment(SegmentName.Cs) = SegmentRegister.RealMode(0x1000, code: true);
        m.State.Segment(SegmentName.Ds) = SegmentRegister.RealMode(ds);
        m.State.Segment(SegmentName.Es) = SegmentRegister.RealMode(es);
        m.State.Rip = 0;
        return m;
    }

    /// <summary>A 32-bit protected-mode machine whose data segments are flat from base 0 (offset = physical address).</summary>
    internal static GuestMachine Flat32() => new(longMode: false, GuestMachine.WindowPhysical, 0x1000);

    internal static void Rebase(GuestMachine m, SegmentName segment, ulong segmentBase) => m.State.Segment(segment).Base = segmentBase;
}
