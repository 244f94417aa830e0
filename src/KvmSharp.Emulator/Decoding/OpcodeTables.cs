using M = KvmSharp.Emulator.Decoding.Mnemonic;

namespace KvmSharp.Emulator.Decoding;

/// <summary>
/// The opcode maps of the Intel SDM Vol. 2, Appendix A, as tables built once at startup:
/// one-byte, 0F (with a per-mandatory-prefix table for SSE forms), 0F38 and 0F3A, and the
/// ModRM.reg groups. A slot left default is an undefined opcode (#UD).
/// </summary>
internal static class OpcodeTables
{
    public const int GroupAlu = 1;            // 80-83
    public const int GroupShift = 2;          // C0, C1, D0-D3
    public const int GroupUnaryByte = 3;      // F6
    public const int GroupUnary = 4;          // F7
    public const int GroupIncDecByte = 5;     // FE
    public const int GroupIncDec = 6;         // FF
    public const int GroupPop = 7;            // 8F
    public const int GroupMovByte = 8;        // C6
    public const int GroupMov = 9;            // C7
    public const int GroupSystem0F00 = 10;    // 0F 00
    public const int GroupSystem0F01 = 11;    // 0F 01 (register forms: see InstructionDecoder)
    public const int GroupBitTest = 12;       // 0F BA
    public const int Group0FC7 = 13;          // 0F C7 (resolved in InstructionDecoder)
    public const int GroupShiftWords = 14;    // 0F 71
    public const int GroupShiftDwords = 15;   // 0F 72
    public const int GroupShiftQwords = 16;   // 0F 73
    public const int Group0FAE = 17;          // 0F AE (resolved in InstructionDecoder)
    public const int GroupPrefetch = 18;      // 0F 18
    public const int GroupPrefetchW = 19;     // 0F 0D
    private const int GroupCount = 20;

    // Declared first: static initializers run in textual order and the builders below read it.
    private static readonly M[] AluOps = [M.Add, M.Or, M.Adc, M.Sbb, M.And, M.Sub, M.Xor, M.Cmp];

    /// <summary>The one-byte map, indexed by opcode.</summary>
    public static readonly OpcodeEntry[] OneByte = BuildOneByte();

    /// <summary>The 0F map, indexed by opcode.</summary>
    public static readonly OpcodeEntry[] Map0F = BuildMap0F();

    /// <summary>0F opcodes with <see cref="OpFlags.PrefixTable"/>, indexed by opcode * 4 + <see cref="MandatoryPrefix"/>.</summary>
    public static readonly OpcodeEntry[] Map0FPrefixed = BuildMap0FPrefixed();

    /// <summary>The 0F 38 map, indexed by opcode * 4 + <see cref="MandatoryPrefix"/>.</summary>
    public static readonly OpcodeEntry[] Map0F38 = BuildMap0F38();

    /// <summary>The 0F 3A map, indexed by opcode * 4 + <see cref="MandatoryPrefix"/>.</summary>
    public static readonly OpcodeEntry[] Map0F3A = BuildMap0F3A();

    /// <summary>Groups, indexed by group * 16 + (mod == 3 ? 8 : 0) + ModRM.reg.</summary>
    public static readonly OpcodeEntry[] Groups = BuildGroups();

    /// <summary>63 /r in 64-bit mode (ARPL elsewhere).</summary>
    public static readonly OpcodeEntry Movsxd = R(M.Movsxd);

    private static OpcodeEntry E(M op, OpFlags flags = OpFlags.None, ImmKind imm = ImmKind.None) => new(op, op, flags, imm, 0);

    private static OpcodeEntry R(M op, OpFlags flags = OpFlags.None, ImmKind imm = ImmKind.None) => new(op, op, flags | OpFlags.ModRm, imm, 0);

    private static OpcodeEntry Mem(M op, OpFlags flags = OpFlags.None, ImmKind imm = ImmKind.None) => new(op, M.Invalid, flags | OpFlags.ModRm, imm, 0);

    private static OpcodeEntry Reg(M op, OpFlags flags = OpFlags.None, ImmKind imm = ImmKind.None) => new(M.Invalid, op, flags | OpFlags.ModRm, imm, 0);

    private static OpcodeEntry Split(M memoryForm, M registerForm) => new(memoryForm, registerForm, OpFlags.ModRm, ImmKind.None, 0);

    private static OpcodeEntry G(int group, OpFlags flags = OpFlags.None, ImmKind imm = ImmKind.None) =>
        new(M.Invalid, M.Invalid, flags | OpFlags.ModRm | OpFlags.Group, imm, (byte)group);

