namespace KvmSharp.Emulator.Decoding;

/// <summary>The immediate operands an opcode carries after its ModRM/SIB/displacement.</summary>
internal enum ImmKind : byte
{
    None,

    /// <summary>One byte (also rel8).</summary>
    Ib,

    /// <summary>Two bytes regardless of operand size (RET iw).</summary>
    Iw,

    /// <summary>Two bytes at 16-bit operand size, else four (also rel16/rel32).</summary>
    Iz,

    /// <summary>The full operand size: 2, 4 or 8 bytes (MOV r, imm).</summary>
    Iv,

    /// <summary>A far pointer: a 2- or 4-byte offset, then a 2-byte selector.</summary>
    Ap,

    /// <summary>A memory offset of the address size (MOV AL/eAX, moffs).</summary>
    Moffs,

    /// <summary>A word, then a byte (ENTER).</summary>
    IwIb,
}

[Flags]
internal enum OpFlags : ushort
{
    None = 0,
    ModRm = 1 << 0,

    /// <summary>The operand size is one byte.</summary>
    ByteOp = 1 << 1,

    /// <summary>64-bit mode: the operand size is 64 unless 66 makes it 16 (PUSH, POP, RET ...).</summary>
    Default64 = 1 << 2,

    /// <summary>64-bit mode: the operand size is 64, 66 is ignored (near branches, MOV CR).</summary>
    Force64 = 1 << 3,

    /// <summary>#UD in 64-bit mode.</summary>
    Invalid64 = 1 << 4,

    /// <summary>LOCK is allowed with a memory destination.</summary>
    Lockable = 1 << 5,

    /// <summary>ModRM.rm always names a register whatever mod says (MOV CR/DR).</summary>
    RegisterOnly = 1 << 6,

    /// <summary>0F map: the form is chosen by the mandatory prefix (a second table).</summary>
    PrefixTable = 1 << 7,

    /// <summary>The 66 prefix selected this form and does not change the operand size.</summary>
    Mandatory66 = 1 << 8,

    /// <summary>ModRM.reg selects the operation from a group table.</summary>
    Group = 1 << 9,

    /// <summary>An x87 escape (D8-DF).</summary>
    X87 = 1 << 10,

    /// <summary>#UD outside 64-bit mode.</summary>
    Only64 = 1 << 11,
}

/// <summary>One opcode table slot: the operation for memory and register ModRM forms and how to decode it.</summary>
internal readonly struct OpcodeEntry(Mnemonic memoryForm, Mnemonic registerForm, OpFlags flags, ImmKind immediate, byte group)
{
    /// <summary>The operation when ModRM.mod != 3, or when there is no ModRM.</summary>
    public Mnemonic MemoryForm { get; } = memoryForm;

    /// <summary>The operation when ModRM.mod == 3.</summary>
    public Mnemonic RegisterForm { get; } = registerForm;

    public OpFlags Flags { get; } = flags;

    public ImmKind Immediate { get; } = immediate;

    /// <summary>The group table index when <see cref="OpFlags.Group"/> is set.</summary>
    public byte Group { get; } = group;

    public bool IsUndefined => MemoryForm == Mnemonic.Invalid && RegisterForm == Mnemonic.Invalid && (Flags & OpFlags.Group) == 0;
}
