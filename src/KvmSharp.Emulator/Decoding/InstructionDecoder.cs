using System.Buffers.Binary;
using System.Runtime.CompilerServices;

namespace KvmSharp.Emulator.Decoding;

/// <summary>
/// Decodes one x86 instruction (16-, 32- or 64-bit code) from its bytes into a
/// <see cref="DecodedInstruction"/>, driven by <see cref="OpcodeTables"/>. Any byte sequence
/// yields a decode or a status; nothing throws and nothing allocates.
/// </summary>
public static class InstructionDecoder
{
    /// <summary>The architectural instruction length limit: longer ones raise #GP(0).</summary>
    public const int MaxInstructionLength = 15;

    private const byte NoRegister = DecodedInstruction.NoRegister;

    // 16-bit addressing: base and index for ModRM.rm 0-7 ([BX+SI], [BX+DI], [BP+SI], [BP+DI], [SI], [DI], [BP], [BX]).
    private static ReadOnlySpan<byte> Base16 => [3, 3, 5, 5, 6, 7, 5, 3];

    private static ReadOnlySpan<byte> Index16 => [6, 7, 6, 7, NoRegister, NoRegister, NoRegister, NoRegister];

    /// <summary>
    /// Decodes the instruction at the start of <paramref name="code"/> (only the first 15 bytes are looked at).
    /// </summary>
    /// <param name="code">The bytes at the instruction pointer; fewer than 15 near the end of mapped memory.</param>
    /// <param name="mode">The code segment's mode.</param>
    /// <param name="instruction">Receives the decode; its <see cref="DecodedInstruction.Status"/> equals the result.</param>
    /// <returns>
    /// <see cref="DecodeStatus.Ok"/>; <see cref="DecodeStatus.Invalid"/> (#UD);
    /// <see cref="DecodeStatus.NeedMoreBytes"/> when the span ends inside the instruction;
    /// <see cref="DecodeStatus.TooLong"/> when it would exceed 15 bytes (#GP).
    /// </returns>
    public static DecodeStatus Decode(ReadOnlySpan<byte> code, CpuMode mode, ref DecodedInstruction instruction)
    {
        instruction = default;
        instruction.Mode = mode;
        instruction.SegmentOverride = SegmentName.None;
        instruction.Base = NoRegister;
        instruction.Index = NoRegister;
        instruction.Scale = 1;
        if (code.Length > MaxInstructionLength)
        {
            code = code[..MaxInstructionLength];
        }

        var status = DecodeCore(code, mode, ref instruction);
        instruction.Status = status;
        if (status != DecodeStatus.Ok)
        {
            instruction.Op = Mnemonic.Invalid;
            instruction.Length = 0;
        }

        return status;
    }

    /// <summary>The status when <paramref name="needed"/> bytes are required but the span is shorter.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static DecodeStatus Short(int needed) =>
        needed > MaxInstructionLength ? DecodeStatus.TooLong : DecodeStatus.NeedMoreBytes;

