using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace KvmSharp.Emulator.Cpu;

/// <summary>
/// The x87, MMX and SSE register state of one vCPU, and its FXSAVE image (Intel SDM Vol. 1 10.5.1, 64-bit format).
/// x87 registers are kept by physical number (R0-R7) as 80-bit values split in a 64-bit significand and a 16-bit
/// sign+exponent; ST(i) is R((TOP + i) mod 8). MMX register i is the significand of R(i).
/// </summary>
public sealed class FxState
{
    /// <summary>The FXSAVE/FXRSTOR image size.</summary>
    public const int ImageSize = 512;

    /// <summary>MXCSR after reset and FNINIT-independent: all exceptions masked, round to nearest.</summary>
    public const uint DefaultMxcsr = 0x1F80;

    /// <summary>The MXCSR bits this CPU implements (DAZ included); writing others raises #GP.</summary>
    public const uint MxcsrMask = 0xFFFF;

    /// <summary>FCW after FNINIT: all exceptions masked, 64-bit precision, round to nearest.</summary>
    public const ushort DefaultFcw = 0x037F;

    private readonly ulong[] _xmm = new ulong[32];
    private readonly ulong[] _significand = new ulong[8];
    private readonly ushort[] _signExponent = new ushort[8];

    /// <summary>x87 control word.</summary>
    public ushort Fcw { get; set; } = 0x0040;

    /// <summary>x87 status word (TOP in bits 11-13).</summary>
    public ushort Fsw { get; set; }

    /// <summary>x87 full tag word, two bits per physical register (00 valid, 01 zero, 10 special, 11 empty).</summary>
    public ushort Ftw { get; set; } = 0xFFFF;

    /// <summary>The last x87 opcode (11 bits).</summary>
    public ushort Fop { get; set; }

    /// <summary>The last x87 instruction pointer.</summary>
    public ulong Fip { get; set; }

    /// <summary>The last x87 data pointer.</summary>
    public ulong Fdp { get; set; }

    /// <summary>MXCSR.</summary>
    public uint Mxcsr { get; set; } = DefaultMxcsr;

    /// <summary>TOP, the physical register number of ST(0).</summary>
    public int Top
    {
        get => (Fsw >> 11) & 7;
        set => Fsw = (ushort)((Fsw & ~0x3800) | ((value & 7) << 11));
    }

    /// <summary>The 64-bit significand of physical register <paramref name="physical"/> (also MMX register <paramref name="physical"/>).</summary>
    public ref ulong Significand(int physical) => ref _significand[physical];

    /// <summary>The sign (bit 15) and biased exponent (bits 0-14) of physical register <paramref name="physical"/>.</summary>
    public ref ushort SignExponent(int physical) => ref _signExponent[physical];

    /// <summary>The two-bit tag of physical register <paramref name="physical"/>.</summary>
    public int Tag(int physical) => (Ftw >> (physical * 2)) & 3;

    /// <summary>Sets the two-bit tag of physical register <paramref name="physical"/>.</summary>
    public void SetTag(int physical, int tag) => Ftw = (ushort)((Ftw & ~(3 << (physical * 2))) | ((tag & 3) << (physical * 2)));

    /// <summary>Low (<paramref name="half"/> = 0) or high quadword of XMM<paramref name="register"/>.</summary>
    public ref ulong Xmm(int register, int half) => ref _xmm[(register * 2) + half];

    /// <summary>The 16 bytes of XMM<paramref name="register"/>, little-endian.</summary>
    public Span<byte> XmmBytes(int register) => MemoryMarshal.AsBytes(_xmm.AsSpan(register * 2, 2));

    /// <summary>
    /// The effect of an MMX instruction on the x87 state (SDM Vol. 1 9.5.1): TOP = 0 and every tag valid; a write
    /// of MMX register <paramref name="written"/> (or -1) also sets its sign+exponent to all ones.
    /// </summary>
    public void EnterMmx(int written)
    {
        Top = 0;
        Ftw = 0;
        if (written >= 0)
        {
            _signExponent[written] = 0xFFFF;
        }
    }

    /// <summary>FNINIT: control, status and tag words to their initial values; pointers and opcode cleared.</summary>
    public void InitializeX87()
    {
        Fcw = DefaultFcw;
        Fsw = 0;
        Ftw = 0xFFFF;
        Fop = 0;
        Fip = 0;
        Fdp = 0;
    }

    /// <summary>Power-on/INIT state: x87 registers and XMM cleared, FCW 0x40, MXCSR 0x1F80.</summary>
    public void Reset()
    {
        Array.Clear(_xmm);
        Array.Clear(_significand);
        Array.Clear(_signExponent);
        InitializeX87();
        Fcw = 0x0040;
        Mxcsr = DefaultMxcsr;
    }

