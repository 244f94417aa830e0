using System.Runtime.InteropServices;

namespace KvmSharp.Emulator.Decoding;

/// <summary>
/// One decoded x86 instruction: its length, prefixes, opcode identity and operand encoding.
/// Holds no references, so a per-page cache can keep arrays of them; 48 bytes.
/// </summary>
/// <remarks>
/// Register numbers are 0-15 with the REX extension applied. A memory operand is
/// <c>[Base + Index * Scale + Displacement]</c> truncated to <see cref="AddressSize"/>, with
/// <see cref="NoRegister"/> meaning "absent"; a RIP-relative operand adds the next instruction's
/// address instead of a base. In 16-bit addressing, Base and Index name the 16-bit registers of
/// the classic forms: [BX+SI] is Base 3, Index 6; [BP] is Base 5.
/// </remarks>
[StructLayout(LayoutKind.Sequential)]
public struct DecodedInstruction
{
    /// <summary>The register number that means "no base" or "no index".</summary>
    public const byte NoRegister = 0xFF;

    /// <summary>The displacement, sign-extended to 64 bits (0 when there is none).</summary>
    public ulong Displacement { get; internal set; }

    /// <summary>The first immediate, zero-extended from <see cref="ImmediateSize"/> bytes.</summary>
    /// <remarks>The offset of a far pointer or of MOV moffs; the iw of ENTER; a relative branch's displacement.</remarks>
    public ulong Immediate { get; internal set; }

    /// <summary>The instruction's identity; <see cref="Mnemonic.Invalid"/> unless the status is Ok.</summary>
    public Mnemonic Op { get; internal set; }

    /// <summary>The second immediate: the selector of a far pointer, the ib of ENTER.</summary>
    public ushort Immediate2 { get; internal set; }

    /// <summary>Prefixes present on the instruction.</summary>
    public InstructionPrefixes Prefixes { get; internal set; }

    /// <summary>The outcome of the decode.</summary>
    public DecodeStatus Status { get; internal set; }

    /// <summary>The mode the bytes were decoded in.</summary>
    public CpuMode Mode { get; internal set; }

    /// <summary>The instruction length in bytes, 1-15 (0 unless the status is Ok).</summary>
    public byte Length { get; internal set; }

    /// <summary>The opcode map (valid once the opcode byte was read, also for Invalid).</summary>
    public OpcodeMap Map { get; internal set; }

    /// <summary>The opcode byte within <see cref="Map"/>.</summary>
    public byte Opcode { get; internal set; }

    /// <summary>The last segment-override prefix, or <see cref="SegmentName.None"/>.</summary>
    public SegmentName SegmentOverride { get; internal set; }

    /// <summary>The prefix that selected an SSE form (None for instructions without one).</summary>
    public MandatoryPrefix MandatoryPrefix { get; internal set; }

    /// <summary>The raw ModRM byte (when <see cref="HasModRm"/>).</summary>
    public byte ModRm { get; internal set; }

    /// <summary>ModRM.mod: 3 means a register operand (always 3 for MOV CR/DR).</summary>
    public byte Mod { get; internal set; }

    /// <summary>ModRM.reg with REX.R: a register number, or the group sub-opcode (0-7).</summary>
    public byte Reg { get; internal set; }

    /// <summary>ModRM.rm with REX.B: the register operand when <see cref="Mod"/> is 3.</summary>
    public byte Rm { get; internal set; }

    /// <summary>The memory operand's base register, or <see cref="NoRegister"/>.</summary>
    public byte Base { get; internal set; }

    /// <summary>The memory operand's index register, or <see cref="NoRegister"/>.</summary>
    public byte Index { get; internal set; }

    /// <summary>The index scale: 1, 2, 4 or 8.</summary>
    public byte Scale { get; internal set; }

    /// <summary>Displacement bytes: 0, 1, 2 or 4.</summary>
    public byte DisplacementSize { get; internal set; }

    /// <summary>First immediate bytes: 0, 1, 2, 4 or 8.</summary>
    public byte ImmediateSize { get; internal set; }

    /// <summary>Second immediate bytes: 0, 1 or 2.</summary>
    public byte Immediate2Size { get; internal set; }

    /// <summary>The effective operand size in bytes: 1 (byte forms), 2, 4 or 8.</summary>
    public byte OperandSize { get; internal set; }

    /// <summary>The effective address size in bytes: 2, 4 or 8.</summary>
    public byte AddressSize { get; internal set; }

    internal DecodedFlags Flags { get; set; }

    /// <summary>The instruction has a ModRM byte.</summary>
    public readonly bool HasModRm => (Flags & DecodedFlags.HasModRm) != 0;

    /// <summary>The instruction has a SIB byte.</summary>
    public readonly bool HasSib => (Flags & DecodedFlags.HasSib) != 0;

    /// <summary>The ModRM operand is in memory (mod != 3).</summary>
    public readonly bool HasMemoryOperand => (Flags & DecodedFlags.Memory) != 0;

    /// <summary>The memory operand is RIP-relative (EIP-relative with a 67 prefix); 64-bit mode only.</summary>
    public readonly bool IsRipRelative => (Flags & DecodedFlags.RipRelative) != 0;

    /// <summary>REX.W is set.</summary>
    public readonly bool RexW => (Prefixes & InstructionPrefixes.RexW) != 0;

    /// <summary>A REX prefix is present (byte registers 4-7 are SPL..DIL rather than AH..BH).</summary>
    public readonly bool HasRex => (Prefixes & InstructionPrefixes.Rex) != 0;

    /// <summary>The condition code (0-15) of Jcc, SETcc and CMOVcc: the opcode's low nibble.</summary>
    public readonly int Condition => Opcode & 0xF;

    /// <summary>The register encoded in the opcode's low three bits with REX.B (PUSH r, MOV r, imm, BSWAP, XCHG).</summary>
    public readonly int OpcodeRegister => (Opcode & 7) | ((Prefixes & InstructionPrefixes.RexB) != 0 ? 8 : 0);

    /// <summary>For x87 escapes (D8-DF): (opcode - D8) * 8 + ModRM.reg, the SDM's sub-opcode index 0-63.</summary>
    public readonly int X87Index => ((Opcode - 0xD8) << 3) | (ModRm >> 3 & 7);

    /// <summary>The immediate sign-extended from <see cref="ImmediateSize"/> bytes.</summary>
    public readonly long SignedImmediate => ImmediateSize switch
    {
        1 => (sbyte)Immediate,
        2 => (short)Immediate,
        4 => (int)Immediate,
        _ => (long)Immediate,
    };

    /// <summary>
    /// The segment a memory operand uses: the override if one applies, else SS for rBP/rSP bases
    /// (BP in 16-bit addressing), else DS. 64-bit mode ignores ES/CS/SS/DS overrides.
    /// </summary>
    public readonly SegmentName EffectiveSegment
    {
        get
        {
            var segment = SegmentOverride;
            if (segment != SegmentName.None
                && (Mode != CpuMode.Long64 || segment is SegmentName.Fs or SegmentName.Gs))
            {
                return segment;
            }

            return Base is 4 or 5 && !IsRipRelative ? SegmentName.Ss : SegmentName.Ds;
        }
    }
}

[Flags]
internal enum DecodedFlags : byte
{
    None = 0,
    HasModRm = 1 << 0,
    HasSib = 1 << 1,
    Memory = 1 << 2,
    RipRelative = 1 << 3,
}
