using KvmSharp.Emulator.Decoding;
using static KvmSharp.Emulator.Tests.DecoderTestHelpers;

namespace KvmSharp.Emulator.Tests;

public class OpcodeTests
{
    [Theory]
    [InlineData(CpuMode.Long64, "a1 88 77 66 55 44 33 22 11", 8, 0x1122334455667788UL)]
    [InlineData(CpuMode.Long64, "67 a1 44 33 22 11", 4, 0x11223344UL)]
    [InlineData(CpuMode.Protected32, "a1 44 33 22 11", 4, 0x11223344UL)]
    [InlineData(CpuMode.Protected32, "67 a2 34 12", 2, 0x1234UL)]
    [InlineData(CpuMode.Real16, "a3 34 12", 2, 0x1234UL)]
    [InlineData(CpuMode.Real16, "67 a0 44 33 22 11", 4, 0x11223344UL)]
    public void MovMoffs_OffsetHasTheAddressSize(CpuMode mode, string hex, int size, ulong offset)
    {
        var insn = Ok(hex, mode);
        Assert.Equal(Mnemonic.Mov, insn.Op);
        Assert.Equal(size, insn.ImmediateSize);
        Assert.Equal(offset, insn.Immediate);
        Assert.False(insn.HasModRm);
    }

    [Fact]
    public void MovImm64_WithRexW_TakesEightBytes()
    {
        var insn = Ok("49 b8 88 77 66 55 44 33 22 11"); // mov r8, 0x1122334455667788
        Assert.Equal(Mnemonic.Mov, insn.Op);
        Assert.Equal(8, insn.ImmediateSize);
        Assert.Equal(0x1122334455667788UL, insn.Immediate);
        Assert.Equal(8, insn.OperandSize);
        Assert.Equal(8, insn.OpcodeRegister);
        Assert.Equal(4, Ok("b8 78 56 34 12").ImmediateSize);
        Assert.Equal(2, Ok("66 b8 34 12").ImmediateSize);
    }

    [Fact]
    public void FarJumpAndCall_CarryOffsetAndSelector()
    {
        var jmp = Ok("ea 78 56 34 12 08 00", CpuMode.Protected32);
        Assert.Equal(Mnemonic.JmpFar, jmp.Op);
        Assert.Equal(0x12345678UL, jmp.Immediate);
        Assert.Equal(4, jmp.ImmediateSize);
        Assert.Equal(8, jmp.Immediate2);
        Assert.Equal(2, jmp.Immediate2Size);

        var call = Ok("9a 00 7c 00 f0", CpuMode.Real16); // call 0xf000:0x7c00
        Assert.Equal(Mnemonic.CallFar, call.Op);
        Assert.Equal(0x7C00UL, call.Immediate);
        Assert.Equal(0xF000, call.Immediate2);
        Assert.Equal(4, Ok("66 9a 78 56 34 12 10 00", CpuMode.Real16).ImmediateSize);
        Assert.Equal(DecodeStatus.Invalid, Status("ea 78 56 34 12 08 00"));
    }

    [Fact]
    public void Enter_HasAWordAndAByte()
    {
        var insn = Ok("c8 10 20 03");
        Assert.Equal(Mnemonic.Enter, insn.Op);
        Assert.Equal(0x2010UL, insn.Immediate);
        Assert.Equal(2, insn.ImmediateSize);
        Assert.Equal(3, insn.Immediate2);
        Assert.Equal(1, insn.Immediate2Size);
        Assert.Equal(8, insn.OperandSize);
    }

