namespace KvmSharp.Emulator.Tests.Simd;

/// <summary>The register file a ModRM field names.</summary>
internal enum OperandKind
{
    Xmm,
    Mmx,
    Gpr,
}

/// <summary>Which ModRM.rm forms an encoding has.</summary>
internal enum RmForms
{
    Both,
    RegisterOnly,
    MemoryOnly,
}

/// <summary>What the operand values mostly are, so edge cases of the instruction's data type come up often.</summary>
internal enum ValueKind
{
    Single,
    Double,
    Int32,
    Int64,
    Integer,
}

/// <summary>
/// One instruction encoding to test: mandatory prefix (0 for none), the 0F-map opcode, the register files of
/// ModRM.reg and ModRM.rm, the memory operand's size and alignment, a fixed ModRM.reg for group encodings
/// (-1 otherwise), an imm8, REX.W and the kind of values to generate.
/// </summary>
internal sealed record SimdForm(
    string Name,
    byte Prefix,
    byte Opcode,
    OperandKind Reg,
    OperandKind Rm,
    int MemorySize,
    bool Aligned,
    ValueKind Values,
    RmForms Forms = RmForms.Both,
    int GroupReg = -1,
    bool Immediate = false,
    bool RexW = false)
{
    public override string ToString() => Name;

    /// <summary>
    /// The bytes of the instruction with ModRM.reg = <paramref name="reg"/> (ignored for groups) and ModRM.rm =
    /// register <paramref name="rm"/>, or [RSI + <paramref name="displacement"/>] when <paramref name="memory"/>.
    /// Register numbers 8-15 set REX.R/REX.B; for MMX operands that bit is ignored by the CPU.
    /// </summary>
    public byte[] Encode(int reg, int rm, bool memory, sbyte displacement, byte immediate)
    {
        var code = new List<byte>(12);
        if (Prefix != 0)
        {
            code.Add(Prefix);
        }

        int regField = GroupReg >= 0 ? GroupReg : reg;
        int rex = (RexW ? 8 : 0) | (GroupReg < 0 && reg >= 8 ? 4 : 0) | (!memory && rm >= 8 ? 1 : 0);
        if (rex != 0)
        {
            code.Add((byte)(0x40 | rex));
        }

        code.Add(0x0F);
        code.Add(Opcode);
        if (memory)
        {
            code.Add((byte)(0x40 | ((regField & 7) << 3) | 6)); // [rsi + disp8]
            code.Add((byte)displacement);
        }
        else
        {
            code.Add((byte)(0xC0 | ((regField & 7) << 3) | (rm & 7)));
        }

        if (Immediate)
        {
            code.Add(immediate);
        }

        return [.. code];
    }
}
