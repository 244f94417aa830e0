using FsCheck;
using FsCheck.Fluent;
using KvmSharp.Emulator.Decoding;

namespace KvmSharp.Emulator.Tests;

public class DecoderPropertyTests
{
    private static readonly Gen<byte[]> Spans =
        Gen.Choose(0, 20).SelectMany(static length => Gen.ArrayOf(Gen.Choose(0, 255).Select(static b => (byte)b), length));

    private static readonly Gen<CpuMode> Modes = Gen.Elements(CpuMode.Real16, CpuMode.Protected16, CpuMode.Protected32, CpuMode.Long64);

    [Fact]
    public void AnyBytes_DecodeWithoutThrowing_WithinTheSpanAndFifteenBytes()
    {
        Prop.ForAll(Spans.ToArbitrary(), Modes.ToArbitrary(), static (bytes, mode) =>
        {
            DecodedInstruction insn = default;
            var status = InstructionDecoder.Decode(bytes, mode, ref insn);
            if (status != insn.Status)
            {
                return false;
            }

            return status switch
            {
                DecodeStatus.Ok => insn.Length >= 1 && insn.Length <= bytes.Length && insn.Length <= 15 && insn.Op != Mnemonic.Invalid,
                DecodeStatus.NeedMoreBytes => bytes.Length < 15 && insn.Length == 0,
                _ => insn.Length == 0 && insn.Op == Mnemonic.Invalid,
            };
        }).Check(Config.QuickThrowOnFailure.WithMaxTest(20_000));
    }

    [Fact]
    public void AValidInstruction_DecodesTheSame_FromExactlyItsBytes_AndNeedsMoreBytesFromAnyPrefix()
    {
        // Mostly-valid material: a common opcode byte with random operands, so most samples are Ok.
        var material = Gen.ArrayOf(Gen.Choose(0, 255).Select(static b => (byte)b), 15)
            .Zip(Gen.Elements<byte>(0x01, 0x0F, 0x66, 0x48, 0x81, 0xC7, 0xF7, 0x8B, 0xE8, 0xA1, 0xC8, 0x69, 0xF3, 0x67), static (bytes, first) =>
            {
                bytes[0] = first;
                return bytes;
            });
        Prop.ForAll(material.ToArbitrary(), Modes.ToArbitrary(), static (bytes, mode) =>
        {
            DecodedInstruction full = default;
            if (InstructionDecoder.Decode(bytes, mode, ref full) != DecodeStatus.Ok)
            {
                return true;
            }

            DecodedInstruction exact = default;
            if (InstructionDecoder.Decode(bytes.AsSpan(0, full.Length), mode, ref exact) != DecodeStatus.Ok
                || exact.Length != full.Length || exact.Op != full.Op || exact.Immediate != full.Immediate
                || exact.Displacement != full.Displacement)
            {
                return false;
            }

            for (int length = 0; length < full.Length; length++)
            {
                DecodedInstruction partial = default;
                if (InstructionDecoder.Decode(bytes.AsSpan(0, length), mode, ref partial) != DecodeStatus.NeedMoreBytes)
                {
                    return false;
                }
            }

            return true;
        }).Check(Config.QuickThrowOnFailure.WithMaxTest(20_000));
    }
}