    private static DecodeStatus DecodeCore(ReadOnlySpan<byte> code, CpuMode mode, ref DecodedInstruction insn)
    {
        bool is64 = mode == CpuMode.Long64;
        int pos = 0;
        int rex = 0;
        int lastRep = 0;
        var prefixes = InstructionPrefixes.None;
        var segment = SegmentName.None;
        byte b;

        // Legacy prefixes in any order and number; a REX counts only right before the opcode.
        while (true)
        {
            if (pos >= code.Length)
            {
                return Short(pos + 1);
            }

            b = code[pos];
            switch (b)
            {
                case 0x26: segment = SegmentName.Es; break;
                case 0x2E: segment = SegmentName.Cs; break;
                case 0x36: segment = SegmentName.Ss; break;
                case 0x3E: segment = SegmentName.Ds; break;
                case 0x64: segment = SegmentName.Fs; break;
                case 0x65: segment = SegmentName.Gs; break;
                case 0x66: prefixes |= InstructionPrefixes.OperandSize; break;
                case 0x67: prefixes |= InstructionPrefixes.AddressSize; break;
                case 0xF0: prefixes |= InstructionPrefixes.Lock; break;
                case 0xF2: prefixes |= InstructionPrefixes.Repne; lastRep = 0xF2; break;
                case 0xF3: prefixes |= InstructionPrefixes.Rep; lastRep = 0xF3; break;
                default:
                    if (is64 && (b & 0xF0) == 0x40)
                    {
                        rex = b;
                        pos++;
                        continue;
                    }

                    goto Opcode;
            }

            rex = 0;
            pos++;
        }

    Opcode:
        pos++;
        if (rex != 0)
        {
            prefixes |= InstructionPrefixes.Rex
                | ((rex & 8) != 0 ? InstructionPrefixes.RexW : 0)
                | ((rex & 4) != 0 ? InstructionPrefixes.RexR : 0)
                | ((rex & 2) != 0 ? InstructionPrefixes.RexX : 0)
                | ((rex & 1) != 0 ? InstructionPrefixes.RexB : 0);
        }

        insn.Prefixes = prefixes;
        insn.SegmentOverride = segment;
        bool has66 = (prefixes & InstructionPrefixes.OperandSize) != 0;
        var mandatory = lastRep == 0xF3 ? MandatoryPrefix.PF3
            : lastRep == 0xF2 ? MandatoryPrefix.PF2
            : has66 ? MandatoryPrefix.P66
            : MandatoryPrefix.None;

        OpcodeEntry entry;
        bool prefixSelected = false;
        if (b == 0x0F)
        {
            if (pos >= code.Length)
            {
                return Short(pos + 1);
            }

            byte second = code[pos++];
            if (second is 0x38 or 0x3A)
            {
                if (pos >= code.Length)
                {
                    return Short(pos + 1);
                }

                b = code[pos++];
                insn.Map = second == 0x38 ? OpcodeMap.Map0F38 : OpcodeMap.Map0F3A;
                entry = (second == 0x38 ? OpcodeTables.Map0F38 : OpcodeTables.Map0F3A)[b * 4 + (int)mandatory];
                prefixSelected = true;
            }
            else
            {
                b = second;
                insn.Map = OpcodeMap.Map0F;
                entry = OpcodeTables.Map0F[b];
                if ((entry.Flags & OpFlags.PrefixTable) != 0)
                {
                    entry = OpcodeTables.Map0FPrefixed[b * 4 + (int)mandatory];
                    prefixSelected = true;
                }
            }
        }
        else
        {
            insn.Map = OpcodeMap.OneByte;
            entry = b == 0x63 && is64 ? OpcodeTables.Movsxd : OpcodeTables.OneByte[b];
        }

        insn.Opcode = b;
        var flags = entry.Flags;
        if (entry.IsUndefined
            || (is64 && (flags & OpFlags.Invalid64) != 0))
        {
            return DecodeStatus.Invalid;
        }

        if (prefixSelected && mandatory != MandatoryPrefix.None)
        {
            insn.MandatoryPrefix = mandatory;
        }

        bool lockPrefix = (prefixes & InstructionPrefixes.Lock) != 0;
        var immediate = entry.Immediate;
        Mnemonic op;
        int mod = 3;
        int modRm = 0;
        if ((flags & OpFlags.ModRm) != 0)
        {
            if (pos >= code.Length)
            {
                return Short(pos + 1);
            }

            modRm = code[pos++];
            mod = modRm >> 6;
            int reg = (modRm >> 3) & 7;
            if ((flags & OpFlags.RegisterOnly) != 0)
            {
                mod = 3;
            }

            if ((flags & OpFlags.Group) != 0)
            {
                var groupEntry = entry.Group switch
                {
                    OpcodeTables.GroupSystem0F01 when mod == 3 => System0F01Register(modRm, is64),
                    OpcodeTables.Group0FC7 => Group0FC7(mod, reg, mandatory),
                    OpcodeTables.Group0FAE => Group0FAE(mod, reg, mandatory),
                    _ => OpcodeTables.Groups[entry.Group * 16 + (mod == 3 ? 8 : 0) + reg],
                };
                op = mod == 3 ? groupEntry.RegisterForm : groupEntry.MemoryForm;
                flags |= groupEntry.Flags;
                if (groupEntry.Immediate != ImmKind.None)
                {
                    immediate = groupEntry.Immediate;
                }

                if ((op is Mnemonic.Psrldq or Mnemonic.Pslldq && mandatory != MandatoryPrefix.P66)
                    || (op is Mnemonic.Xabort or Mnemonic.Xbegin && (modRm & 7) != 0))
                {
                    return DecodeStatus.Invalid;
                }

                insn.Reg = (byte)reg;
            }
            else
            {
                op = mod == 3 ? entry.RegisterForm : entry.MemoryForm;
                // A segment register field has three bits: REX.R does not extend it.
                insn.Reg = (byte)(op is Mnemonic.MovFromSreg or Mnemonic.MovToSreg ? reg : reg | ((rex & 4) << 1));
            }

            if (op == Mnemonic.Invalid
                || ((flags & OpFlags.X87) != 0 && !IsDefinedX87(b, modRm))
                || (op == Mnemonic.MovFromSreg && reg > 5)
                || (op == Mnemonic.MovToSreg && (reg > 5 || reg == 1)))
            {
                return DecodeStatus.Invalid;
            }

            insn.Flags |= DecodedFlags.HasModRm;
            insn.ModRm = (byte)modRm;
            insn.Mod = (byte)mod;
            insn.Rm = (byte)((modRm & 7) | ((rex & 1) << 3));
        }
        else
        {
            op = entry.MemoryForm;
            if (b == 0x90 && insn.Map == OpcodeMap.OneByte)
            {
                op = (rex & 1) != 0 ? Mnemonic.Xchg : lastRep == 0xF3 ? Mnemonic.Pause : Mnemonic.Nop;
            }
        }

        if ((flags & OpFlags.Only64) != 0 && !is64)
        {
            return DecodeStatus.Invalid;
        }

        if (lockPrefix && ((flags & OpFlags.Lockable) == 0 || mod == 3))
        {
            return DecodeStatus.Invalid;
        }

        insn.Op = op;

        // Operand size: byte forms; 64-bit defaults; else 66 toggles the segment's default.
        bool operandOverride = has66 && !(prefixSelected && mandatory == MandatoryPrefix.P66 && (flags & OpFlags.Mandatory66) != 0);
        int operandSize;
        if ((flags & OpFlags.ByteOp) != 0)
        {
            operandSize = 1;
        }
        else if (is64)
        {
            operandSize = (flags & OpFlags.Force64) != 0 || (rex & 8) != 0 ? 8
                : operandOverride ? 2
                : (flags & OpFlags.Default64) != 0 ? 8 : 4;
        }
        else
        {
            operandSize = (mode == CpuMode.Protected32) != operandOverride ? 4 : 2;
        }

        bool addressOverride = (prefixes & InstructionPrefixes.AddressSize) != 0;
        int addressSize = is64 ? (addressOverride ? 4 : 8) : (mode == CpuMode.Protected32) != addressOverride ? 4 : 2;
        insn.OperandSize = (byte)operandSize;
        insn.AddressSize = (byte)addressSize;

        if (mod != 3)
        {
            var status = DecodeMemoryOperand(code, ref pos, ref insn, modRm, rex, addressSize, is64);
            if (status != DecodeStatus.Ok)
            {
                return status;
            }
        }

        if (immediate != ImmKind.None)
        {
            var status = DecodeImmediates(code, ref pos, ref insn, immediate, operandSize, addressSize);
            if (status != DecodeStatus.Ok)
            {
                return status;
            }
        }

        insn.Length = (byte)pos;
        return DecodeStatus.Ok;
    }

