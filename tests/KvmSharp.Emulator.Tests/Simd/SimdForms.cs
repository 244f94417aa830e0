using static KvmSharp.Emulator.Tests.Simd.OperandKind;
using static KvmSharp.Emulator.Tests.Simd.RmForms;

namespace KvmSharp.Emulator.Tests.Simd;

/// <summary>Every MMX/SSE/SSE2 encoding the differential tests run, by family.</summary>
internal static class SimdForms
{
    private const byte None = 0;
    private const byte P66 = 0x66;
    private const byte F3 = 0xF3;
    private const byte F2 = 0xF2;
    private const ValueKind F32 = ValueKind.Single;
    private const ValueKind F64 = ValueKind.Double;
    private const ValueKind I32 = ValueKind.Int32;
    private const ValueKind I64 = ValueKind.Int64;
    private const ValueKind Int = ValueKind.Integer;

    /// <summary>Arithmetic, MIN/MAX, SQRT and CMP in PS, PD, SS and SD forms.</summary>
    public static readonly SimdForm[] FloatArithmetic = BuildFloatArithmetic();

    /// <summary>Conversions between single, double, int32 and int64.</summary>
    public static readonly SimdForm[] Conversions =
    [
        new("CVTPI2PS xmm, mm/m64", None, 0x2A, Xmm, Mmx, 8, false, I32),
        new("CVTPI2PD xmm, mm/m64", P66, 0x2A, Xmm, Mmx, 8, false, I32),
        new("CVTSI2SS xmm, r/m32", F3, 0x2A, Xmm, Gpr, 4, false, I32),
        new("CVTSI2SS xmm, r/m64", F3, 0x2A, Xmm, Gpr, 8, false, I64, RexW: true),
        new("CVTSI2SD xmm, r/m32", F2, 0x2A, Xmm, Gpr, 4, false, I32),
        new("CVTSI2SD xmm, r/m64", F2, 0x2A, Xmm, Gpr, 8, false, I64, RexW: true),
        new("CVTTPS2PI mm, xmm/m64", None, 0x2C, Mmx, Xmm, 8, false, F32),
        new("CVTPS2PI mm, xmm/m64", None, 0x2D, Mmx, Xmm, 8, false, F32),
        new("CVTTPD2PI mm, xmm/m128", P66, 0x2C, Mmx, Xmm, 16, true, F64),
        new("CVTPD2PI mm, xmm/m128", P66, 0x2D, Mmx, Xmm, 16, true, F64),
        new("CVTTSS2SI r32, xmm/m32", F3, 0x2C, Gpr, Xmm, 4, false, F32),
        new("CVTSS2SI r32, xmm/m32", F3, 0x2D, Gpr, Xmm, 4, false, F32),
        new("CVTTSS2SI r64, xmm/m32", F3, 0x2C, Gpr, Xmm, 4, false, F32, RexW: true),
        new("CVTSS2SI r64, xmm/m32", F3, 0x2D, Gpr, Xmm, 4, false, F32, RexW: true),
        new("CVTTSD2SI r32, xmm/m64", F2, 0x2C, Gpr, Xmm, 8, false, F64),
        new("CVTSD2SI r32, xmm/m64", F2, 0x2D, Gpr, Xmm, 8, false, F64),
        new("CVTTSD2SI r64, xmm/m64", F2, 0x2C, Gpr, Xmm, 8, false, F64, RexW: true),
        new("CVTSD2SI r64, xmm/m64", F2, 0x2D, Gpr, Xmm, 8, false, F64, RexW: true),
        new("CVTPS2PD", None, 0x5A, Xmm, Xmm, 8, false, F32),
        new("CVTPD2PS", P66, 0x5A, Xmm, Xmm, 16, true, F64),
        new("CVTSS2SD", F3, 0x5A, Xmm, Xmm, 4, false, F32),
        new("CVTSD2SS", F2, 0x5A, Xmm, Xmm, 8, false, F64),
        new("CVTDQ2PS", None, 0x5B, Xmm, Xmm, 16, true, I32),
        new("CVTPS2DQ", P66, 0x5B, Xmm, Xmm, 16, true, F32),
        new("CVTTPS2DQ", F3, 0x5B, Xmm, Xmm, 16, true, F32),
        new("CVTTPD2DQ", P66, 0xE6, Xmm, Xmm, 16, true, F64),
        new("CVTDQ2PD", F3, 0xE6, Xmm, Xmm, 8, false, I32),
        new("CVTPD2DQ", F2, 0xE6, Xmm, Xmm, 16, true, F64),
    ];

