using KvmSharp.Emulator.Decoding;
using static KvmSharp.Emulator.Tests.DecoderTestHelpers;

namespace KvmSharp.Emulator.Tests;

public class AddressingTests
{
    private const byte None = DecodedInstruction.NoRegister;

    [Fact]
    public void Sib_WithNoBase_IsAbsoluteDisp32()
    {
        var insn = Ok("8b 04 25 78 56 34 12"); // mov eax, [0x12345678]
        Assert.True(insn.HasSib);
        Assert.True(insn.HasMemoryOperand);
        Assert.Equal(None, insn.Base);
        Assert.Equal(None, insn.Index);
        Assert.Equal(0x12345678UL, insn.Displacement);
        Assert.Equal(4, insn.DisplacementSize);
        Assert.False(insn.IsRipRelative);
        Assert.Equal(0, insn.Reg);
    }

    [Fact]
    public void Sib_WithNoBase_AndAnIndex_ScalesTheIndex()
    {
        var insn = Ok("8b 04 8d f0 ff ff ff"); // mov eax, [rcx*4-0x10]
        Assert.Equal(None, insn.Base);
        Assert.Equal(1, insn.Index);
        Assert.Equal(4, insn.Scale);
        Assert.Equal(unchecked((ulong)-16L), insn.Displacement);
    }

    [Fact]
    public void Sib_Base101_WithMod01_IsRbpPlusDisp8_OnTheStackSegment()
    {
        var insn = Ok("8b 44 25 08"); // mov eax, [rbp+8]
        Assert.Equal(5, insn.Base);
        Assert.Equal(None, insn.Index);
        Assert.Equal(8UL, insn.Displacement);
        Assert.Equal(1, insn.DisplacementSize);
        Assert.Equal(SegmentName.Ss, insn.EffectiveSegment);
    }

    [Fact]
    public void RexX_MakesIndex4AnIndex_AndRexB_ExtendsTheBase()
    {
        var insn = Ok("43 8b 04 e1"); // mov eax, [r9+r12*8]
        Assert.Equal(9, insn.Base);
        Assert.Equal(12, insn.Index);
        Assert.Equal(8, insn.Scale);
        Assert.Equal(SegmentName.Ds, insn.EffectiveSegment);
    }

    [Fact]
    public void RipRelative_In64BitMode_HasNoBase_AndASignExtendedDisplacement()
    {
        var insn = Ok("48 8b 05 f0 ff ff ff"); // mov rax, [rip-0x10]
        Assert.True(insn.IsRipRelative);
        Assert.Equal(None, insn.Base);
        Assert.Equal(0xFFFF_FFFF_FFFF_FFF0UL, insn.Displacement);
        Assert.Equal(8, insn.OperandSize);
        Assert.Equal(8, insn.AddressSize);
    }

    [Fact]
    public void ModRm00_Rm101_In32BitMode_IsAbsolute_NotRipRelative()
    {
        var insn = Ok("8b 05 00 10 00 00", CpuMode.Protected32);
        Assert.False(insn.IsRipRelative);
        Assert.Equal(None, insn.Base);
        Assert.Equal(0x1000UL, insn.Displacement);
    }

    [Fact]
    public void RipRelative_WithAddressSizePrefix_IsEipRelative()
    {
        var insn = Ok("67 8b 05 10 00 00 00");
        Assert.True(insn.IsRipRelative);
        Assert.Equal(4, insn.AddressSize);
    }

    [Theory]
    [InlineData("8b 00", 3, 6, 0, 0, SegmentName.Ds)]          // [bx+si]
    [InlineData("8b 01", 3, 7, 0, 0, SegmentName.Ds)]          // [bx+di]
    [InlineData("8b 02", 5, 6, 0, 0, SegmentName.Ss)]          // [bp+si]
    [InlineData("8b 03", 5, 7, 0, 0, SegmentName.Ss)]          // [bp+di]
    [InlineData("8b 44 7f", 6, None, 1, 0x7F, SegmentName.Ds)] // [si+0x7f]
    [InlineData("8b 45 80", 7, None, 1, -0x80, SegmentName.Ds)] // [di-0x80]
    [InlineData("8b 46 fe", 5, None, 1, -2, SegmentName.Ss)]   // [bp-2]
    [InlineData("8b 87 34 12", 3, None, 2, 0x1234, SegmentName.Ds)] // [bx+0x1234]
    [InlineData("8b 06 34 12", None, None, 2, 0x1234, SegmentName.Ds)] // [0x1234]
    public void SixteenBitAddressing_NamesTheClassicBaseAndIndexRegisters(string hex, byte baseReg, byte index, byte dispSize, long disp, SegmentName segment)
    {
        var insn = Ok(hex, CpuMode.Real16);
        Assert.Equal(baseReg, insn.Base);
        Assert.Equal(index, insn.Index);
        Assert.Equal(dispSize, insn.DisplacementSize);
        Assert.Equal((ulong)disp, insn.Displacement);
        Assert.Equal(segment, insn.EffectiveSegment);
        Assert.Equal(2, insn.AddressSize);
        Assert.Equal(2, insn.OperandSize);
        Assert.False(insn.HasSib);
    }

    [Fact]
    public void AddressSizePrefix_In16BitCode_Uses32BitAddressingWithSib()
    {
        var insn = Ok("67 66 8b 04 24", CpuMode.Real16); // mov eax, [esp]
        Assert.True(insn.HasSib);
        Assert.Equal(4, insn.Base);
        Assert.Equal(4, insn.AddressSize);
        Assert.Equal(4, insn.OperandSize);
        Assert.Equal(SegmentName.Ss, insn.EffectiveSegment);
    }

    [Fact]
    public void AddressSizePrefix_In32BitCode_Uses16BitForms()
    {
        var insn = Ok("67 8b 06 34 12", CpuMode.Protected32);
        Assert.Equal(None, insn.Base);
        Assert.Equal(0x1234UL, insn.Displacement);
        Assert.Equal(2, insn.AddressSize);
        Assert.Equal(4, insn.OperandSize);
    }

    [Fact]
    public void LastSegmentOverride_Wins()
    {
        var insn = Ok("26 2e 64 8b 00", CpuMode.Protected32);
        Assert.Equal(SegmentName.Fs, insn.SegmentOverride);
        Assert.Equal(SegmentName.Fs, insn.EffectiveSegment);
    }

    [Fact]
    public void CsOverride_IsIgnoredIn64BitMode_ButFsAndGsApply()
    {
        var cs = Ok("2e 8b 45 00");
        Assert.Equal(SegmentName.Cs, cs.SegmentOverride);
        Assert.Equal(SegmentName.Ss, cs.EffectiveSegment);
        Assert.Equal(SegmentName.Cs, Ok("2e 8b 45 00", CpuMode.Protected32).EffectiveSegment);
        Assert.Equal(SegmentName.Gs, Ok("65 48 8b 04 25 28 00 00 00").EffectiveSegment);
    }

    [Fact]
    public void MovToControlRegister_IgnoresMod_AndHasNoDisplacement()
    {
        var insn = Ok("0f 22 00"); // mov cr0, rax even though mod = 00
        Assert.Equal(Mnemonic.MovToCr, insn.Op);
        Assert.Equal(3, insn.Mod);
        Assert.False(insn.HasMemoryOperand);
        Assert.Equal(8, insn.OperandSize);
        Assert.Equal(8, Ok("44 0f 20 c0").Reg); // mov rax, cr8
    }
}