    private static DecodeStatus DecodeMemoryOperand(
        ReadOnlySpan<byte> code, ref int pos, ref DecodedInstruction insn, int modRm, int rex, int addressSize, bool is64)
    {
        int mod = modRm >> 6;
        int rm = modRm & 7;
        int displacementSize;
        insn.Flags |= DecodedFlags.Memory;
        if (addressSize == 2)
        {
            if (mod == 0 && rm == 6)
            {
                displacementSize = 2;
            }
            else
            {
                insn.Base = Base16[rm];
                insn.Index = Index16[rm];
                displacementSize = mod; // 0, 1 or 2 bytes
            }
        }
        else
        {
            displacementSize = mod == 1 ? 1 : mod == 2 ? 4 : 0;
            if (rm == 4)
            {
                if (pos >= code.Length)
                {
                    return Short(pos + 1);
                }

                int sib = code[pos++];
                insn.Flags |= DecodedFlags.HasSib;
                insn.Scale = (byte)(1 << (sib >> 6));
                int index = ((sib >> 3) & 7) | ((rex & 2) << 2);
                if (index != 4)
                {
                    insn.Index = (byte)index;
                }

                if ((sib & 7) == 5 && mod == 0)
                {
                    displacementSize = 4;
                }
                else
                {
                    insn.Base = (byte)((sib & 7) | ((rex & 1) << 3));
                }
            }
            else if (rm == 5 && mod == 0)
            {
                displacementSize = 4;
                if (is64)
                {
                    insn.Flags |= DecodedFlags.RipRelative;
                }
            }
            else
            {
                insn.Base = (byte)(rm | ((rex & 1) << 3));
            }
        }

        if (displacementSize != 0)
        {
            if (pos + displacementSize > code.Length)
            {
                return Short(pos + displacementSize);
            }

            var bytes = code.Slice(pos, displacementSize);
            insn.Displacement = displacementSize switch
            {
                1 => (ulong)(long)(sbyte)bytes[0],
                2 => (ulong)(long)BinaryPrimitives.ReadInt16LittleEndian(bytes),
                _ => (ulong)(long)BinaryPrimitives.ReadInt32LittleEndian(bytes),
            };
            insn.DisplacementSize = (byte)displacementSize;
            pos += displacementSize;
        }

        return DecodeStatus.Ok;
    }

