using System.Buffers.Binary;
using KvmSharp.Emulator.Decoding;
using KvmSharp.Emulator.Mmu;
using static KvmSharp.Emulator.Execution.X87.X87Bits;

namespace KvmSharp.Emulator.Cpu;

/// <summary>
/// x87 control instructions: FNINIT, FNCLEX, FLDCW, FLDENV/FNSTENV, FRSTOR/FNSAVE. The environment image has four
/// layouts (Intel SDM Vol. 1 Figures 8-9 to 8-12): 14 bytes with a 16-bit operand size, 28 with 32 (and with REX.W,
/// there being no 64-bit form), each in a protected-mode and a real/virtual-8086-mode flavour.
/// </summary>
public sealed partial class Interpreter
{
    private const int RegisterImageSize = 80;

    private bool X87Initialize()
    {
        Fx.InitializeX87();
        return true;
    }

    /// <summary>FNCLEX: clears the exception flags, SF, ES and B.</summary>
    private bool X87ClearExceptions()
    {
        Fx.Fsw = (ushort)(Fx.Fsw & ~(Exceptions | SF | ES | B));
        return true;
    }

    /// <summary>FLDCW; an exception flag the new masks unmask becomes pending (ES), and ES clears when none is left.</summary>
    private bool X87LoadControlWord()
    {
        if (!ReadMemory(_insn.EffectiveSegment, OperandOffset(), 2, MemoryAccess.Read, out ulong value))
        {
            return false;
        }

        Fx.Fcw = (ushort)((value & ControlWordMask) | 0x40);
        UpdateExceptionSummary();
        return true;
    }

    private void UpdateExceptionSummary()
    {
        int fsw = Fx.Fsw;
        fsw = (fsw & ~Fx.Fcw & Exceptions) != 0 ? fsw | ES | B : fsw & ~(ES | B);
        Fx.Fsw = (ushort)fsw;
    }

    private int X87EnvironmentSize => _insn.OperandSize == 2 ? 14 : 28;

    /// <summary>The full tag word, each non-empty register classified from its contents.</summary>
    private ushort FullTagWord()
    {
        int ftw = 0;
        for (int p = 0; p < 8; p++)
        {
            int tag = Fx.Tag(p) == TagEmpty ? TagEmpty : Fx.Classify(p);
            ftw |= tag << (p * 2);
        }

        return (ushort)ftw;
    }

    /// <summary>FNSTENV (then all exceptions masked) and FNSAVE (then FNINIT).</summary>
    private bool X87StoreEnvironment(bool save)
    {
        int environment = X87EnvironmentSize;
        int size = save ? environment + RegisterImageSize : environment;
        Span<byte> image = stackalloc byte[28 + RegisterImageSize];
        image = image[..size];
        WriteEnvironmentImage(image[..environment]);
        if (save)
        {
            for (int i = 0; i < 8; i++)
            {
                var register = image.Slice(environment + (i * 10), 10);
                var value = St(i);
                BinaryPrimitives.WriteUInt64LittleEndian(register, value.Significand);
                BinaryPrimitives.WriteUInt16LittleEndian(register[8..], value.SignExponent);
            }
        }

        if (!WriteMemoryBytes(_insn.EffectiveSegment, OperandOffset(), image))
        {
            return false;
        }

        if (save)
        {
            Fx.InitializeX87();
        }
        else
        {
            Fx.Fcw = (ushort)(Fx.Fcw | Exceptions);
        }

        return true;
    }