    private static OpcodeEntry[] BuildOneByte()
    {
        var t = new OpcodeEntry[256];
        for (int a = 0; a < 8; a++)
        {
            int o = a * 8;
            var op = AluOps[a];
            var lockable = op == M.Cmp ? OpFlags.None : OpFlags.Lockable;
            t[o] = R(op, OpFlags.ByteOp | lockable);
            t[o + 1] = R(op, lockable);
            t[o + 2] = R(op, OpFlags.ByteOp);
            t[o + 3] = R(op);
            t[o + 4] = E(op, OpFlags.ByteOp, ImmKind.Ib);
            t[o + 5] = E(op, OpFlags.None, ImmKind.Iz);
        }

        t[0x06] = E(M.PushEs, OpFlags.Invalid64);
        t[0x07] = E(M.PopEs, OpFlags.Invalid64);
        t[0x0E] = E(M.PushCs, OpFlags.Invalid64);
        t[0x16] = E(M.PushSs, OpFlags.Invalid64);
        t[0x17] = E(M.PopSs, OpFlags.Invalid64);
        t[0x1E] = E(M.PushDs, OpFlags.Invalid64);
        t[0x1F] = E(M.PopDs, OpFlags.Invalid64);
        t[0x27] = E(M.Daa, OpFlags.Invalid64);
        t[0x2F] = E(M.Das, OpFlags.Invalid64);
        t[0x37] = E(M.Aaa, OpFlags.Invalid64);
        t[0x3F] = E(M.Aas, OpFlags.Invalid64);
        for (int r = 0; r < 8; r++)
        {
            // 40-4F are REX prefixes in 64-bit mode; the decoder never looks them up there.
            t[0x40 + r] = E(M.Inc);
            t[0x48 + r] = E(M.Dec);
            t[0x50 + r] = E(M.Push, OpFlags.Default64);
            t[0x58 + r] = E(M.Pop, OpFlags.Default64);
            t[0x70 + r] = E(M.Jcc, OpFlags.Force64, ImmKind.Ib);
            t[0x78 + r] = E(M.Jcc, OpFlags.Force64, ImmKind.Ib);
            t[0x90 + r] = E(M.Xchg);
            t[0xB0 + r] = E(M.Mov, OpFlags.ByteOp, ImmKind.Ib);
            t[0xB8 + r] = E(M.Mov, OpFlags.None, ImmKind.Iv);
            t[0xD8 + r] = R(M.X87, OpFlags.X87);
        }

        t[0x60] = E(M.Pusha, OpFlags.Invalid64);
        t[0x61] = E(M.Popa, OpFlags.Invalid64);
        t[0x62] = Mem(M.Bound, OpFlags.Invalid64); // mod == 3 is EVEX
        t[0x63] = R(M.Arpl);                       // MOVSXD in 64-bit mode
        t[0x68] = E(M.Push, OpFlags.Default64, ImmKind.Iz);
        t[0x69] = R(M.Imul, OpFlags.None, ImmKind.Iz);
        t[0x6A] = E(M.Push, OpFlags.Default64, ImmKind.Ib);
        t[0x6B] = R(M.Imul, OpFlags.None, ImmKind.Ib);
        t[0x6C] = E(M.Ins, OpFlags.ByteOp);
        t[0x6D] = E(M.Ins);
        t[0x6E] = E(M.Outs, OpFlags.ByteOp);
        t[0x6F] = E(M.Outs);

        t[0x80] = G(GroupAlu, OpFlags.ByteOp, ImmKind.Ib);
        t[0x81] = G(GroupAlu, OpFlags.None, ImmKind.Iz);
        t[0x82] = G(GroupAlu, OpFlags.ByteOp | OpFlags.Invalid64, ImmKind.Ib);
        t[0x83] = G(GroupAlu, OpFlags.None, ImmKind.Ib);
        t[0x84] = R(M.Test, OpFlags.ByteOp);
        t[0x85] = R(M.Test);
        t[0x86] = R(M.Xchg, OpFlags.ByteOp | OpFlags.Lockable);
        t[0x87] = R(M.Xchg, OpFlags.Lockable);
        t[0x88] = R(M.Mov, OpFlags.ByteOp);
        t[0x89] = R(M.Mov);
        t[0x8A] = R(M.Mov, OpFlags.ByteOp);
        t[0x8B] = R(M.Mov);
        t[0x8C] = R(M.MovFromSreg);
        t[0x8D] = Mem(M.Lea);
        t[0x8E] = R(M.MovToSreg);
        t[0x8F] = G(GroupPop);

        t[0x90] = E(M.Nop); // XCHG r8, rAX with REX.B; PAUSE with F3
        t[0x98] = E(M.Cbw);
        t[0x99] = E(M.Cwd);
        t[0x9A] = E(M.CallFar, OpFlags.Invalid64, ImmKind.Ap);
        t[0x9B] = E(M.Fwait);
        t[0x9C] = E(M.Pushf, OpFlags.Default64);
        t[0x9D] = E(M.Popf, OpFlags.Default64);
        t[0x9E] = E(M.Sahf);
        t[0x9F] = E(M.Lahf);

        t[0xA0] = E(M.Mov, OpFlags.ByteOp, ImmKind.Moffs);
        t[0xA1] = E(M.Mov, OpFlags.None, ImmKind.Moffs);
        t[0xA2] = E(M.Mov, OpFlags.ByteOp, ImmKind.Moffs);
        t[0xA3] = E(M.Mov, OpFlags.None, ImmKind.Moffs);
        t[0xA4] = E(M.Movs, OpFlags.ByteOp);
        t[0xA5] = E(M.Movs);
        t[0xA6] = E(M.Cmps, OpFlags.ByteOp);
        t[0xA7] = E(M.Cmps);
        t[0xA8] = E(M.Test, OpFlags.ByteOp, ImmKind.Ib);
        t[0xA9] = E(M.Test, OpFlags.None, ImmKind.Iz);
        t[0xAA] = E(M.Stos, OpFlags.ByteOp);
        t[0xAB] = E(M.Stos);
        t[0xAC] = E(M.Lods, OpFlags.ByteOp);
        t[0xAD] = E(M.Lods);
        t[0xAE] = E(M.Scas, OpFlags.ByteOp);
        t[0xAF] = E(M.Scas);

        t[0xC0] = G(GroupShift, OpFlags.ByteOp, ImmKind.Ib);
        t[0xC1] = G(GroupShift, OpFlags.None, ImmKind.Ib);
        t[0xC2] = E(M.RetNear, OpFlags.Default64, ImmKind.Iw);
        t[0xC3] = E(M.RetNear, OpFlags.Default64);
        t[0xC4] = Mem(M.Les, OpFlags.Invalid64); // VEX3 in 64-bit mode or with mod == 3
        t[0xC5] = Mem(M.Lds, OpFlags.Invalid64); // VEX2 likewise
        t[0xC6] = G(GroupMovByte, OpFlags.ByteOp, ImmKind.Ib);
        t[0xC7] = G(GroupMov, OpFlags.None, ImmKind.Iz);
        t[0xC8] = E(M.Enter, OpFlags.Default64, ImmKind.IwIb);
        t[0xC9] = E(M.Leave, OpFlags.Default64);
        t[0xCA] = E(M.RetFar, OpFlags.None, ImmKind.Iw);
        t[0xCB] = E(M.RetFar);
        t[0xCC] = E(M.Int3);
        t[0xCD] = E(M.Int, OpFlags.None, ImmKind.Ib);
        t[0xCE] = E(M.Into, OpFlags.Invalid64);
        t[0xCF] = E(M.Iret);

        t[0xD0] = G(GroupShift, OpFlags.ByteOp);
        t[0xD1] = G(GroupShift);
        t[0xD2] = G(GroupShift, OpFlags.ByteOp);
        t[0xD3] = G(GroupShift);
        t[0xD4] = E(M.Aam, OpFlags.Invalid64, ImmKind.Ib);
        t[0xD5] = E(M.Aad, OpFlags.Invalid64, ImmKind.Ib);
        t[0xD6] = E(M.Salc, OpFlags.Invalid64);
        t[0xD7] = E(M.Xlat, OpFlags.ByteOp);

        t[0xE0] = E(M.Loopne, OpFlags.Force64, ImmKind.Ib);
        t[0xE1] = E(M.Loope, OpFlags.Force64, ImmKind.Ib);
        t[0xE2] = E(M.Loop, OpFlags.Force64, ImmKind.Ib);
        t[0xE3] = E(M.Jrcxz, OpFlags.Force64, ImmKind.Ib);
        t[0xE4] = E(M.In, OpFlags.ByteOp, ImmKind.Ib);
        t[0xE5] = E(M.In, OpFlags.None, ImmKind.Ib);
        t[0xE6] = E(M.Out, OpFlags.ByteOp, ImmKind.Ib);
        t[0xE7] = E(M.Out, OpFlags.None, ImmKind.Ib);
        t[0xE8] = E(M.CallNear, OpFlags.Force64, ImmKind.Iz);
        t[0xE9] = E(M.JmpNear, OpFlags.Force64, ImmKind.Iz);
        t[0xEA] = E(M.JmpFar, OpFlags.Invalid64, ImmKind.Ap);
        t[0xEB] = E(M.JmpNear, OpFlags.Force64, ImmKind.Ib);
        t[0xEC] = E(M.In, OpFlags.ByteOp);
        t[0xED] = E(M.In);
        t[0xEE] = E(M.Out, OpFlags.ByteOp);
        t[0xEF] = E(M.Out);

        t[0xF1] = E(M.Int1);
        t[0xF4] = E(M.Hlt);
        t[0xF5] = E(M.Cmc);
        t[0xF6] = G(GroupUnaryByte, OpFlags.ByteOp);
        t[0xF7] = G(GroupUnary);
        t[0xF8] = E(M.Clc);
        t[0xF9] = E(M.Stc);
        t[0xFA] = E(M.Cli);
        t[0xFB] = E(M.Sti);
        t[0xFC] = E(M.Cld);
        t[0xFD] = E(M.Std);
        t[0xFE] = G(GroupIncDecByte, OpFlags.ByteOp);
        t[0xFF] = G(GroupIncDec);
        return t;
    }

