using System.Runtime.CompilerServices;
using KvmSharp.Emulator.Decoding;
using static KvmSharp.Emulator.Tests.DecoderTestHelpers;

namespace KvmSharp.Emulator.Tests;

public class LengthLimitTests
{
    [Theory]
    [InlineData(CpuMode.Long64, "2e 48 81 84 88 78 56 34 12 ef be ad de")]    // add qword cs:[rax+rcx*4+0x12345678], imm32
    [InlineData(CpuMode.Long64, "66 0f 3a 0f 8c 24 00 01 00 00 08")]          // palignr xmm1, [rsp+0x100], 8
    [InlineData(CpuMode.Long64, "65 49 b8 88 77 66 55 44 33 22 11")]          // mov r8, imm64
    [InlineData(CpuMode.Protected32, "66 c7 84 24 00 01 00 00 34 12")]        // mov word [esp+0x100], 0x1234
    [InlineData(CpuMode.Real16, "66 67 ea 78 56 34 12 08 00")]                // jmp far 0x8:0x12345678
    [InlineData(CpuMode.Real16, "c7 87 34 12 78 56")]                         // mov word [bx+0x1234], 0x5678
    public void EveryTruncation_OfAValidInstruction_NeedsMoreBytes(CpuMode mode, string hex)
    {
        var bytes = Bytes(hex);
        Ok(hex, mode);
        for (int length = 0; length < bytes.Length; length++)
        {
            DecodedInstruction insn = default;
            Assert.Equal(DecodeStatus.NeedMoreBytes, InstructionDecoder.Decode(bytes.AsSpan(0, length), mode, ref insn));
            Assert.Equal(0, insn.Length);
        }
    }

    [Fact]
    public void FifteenBytes_AreAllowed_AndSixteenAreTooLong()
    {
        var fifteen = new byte[15];
        fifteen.AsSpan(0, 14).Fill(0x66);
        fifteen[14] = 0x90;
        DecodedInstruction insn = default;
        Assert.Equal(DecodeStatus.Ok, InstructionDecoder.Decode(fifteen, CpuMode.Long64, ref insn));
        Assert.Equal(15, insn.Length);

        var sixteen = new byte[16];
        sixteen.AsSpan(0, 15).Fill(0x66);
        sixteen[15] = 0x90;
        Assert.Equal(DecodeStatus.TooLong, InstructionDecoder.Decode(sixteen, CpuMode.Long64, ref insn));

        // Fifteen prefixes are already too long: no more bytes could make a valid instruction.
        Assert.Equal(DecodeStatus.TooLong, InstructionDecoder.Decode(sixteen.AsSpan(0, 15), CpuMode.Long64, ref insn));

        // A displacement or immediate that would cross byte 15 is too long, not short.
        Assert.Equal(DecodeStatus.TooLong, Status("66 66 66 66 66 2e 48 81 84 88 78 56 34 12 ef be ad de"));
    }

    [Fact]
    public void EmptySpan_NeedsMoreBytes()
    {
        DecodedInstruction insn = default;
        Assert.Equal(DecodeStatus.NeedMoreBytes, InstructionDecoder.Decode([], CpuMode.Long64, ref insn));
    }

    [Fact]
    public void DecodedInstruction_IsCompact_AndHoldsNoReferences()
    {
        Assert.Equal(48, Unsafe.SizeOf<DecodedInstruction>());
        Assert.False(RuntimeHelpers.IsReferenceOrContainsReferences<DecodedInstruction>());
    }

    [Fact]
    public void Decode_DoesNotAllocate()
    {
        byte[][] samples =
        [
            Bytes("2e 48 81 84 88 78 56 34 12 ef be ad de"), Bytes("66 0f 3a 0f c1 08"), Bytes("f0 01 c0"),
            Bytes("d9 7d fe"), Bytes("0f 01 f8"), Bytes("48 8b 05 f0 ff ff ff"), Bytes("c8 10 20 03"),
        ];
        DecodedInstruction insn = default;
        void DecodeAll()
        {
            for (int i = 0; i < 10_000; i++)
            {
                InstructionDecoder.Decode(samples[i % samples.Length], (CpuMode)(i & 3), ref insn);
            }
        }

        // Warm up with the same calls in every mode: the first pass may tier up the decoder (a CI run once counted
        // 98,352 bytes when only 64-bit decodes were warmed up).
        DecodeAll();
        long before = GC.GetAllocatedBytesForCurrentThread();
        DecodeAll();

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    [Fact]
    public void UndefinedOpcodeCounters_CountPerMapAndOpcode()
    {
        var counters = new UndefinedOpcodeCounters();
        DecodedInstruction insn = default;
        InstructionDecoder.Decode(Bytes("0f b8 c1"), CpuMode.Long64, ref insn);
        counters.Record(insn);
        counters.Record(insn);
        counters.Record(OpcodeMap.OneByte, 0xD6);

        Assert.Equal(2, counters[OpcodeMap.Map0F, 0xB8]);
        Assert.Equal(1, counters[OpcodeMap.OneByte, 0xD6]);
        Assert.Equal(0, counters[OpcodeMap.OneByte, 0xB8]);
        Assert.Equal(3, counters.Total);
    }
}