    private void WriteEnvironmentImage(Span<byte> image)
    {
        bool real = _mode == CpuMode.Real16;
        uint fip = (uint)Fx.Fip;
        uint fdp = (uint)Fx.Fdp;
        uint fop = (uint)(Fx.Fop & 0x7FF);
        ushort ftw = FullTagWord();
        if (image.Length == 14)
        {
            Write16(image, 0, Fx.Fcw);
            Write16(image, 2, Fx.Fsw);
            Write16(image, 4, ftw);
            Write16(image, 6, (ushort)fip);
            Write16(image, 10, (ushort)fdp);
            if (real)
            {
                Write16(image, 8, (ushort)((((fip >> 16) & 0xF) << 12) | fop));
                Write16(image, 12, (ushort)(((fdp >> 16) & 0xF) << 12));
            }
            else
            {
                Write16(image, 8, 0);  // FCS: deprecated, stored as 0
                Write16(image, 12, 0); // FDS
            }

            return;
        }

        Write32(image, 0, 0xFFFF_0000 | Fx.Fcw);
        Write32(image, 4, 0xFFFF_0000 | Fx.Fsw);
        Write32(image, 8, 0xFFFF_0000 | ftw);
        if (real)
        {
            Write32(image, 12, 0xFFFF_0000 | (fip & 0xFFFF));
            Write32(image, 16, ((fip >> 16) << 12) | fop);
            Write32(image, 20, 0xFFFF_0000 | (fdp & 0xFFFF));
            Write32(image, 24, (fdp >> 16) << 12);
        }
        else
        {
            Write32(image, 12, fip);
            Write32(image, 16, fop << 16);
            Write32(image, 20, fdp);
            Write32(image, 24, 0xFFFF_0000);
        }
    }

    /// <summary>FLDENV and FRSTOR: the tags of non-empty registers are recomputed from their contents; ES/B follow the flags and masks.</summary>
    private bool X87LoadEnvironment(bool restore)
    {
        int environment = X87EnvironmentSize;
        int size = restore ? environment + RegisterImageSize : environment;
        Span<byte> image = stackalloc byte[28 + RegisterImageSize];
        image = image[..size];
        if (!ReadMemoryBytes(_insn.EffectiveSegment, OperandOffset(), image))
        {
            return false;
        }

        bool real = _mode == CpuMode.Real16;
        ushort fcw;
        ushort fsw;
        ushort ftw;
        uint fip;
        uint fdp;
        int fop;
        if (environment == 14)
        {
            fcw = Read16(image, 0);
            fsw = Read16(image, 2);
            ftw = Read16(image, 4);
            fip = Read16(image, 6);
            fdp = Read16(image, 10);
            if (real)
            {
                fip |= (uint)(Read16(image, 8) >> 12) << 16;
                fdp |= (uint)(Read16(image, 12) >> 12) << 16;
                fop = Read16(image, 8) & 0x7FF;
            }
            else
            {
                fop = 0;
            }
        }
        else
        {
            fcw = Read16(image, 0);
            fsw = Read16(image, 4);
            ftw = Read16(image, 8);
            if (real)
            {
                fip = Read16(image, 12) | (((Read32(image, 16) >> 12) & 0xFFFF) << 16);
                fop = (int)(Read32(image, 16) & 0x7FF);
                fdp = Read16(image, 20) | (((Read32(image, 24) >> 12) & 0xFFFF) << 16);
            }
            else
            {
                fip = Read32(image, 12);
                fop = (int)((Read32(image, 16) >> 16) & 0x7FF);
                fdp = Read32(image, 20);
            }
        }

        Fx.Fcw = (ushort)((fcw & ControlWordMask) | 0x40);
        Fx.Fsw = fsw;
        Fx.Fip = fip;
        Fx.Fdp = fdp;
        Fx.Fop = (ushort)fop;
        if (restore)
        {
            for (int i = 0; i < 8; i++)
            {
                var register = image.Slice(environment + (i * 10), 10);
                int p = Physical(i);
                Fx.Significand(p) = BinaryPrimitives.ReadUInt64LittleEndian(register);
                Fx.SignExponent(p) = BinaryPrimitives.ReadUInt16LittleEndian(register[8..]);
            }
        }

        int tags = 0;
        for (int p = 0; p < 8; p++)
        {
            int tag = (ftw >> (p * 2)) & 3;
            tags |= (tag == TagEmpty ? TagEmpty : Fx.Classify(p)) << (p * 2);
        }

        Fx.Ftw = (ushort)tags;
        UpdateExceptionSummary();
        return true;
    }

    private static void Write16(Span<byte> image, int offset, ushort value) => BinaryPrimitives.WriteUInt16LittleEndian(image[offset..], value);

    private static void Write32(Span<byte> image, int offset, uint value) => BinaryPrimitives.WriteUInt32LittleEndian(image[offset..], value);

    private static ushort Read16(ReadOnlySpan<byte> image, int offset) => BinaryPrimitives.ReadUInt16LittleEndian(image[offset..]);

    private static uint Read32(ReadOnlySpan<byte> image, int offset) => BinaryPrimitives.ReadUInt32LittleEndian(image[offset..]);
}