    private static OpcodeEntry[] BuildMap0F()
    {
        var t = new OpcodeEntry[256];
        var prefixed = new OpcodeEntry(M.Invalid, M.Invalid, OpFlags.PrefixTable, ImmKind.None, 0);
        foreach (int op in PrefixedOpcodes())
        {
            t[op] = prefixed;
        }

        t[0x00] = G(GroupSystem0F00);
        t[0x01] = G(GroupSystem0F01);
        t[0x02] = R(M.Lar);
        t[0x03] = R(M.Lsl);
        t[0x05] = E(M.Syscall);
        t[0x06] = E(M.Clts);
        t[0x07] = E(M.Sysret);
        t[0x08] = E(M.Invd);
        t[0x09] = E(M.Wbinvd);
        t[0x0B] = E(M.Ud2);
        t[0x0D] = G(GroupPrefetchW);
        t[0x18] = G(GroupPrefetch);
        for (int op = 0x19; op <= 0x1F; op++)
        {
            t[op] = R(M.Nop); // NOP Ev and the reserved hint NOPs (ENDBR64 is F3 0F 1E FA)
        }

        t[0x20] = R(M.MovFromCr, OpFlags.RegisterOnly | OpFlags.Force64);
        t[0x21] = R(M.MovFromDr, OpFlags.RegisterOnly | OpFlags.Force64);
        t[0x22] = R(M.MovToCr, OpFlags.RegisterOnly | OpFlags.Force64);
        t[0x23] = R(M.MovToDr, OpFlags.RegisterOnly | OpFlags.Force64);
        t[0x30] = E(M.Wrmsr);
        t[0x31] = E(M.Rdtsc);
        t[0x32] = E(M.Rdmsr);
        t[0x33] = E(M.Rdpmc);
        t[0x34] = E(M.Sysenter);
        t[0x35] = E(M.Sysexit);
        t[0x37] = E(M.Getsec);
        for (int cc = 0; cc < 16; cc++)
        {
            t[0x40 + cc] = R(M.Cmovcc);
            t[0x80 + cc] = E(M.Jcc, OpFlags.Force64, ImmKind.Iz);
            t[0x90 + cc] = R(M.Setcc, OpFlags.ByteOp);
        }

        t[0xA0] = E(M.PushFs, OpFlags.Default64);
        t[0xA1] = E(M.PopFs, OpFlags.Default64);
        t[0xA2] = E(M.Cpuid);
        t[0xA3] = R(M.Bt);
        t[0xA4] = R(M.Shld, OpFlags.None, ImmKind.Ib);
        t[0xA5] = R(M.Shld);
        t[0xA8] = E(M.PushGs, OpFlags.Default64);
        t[0xA9] = E(M.PopGs, OpFlags.Default64);
        t[0xAA] = E(M.Rsm);
        t[0xAB] = R(M.Bts, OpFlags.Lockable);
        t[0xAC] = R(M.Shrd, OpFlags.None, ImmKind.Ib);
        t[0xAD] = R(M.Shrd);
        t[0xAE] = G(Group0FAE);
        t[0xAF] = R(M.Imul);
        t[0xB0] = R(M.Cmpxchg, OpFlags.ByteOp | OpFlags.Lockable);
        t[0xB1] = R(M.Cmpxchg, OpFlags.Lockable);
        t[0xB2] = Mem(M.Lss);
        t[0xB3] = R(M.Btr, OpFlags.Lockable);
        t[0xB4] = Mem(M.Lfs);
        t[0xB5] = Mem(M.Lgs);
        t[0xB6] = R(M.Movzx);
        t[0xB7] = R(M.Movzx);
        t[0xB9] = R(M.Ud1);
        t[0xBA] = G(GroupBitTest, OpFlags.None, ImmKind.Ib);
        t[0xBB] = R(M.Btc, OpFlags.Lockable);
        t[0xBE] = R(M.Movsx);
        t[0xBF] = R(M.Movsx);
        t[0xC0] = R(M.Xadd, OpFlags.ByteOp | OpFlags.Lockable);
        t[0xC1] = R(M.Xadd, OpFlags.Lockable);
        t[0xC7] = G(Group0FC7);
        for (int r = 0; r < 8; r++)
        {
            t[0xC8 + r] = E(M.Bswap);
        }

        t[0xFF] = R(M.Ud0);
        return t;
    }