    /// <summary>Logic, shuffles, compares to RFLAGS, approximations.</summary>
    public static readonly SimdForm[] FloatOther =
    [
        new("ANDPS", None, 0x54, Xmm, Xmm, 16, true, F32),
        new("ANDPD", P66, 0x54, Xmm, Xmm, 16, true, F64),
        new("ANDNPS", None, 0x55, Xmm, Xmm, 16, true, F32),
        new("ANDNPD", P66, 0x55, Xmm, Xmm, 16, true, F64),
        new("ORPS", None, 0x56, Xmm, Xmm, 16, true, F32),
        new("ORPD", P66, 0x56, Xmm, Xmm, 16, true, F64),
        new("XORPS", None, 0x57, Xmm, Xmm, 16, true, F32),
        new("XORPD", P66, 0x57, Xmm, Xmm, 16, true, F64),
        new("UNPCKLPS", None, 0x14, Xmm, Xmm, 16, true, F32),
        new("UNPCKLPD", P66, 0x14, Xmm, Xmm, 16, true, F64),
        new("UNPCKHPS", None, 0x15, Xmm, Xmm, 16, true, F32),
        new("UNPCKHPD", P66, 0x15, Xmm, Xmm, 16, true, F64),
        new("SHUFPS", None, 0xC6, Xmm, Xmm, 16, true, F32, Immediate: true),
        new("SHUFPD", P66, 0xC6, Xmm, Xmm, 16, true, F64, Immediate: true),
        new("UCOMISS", None, 0x2E, Xmm, Xmm, 4, false, F32),
        new("UCOMISD", P66, 0x2E, Xmm, Xmm, 8, false, F64),
        new("COMISS", None, 0x2F, Xmm, Xmm, 4, false, F32),
        new("COMISD", P66, 0x2F, Xmm, Xmm, 8, false, F64),
        new("RSQRTPS", None, 0x52, Xmm, Xmm, 16, true, F32),
        new("RSQRTSS", F3, 0x52, Xmm, Xmm, 4, false, F32),
        new("RCPPS", None, 0x53, Xmm, Xmm, 16, true, F32),
        new("RCPSS", F3, 0x53, Xmm, Xmm, 4, false, F32),
    ];

    /// <summary>Moves of XMM data, sign masks, non-temporal stores.</summary>
    public static readonly SimdForm[] Moves =
    [
        new("MOVUPS load", None, 0x10, Xmm, Xmm, 16, false, F32),
        new("MOVUPD load", P66, 0x10, Xmm, Xmm, 16, false, F64),
        new("MOVSS load", F3, 0x10, Xmm, Xmm, 4, false, F32),
        new("MOVSD load", F2, 0x10, Xmm, Xmm, 8, false, F64),
        new("MOVUPS store", None, 0x11, Xmm, Xmm, 16, false, F32),
        new("MOVUPD store", P66, 0x11, Xmm, Xmm, 16, false, F64),
        new("MOVSS store", F3, 0x11, Xmm, Xmm, 4, false, F32),
        new("MOVSD store", F2, 0x11, Xmm, Xmm, 8, false, F64),
        new("MOVLPS load / MOVHLPS", None, 0x12, Xmm, Xmm, 8, false, F32),
        new("MOVLPD load", P66, 0x12, Xmm, Xmm, 8, false, F64, MemoryOnly),
        new("MOVLPS store", None, 0x13, Xmm, Xmm, 8, false, F32, MemoryOnly),
        new("MOVLPD store", P66, 0x13, Xmm, Xmm, 8, false, F64, MemoryOnly),
        new("MOVHPS load / MOVLHPS", None, 0x16, Xmm, Xmm, 8, false, F32),
        new("MOVHPD load", P66, 0x16, Xmm, Xmm, 8, false, F64, MemoryOnly),
        new("MOVHPS store", None, 0x17, Xmm, Xmm, 8, false, F32, MemoryOnly),
        new("MOVHPD store", P66, 0x17, Xmm, Xmm, 8, false, F64, MemoryOnly),
        new("MOVAPS load", None, 0x28, Xmm, Xmm, 16, true, F32),
        new("MOVAPD load", P66, 0x28, Xmm, Xmm, 16, true, F64),
        new("MOVAPS store", None, 0x29, Xmm, Xmm, 16, true, F32),
        new("MOVAPD store", P66, 0x29, Xmm, Xmm, 16, true, F64),
        new("MOVNTPS", None, 0x2B, Xmm, Xmm, 16, true, F32, MemoryOnly),
        new("MOVNTPD", P66, 0x2B, Xmm, Xmm, 16, true, F64, MemoryOnly),
        new("MOVMSKPS", None, 0x50, Gpr, Xmm, 0, false, F32, RegisterOnly),
        new("MOVMSKPD", P66, 0x50, Gpr, Xmm, 0, false, F64, RegisterOnly),
        new("MOVMSKPS r64", None, 0x50, Gpr, Xmm, 0, false, F32, RegisterOnly, RexW: true),
        new("MOVD mm, r/m32", None, 0x6E, Mmx, Gpr, 4, false, Int),
        new("MOVQ mm, r/m64", None, 0x6E, Mmx, Gpr, 8, false, Int, RexW: true),
        new("MOVD xmm, r/m32", P66, 0x6E, Xmm, Gpr, 4, false, Int),
        new("MOVQ xmm, r/m64", P66, 0x6E, Xmm, Gpr, 8, false, Int, RexW: true),
        new("MOVD r/m32, mm", None, 0x7E, Mmx, Gpr, 4, false, Int),
        new("MOVQ r/m64, mm", None, 0x7E, Mmx, Gpr, 8, false, Int, RexW: true),
        new("MOVD r/m32, xmm", P66, 0x7E, Xmm, Gpr, 4, false, Int),
        new("MOVQ r/m64, xmm", P66, 0x7E, Xmm, Gpr, 8, false, Int, RexW: true),
        new("MOVQ xmm, xmm/m64", F3, 0x7E, Xmm, Xmm, 8, false, Int),
        new("MOVQ mm, mm/m64", None, 0x6F, Mmx, Mmx, 8, false, Int),
        new("MOVDQA load", P66, 0x6F, Xmm, Xmm, 16, true, Int),
        new("MOVDQU load", F3, 0x6F, Xmm, Xmm, 16, false, Int),
        new("MOVQ mm/m64, mm", None, 0x7F, Mmx, Mmx, 8, false, Int),
        new("MOVDQA store", P66, 0x7F, Xmm, Xmm, 16, true, Int),
        new("MOVDQU store", F3, 0x7F, Xmm, Xmm, 16, false, Int),
        new("MOVNTI m32", None, 0xC3, Gpr, Gpr, 4, false, Int, MemoryOnly),
        new("MOVNTI m64", None, 0xC3, Gpr, Gpr, 8, false, Int, MemoryOnly, RexW: true),
        new("MOVQ xmm/m64, xmm", P66, 0xD6, Xmm, Xmm, 8, false, Int),
        new("MOVQ2DQ", F3, 0xD6, Xmm, Mmx, 0, false, Int, RegisterOnly),
        new("MOVDQ2Q", F2, 0xD6, Mmx, Xmm, 0, false, Int, RegisterOnly),
        new("MOVNTQ", None, 0xE7, Mmx, Mmx, 8, false, Int, MemoryOnly),
        new("MOVNTDQ", P66, 0xE7, Xmm, Xmm, 16, true, Int, MemoryOnly),
        new("MASKMOVQ", None, 0xF7, Mmx, Mmx, 0, false, Int, RegisterOnly),
        new("MASKMOVDQU", P66, 0xF7, Xmm, Xmm, 0, false, Int, RegisterOnly),
    ];

