namespace KvmSharp.Emulator.Execution;

/// <summary>An ALU result truncated to the operand size, and RFLAGS after the operation.</summary>
/// <param name="Value">The result, zero-extended from the operand size.</param>
/// <param name="RFlags">The complete new RFLAGS (non-arithmetic bits are passed through).</param>
public readonly record struct AluResult(ulong Value, ulong RFlags);

/// <summary>
/// A double-width product: <see cref="Low"/> goes to AL/AX/EAX/RAX (or the destination of the two-
/// and three-operand IMUL), <see cref="High"/> to AH/DX/EDX/RDX. Both are truncated to the operand size.
/// </summary>
public readonly record struct MulResult(ulong Low, ulong High, ulong RFlags);

/// <summary>
/// A division: quotient to AL/AX/EAX/RAX, remainder to AH/DX/EDX/RDX, both truncated to the operand
/// size. When <see cref="DivideError"/> is set the instruction raises #DE and the executor must leave
/// the registers and RFLAGS unchanged; the other fields are then zero.
/// </summary>
public readonly record struct DivResult(ulong Quotient, ulong Remainder, ulong RFlags, bool DivideError);