    private static IEnumerable<int> PrefixedOpcodes()
    {
        for (int op = 0x10; op <= 0x17; op++)
        {
            yield return op;
        }

        for (int op = 0x28; op <= 0x2F; op++)
        {
            yield return op;
        }

        for (int op = 0x50; op <= 0x7F; op++)
        {
            yield return op;
        }

        yield return 0xB8;
        yield return 0xBC;
        yield return 0xBD;
        for (int op = 0xC2; op <= 0xC6; op++)
        {
            yield return op;
        }

        for (int op = 0xD0; op <= 0xFE; op++)
        {
            yield return op;
        }
    }

    /// <summary>Sets the four prefix forms of an SSE opcode; the 66 form takes 66 as mandatory.</summary>
    private static void P(OpcodeEntry[] t, int op, OpcodeEntry none, OpcodeEntry p66, OpcodeEntry f3, OpcodeEntry f2)
    {
        t[op * 4] = none;
        t[op * 4 + 1] = p66.IsUndefined ? p66 : new(p66.MemoryForm, p66.RegisterForm, p66.Flags | OpFlags.Mandatory66, p66.Immediate, p66.Group);
        t[op * 4 + 2] = f3;
        t[op * 4 + 3] = f2;
    }

    /// <summary>An MMX/SSE2 integer opcode: MMX without prefix, XMM with 66, #UD with F2/F3.</summary>
    private static void Int(OpcodeEntry[] t, int op, M mnemonic) => P(t, op, R(mnemonic), R(mnemonic), default, default);