    /// <summary>The MMX and SSE2 integer instructions, each in its MMX and XMM form.</summary>
    public static readonly SimdForm[] Integer = BuildInteger();

    public static IEnumerable<SimdForm> All => FloatArithmetic.Concat(Conversions).Concat(FloatOther).Concat(Moves).Concat(Integer);

    public static SimdForm Named(string name) => All.Single(f => f.Name == name);

    public static TheoryData<string> Names(SimdForm[] forms)
    {
        var data = new TheoryData<string>();
        foreach (var form in forms)
        {
            data.Add(form.Name);
        }

        return data;
    }

    private static SimdForm[] BuildFloatArithmetic()
    {
        var forms = new List<SimdForm>();
        (string Name, byte Opcode)[] operations =
            [("SQRT", 0x51), ("ADD", 0x58), ("MUL", 0x59), ("SUB", 0x5C), ("MIN", 0x5D), ("DIV", 0x5E), ("MAX", 0x5F), ("CMP", 0xC2)];
        foreach (var (name, opcode) in operations)
        {
            bool immediate = opcode == 0xC2;
            forms.Add(new($"{name}PS", None, opcode, Xmm, Xmm, 16, true, F32, Immediate: immediate));
            forms.Add(new($"{name}PD", P66, opcode, Xmm, Xmm, 16, true, F64, Immediate: immediate));
            forms.Add(new($"{name}SS", F3, opcode, Xmm, Xmm, 4, false, F32, Immediate: immediate));
            forms.Add(new($"{name}SD", F2, opcode, Xmm, Xmm, 8, false, F64, Immediate: immediate));
        }

        return [.. forms];
    }