    [Theory]
    [InlineData("80 f8 05", Mnemonic.Cmp, 1)]
    [InlineData("83 c4 f0", Mnemonic.Add, 4)]
    [InlineData("c1 e0 04", Mnemonic.Shl, 4)]
    [InlineData("d3 f8", Mnemonic.Sar, 4)]
    [InlineData("f6 c1 05", Mnemonic.Test, 1)]
    [InlineData("f6 d1", Mnemonic.Not, 1)]
    [InlineData("f7 c1 78 56 34 12", Mnemonic.Test, 4)]
    [InlineData("48 f7 f1", Mnemonic.Div, 8)]
    [InlineData("fe c0", Mnemonic.Inc, 1)]
    [InlineData("ff c8", Mnemonic.Dec, 4)]
    [InlineData("ff d0", Mnemonic.CallNear, 8)]
    [InlineData("66 ff e0", Mnemonic.JmpNear, 8)]
    [InlineData("ff 18", Mnemonic.CallFar, 4)]
    [InlineData("ff 30", Mnemonic.Push, 8)]
    [InlineData("8f c0", Mnemonic.Pop, 8)]
    [InlineData("c6 00 01", Mnemonic.Mov, 1)]
    [InlineData("0f 00 d8", Mnemonic.Ltr, 4)]
    [InlineData("0f 01 10", Mnemonic.Lgdt, 4)]
    [InlineData("0f 01 38", Mnemonic.Invlpg, 4)]
    [InlineData("0f 01 f8", Mnemonic.Swapgs, 4)]
    [InlineData("0f 01 f9", Mnemonic.Rdtscp, 4)]
    [InlineData("0f 01 d0", Mnemonic.Xgetbv, 4)]
    [InlineData("0f ba e0 05", Mnemonic.Bt, 4)]
    [InlineData("0f ba f8 05", Mnemonic.Btc, 4)]
    [InlineData("0f c7 08", Mnemonic.Cmpxchg8b, 4)]
    [InlineData("48 0f c7 08", Mnemonic.Cmpxchg8b, 8)]
    [InlineData("0f c7 f0", Mnemonic.Rdrand, 4)]
    [InlineData("0f ae f0", Mnemonic.Mfence, 4)]
    [InlineData("0f ae 38", Mnemonic.Clflush, 4)]
    [InlineData("0f 18 08", Mnemonic.Prefetcht0, 4)]
    [InlineData("0f 1f 44 00 00", Mnemonic.Nop, 4)]
    public void GroupOpcodes_AreIdentifiedByModRmReg(string hex, Mnemonic op, int operandSize)
    {
        var insn = Ok(hex);
        Assert.Equal(op, insn.Op);
        Assert.Equal(operandSize, insn.OperandSize);
    }

    [Theory]
    [InlineData("ff d8")]        // CALL FAR with a register
    [InlineData("ff f8")]        // FF /7
    [InlineData("fe d0")]        // FE /2
    [InlineData("8f c8")]        // 8F /1 (XOP on AMD)
    [InlineData("0f ba c0 05")]  // 0F BA /0
    [InlineData("0f c7 c8")]     // CMPXCHG8B with a register
    [InlineData("8d c0")]        // LEA with a register
    [InlineData("0f 00 f0")]     // 0F 00 /6
    [InlineData("c6 c8 00")]     // C6 /1
    [InlineData("0f 01 e8")]     // 0F 01 /5 register form
    public void UndefinedGroupMembers_AreInvalid(string hex)
    {
        DecodedInstruction insn = default;
        Assert.Equal(DecodeStatus.Invalid, InstructionDecoder.Decode(Bytes(hex), CpuMode.Long64, ref insn));
        Assert.Equal(Mnemonic.Invalid, insn.Op);
        Assert.Equal(0, insn.Length);
    }

    [Fact]
    public void RexW_TakesPrecedenceOver66_AndAnImmediateStaysFourBytes()
    {
        var wide = Ok("66 48 05 78 56 34 12"); // add rax, 0x12345678
        Assert.Equal(8, wide.OperandSize);
        Assert.Equal(4, wide.ImmediateSize);
        Assert.Equal(0x12345678L, wide.SignedImmediate);
        Assert.True(wide.RexW);

        var narrow = Ok("66 05 34 12");
        Assert.Equal(2, narrow.OperandSize);

        var rexIgnored = Ok("48 66 05 34 12"); // the REX is not next to the opcode
        Assert.Equal(2, rexIgnored.OperandSize);
        Assert.False(rexIgnored.HasRex);
    }