    private static DecodeStatus DecodeImmediates(
        ReadOnlySpan<byte> code, ref int pos, ref DecodedInstruction insn, ImmKind kind, int operandSize, int addressSize)
    {
        int size = kind switch
        {
            ImmKind.Ib => 1,
            ImmKind.Iw or ImmKind.IwIb => 2,
            ImmKind.Iz or ImmKind.Ap => operandSize == 2 ? 2 : 4,
            ImmKind.Iv => operandSize,
            _ => addressSize, // Moffs
        };
        int size2 = kind switch
        {
            ImmKind.Ap => 2,
            ImmKind.IwIb => 1,
            _ => 0,
        };
        if (pos + size + size2 > code.Length)
        {
            return Short(pos + size + size2);
        }

        insn.Immediate = ReadUnsigned(code.Slice(pos, size));
        insn.ImmediateSize = (byte)size;
        pos += size;
        if (size2 != 0)
        {
            insn.Immediate2 = (ushort)ReadUnsigned(code.Slice(pos, size2));
            insn.Immediate2Size = (byte)size2;
            pos += size2;
        }

        return DecodeStatus.Ok;
    }

    private static ulong ReadUnsigned(ReadOnlySpan<byte> bytes) => bytes.Length switch
    {
        1 => bytes[0],
        2 => BinaryPrimitives.ReadUInt16LittleEndian(bytes),
        4 => BinaryPrimitives.ReadUInt32LittleEndian(bytes),
        _ => BinaryPrimitives.ReadUInt64LittleEndian(bytes),
    };

    private static OpcodeEntry Op(Mnemonic mnemonic, OpFlags flags = OpFlags.None) =>
        new(mnemonic, mnemonic, flags, ImmKind.None, 0);

    /// <summary>0F 01 with mod == 3: the operation is named by the whole ModRM byte.</summary>
    private static OpcodeEntry System0F01Register(int modRm, bool is64) => modRm switch
    {
        0xC1 => Op(Mnemonic.Vmcall),
        0xC2 => Op(Mnemonic.Vmlaunch),
        0xC3 => Op(Mnemonic.Vmresume),
        0xC4 => Op(Mnemonic.Vmxoff),
        0xC8 => Op(Mnemonic.Monitor),
        0xC9 => Op(Mnemonic.Mwait),
        0xCA => Op(Mnemonic.Clac),
        0xCB => Op(Mnemonic.Stac),
        0xD0 => Op(Mnemonic.Xgetbv),
        0xD1 => Op(Mnemonic.Xsetbv),
        0xD4 => Op(Mnemonic.Vmfunc),
        0xD5 => Op(Mnemonic.Xend),
        0xD6 => Op(Mnemonic.Xtest),
        >= 0xE0 and <= 0xE7 => Op(Mnemonic.Smsw),
        0xEE => Op(Mnemonic.Rdpkru),
        0xEF => Op(Mnemonic.Wrpkru),
        >= 0xF0 and <= 0xF7 => Op(Mnemonic.Lmsw),
        0xF8 when is64 => Op(Mnemonic.Swapgs),
        0xF9 => Op(Mnemonic.Rdtscp),
        _ => default,
    };

    /// <summary>0F C7: CMPXCHG8B/16B, the VMX pointer and XSAVE forms, RDRAND, RDSEED, RDPID.</summary>
    private static OpcodeEntry Group0FC7(int mod, int reg, MandatoryPrefix mandatory)
    {
        if (mod == 3)
        {
            return reg switch
            {
                6 when mandatory is MandatoryPrefix.None or MandatoryPrefix.P66 => Op(Mnemonic.Rdrand),
                7 when mandatory is MandatoryPrefix.None or MandatoryPrefix.P66 => Op(Mnemonic.Rdseed),
                7 when mandatory == MandatoryPrefix.PF3 => Op(Mnemonic.Rdpid, OpFlags.Force64),
                _ => default,
            };
        }

        return reg switch
        {
            1 => Op(Mnemonic.Cmpxchg8b, OpFlags.Lockable), // CMPXCHG16B with REX.W
            3 => Op(Mnemonic.Xrstors),
            4 => Op(Mnemonic.Xsavec),
            5 => Op(Mnemonic.Xsaves),
            6 => mandatory switch
            {
                MandatoryPrefix.None => Op(Mnemonic.Vmptrld),
                MandatoryPrefix.P66 => Op(Mnemonic.Vmclear),
                MandatoryPrefix.PF3 => Op(Mnemonic.Vmxon),
                _ => default,
            },
            7 when mandatory == MandatoryPrefix.None => Op(Mnemonic.Vmptrst),
            _ => default,
        };
    }