    private static SimdForm[] BuildInteger()
    {
        (string Name, byte Opcode)[] binary =
        [
            ("PUNPCKLBW", 0x60), ("PUNPCKLWD", 0x61), ("PUNPCKLDQ", 0x62), ("PACKSSWB", 0x63), ("PCMPGTB", 0x64), ("PCMPGTW", 0x65),
            ("PCMPGTD", 0x66), ("PACKUSWB", 0x67), ("PUNPCKHBW", 0x68), ("PUNPCKHWD", 0x69), ("PUNPCKHDQ", 0x6A), ("PACKSSDW", 0x6B),
            ("PCMPEQB", 0x74), ("PCMPEQW", 0x75), ("PCMPEQD", 0x76),
            ("PSRLW", 0xD1), ("PSRLD", 0xD2), ("PSRLQ", 0xD3), ("PADDQ", 0xD4), ("PMULLW", 0xD5),
            ("PSUBUSB", 0xD8), ("PSUBUSW", 0xD9), ("PMINUB", 0xDA), ("PAND", 0xDB), ("PADDUSB", 0xDC), ("PADDUSW", 0xDD), ("PMAXUB", 0xDE), ("PANDN", 0xDF),
            ("PAVGB", 0xE0), ("PSRAW", 0xE1), ("PSRAD", 0xE2), ("PAVGW", 0xE3), ("PMULHUW", 0xE4), ("PMULHW", 0xE5),
            ("PSUBSB", 0xE8), ("PSUBSW", 0xE9), ("PMINSW", 0xEA), ("POR", 0xEB), ("PADDSB", 0xEC), ("PADDSW", 0xED), ("PMAXSW", 0xEE), ("PXOR", 0xEF),
            ("PSLLW", 0xF1), ("PSLLD", 0xF2), ("PSLLQ", 0xF3), ("PMULUDQ", 0xF4), ("PMADDWD", 0xF5), ("PSADBW", 0xF6),
            ("PSUBB", 0xF8), ("PSUBW", 0xF9), ("PSUBD", 0xFA), ("PSUBQ", 0xFB), ("PADDB", 0xFC), ("PADDW", 0xFD), ("PADDD", 0xFE),
        ];
        var forms = new List<SimdForm>();
        foreach (var (name, opcode) in binary)
        {
            forms.Add(new($"{name} mm", None, opcode, Mmx, Mmx, opcode is >= 0x60 and <= 0x62 ? 4 : 8, false, Int));
            forms.Add(new($"{name} xmm", P66, opcode, Xmm, Xmm, 16, true, Int));
        }

        forms.Add(new("PUNPCKLQDQ", P66, 0x6C, Xmm, Xmm, 16, true, Int));
        forms.Add(new("PUNPCKHQDQ", P66, 0x6D, Xmm, Xmm, 16, true, Int));
        forms.Add(new("PSHUFW", None, 0x70, Mmx, Mmx, 8, false, Int, Immediate: true));
        forms.Add(new("PSHUFD", P66, 0x70, Xmm, Xmm, 16, true, Int, Immediate: true));
        forms.Add(new("PSHUFHW", F3, 0x70, Xmm, Xmm, 16, true, Int, Immediate: true));
        forms.Add(new("PSHUFLW", F2, 0x70, Xmm, Xmm, 16, true, Int, Immediate: true));
        (string Name, byte Opcode, int Reg)[] shifts =
        [
            ("PSRLW", 0x71, 2), ("PSRAW", 0x71, 4), ("PSLLW", 0x71, 6), ("PSRLD", 0x72, 2), ("PSRAD", 0x72, 4), ("PSLLD", 0x72, 6),
            ("PSRLQ", 0x73, 2), ("PSLLQ", 0x73, 6),
        ];
        foreach (var (name, opcode, reg) in shifts)
        {
            forms.Add(new($"{name} mm, imm8", None, opcode, Mmx, Mmx, 0, false, Int, RegisterOnly, reg, Immediate: true));
            forms.Add(new($"{name} xmm, imm8", P66, opcode, Xmm, Xmm, 0, false, Int, RegisterOnly, reg, Immediate: true));
        }

        forms.Add(new("PSRLDQ", P66, 0x73, Xmm, Xmm, 0, false, Int, RegisterOnly, 3, Immediate: true));
        forms.Add(new("PSLLDQ", P66, 0x73, Xmm, Xmm, 0, false, Int, RegisterOnly, 7, Immediate: true));
        forms.Add(new("PINSRW mm", None, 0xC4, Mmx, Gpr, 2, false, Int, Immediate: true));
        forms.Add(new("PINSRW xmm", P66, 0xC4, Xmm, Gpr, 2, false, Int, Immediate: true));
        forms.Add(new("PEXTRW mm", None, 0xC5, Gpr, Mmx, 0, false, Int, RegisterOnly, Immediate: true));
        forms.Add(new("PEXTRW xmm", P66, 0xC5, Gpr, Xmm, 0, false, Int, RegisterOnly, Immediate: true));
        forms.Add(new("PMOVMSKB mm", None, 0xD7, Gpr, Mmx, 0, false, Int, RegisterOnly));
        forms.Add(new("PMOVMSKB xmm", P66, 0xD7, Gpr, Xmm, 0, false, Int, RegisterOnly));
        return [.. forms];
    }
}
