namespace KvmSharp.Emulator.Decoding;

/// <summary>What <see cref="InstructionDecoder.Decode"/> made of the bytes.</summary>
public enum DecodeStatus : byte
{
    /// <summary>A complete instruction; <see cref="DecodedInstruction.Length"/> bytes long.</summary>
    Ok,

    /// <summary>The bytes form an undefined or unsupported encoding: the guest gets #UD.</summary>
    Invalid,

    /// <summary>The span ends before the instruction does: fetch the next page and decode again.</summary>
    NeedMoreBytes,

    /// <summary>The instruction would exceed 15 bytes: the guest gets #GP(0).</summary>
    TooLong,
}
