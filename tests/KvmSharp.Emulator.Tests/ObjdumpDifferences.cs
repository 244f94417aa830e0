using KvmSharp.Emulator.Decoding;

namespace KvmSharp.Emulator.Tests;

/// <summary>
/// The known, intended differences between our decoder and objdump. <see cref="Explain"/> returns
/// the reason when one applies; anything else the differential test finds is a decoder bug.
/// Where it can, a rule proves itself: it removes the prefix objdump ignores and checks that we
/// then decode objdump's instruction with objdump's length.
/// </summary>
internal static class ObjdumpDifferences
{
    public static string? Explain(CpuMode mode, ReadOnlySpan<byte> bytes, in DecodedInstruction insn, string objdump, int objdumpLength, bool objdumpBad)
    {
        bool oursInvalid = insn.Status != DecodeStatus.Ok || insn.Op == Mnemonic.Unknown;
        byte opcode = insn.Opcode;
        bool map0F = insn.Map == OpcodeMap.Map0F;
        bool oneByte = insn.Map == OpcodeMap.OneByte;
        if (oursInvalid && !objdumpBad)
        {
            // LOCK on an instruction that cannot take it (or with a register destination) is #UD; objdump prints "lock".
            if ((insn.Prefixes & InstructionPrefixes.Lock) != 0)
            {
                return WithoutPrefixes(mode, bytes, [0xF0], objdump, objdumpLength,
                    "LOCK on a non-lockable instruction or a register operand: #UD (objdump prints 'lock')");
            }

            // A 66/F2/F3 that selects no defined form of an SSE or system opcode is #UD; objdump ignores it.
            if (insn.Map != OpcodeMap.OneByte && (insn.Prefixes & (InstructionPrefixes.OperandSize | InstructionPrefixes.Rep | InstructionPrefixes.Repne)) != 0)
            {
                string? reason = WithoutPrefixes(mode, bytes, [0x66, 0xF2, 0xF3], objdump, objdumpLength,
                    "66/F2/F3 selecting an undefined form of a 0F opcode: #UD (objdump ignores the prefix)");
                if (reason != null)
                {
                    return reason;
                }
            }

            if (oneByte && opcode is 0xC4 or 0xC5 or 0x62 or 0x8F)
            {
                return "VEX/EVEX/XOP encodings: not supported yet, #UD";
            }

            if (map0F && opcode is 0x0E or 0x0F)
            {
                return "3DNow! (FEMMS, 0F 0F): AMD-only and withdrawn, #UD";
            }

            if (oneByte && opcode is 0x8C or 0x8E && (objdump.Contains('?', StringComparison.Ordinal) || objdump.Contains(" cs,", StringComparison.Ordinal)))
            {
                return "MOV Sreg naming no segment register, or MOV to CS: #UD";
            }

            if (map0F && opcode is 0x24 or 0x26)
            {
                return "MOV to/from test registers (386/486 only): #UD";
            }

            if (map0F && opcode is 0x2B or 0x78 or 0x79 && (insn.Prefixes & (InstructionPrefixes.OperandSize | InstructionPrefixes.Rep | InstructionPrefixes.Repne)) != 0)
            {
                return "AMD SSE4a (MOVNTSS/MOVNTSD, EXTRQ, INSERTQ): #UD on Intel";
            }

            if (map0F && opcode == 0x01)
            {
                return "0F 01 extensions not emulated (AMD SVM, SGX, CET, ...): #UD";
            }

            if (map0F && opcode is 0xA6 or 0xA7)
            {
                return "VIA PadLock (0F A6/A7): #UD";
            }

            if (map0F && opcode == 0xAE && (insn.Prefixes & (InstructionPrefixes.OperandSize | InstructionPrefixes.Rep | InstructionPrefixes.Repne)) != 0)
            {
                return "0F AE prefixed forms not emulated (WAITPKG, PTWRITE, CET): #UD";
            }
        }

        if (!oursInvalid && objdumpBad)
        {
            if (oneByte && opcode == 0xD6)
            {
                return "SALC (D6): undocumented but executed by Intel and AMD CPUs outside 64-bit mode; objdump (bad)";
            }

            if (map0F && opcode is 0x1A or 0x1B && (insn.Length == objdumpLength || insn.AddressSize == 2))
            {
                return "0F 1A/1B: hint NOPs without MPX; objdump prints MPX forms with (bad) operands (and gives up in 16-bit addressing)";
            }

            if (map0F && opcode == 0x09 && insn.Length == objdumpLength)
            {
                return "WBINVD with a 66/F2 prefix: the prefix is ignored; objdump (bad)";
            }

            if (map0F && opcode == 0xAE && insn.Op is Mnemonic.Lfence or Mnemonic.Mfence or Mnemonic.Sfence)
            {
                return "LFENCE/MFENCE/SFENCE with ModRM.rm != 0: executed as the fence; objdump (bad)";
            }
        }

        return null;
    }

    /// <summary>
    /// Removes <paramref name="prefixes"/> from the prefix bytes and decodes again: the reason holds when
    /// we then decode objdump's instruction with objdump's length (minus the bytes removed).
    /// </summary>
    private static string? WithoutPrefixes(CpuMode mode, ReadOnlySpan<byte> bytes, ReadOnlySpan<byte> prefixes, string objdump, int objdumpLength, string reason)
    {
        int prefixEnd = PrefixLength(mode, bytes);
        Span<byte> stripped = stackalloc byte[bytes.Length];
        int n = 0, removed = 0;
        for (int i = 0; i < bytes.Length; i++)
        {
            if (i < prefixEnd && prefixes.Contains(bytes[i]))
            {
                removed++;
                continue;
            }

            stripped[n++] = bytes[i];
        }

        DecodedInstruction again = default;
        var status = InstructionDecoder.Decode(stripped[..n], mode, ref again);
        if (status == DecodeStatus.Ok && again.Op != Mnemonic.Unknown)
        {
            return again.Length + removed == objdumpLength ? reason : null;
        }

        return removed == 0 ? null : Explain(mode, stripped[..n], again, objdump, objdumpLength - removed, objdumpBad: false);
    }

    /// <summary>The number of legacy and REX prefix bytes at the start of <paramref name="bytes"/>.</summary>
    private static int PrefixLength(CpuMode mode, ReadOnlySpan<byte> bytes)
    {
        int i = 0;
        while (i < bytes.Length && (bytes[i] is 0x26 or 0x2E or 0x36 or 0x3E or 0x64 or 0x65 or 0x66 or 0x67 or 0xF0 or 0xF2 or 0xF3
            || (mode == CpuMode.Long64 && (bytes[i] & 0xF0) == 0x40)))
        {
            i++;
        }

        return i;
    }
}
