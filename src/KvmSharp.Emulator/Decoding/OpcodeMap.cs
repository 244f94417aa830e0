namespace KvmSharp.Emulator.Decoding;

/// <summary>The opcode map an instruction's opcode byte belongs to (Intel SDM Vol. 2, Appendix A).</summary>
public enum OpcodeMap : byte
{
    /// <summary>The one-byte map.</summary>
    OneByte,

    /// <summary>The two-byte map, escape 0F.</summary>
    Map0F,

    /// <summary>The three-byte map, escape 0F 38.</summary>
    Map0F38,

    /// <summary>The three-byte map, escape 0F 3A.</summary>
    Map0F3A,
}