    private static OpcodeEntry[] BuildMap0FPrefixed()
    {
        var t = new OpcodeEntry[256 * 4];
        OpcodeEntry x = default;
        P(t, 0x10, R(M.Movups), R(M.Movupd), R(M.Movss), R(M.Movsd));
        P(t, 0x11, R(M.Movups), R(M.Movupd), R(M.Movss), R(M.Movsd));
        P(t, 0x12, Split(M.Movlps, M.Movhlps), Mem(M.Movlpd), R(M.Movsldup), R(M.Movddup));
        P(t, 0x13, Mem(M.Movlps), Mem(M.Movlpd), x, x);
        P(t, 0x14, R(M.Unpcklps), R(M.Unpcklpd), x, x);
        P(t, 0x15, R(M.Unpckhps), R(M.Unpckhpd), x, x);
        P(t, 0x16, Split(M.Movhps, M.Movlhps), Mem(M.Movhpd), R(M.Movshdup), x);
        P(t, 0x17, Mem(M.Movhps), Mem(M.Movhpd), x, x);
        P(t, 0x28, R(M.Movaps), R(M.Movapd), x, x);
        P(t, 0x29, R(M.Movaps), R(M.Movapd), x, x);
        P(t, 0x2A, R(M.Cvtpi2ps), R(M.Cvtpi2pd), R(M.Cvtsi2ss), R(M.Cvtsi2sd));
        P(t, 0x2B, Mem(M.Movntps), Mem(M.Movntpd), x, x);
        P(t, 0x2C, R(M.Cvttps2pi), R(M.Cvttpd2pi), R(M.Cvttss2si), R(M.Cvttsd2si));
        P(t, 0x2D, R(M.Cvtps2pi), R(M.Cvtpd2pi), R(M.Cvtss2si), R(M.Cvtsd2si));
        P(t, 0x2E, R(M.Ucomiss), R(M.Ucomisd), x, x);
        P(t, 0x2F, R(M.Comiss), R(M.Comisd), x, x);
        P(t, 0x50, Reg(M.Movmskps), Reg(M.Movmskpd), x, x);
        P(t, 0x51, R(M.Sqrtps), R(M.Sqrtpd), R(M.Sqrtss), R(M.Sqrtsd));
        P(t, 0x52, R(M.Rsqrtps), x, R(M.Rsqrtss), x);
        P(t, 0x53, R(M.Rcpps), x, R(M.Rcpss), x);
        P(t, 0x54, R(M.Andps), R(M.Andpd), x, x);
        P(t, 0x55, R(M.Andnps), R(M.Andnpd), x, x);
        P(t, 0x56, R(M.Orps), R(M.Orpd), x, x);
        P(t, 0x57, R(M.Xorps), R(M.Xorpd), x, x);
        P(t, 0x58, R(M.Addps), R(M.Addpd), R(M.Addss), R(M.Addsd));
        P(t, 0x59, R(M.Mulps), R(M.Mulpd), R(M.Mulss), R(M.Mulsd));
        P(t, 0x5A, R(M.Cvtps2pd), R(M.Cvtpd2ps), R(M.Cvtss2sd), R(M.Cvtsd2ss));
        P(t, 0x5B, R(M.Cvtdq2ps), R(M.Cvtps2dq), R(M.Cvttps2dq), x);
        P(t, 0x5C, R(M.Subps), R(M.Subpd), R(M.Subss), R(M.Subsd));
        P(t, 0x5D, R(M.Minps), R(M.Minpd), R(M.Minss), R(M.Minsd));
        P(t, 0x5E, R(M.Divps), R(M.Divpd), R(M.Divss), R(M.Divsd));
        P(t, 0x5F, R(M.Maxps), R(M.Maxpd), R(M.Maxss), R(M.Maxsd));
        M[] ints60 =
        [
            M.Punpcklbw, M.Punpcklwd, M.Punpckldq, M.Packsswb, M.Pcmpgtb, M.Pcmpgtw, M.Pcmpgtd, M.Packuswb,
            M.Punpckhbw, M.Punpckhwd, M.Punpckhdq, M.Packssdw,
        ];
        for (int i = 0; i < ints60.Length; i++)
        {
            Int(t, 0x60 + i, ints60[i]);
        }

        P(t, 0x6C, x, R(M.Punpcklqdq), x, x);
        P(t, 0x6D, x, R(M.Punpckhqdq), x, x);
        P(t, 0x6E, R(M.Movd), R(M.Movd), x, x);
        P(t, 0x6F, R(M.Movq), R(M.Movdqa), R(M.Movdqu), x);
        P(t, 0x70, R(M.Pshufw, OpFlags.None, ImmKind.Ib), R(M.Pshufd, OpFlags.None, ImmKind.Ib),
            R(M.Pshufhw, OpFlags.None, ImmKind.Ib), R(M.Pshuflw, OpFlags.None, ImmKind.Ib));
        P(t, 0x71, G(GroupShiftWords, OpFlags.None, ImmKind.Ib), G(GroupShiftWords, OpFlags.None, ImmKind.Ib), x, x);
        P(t, 0x72, G(GroupShiftDwords, OpFlags.None, ImmKind.Ib), G(GroupShiftDwords, OpFlags.None, ImmKind.Ib), x, x);
        P(t, 0x73, G(GroupShiftQwords, OpFlags.None, ImmKind.Ib), G(GroupShiftQwords, OpFlags.None, ImmKind.Ib), x, x);
        Int(t, 0x74, M.Pcmpeqb);
        Int(t, 0x75, M.Pcmpeqw);
        Int(t, 0x76, M.Pcmpeqd);
        P(t, 0x77, E(M.Emms), x, x, x);
        P(t, 0x78, R(M.Vmread, OpFlags.Force64), x, x, x);
        P(t, 0x79, R(M.Vmwrite, OpFlags.Force64), x, x, x);
        P(t, 0x7C, x, R(M.Haddpd), x, R(M.Haddps));
        P(t, 0x7D, x, R(M.Hsubpd), x, R(M.Hsubps));
        P(t, 0x7E, R(M.Movd), R(M.Movd), R(M.Movq), x);
        P(t, 0x7F, R(M.Movq), R(M.Movdqa), R(M.Movdqu), x);

        // Non-SSE opcodes whose F3 form is a different instruction: 66 keeps its operand-size meaning.
        t[0xB8 * 4 + 2] = R(M.Popcnt);
        t[0xBC * 4] = t[0xBC * 4 + 1] = R(M.Bsf);
        t[0xBC * 4 + 2] = R(M.Tzcnt);
        t[0xBD * 4] = t[0xBD * 4 + 1] = R(M.Bsr);
        t[0xBD * 4 + 2] = R(M.Lzcnt);

        P(t, 0xC2, R(M.Cmpps, OpFlags.None, ImmKind.Ib), R(M.Cmppd, OpFlags.None, ImmKind.Ib),
            R(M.Cmpss, OpFlags.None, ImmKind.Ib), R(M.Cmpsd, OpFlags.None, ImmKind.Ib));
        P(t, 0xC3, Mem(M.Movnti), x, x, x);
        P(t, 0xC4, R(M.Pinsrw, OpFlags.None, ImmKind.Ib), R(M.Pinsrw, OpFlags.None, ImmKind.Ib), x, x);
        P(t, 0xC5, Reg(M.Pextrw, OpFlags.None, ImmKind.Ib), Reg(M.Pextrw, OpFlags.None, ImmKind.Ib), x, x);
        P(t, 0xC6, R(M.Shufps, OpFlags.None, ImmKind.Ib), R(M.Shufpd, OpFlags.None, ImmKind.Ib), x, x);
        P(t, 0xD0, x, R(M.Addsubpd), x, R(M.Addsubps));
        M[] intsD1 =
        [
            M.Psrlw, M.Psrld, M.Psrlq, M.Paddq, M.Pmullw, M.Invalid, M.Invalid,
            M.Psubusb, M.Psubusw, M.Pminub, M.Pand, M.Paddusb, M.Paddusw, M.Pmaxub, M.Pandn,
            M.Pavgb, M.Psraw, M.Psrad, M.Pavgw, M.Pmulhuw, M.Pmulhw, M.Invalid, M.Invalid,
            M.Psubsb, M.Psubsw, M.Pminsw, M.Por, M.Paddsb, M.Paddsw, M.Pmaxsw, M.Pxor,
            M.Invalid, M.Psllw, M.Pslld, M.Psllq, M.Pmuludq, M.Pmaddwd, M.Psadbw, M.Invalid,
            M.Psubb, M.Psubw, M.Psubd, M.Psubq, M.Paddb, M.Paddw, M.Paddd,
        ];
        for (int i = 0; i < intsD1.Length; i++)
        {
            if (intsD1[i] != M.Invalid)
            {
                Int(t, 0xD1 + i, intsD1[i]);
            }
        }

        P(t, 0xD6, x, R(M.Movq), Reg(M.Movq2dq), Reg(M.Movdq2q));
        P(t, 0xD7, Reg(M.Pmovmskb), Reg(M.Pmovmskb), x, x);
        P(t, 0xE6, x, R(M.Cvttpd2dq), R(M.Cvtdq2pd), R(M.Cvtpd2dq));
        P(t, 0xE7, Mem(M.Movntq), Mem(M.Movntdq), x, x);
        P(t, 0xF0, x, x, x, Mem(M.Lddqu));
        P(t, 0xF7, Reg(M.Maskmovq), Reg(M.Maskmovdqu), x, x);
        return t;
    }