    /// <summary>0F AE: FXSAVE/XSAVE state, MXCSR, CLFLUSH(OPT)/CLWB, the fences and the FS/GS base instructions.</summary>
    private static OpcodeEntry Group0FAE(int mod, int reg, MandatoryPrefix mandatory)
    {
        if (mod == 3)
        {
            if (mandatory == MandatoryPrefix.PF3)
            {
                return reg switch
                {
                    0 => Op(Mnemonic.Rdfsbase, OpFlags.Only64),
                    1 => Op(Mnemonic.Rdgsbase, OpFlags.Only64),
                    2 => Op(Mnemonic.Wrfsbase, OpFlags.Only64),
                    3 => Op(Mnemonic.Wrgsbase, OpFlags.Only64),
                    _ => default,
                };
            }

            return reg switch
            {
                5 when mandatory == MandatoryPrefix.None => Op(Mnemonic.Lfence),
                6 when mandatory == MandatoryPrefix.None => Op(Mnemonic.Mfence),
                7 when mandatory == MandatoryPrefix.None => Op(Mnemonic.Sfence),
                _ => default,
            };
        }

        // FXSAVE/FXRSTOR/LDMXCSR/STMXCSR ignore 66, F2 and F3; from /4 up a prefix names another instruction.
        if (mandatory == MandatoryPrefix.P66 && reg >= 4)
        {
            return reg switch
            {
                6 => Op(Mnemonic.Clwb),
                7 => Op(Mnemonic.Clflushopt),
                _ => default,
            };
        }

        if (mandatory is MandatoryPrefix.PF2 or MandatoryPrefix.PF3 && reg >= 4)
        {
            return default;
        }

        return reg switch
        {
            0 => Op(Mnemonic.Fxsave),
            1 => Op(Mnemonic.Fxrstor),
            2 => Op(Mnemonic.Ldmxcsr),
            3 => Op(Mnemonic.Stmxcsr),
            4 => Op(Mnemonic.Xsave),
            5 => Op(Mnemonic.Xrstor),
            6 => Op(Mnemonic.Xsaveopt),
            _ => Op(Mnemonic.Clflush),
        };
    }

    /// <summary>
    /// Whether an x87 escape is a documented instruction. The undocumented register aliases
    /// (FSTP1, FCOM2, FXCH4 ...) are treated as reserved, as the SDM's maps say; FFREEP (AMD-documented) is kept.
    /// </summary>
    private static bool IsDefinedX87(int opcode, int modRm)
    {
        int reg = (modRm >> 3) & 7;
        if (modRm < 0xC0)
        {
            return opcode switch
            {
                0xD9 => reg != 1,
                0xDB => reg is not (4 or 6),
                0xDD => reg != 5,
                _ => true,
            };
        }

        return opcode switch
        {
            0xD8 => true,
            0xD9 => modRm is (>= 0xC0 and <= 0xD0) or 0xE0 or 0xE1 or 0xE4 or 0xE5 or (>= 0xE8 and <= 0xEE) or >= 0xF0,
            0xDA => modRm is (>= 0xC0 and <= 0xDF) or 0xE9,
            0xDB => modRm is (>= 0xC0 and <= 0xDF) or (>= 0xE0 and <= 0xE4) or (>= 0xE8 and <= 0xF7),
            0xDC => modRm is (>= 0xC0 and <= 0xCF) or >= 0xE0,
            0xDD => modRm is (>= 0xC0 and <= 0xC7) or (>= 0xD0 and <= 0xEF),
            0xDE => modRm is (>= 0xC0 and <= 0xCF) or 0xD9 or >= 0xE0,
            _ => modRm is (>= 0xC0 and <= 0xC7) or 0xE0 or (>= 0xE8 and <= 0xF7), // DF: FFREEP, FNSTSW AX, FUCOMIP, FCOMIP
        };
    }
}
