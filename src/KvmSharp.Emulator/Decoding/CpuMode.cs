namespace KvmSharp.Emulator.Decoding;

/// <summary>
/// The code segment's decoding mode: default operand and address sizes (CS.D, or 64-bit mode when
/// CS.L = 1 in long mode). Compatibility mode decodes as <see cref="Protected16"/> or <see cref="Protected32"/>.
/// </summary>
public enum CpuMode : byte
{
    /// <summary>Real or virtual-8086 mode: 16-bit operands and addresses.</summary>
    Real16,

    /// <summary>Protected mode with a 16-bit code segment (CS.D = 0).</summary>
    Protected16,

    /// <summary>Protected mode with a 32-bit code segment (CS.D = 1).</summary>
    Protected32,

    /// <summary>64-bit mode (long mode, CS.L = 1): REX prefixes, 64-bit addresses.</summary>
    Long64,
}
