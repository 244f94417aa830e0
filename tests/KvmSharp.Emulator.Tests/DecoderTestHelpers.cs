using System.Globalization;
using KvmSharp.Emulator.Decoding;

namespace KvmSharp.Emulator.Tests;

internal static class DecoderTestHelpers
{
    public static byte[] Bytes(string hex)
    {
        string[] parts = hex.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var bytes = new byte[parts.Length];
        for (int i = 0; i < parts.Length; i++)
        {
            bytes[i] = byte.Parse(parts[i], NumberStyles.HexNumber, CultureInfo.InvariantCulture);
        }

        return bytes;
    }

    /// <summary>Decodes <paramref name="hex"/> and asserts it is one complete instruction spanning all the bytes.</summary>
    public static DecodedInstruction Ok(string hex, CpuMode mode = CpuMode.Long64)
    {
        var bytes = Bytes(hex);
        DecodedInstruction insn = default;
        Assert.Equal(DecodeStatus.Ok, InstructionDecoder.Decode(bytes, mode, ref insn));
        Assert.Equal(DecodeStatus.Ok, insn.Status);
        Assert.Equal(bytes.Length, insn.Length);
        return insn;
    }

    public static DecodeStatus Status(string hex, CpuMode mode = CpuMode.Long64)
    {
        DecodedInstruction insn = default;
        var status = InstructionDecoder.Decode(Bytes(hex), mode, ref insn);
        Assert.Equal(status, insn.Status);
        return status;
    }
}