    [Fact]
    public void OnlyTheLastRex_BeforeTheOpcode_Counts()
    {
        var insn = Ok("48 41 90");
        Assert.Equal(Mnemonic.Xchg, insn.Op); // xchg r8d, eax
        Assert.Equal(8, insn.OpcodeRegister);
        Assert.False(insn.RexW);
        Assert.Equal(Mnemonic.Pause, Ok("f3 90").Op);
        Assert.Equal(Mnemonic.Nop, Ok("66 90").Op);
    }

    [Fact]
    public void NearBranches_In64BitMode_Ignore66()
    {
        Assert.Equal(7, Ok("66 0f 84 00 00 00 00").Length);
        Assert.Equal(8, Ok("66 e8 00 00 00 00").OperandSize);
        var jcc16 = Ok("66 0f 84 34 12", CpuMode.Protected32);
        Assert.Equal(Mnemonic.Jcc, jcc16.Op);
        Assert.Equal(4, jcc16.Condition);
        Assert.Equal(2, jcc16.OperandSize);
        Assert.Equal(-2L, Ok("eb fe").SignedImmediate);
        Assert.Equal(2, Ok("66 50").OperandSize);
        Assert.Equal(8, Ok("50").OperandSize);
    }

    [Fact]
    public void Lock_IsAcceptedOnlyOnLockableMemoryDestinations()
    {
        var insn = Ok("f0 01 00");
        Assert.Equal(InstructionPrefixes.Lock, insn.Prefixes & InstructionPrefixes.Lock);
        Ok("f0 48 0f c7 0e");  // lock cmpxchg16b [rsi]
        Ok("f0 0f ba 28 03");  // lock bts dword [rax], 3
        Ok("f0 87 03");        // lock xchg [rbx], eax
        Assert.Equal(DecodeStatus.Invalid, Status("f0 01 c0"));  // register destination
        Assert.Equal(DecodeStatus.Invalid, Status("f0 8b 00"));  // mov
        Assert.Equal(DecodeStatus.Invalid, Status("f0 39 00"));  // cmp
        Assert.Equal(DecodeStatus.Invalid, Status("f0 90"));
    }

    [Fact]
    public void F3_0FB8_IsPopcnt_AndWithoutF3_IsInvalid()
    {
        var popcnt = Ok("f3 0f b8 c1");
        Assert.Equal(Mnemonic.Popcnt, popcnt.Op);
        Assert.Equal(MandatoryPrefix.PF3, popcnt.MandatoryPrefix);
        Assert.Equal(4, popcnt.OperandSize);
        Assert.Equal(2, Ok("66 f3 0f b8 c1").OperandSize); // 66 still sizes the operands
        Assert.Equal(8, Ok("f3 48 0f b8 c1").OperandSize);
        Assert.Equal(DecodeStatus.Invalid, Status("0f b8 c1")); // JMPE
        Assert.Equal(DecodeStatus.Invalid, Status("66 0f b8 c1"));
    }

    [Fact]
    public void F3_0FBC_IsTzcnt_0FBC_IsBsf_F3_0FBD_IsLzcnt()
    {
        Assert.Equal(Mnemonic.Tzcnt, Ok("f3 0f bc c1").Op);
        Assert.Equal(Mnemonic.Bsf, Ok("0f bc c1").Op);
        Assert.Equal(2, Ok("66 0f bc c1").OperandSize);
        Assert.Equal(Mnemonic.Lzcnt, Ok("f3 0f bd c1").Op);
        Assert.Equal(Mnemonic.Bsr, Ok("0f bd c1").Op);
    }