    private static OpcodeEntry[] BuildMap0F38()
    {
        var t = new OpcodeEntry[256 * 4];
        var unknown = R(M.Unknown);
        Array.Fill(t, unknown);
        M[] ssse3 = [M.Pshufb, M.Phaddw, M.Phaddd, M.Phaddsw, M.Pmaddubsw, M.Phsubw, M.Phsubd, M.Phsubsw, M.Psignb, M.Psignw, M.Psignd, M.Pmulhrsw];
        for (int i = 0; i < ssse3.Length; i++)
        {
            P(t, i, R(ssse3[i]), R(ssse3[i]), unknown, unknown);
        }

        P(t, 0x1C, R(M.Pabsb), R(M.Pabsb), unknown, unknown);
        P(t, 0x1D, R(M.Pabsw), R(M.Pabsw), unknown, unknown);
        P(t, 0x1E, R(M.Pabsd), R(M.Pabsd), unknown, unknown);
        (int Op, M Mnemonic)[] sse4 =
        [
            (0x10, M.Pblendvb), (0x14, M.Blendvps), (0x15, M.Blendvpd), (0x17, M.Ptest),
            (0x20, M.Pmovsxbw), (0x21, M.Pmovsxbd), (0x22, M.Pmovsxbq), (0x23, M.Pmovsxwd), (0x24, M.Pmovsxwq), (0x25, M.Pmovsxdq),
            (0x28, M.Pmuldq), (0x29, M.Pcmpeqq), (0x2B, M.Packusdw),
            (0x30, M.Pmovzxbw), (0x31, M.Pmovzxbd), (0x32, M.Pmovzxbq), (0x33, M.Pmovzxwd), (0x34, M.Pmovzxwq), (0x35, M.Pmovzxdq),
            (0x37, M.Pcmpgtq), (0x38, M.Pminsb), (0x39, M.Pminsd), (0x3A, M.Pminuw), (0x3B, M.Pminud),
            (0x3C, M.Pmaxsb), (0x3D, M.Pmaxsd), (0x3E, M.Pmaxuw), (0x3F, M.Pmaxud), (0x40, M.Pmulld), (0x41, M.Phminposuw),
            (0xDB, M.Aesimc), (0xDC, M.Aesenc), (0xDD, M.Aesenclast), (0xDE, M.Aesdec), (0xDF, M.Aesdeclast),
        ];
        foreach (var (op, mnemonic) in sse4)
        {
            P(t, op, unknown, R(mnemonic), unknown, unknown);
        }

        P(t, 0x2A, unknown, Mem(M.Movntdqa), unknown, unknown);
        P(t, 0xF6, unknown, R(M.Adcx), R(M.Adox), unknown);

        // MOVBE and CRC32: 66 is an operand-size prefix here, and F2 picks CRC32 (66 F2 is CRC32 r, r/m16).
        t[0xF0 * 4] = t[0xF0 * 4 + 1] = Mem(M.Movbe);
        t[0xF1 * 4] = t[0xF1 * 4 + 1] = Mem(M.Movbe);
        t[0xF0 * 4 + 3] = R(M.Crc32, OpFlags.ByteOp);
        t[0xF1 * 4 + 3] = R(M.Crc32);
        return t;
    }