    /// <summary>FXSAVE (64-bit format, REX.W=1 layout: 64-bit FIP/FDP). Bytes 416-511 are left as they were.</summary>
    public void Save(Span<byte> image)
    {
        image = image[..416];
        image.Clear();
        BinaryPrimitives.WriteUInt16LittleEndian(image, Fcw);
        BinaryPrimitives.WriteUInt16LittleEndian(image[2..], Fsw);
        image[4] = AbridgedTags();
        BinaryPrimitives.WriteUInt16LittleEndian(image[6..], Fop);
        BinaryPrimitives.WriteUInt64LittleEndian(image[8..], Fip);
        BinaryPrimitives.WriteUInt64LittleEndian(image[16..], Fdp);
        BinaryPrimitives.WriteUInt32LittleEndian(image[24..], Mxcsr);
        BinaryPrimitives.WriteUInt32LittleEndian(image[28..], MxcsrMask);
        int top = Top;
        for (int i = 0; i < 8; i++)
        {
            int physical = (top + i) & 7;
            var slot = image.Slice(32 + (16 * i), 16);
            BinaryPrimitives.WriteUInt64LittleEndian(slot, _significand[physical]);
            BinaryPrimitives.WriteUInt16LittleEndian(slot[8..], _signExponent[physical]);
        }

        for (int i = 0; i < 16; i++)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(image[(160 + (16 * i))..], _xmm[i * 2]);
            BinaryPrimitives.WriteUInt64LittleEndian(image[(168 + (16 * i))..], _xmm[(i * 2) + 1]);
        }
    }

    /// <summary>FXRSTOR. False (#GP, nothing changed) when the image sets MXCSR bits outside <see cref="MxcsrMask"/>.</summary>
    public bool TryRestore(ReadOnlySpan<byte> image)
    {
        uint mxcsr = BinaryPrimitives.ReadUInt32LittleEndian(image[24..]);
        if ((mxcsr & ~MxcsrMask) != 0)
        {
            return false;
        }

        Fcw = BinaryPrimitives.ReadUInt16LittleEndian(image);
        Fsw = BinaryPrimitives.ReadUInt16LittleEndian(image[2..]);
        Fop = (ushort)(BinaryPrimitives.ReadUInt16LittleEndian(image[6..]) & 0x7FF);
        Fip = BinaryPrimitives.ReadUInt64LittleEndian(image[8..]);
        Fdp = BinaryPrimitives.ReadUInt64LittleEndian(image[16..]);
        Mxcsr = mxcsr;
        int top = Top;
        for (int i = 0; i < 8; i++)
        {
            int physical = (top + i) & 7;
            var slot = image.Slice(32 + (16 * i), 16);
            _significand[physical] = BinaryPrimitives.ReadUInt64LittleEndian(slot);
            _signExponent[physical] = BinaryPrimitives.ReadUInt16LittleEndian(slot[8..]);
        }

        SetFullTagsFromAbridged(image[4]);
        for (int i = 0; i < 16; i++)
        {
            _xmm[i * 2] = BinaryPrimitives.ReadUInt64LittleEndian(image[(160 + (16 * i))..]);
            _xmm[(i * 2) + 1] = BinaryPrimitives.ReadUInt64LittleEndian(image[(168 + (16 * i))..]);
        }

        return true;
    }

    /// <summary>The abridged tag byte of FXSAVE: bit i set when physical register i is not empty.</summary>
    public byte AbridgedTags()
    {
        int tags = 0;
        for (int i = 0; i < 8; i++)
        {
            if (Tag(i) != 3)
            {
                tags |= 1 << i;
            }
        }

        return (byte)tags;
    }

    /// <summary>Rebuilds the full tag word from an abridged one, classifying each non-empty register's contents.</summary>
    public void SetFullTagsFromAbridged(byte abridged)
    {
        int ftw = 0;
        for (int i = 0; i < 8; i++)
        {
            ftw |= ((abridged >> i) & 1) == 0 ? 3 << (i * 2) : Classify(i) << (i * 2);
        }

        Ftw = (ushort)ftw;
    }

    /// <summary>The tag the contents of physical register <paramref name="physical"/> deserve: 0 valid, 1 zero, 2 special.</summary>
    public int Classify(int physical)
    {
        int exponent = _signExponent[physical] & 0x7FFF;
        ulong significand = _significand[physical];
        if (exponent == 0x7FFF)
        {
            return 2; // infinity or NaN
        }

        if (exponent == 0)
        {
            return significand == 0 ? 1 : 2; // zero, or denormal
        }

        return (significand >> 63) == 0 ? 2 : 0; // unnormal, or valid
    }
}
