namespace KvmSharp.Emulator.Decoding;

/// <summary>Legacy and REX prefixes present on an instruction.</summary>
[Flags]
#pragma warning disable CA1028 // A 16-bit store keeps DecodedInstruction compact.
public enum InstructionPrefixes : ushort
#pragma warning restore CA1028
{
    /// <summary>No prefix.</summary>
    None = 0,

    /// <summary>66: operand-size override (also set when 66 was a mandatory prefix).</summary>
    OperandSize = 1 << 0,

    /// <summary>67: address-size override.</summary>
    AddressSize = 1 << 1,

    /// <summary>F0: LOCK.</summary>
    Lock = 1 << 2,

    /// <summary>F3: REP/REPE (also set when F3 was a mandatory prefix).</summary>
    Rep = 1 << 3,

    /// <summary>F2: REPNE (also set when F2 was a mandatory prefix).</summary>
    Repne = 1 << 4,

    /// <summary>A REX prefix immediately precedes the opcode (64-bit mode only).</summary>
    Rex = 1 << 5,

    /// <summary>REX.W: 64-bit operand size.</summary>
    RexW = 1 << 6,

    /// <summary>REX.R: extends ModRM.reg.</summary>
    RexR = 1 << 7,

    /// <summary>REX.X: extends SIB.index.</summary>
    RexX = 1 << 8,

    /// <summary>REX.B: extends ModRM.rm, SIB.base or the opcode register.</summary>
    RexB = 1 << 9,
}