    private static OpcodeEntry[] BuildMap0F3A()
    {
        var t = new OpcodeEntry[256 * 4];
        var unknown = R(M.Unknown, OpFlags.None, ImmKind.Ib);
        Array.Fill(t, unknown);
        static OpcodeEntry Ib(M op) => R(op, OpFlags.None, ImmKind.Ib);
        P(t, 0x0F, Ib(M.Palignr), Ib(M.Palignr), unknown, unknown);
        (int Op, M Mnemonic)[] sse4 =
        [
            (0x08, M.Roundps), (0x09, M.Roundpd), (0x0A, M.Roundss), (0x0B, M.Roundsd),
            (0x0C, M.Blendps), (0x0D, M.Blendpd), (0x0E, M.Pblendw),
            (0x14, M.Pextrb), (0x15, M.Pextrw), (0x16, M.Pextrd), (0x17, M.Extractps),
            (0x20, M.Pinsrb), (0x21, M.Insertps), (0x22, M.Pinsrd),
            (0x40, M.Dpps), (0x41, M.Dppd), (0x42, M.Mpsadbw), (0x44, M.Pclmulqdq),
            (0x60, M.Pcmpestrm), (0x61, M.Pcmpestri), (0x62, M.Pcmpistrm), (0x63, M.Pcmpistri),
            (0xDF, M.Aeskeygenassist),
        ];
        foreach (var (op, mnemonic) in sse4)
        {
            P(t, op, unknown, Ib(mnemonic), unknown, unknown);
        }

        P(t, 0xCC, Ib(M.Sha1rnds4), unknown, unknown, unknown);
        return t;
    }

    private static void SetGroup(OpcodeEntry[] t, int group, int reg, OpcodeEntry memoryForm, OpcodeEntry registerForm)
    {
        t[group * 16 + reg] = memoryForm;
        t[group * 16 + 8 + reg] = registerForm;
    }

    private static void SetGroup(OpcodeEntry[] t, int group, int reg, OpcodeEntry both) => SetGroup(t, group, reg, both, both);