    [Fact]
    public void MandatoryPrefix_Selects_Movdqa_Movdqu_OrMmxMovq()
    {
        var movdqa = Ok("66 0f 6f 00");
        Assert.Equal(Mnemonic.Movdqa, movdqa.Op);
        Assert.Equal(MandatoryPrefix.P66, movdqa.MandatoryPrefix);
        Assert.Equal(4, movdqa.OperandSize); // 66 was mandatory, not an operand-size override
        var movdqu = Ok("f3 0f 6f 00");
        Assert.Equal(Mnemonic.Movdqu, movdqu.Op);
        Assert.Equal(MandatoryPrefix.PF3, movdqu.MandatoryPrefix);
        var movq = Ok("0f 6f 00");
        Assert.Equal(Mnemonic.Movq, movq.Op);
        Assert.Equal(MandatoryPrefix.None, movq.MandatoryPrefix);
        Assert.Equal(DecodeStatus.Invalid, Status("f2 0f 6f 00"));
        Assert.Equal(Mnemonic.Movdqu, Ok("66 f3 0f 6f 00").Op); // F3 beats 66
        Assert.Equal(Mnemonic.Movsd, Ok("f3 f2 0f 10 c1").Op);  // the last of F2/F3 wins
        Assert.Equal(8, Ok("66 48 0f 6e c0").OperandSize);      // movq xmm0, rax
    }

    [Fact]
    public void SseShiftGroups_NeedARegister_AndByteShiftsNeed66()
    {
        var psrldq = Ok("66 0f 73 d8 04");
        Assert.Equal(Mnemonic.Psrldq, psrldq.Op);
        Assert.Equal(4UL, psrldq.Immediate);
        Assert.Equal(Mnemonic.Psrlw, Ok("0f 71 d0 03").Op);
        Assert.Equal(DecodeStatus.Invalid, Status("0f 73 d8 04"));
        Assert.Equal(DecodeStatus.Invalid, Status("0f 71 10 03"));
        Assert.Equal(DecodeStatus.Invalid, Status("f3 0f 71 d0 03"));
    }

    [Fact]
    public void ThreeByteMaps_IdentifyKnownOpcodes_AndDecodeUnknownOnesStructurally()
    {
        var pshufb = Ok("66 0f 38 00 c1");
        Assert.Equal(Mnemonic.Pshufb, pshufb.Op);
        Assert.Equal(OpcodeMap.Map0F38, pshufb.Map);
        var palignr = Ok("66 0f 3a 0f c1 08");
        Assert.Equal(Mnemonic.Palignr, palignr.Op);
        Assert.Equal(8UL, palignr.Immediate);
        var unknown = Ok("0f 3a f0 00 05");
        Assert.Equal(Mnemonic.Unknown, unknown.Op);
        Assert.Equal(OpcodeMap.Map0F3A, unknown.Map);
        Assert.Equal(Mnemonic.Unknown, Ok("0f 38 c8 04 24").Op);
        Assert.Equal(Mnemonic.Crc32, Ok("f2 0f 38 f1 c1").Op);
        Assert.Equal(2, Ok("66 f2 0f 38 f1 c1").OperandSize);
        Assert.Equal(Mnemonic.Movbe, Ok("0f 38 f0 00").Op);
    }

    [Theory]
    [InlineData("06")]
    [InlineData("07")]
    [InlineData("0e")]
    [InlineData("16")]
    [InlineData("17")]
    [InlineData("1e")]
    [InlineData("1f")]
    [InlineData("27")]
    [InlineData("2f")]
    [InlineData("37")]
    [InlineData("3f")]
    [InlineData("60")]
    [InlineData("61")]
    [InlineData("62 00")]
    [InlineData("82 c0 01")]
    [InlineData("9a 00 00 00 00 00 00")]
    [InlineData("c4 00")]
    [InlineData("c5 00")]
    [InlineData("ce")]
    [InlineData("d4 0a")]
    [InlineData("d5 0a")]
    [InlineData("d6")]
    [InlineData("ea 00 00 00 00 00 00")]
    public void LegacyOpcodes_AreInvalidIn64BitMode_AndValidIn32BitMode(string hex)
    {
        Assert.Equal(DecodeStatus.Invalid, Status(hex, CpuMode.Long64));
        Ok(hex, CpuMode.Protected32);
    }

