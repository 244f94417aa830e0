using System.Buffers.Binary;
using KvmSharp.Emulator.Mmu;

namespace KvmSharp.Emulator.Cpu;

/// <summary>EMMS and group 15: FXSAVE, FXRSTOR, LDMXCSR, STMXCSR, CLFLUSH.</summary>
public sealed partial class Interpreter
{
    /// <summary>The bytes FXSAVE writes: 416-511 are reserved or available to software and left as they are.</summary>
    private const int FxsaveWrittenBytes = 416;

    /// <summary>EMMS: TOP = 0 and every x87 tag empty.</summary>
    private bool ExecuteEmms()
    {
        if (!MmxAvailable())
        {
            return false;
        }

        _state.Fx.Top = 0; // like every MMX instruction; then all registers are marked empty
        _state.Fx.Ftw = 0xFFFF;
        return true;
    }

    /// <summary>FXSAVE/FXRSTOR: #NM with CR0.TS or CR0.EM.</summary>
    private bool FxsrAvailable() =>
        (_state.Cr0 & (Cr0Ts | Cr0Em)) == 0 || Fault(CpuException.DeviceNotAvailable);

    /// <summary>
    /// Translates the 512-byte FXSAVE area: the segment checks, #GP(0) unless 16-byte aligned, then both pages for
    /// <paramref name="access"/> before anything is read or written.
    /// </summary>
    private bool TranslateFxArea(MemoryAccess access, out ulong first, out ulong second, out int firstLength)
    {
        first = second = 0;
        firstLength = 0;
        if (!Linear(_insn.EffectiveSegment, OperandOffset(), FxState.ImageSize, access, out ulong linear))
        {
            return false;
        }

        if ((linear & 15) != 0)
        {
            return GeneralProtection();
        }

        return TranslateRange(linear, FxState.ImageSize, access, Privilege, out first, out second, out firstLength);
    }

    /// <summary>
    /// FXSAVE m512: the 64-bit layout with REX.W; otherwise FIP and FDP are stored as 32-bit offsets followed by
    /// FCS/FDS, which this CPU stores as zero (the "FCS and FDS deprecated" behaviour of current Intel processors).
    /// </summary>
    private bool ExecuteFxsave()
    {
        if (!FxsrAvailable() || !TranslateFxArea(MemoryAccess.Write, out ulong first, out ulong second, out int firstLength))
        {
            return false;
        }

        Span<byte> image = stackalloc byte[FxsaveWrittenBytes];
        _state.Fx.Save(image);
        if (!_insn.RexW)
        {
            image.Slice(12, 4).Clear(); // FCS and the reserved word after it; FIP keeps its low 32 bits
            image.Slice(20, 4).Clear(); // FDS likewise
        }

        int firstPart = Math.Min(firstLength, FxsaveWrittenBytes);
        WritePhysical(first, image[..firstPart]);
        if (firstPart < FxsaveWrittenBytes)
        {
            WritePhysical(second, image[firstPart..]);
        }

        return true;
    }

    /// <summary>FXRSTOR m512: #GP(0) (nothing restored) when the image sets reserved MXCSR bits; without REX.W, FIP/FDP are 32-bit offsets.</summary>
    private bool ExecuteFxrstor()
    {
        if (!FxsrAvailable() || !TranslateFxArea(MemoryAccess.Read, out ulong first, out ulong second, out int firstLength))
        {
            return false;
        }

        Span<byte> image = stackalloc byte[FxState.ImageSize];
        ReadPhysical(first, image[..firstLength]);
        if (firstLength < FxState.ImageSize)
        {
            ReadPhysical(second, image[firstLength..]);
        }

        if (!_insn.RexW)
        {
            image.Slice(12, 4).Clear(); // FCS: ignored
            image.Slice(20, 4).Clear(); // FDS: ignored
        }

        // As the hardware loads them: FCW bits 7 and 13-15 read as 0 and bit 6 as 1; FSW.ES and FSW.B are
        // recomputed from the exception flags the control word leaves unmasked.
        ushort fcw = (ushort)((BinaryPrimitives.ReadUInt16LittleEndian(image) & 0x1F3F) | 0x40);
        ushort fsw = BinaryPrimitives.ReadUInt16LittleEndian(image[2..]);
        bool pending = (fsw & ~fcw & 0x3F) != 0;
        fsw = (ushort)((fsw & 0x7F7F) | (pending ? 0x8080 : 0));
        BinaryPrimitives.WriteUInt16LittleEndian(image, fcw);
        BinaryPrimitives.WriteUInt16LittleEndian(image[2..], fsw);
        return _state.Fx.TryRestore(image) || GeneralProtection();
    }

    /// <summary>LDMXCSR m32: #GP(0) for bits outside MXCSR_MASK. Loading unmasked flags raises nothing by itself.</summary>
    private bool ExecuteLdmxcsr()
    {
        if (!SseAvailable() || !ReadMemory(_insn.EffectiveSegment, OperandOffset(), 4, MemoryAccess.Read, out ulong value))
        {
            return false;
        }

        if ((value & ~(ulong)FxState.MxcsrMask) != 0)
        {
            return GeneralProtection();
        }

        _state.Fx.Mxcsr = (uint)value;
        return true;
    }

    /// <summary>STMXCSR m32.</summary>
    private bool ExecuteStmxcsr() =>
        SseAvailable() && WriteMemory(_insn.EffectiveSegment, OperandOffset(), 4, _state.Fx.Mxcsr);

    /// <summary>CLFLUSH m8: the address is checked like a byte read (segment, #PF); caches are not modelled.</summary>
    private bool ExecuteClflush()
    {
        return Linear(_insn.EffectiveSegment, OperandOffset(), 1, MemoryAccess.Read, out ulong linear)
            && Translate(linear, MemoryAccess.Read, Privilege, out _);
    }
}
