using System.Buffers.Binary;

namespace KvmSharp.Emulator.Tests.Simd;

/// <summary>
/// Everything a SIMD differential case sets and compares: the x87/MMX/SSE state as a 512-byte FXSAVE image
/// (64-bit layout), the 16 GPRs, RFLAGS and a data area that memory operands point into. RSI and RDI hold
/// offsets into the data area; each runner adds the area's address (host or guest) and subtracts it again.
/// </summary>
internal sealed class SimdMachineState
{
    public const int DataSize = 1024;
    public const int Rsi = 6;
    public const int Rdi = 7;

    public byte[] FxImage { get; } = new byte[512];

    public ulong[] Gpr { get; } = new ulong[16];

    public ulong Flags { get; set; } = 0x2;

    public byte[] Data { get; } = new byte[DataSize];

    public uint Mxcsr
    {
        get => BinaryPrimitives.ReadUInt32LittleEndian(FxImage.AsSpan(24));
        set => BinaryPrimitives.WriteUInt32LittleEndian(FxImage.AsSpan(24), value);
    }

    public ushort Fsw
    {
        get => BinaryPrimitives.ReadUInt16LittleEndian(FxImage.AsSpan(2));
        set => BinaryPrimitives.WriteUInt16LittleEndian(FxImage.AsSpan(2), value);
    }

    /// <summary>Quadword <paramref name="half"/> of XMM<paramref name="register"/>.</summary>
    public ulong Xmm(int register, int half) => BinaryPrimitives.ReadUInt64LittleEndian(FxImage.AsSpan(160 + (16 * register) + (8 * half)));

    public void SetXmm(int register, int half, ulong value) =>
        BinaryPrimitives.WriteUInt64LittleEndian(FxImage.AsSpan(160 + (16 * register) + (8 * half)), value);

    /// <summary>The 64-bit significand in FXSAVE slot <paramref name="slot"/> (ST(slot); MMX register (TOP + slot) mod 8).</summary>
    public ulong StSignificand(int slot) => BinaryPrimitives.ReadUInt64LittleEndian(FxImage.AsSpan(32 + (16 * slot)));

    public void SetSt(int slot, ulong significand, ushort signExponent)
    {
        BinaryPrimitives.WriteUInt64LittleEndian(FxImage.AsSpan(32 + (16 * slot)), significand);
        BinaryPrimitives.WriteUInt16LittleEndian(FxImage.AsSpan(40 + (16 * slot)), signExponent);
    }

    public SimdMachineState Clone()
    {
        var copy = new SimdMachineState { Flags = Flags };
        FxImage.CopyTo(copy.FxImage, 0);
        Gpr.CopyTo(copy.Gpr, 0);
        Data.CopyTo(copy.Data, 0);
        return copy;
    }
}