    private static OpcodeEntry[] BuildGroups()
    {
        var t = new OpcodeEntry[GroupCount * 16];
        for (int reg = 0; reg < 8; reg++)
        {
            var alu = AluOps[reg];
            SetGroup(t, GroupAlu, reg, E(alu, alu == M.Cmp ? OpFlags.None : OpFlags.Lockable), E(alu));
        }

        M[] shifts = [M.Rol, M.Ror, M.Rcl, M.Rcr, M.Shl, M.Shr, M.Sal, M.Sar];
        for (int reg = 0; reg < 8; reg++)
        {
            SetGroup(t, GroupShift, reg, E(shifts[reg]));
        }

        M[] unary = [M.Test, M.Test, M.Not, M.Neg, M.Mul, M.Imul, M.Div, M.Idiv];
        for (int reg = 0; reg < 8; reg++)
        {
            var lockable = reg is 2 or 3 ? OpFlags.Lockable : OpFlags.None;
            var immByte = reg < 2 ? ImmKind.Ib : ImmKind.None;
            var immFull = reg < 2 ? ImmKind.Iz : ImmKind.None;
            SetGroup(t, GroupUnaryByte, reg, E(unary[reg], lockable, immByte), E(unary[reg], OpFlags.None, immByte));
            SetGroup(t, GroupUnary, reg, E(unary[reg], lockable, immFull), E(unary[reg], OpFlags.None, immFull));
        }

        SetGroup(t, GroupIncDecByte, 0, E(M.Inc, OpFlags.Lockable), E(M.Inc));
        SetGroup(t, GroupIncDecByte, 1, E(M.Dec, OpFlags.Lockable), E(M.Dec));
        SetGroup(t, GroupIncDec, 0, E(M.Inc, OpFlags.Lockable), E(M.Inc));
        SetGroup(t, GroupIncDec, 1, E(M.Dec, OpFlags.Lockable), E(M.Dec));
        SetGroup(t, GroupIncDec, 2, E(M.CallNear, OpFlags.Force64));
        SetGroup(t, GroupIncDec, 3, E(M.CallFar), default);
        SetGroup(t, GroupIncDec, 4, E(M.JmpNear, OpFlags.Force64));
        SetGroup(t, GroupIncDec, 5, E(M.JmpFar), default);
        SetGroup(t, GroupIncDec, 6, E(M.Push, OpFlags.Default64));
        SetGroup(t, GroupPop, 0, E(M.Pop, OpFlags.Default64)); // 8F /1-7 are XOP on AMD, #UD on Intel

        SetGroup(t, GroupMovByte, 0, E(M.Mov));
        SetGroup(t, GroupMovByte, 7, default, E(M.Xabort)); // C6 F8 ib
        SetGroup(t, GroupMov, 0, E(M.Mov));
        SetGroup(t, GroupMov, 7, default, E(M.Xbegin, OpFlags.Force64)); // C7 F8 rel16/32

        M[] system0F00 = [M.Sldt, M.Str, M.Lldt, M.Ltr, M.Verr, M.Verw];
        for (int reg = 0; reg < system0F00.Length; reg++)
        {
            SetGroup(t, GroupSystem0F00, reg, E(system0F00[reg]));
        }

        M[] system0F01 = [M.Sgdt, M.Sidt, M.Lgdt, M.Lidt, M.Smsw, M.Invalid, M.Lmsw, M.Invlpg];
        for (int reg = 0; reg < 8; reg++)
        {
            if (system0F01[reg] != M.Invalid)
            {
                SetGroup(t, GroupSystem0F01, reg, E(system0F01[reg]), default);
            }
        }

        SetGroup(t, GroupBitTest, 4, E(M.Bt));
        SetGroup(t, GroupBitTest, 5, E(M.Bts, OpFlags.Lockable), E(M.Bts));
        SetGroup(t, GroupBitTest, 6, E(M.Btr, OpFlags.Lockable), E(M.Btr));
        SetGroup(t, GroupBitTest, 7, E(M.Btc, OpFlags.Lockable), E(M.Btc));

        SetGroup(t, GroupShiftWords, 2, default, E(M.Psrlw));
        SetGroup(t, GroupShiftWords, 4, default, E(M.Psraw));
        SetGroup(t, GroupShiftWords, 6, default, E(M.Psllw));
        SetGroup(t, GroupShiftDwords, 2, default, E(M.Psrld));
        SetGroup(t, GroupShiftDwords, 4, default, E(M.Psrad));
        SetGroup(t, GroupShiftDwords, 6, default, E(M.Pslld));
        SetGroup(t, GroupShiftQwords, 2, default, E(M.Psrlq));
        SetGroup(t, GroupShiftQwords, 3, default, E(M.Psrldq)); // 66 only: checked by the decoder
        SetGroup(t, GroupShiftQwords, 6, default, E(M.Psllq));
        SetGroup(t, GroupShiftQwords, 7, default, E(M.Pslldq)); // 66 only

        M[] prefetch = [M.Prefetchnta, M.Prefetcht0, M.Prefetcht1, M.Prefetcht2, M.Nop, M.Nop, M.Nop, M.Nop];
        for (int reg = 0; reg < 8; reg++)
        {
            SetGroup(t, GroupPrefetch, reg, E(prefetch[reg]), E(M.Nop));
            SetGroup(t, GroupPrefetchW, reg, E(reg switch { 1 => M.Prefetchw, 2 => M.Prefetchwt1, _ => M.Prefetch }), default);
        }

        return t;
    }
}