    [Fact]
    public void Opcode63_IsMovsxdIn64BitMode_AndArplElsewhere()
    {
        var movsxd = Ok("48 63 c1");
        Assert.Equal(Mnemonic.Movsxd, movsxd.Op);
        Assert.Equal(8, movsxd.OperandSize);
        Assert.Equal(Mnemonic.Arpl, Ok("63 c1", CpuMode.Protected32).Op);
    }

    [Fact]
    public void Opcodes40To4F_AreIncDecOutside64BitMode_AndRexInside()
    {
        Assert.Equal(Mnemonic.Inc, Ok("40", CpuMode.Protected32).Op);
        Assert.Equal(Mnemonic.Dec, Ok("4f", CpuMode.Real16).Op);
        Assert.Equal(DecodeStatus.NeedMoreBytes, Status("40"));
        Assert.Equal(Mnemonic.Nop, Ok("40 90").Op);
    }

    [Fact]
    public void VexAndEvexForms_In32BitMode_AreInvalid_ButLesLdsBoundWithMemoryAreNot()
    {
        Assert.Equal(DecodeStatus.Invalid, Status("c5 f8 77", CpuMode.Protected32)); // vzeroupper
        Assert.Equal(DecodeStatus.Invalid, Status("c4 e2 79 00 c1", CpuMode.Protected32));
        Assert.Equal(DecodeStatus.Invalid, Status("62 f1 7c 48 10 00", CpuMode.Protected32));
        Assert.Equal(Mnemonic.Les, Ok("c4 06 34 12", CpuMode.Real16).Op);
        Assert.Equal(Mnemonic.Lds, Ok("c5 00", CpuMode.Protected32).Op);
        Assert.Equal(Mnemonic.Bound, Ok("62 00", CpuMode.Protected32).Op);
    }

    [Fact]
    public void X87Escapes_CarryTheirSubOpcode_AndReservedFormsAreInvalid()
    {
        var faddp = Ok("de c1");
        Assert.Equal(Mnemonic.X87, faddp.Op);
        Assert.Equal(48, faddp.X87Index);
        Assert.Equal(1, faddp.Rm);
        var fnstcw = Ok("d9 7d fe");
        Assert.Equal(15, fnstcw.X87Index);
        Assert.True(fnstcw.HasMemoryOperand);
        Assert.Equal(DecodeStatus.Invalid, Status("d9 08"));
        Assert.Equal(DecodeStatus.Invalid, Status("d9 d8"));
        Assert.Equal(DecodeStatus.Invalid, Status("dd 28"));
    }

    [Fact]
    public void SystemInstructions_AreIdentified()
    {
        Assert.Equal(Mnemonic.Cpuid, Ok("0f a2").Op);
        Assert.Equal(Mnemonic.Rdtsc, Ok("0f 31").Op);
        Assert.Equal(Mnemonic.Wrmsr, Ok("0f 30").Op);
        Assert.Equal(Mnemonic.Rdmsr, Ok("0f 32").Op);
        Assert.Equal(Mnemonic.Syscall, Ok("0f 05").Op);
        Assert.Equal(Mnemonic.Sysret, Ok("48 0f 07").Op);
        Assert.Equal(Mnemonic.Sysenter, Ok("0f 34").Op);
        Assert.Equal(Mnemonic.Ud2, Ok("0f 0b").Op);
        Assert.Equal(Mnemonic.Wbinvd, Ok("0f 09").Op);
        Assert.Equal(Mnemonic.Bswap, Ok("41 0f c9").Op);
        Assert.Equal(9, Ok("41 0f c9").OpcodeRegister);
        Assert.Equal(Mnemonic.Cmovcc, Ok("0f 44 c1").Op);
        Assert.Equal(Mnemonic.Setcc, Ok("0f 95 c0").Op);
        Assert.Equal(DecodeStatus.Invalid, Status("0f 01 f8", CpuMode.Protected32)); // SWAPGS
        Assert.Equal(DecodeStatus.Invalid, Status("8e c8")); // mov cs, ax
        Assert.Equal(Mnemonic.MovToSreg, Ok("8e d8").Op);
    }
}
