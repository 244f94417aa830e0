namespace KvmSharp.Emulator.Decoding;

/// <summary>
/// The identity of a decoded instruction, for the executor to switch on. Forms that differ only
/// in operand size or operand kind share one value (the executor reads <see cref="DecodedInstruction.Opcode"/>,
/// <see cref="DecodedInstruction.OperandSize"/> and <see cref="DecodedInstruction.MandatoryPrefix"/>):
/// <see cref="Jcc"/>, <see cref="Setcc"/> and <see cref="Cmovcc"/> carry their condition in the opcode;
/// MMX and SSE2 forms of an integer instruction share a value (66 selects XMM); x87 escapes are one
/// value, <see cref="X87"/>, with the sub-opcode in <see cref="DecodedInstruction.X87Index"/>.
/// </summary>
#pragma warning disable CA1028 // Two bytes keep DecodedInstruction compact.
public enum Mnemonic : ushort
#pragma warning restore CA1028
{
    /// <summary>Not a valid instruction: #UD.</summary>
    Invalid = 0,

    /// <summary>Decoded structurally (0F38/0F3A) but not identified: the executor raises #UD.</summary>
    Unknown,

    /// <summary>AAA.</summary>
    Aaa,

    /// <summary>AAD.</summary>
    Aad,

    /// <summary>AAM.</summary>
    Aam,

    /// <summary>AAS.</summary>
    Aas,

    /// <summary>ADC.</summary>
    Adc,

    /// <summary>ADCX.</summary>
    Adcx,

    /// <summary>ADD.</summary>
    Add,

    /// <summary>ADDPD.</summary>
    Addpd,

    /// <summary>ADDPS.</summary>
    Addps,

    /// <summary>ADDSD.</summary>
    Addsd,

    /// <summary>ADDSS.</summary>
    Addss,

    /// <summary>ADDSUBPD.</summary>
    Addsubpd,

    /// <summary>ADDSUBPS.</summary>
    Addsubps,

    /// <summary>ADOX.</summary>
    Adox,

    /// <summary>AESDEC.</summary>
    Aesdec,

    /// <summary>AESDECLAST.</summary>
    Aesdeclast,

    /// <summary>AESENC.</summary>
    Aesenc,

    /// <summary>AESENCLAST.</summary>
    Aesenclast,

    /// <summary>AESIMC.</summary>
    Aesimc,

    /// <summary>AESKEYGENASSIST.</summary>
    Aeskeygenassist,

    /// <summary>AND.</summary>
    And,

    /// <summary>ANDNPD.</summary>
    Andnpd,

    /// <summary>ANDNPS.</summary>
    Andnps,

    /// <summary>ANDPD.</summary>
    Andpd,

    /// <summary>ANDPS.</summary>
    Andps,

    /// <summary>ARPL.</summary>
    Arpl,

    /// <summary>BLENDPD.</summary>
    Blendpd,

    /// <summary>BLENDPS.</summary>
    Blendps,

    /// <summary>BLENDVPD.</summary>
    Blendvpd,

    /// <summary>BLENDVPS.</summary>
    Blendvps,

    /// <summary>BOUND.</summary>
    Bound,

    /// <summary>BSF.</summary>
    Bsf,

    /// <summary>BSR.</summary>
    Bsr,

    /// <summary>BSWAP.</summary>
    Bswap,

    /// <summary>BT.</summary>
    Bt,

    /// <summary>BTC.</summary>
    Btc,

    /// <summary>BTR.</summary>
    Btr,

    /// <summary>BTS.</summary>
    Bts,

    /// <summary>CALLFAR.</summary>
    CallFar,

    /// <summary>CALLNEAR.</summary>
    CallNear,

    /// <summary>CBW.</summary>
    Cbw,

    /// <summary>CLAC.</summary>
    Clac,

    /// <summary>CLC.</summary>
    Clc,

    /// <summary>CLD.</summary>
    Cld,

    /// <summary>CLFLUSH.</summary>
    Clflush,

    /// <summary>CLFLUSHOPT.</summary>
    Clflushopt,

    /// <summary>CLI.</summary>
    Cli,

    /// <summary>CLTS.</summary>
    Clts,

    /// <summary>CLWB.</summary>
    Clwb,

    /// <summary>CMC.</summary>
    Cmc,

    /// <summary>CMOVCC.</summary>
    Cmovcc,

    /// <summary>CMP.</summary>
    Cmp,

    /// <summary>CMPPD.</summary>
    Cmppd,

    /// <summary>CMPPS.</summary>
    Cmpps,

    /// <summary>CMPS.</summary>
    Cmps,

    /// <summary>CMPSD.</summary>
    Cmpsd,

    /// <summary>CMPSS.</summary>
    Cmpss,

    /// <summary>CMPXCHG.</summary>
    Cmpxchg,

    /// <summary>CMPXCHG8B.</summary>
    Cmpxchg8b,

    /// <summary>COMISD.</summary>
    Comisd,

    /// <summary>COMISS.</summary>
    Comiss,

    /// <summary>CPUID.</summary>
    Cpuid,

    /// <summary>CRC32.</summary>
    Crc32,

    /// <summary>CVTDQ2PD.</summary>
    Cvtdq2pd,

    /// <summary>CVTDQ2PS.</summary>
    Cvtdq2ps,

    /// <summary>CVTPD2DQ.</summary>
    Cvtpd2dq,

    /// <summary>CVTPD2PI.</summary>
    Cvtpd2pi,

    /// <summary>CVTPD2PS.</summary>
    Cvtpd2ps,

    /// <summary>CVTPI2PD.</summary>
    Cvtpi2pd,

    /// <summary>CVTPI2PS.</summary>
    Cvtpi2ps,

    /// <summary>CVTPS2DQ.</summary>
    Cvtps2dq,

    /// <summary>CVTPS2PD.</summary>
    Cvtps2pd,

    /// <summary>CVTPS2PI.</summary>
    Cvtps2pi,

    /// <summary>CVTSD2SI.</summary>
    Cvtsd2si,

    /// <summary>CVTSD2SS.</summary>
    Cvtsd2ss,

    /// <summary>CVTSI2SD.</summary>
    Cvtsi2sd,

    /// <summary>CVTSI2SS.</summary>
    Cvtsi2ss,

    /// <summary>CVTSS2SD.</summary>
    Cvtss2sd,

    /// <summary>CVTSS2SI.</summary>
    Cvtss2si,

    /// <summary>CVTTPD2DQ.</summary>
    Cvttpd2dq,

    /// <summary>CVTTPD2PI.</summary>
    Cvttpd2pi,

    /// <summary>CVTTPS2DQ.</summary>
    Cvttps2dq,

    /// <summary>CVTTPS2PI.</summary>
    Cvttps2pi,

    /// <summary>CVTTSD2SI.</summary>
    Cvttsd2si,

    /// <summary>CVTTSS2SI.</summary>
    Cvttss2si,

    /// <summary>CWD.</summary>
    Cwd,

    /// <summary>DAA.</summary>
    Daa,

    /// <summary>DAS.</summary>
    Das,

    /// <summary>DEC.</summary>
    Dec,

    /// <summary>DIV.</summary>
    Div,

    /// <summary>DIVPD.</summary>
    Divpd,

    /// <summary>DIVPS.</summary>
    Divps,

    /// <summary>DIVSD.</summary>
    Divsd,

    /// <summary>DIVSS.</summary>
    Divss,

    /// <summary>DPPD.</summary>
    Dppd,

    /// <summary>DPPS.</summary>
    Dpps,

    /// <summary>EMMS.</summary>
    Emms,

    /// <summary>ENTER.</summary>
    Enter,

    /// <summary>EXTRACTPS.</summary>
    Extractps,

    /// <summary>FWAIT.</summary>
    Fwait,

    /// <summary>FXRSTOR.</summary>
    Fxrstor,

    /// <summary>FXSAVE.</summary>
    Fxsave,

    /// <summary>GETSEC.</summary>
    Getsec,

    /// <summary>HADDPD.</summary>
    Haddpd,

    /// <summary>HADDPS.</summary>
    Haddps,

    /// <summary>HLT.</summary>
    Hlt,

    /// <summary>HSUBPD.</summary>
    Hsubpd,

    /// <summary>HSUBPS.</summary>
    Hsubps,

    /// <summary>IDIV.</summary>
    Idiv,

    /// <summary>IMUL.</summary>
    Imul,

    /// <summary>IN.</summary>
    In,

    /// <summary>INC.</summary>
    Inc,

    /// <summary>INS.</summary>
    Ins,

    /// <summary>INSERTPS.</summary>
    Insertps,

    /// <summary>INT.</summary>
    Int,

    /// <summary>INT1.</summary>
    Int1,

    /// <summary>INT3.</summary>
    Int3,

    /// <summary>INTO.</summary>
    Into,

    /// <summary>INVD.</summary>
    Invd,

    /// <summary>INVLPG.</summary>
    Invlpg,

    /// <summary>IRET.</summary>
    Iret,

    /// <summary>JCC.</summary>
    Jcc,

    /// <summary>JMPFAR.</summary>
    JmpFar,

    /// <summary>JMPNEAR.</summary>
    JmpNear,

    /// <summary>JRCXZ.</summary>
    Jrcxz,

    /// <summary>LAHF.</summary>
    Lahf,

    /// <summary>LAR.</summary>
    Lar,

    /// <summary>LDDQU.</summary>
    Lddqu,

    /// <summary>LDMXCSR.</summary>
    Ldmxcsr,

    /// <summary>LDS.</summary>
    Lds,

    /// <summary>LEA.</summary>
    Lea,

    /// <summary>LEAVE.</summary>
    Leave,

    /// <summary>LES.</summary>
    Les,

    /// <summary>LFENCE.</summary>
    Lfence,

    /// <summary>LFS.</summary>
    Lfs,

    /// <summary>LGDT.</summary>
    Lgdt,

    /// <summary>LGS.</summary>
    Lgs,

    /// <summary>LIDT.</summary>
    Lidt,

    /// <summary>LLDT.</summary>
    Lldt,

    /// <summary>LMSW.</summary>
    Lmsw,

    /// <summary>LODS.</summary>
    Lods,

    /// <summary>LOOP.</summary>
    Loop,

    /// <summary>LOOPE.</summary>
    Loope,

    /// <summary>LOOPNE.</summary>
    Loopne,

    /// <summary>LSL.</summary>
    Lsl,

    /// <summary>LSS.</summary>
    Lss,

    /// <summary>LTR.</summary>
    Ltr,

    /// <summary>LZCNT.</summary>
    Lzcnt,

    /// <summary>MASKMOVDQU.</summary>
    Maskmovdqu,

    /// <summary>MASKMOVQ.</summary>
    Maskmovq,

    /// <summary>MAXPD.</summary>
    Maxpd,

    /// <summary>MAXPS.</summary>
    Maxps,

    /// <summary>MAXSD.</summary>
    Maxsd,

    /// <summary>MAXSS.</summary>
    Maxss,

    /// <summary>MFENCE.</summary>
    Mfence,

    /// <summary>MINPD.</summary>
    Minpd,

    /// <summary>MINPS.</summary>
    Minps,

    /// <summary>MINSD.</summary>
    Minsd,

    /// <summary>MINSS.</summary>
    Minss,

    /// <summary>MONITOR.</summary>
    Monitor,

    /// <summary>MOV.</summary>
    Mov,

    /// <summary>MOVFROMCR.</summary>
    MovFromCr,

    /// <summary>MOVFROMDR.</summary>
    MovFromDr,

    /// <summary>MOVFROMSREG.</summary>
    MovFromSreg,

    /// <summary>MOVTOCR.</summary>
    MovToCr,

    /// <summary>MOVTODR.</summary>
    MovToDr,

    /// <summary>MOVTOSREG.</summary>
    MovToSreg,

    /// <summary>MOVAPD.</summary>
    Movapd,

    /// <summary>MOVAPS.</summary>
    Movaps,

    /// <summary>MOVBE.</summary>
    Movbe,

    /// <summary>MOVD.</summary>
    Movd,

    /// <summary>MOVDDUP.</summary>
    Movddup,

    /// <summary>MOVDQ2Q.</summary>
    Movdq2q,

    /// <summary>MOVDQA.</summary>
    Movdqa,

    /// <summary>MOVDQU.</summary>
    Movdqu,

    /// <summary>MOVHLPS.</summary>
    Movhlps,

    /// <summary>MOVHPD.</summary>
    Movhpd,

    /// <summary>MOVHPS.</summary>
    Movhps,

    /// <summary>MOVLHPS.</summary>
    Movlhps,

    /// <summary>MOVLPD.</summary>
    Movlpd,

    /// <summary>MOVLPS.</summary>
    Movlps,

    /// <summary>MOVMSKPD.</summary>
    Movmskpd,

    /// <summary>MOVMSKPS.</summary>
    Movmskps,

    /// <summary>MOVNTDQ.</summary>
    Movntdq,

    /// <summary>MOVNTDQA.</summary>
    Movntdqa,

    /// <summary>MOVNTI.</summary>
    Movnti,

    /// <summary>MOVNTPD.</summary>
    Movntpd,

    /// <summary>MOVNTPS.</summary>
    Movntps,

    /// <summary>MOVNTQ.</summary>
    Movntq,

    /// <summary>MOVQ.</summary>
    Movq,

    /// <summary>MOVQ2DQ.</summary>
    Movq2dq,

    /// <summary>MOVS.</summary>
    Movs,

    /// <summary>MOVSD.</summary>
    Movsd,

    /// <summary>MOVSHDUP.</summary>
    Movshdup,

    /// <summary>MOVSLDUP.</summary>
    Movsldup,

    /// <summary>MOVSS.</summary>
    Movss,

    /// <summary>MOVSX.</summary>
    Movsx,

    /// <summary>MOVSXD.</summary>
    Movsxd,

    /// <summary>MOVUPD.</summary>
    Movupd,

    /// <summary>MOVUPS.</summary>
    Movups,

    /// <summary>MOVZX.</summary>
    Movzx,

    /// <summary>MPSADBW.</summary>
    Mpsadbw,

    /// <summary>MUL.</summary>
    Mul,

    /// <summary>MULPD.</summary>
    Mulpd,

    /// <summary>MULPS.</summary>
    Mulps,

    /// <summary>MULSD.</summary>
    Mulsd,

    /// <summary>MULSS.</summary>
    Mulss,

    /// <summary>MWAIT.</summary>
    Mwait,

    /// <summary>NEG.</summary>
    Neg,

    /// <summary>NOP.</summary>
    Nop,

    /// <summary>NOT.</summary>
    Not,

    /// <summary>OR.</summary>
    Or,

    /// <summary>ORPD.</summary>
    Orpd,

    /// <summary>ORPS.</summary>
    Orps,

    /// <summary>OUT.</summary>
    Out,

    /// <summary>OUTS.</summary>
    Outs,

    /// <summary>PABSB.</summary>
    Pabsb,

    /// <summary>PABSD.</summary>
    Pabsd,

    /// <summary>PABSW.</summary>
    Pabsw,

    /// <summary>PACKSSDW.</summary>
    Packssdw,

    /// <summary>PACKSSWB.</summary>
    Packsswb,

    /// <summary>PACKUSDW.</summary>
    Packusdw,

    /// <summary>PACKUSWB.</summary>
    Packuswb,

    /// <summary>PADDB.</summary>
    Paddb,

    /// <summary>PADDD.</summary>
    Paddd,

    /// <summary>PADDQ.</summary>
    Paddq,

    /// <summary>PADDSB.</summary>
    Paddsb,

    /// <summary>PADDSW.</summary>
    Paddsw,

    /// <summary>PADDUSB.</summary>
    Paddusb,

    /// <summary>PADDUSW.</summary>
    Paddusw,

    /// <summary>PADDW.</summary>
    Paddw,

    /// <summary>PALIGNR.</summary>
    Palignr,

    /// <summary>PAND.</summary>
    Pand,

    /// <summary>PANDN.</summary>
    Pandn,

    /// <summary>PAUSE.</summary>
    Pause,

    /// <summary>PAVGB.</summary>
    Pavgb,

    /// <summary>PAVGW.</summary>
    Pavgw,

    /// <summary>PBLENDVB.</summary>
    Pblendvb,

    /// <summary>PBLENDW.</summary>
    Pblendw,

    /// <summary>PCLMULQDQ.</summary>
    Pclmulqdq,

    /// <summary>PCMPEQB.</summary>
    Pcmpeqb,

    /// <summary>PCMPEQD.</summary>
    Pcmpeqd,

    /// <summary>PCMPEQQ.</summary>
    Pcmpeqq,

    /// <summary>PCMPEQW.</summary>
    Pcmpeqw,

    /// <summary>PCMPESTRI.</summary>
    Pcmpestri,

    /// <summary>PCMPESTRM.</summary>
    Pcmpestrm,

    /// <summary>PCMPGTB.</summary>
    Pcmpgtb,

    /// <summary>PCMPGTD.</summary>
    Pcmpgtd,

    /// <summary>PCMPGTQ.</summary>
    Pcmpgtq,

    /// <summary>PCMPGTW.</summary>
    Pcmpgtw,

    /// <summary>PCMPISTRI.</summary>
    Pcmpistri,

    /// <summary>PCMPISTRM.</summary>
    Pcmpistrm,

    /// <summary>PEXTRB.</summary>
    Pextrb,

    /// <summary>PEXTRD.</summary>
    Pextrd,

    /// <summary>PEXTRW.</summary>
    Pextrw,

    /// <summary>PHADDD.</summary>
    Phaddd,

    /// <summary>PHADDSW.</summary>
    Phaddsw,

    /// <summary>PHADDW.</summary>
    Phaddw,

    /// <summary>PHMINPOSUW.</summary>
    Phminposuw,

    /// <summary>PHSUBD.</summary>
    Phsubd,

    /// <summary>PHSUBSW.</summary>
    Phsubsw,

    /// <summary>PHSUBW.</summary>
    Phsubw,

    /// <summary>PINSRB.</summary>
    Pinsrb,

    /// <summary>PINSRD.</summary>
    Pinsrd,

    /// <summary>PINSRW.</summary>
    Pinsrw,

    /// <summary>PMADDUBSW.</summary>
    Pmaddubsw,

    /// <summary>PMADDWD.</summary>
    Pmaddwd,

    /// <summary>PMAXSB.</summary>
    Pmaxsb,

    /// <summary>PMAXSD.</summary>
    Pmaxsd,

    /// <summary>PMAXSW.</summary>
    Pmaxsw,

    /// <summary>PMAXUB.</summary>
    Pmaxub,

    /// <summary>PMAXUD.</summary>
    Pmaxud,

    /// <summary>PMAXUW.</summary>
    Pmaxuw,

    /// <summary>PMINSB.</summary>
    Pminsb,

    /// <summary>PMINSD.</summary>
    Pminsd,

    /// <summary>PMINSW.</summary>
    Pminsw,

    /// <summary>PMINUB.</summary>
    Pminub,

    /// <summary>PMINUD.</summary>
    Pminud,

    /// <summary>PMINUW.</summary>
    Pminuw,

    /// <summary>PMOVMSKB.</summary>
    Pmovmskb,

    /// <summary>PMOVSXBD.</summary>
    Pmovsxbd,

    /// <summary>PMOVSXBQ.</summary>
    Pmovsxbq,

    /// <summary>PMOVSXBW.</summary>
    Pmovsxbw,

    /// <summary>PMOVSXDQ.</summary>
    Pmovsxdq,

    /// <summary>PMOVSXWD.</summary>
    Pmovsxwd,

    /// <summary>PMOVSXWQ.</summary>
    Pmovsxwq,

    /// <summary>PMOVZXBD.</summary>
    Pmovzxbd,

    /// <summary>PMOVZXBQ.</summary>
    Pmovzxbq,

    /// <summary>PMOVZXBW.</summary>
    Pmovzxbw,

    /// <summary>PMOVZXDQ.</summary>
    Pmovzxdq,

    /// <summary>PMOVZXWD.</summary>
    Pmovzxwd,

    /// <summary>PMOVZXWQ.</summary>
    Pmovzxwq,

    /// <summary>PMULDQ.</summary>
    Pmuldq,

    /// <summary>PMULHRSW.</summary>
    Pmulhrsw,

    /// <summary>PMULHUW.</summary>
    Pmulhuw,

    /// <summary>PMULHW.</summary>
    Pmulhw,

    /// <summary>PMULLD.</summary>
    Pmulld,

    /// <summary>PMULLW.</summary>
    Pmullw,

    /// <summary>PMULUDQ.</summary>
    Pmuludq,

    /// <summary>POP.</summary>
    Pop,

    /// <summary>POPDS.</summary>
    PopDs,

    /// <summary>POPES.</summary>
    PopEs,

    /// <summary>POPFS.</summary>
    PopFs,

    /// <summary>POPGS.</summary>
    PopGs,

    /// <summary>POPSS.</summary>
    PopSs,

    /// <summary>POPA.</summary>
    Popa,

    /// <summary>POPCNT.</summary>
    Popcnt,

    /// <summary>POPF.</summary>
    Popf,

    /// <summary>POR.</summary>
    Por,

    /// <summary>PREFETCH.</summary>
    Prefetch,

    /// <summary>PREFETCHNTA.</summary>
    Prefetchnta,

    /// <summary>PREFETCHT0.</summary>
    Prefetcht0,

    /// <summary>PREFETCHT1.</summary>
    Prefetcht1,

    /// <summary>PREFETCHT2.</summary>
    Prefetcht2,

    /// <summary>PREFETCHW.</summary>
    Prefetchw,

    /// <summary>PREFETCHWT1.</summary>
    Prefetchwt1,

    /// <summary>PSADBW.</summary>
    Psadbw,

    /// <summary>PSHUFB.</summary>
    Pshufb,

    /// <summary>PSHUFD.</summary>
    Pshufd,

    /// <summary>PSHUFHW.</summary>
    Pshufhw,

    /// <summary>PSHUFLW.</summary>
    Pshuflw,

    /// <summary>PSHUFW.</summary>
    Pshufw,

    /// <summary>PSIGNB.</summary>
    Psignb,

    /// <summary>PSIGND.</summary>
    Psignd,

    /// <summary>PSIGNW.</summary>
    Psignw,

    /// <summary>PSLLD.</summary>
    Pslld,

    /// <summary>PSLLDQ.</summary>
    Pslldq,

    /// <summary>PSLLQ.</summary>
    Psllq,

    /// <summary>PSLLW.</summary>
    Psllw,

    /// <summary>PSRAD.</summary>
    Psrad,

    /// <summary>PSRAW.</summary>
    Psraw,

    /// <summary>PSRLD.</summary>
    Psrld,

    /// <summary>PSRLDQ.</summary>
    Psrldq,

    /// <summary>PSRLQ.</summary>
    Psrlq,

    /// <summary>PSRLW.</summary>
    Psrlw,

    /// <summary>PSUBB.</summary>
    Psubb,

    /// <summary>PSUBD.</summary>
    Psubd,

    /// <summary>PSUBQ.</summary>
    Psubq,

    /// <summary>PSUBSB.</summary>
    Psubsb,

    /// <summary>PSUBSW.</summary>
    Psubsw,

    /// <summary>PSUBUSB.</summary>
    Psubusb,

    /// <summary>PSUBUSW.</summary>
    Psubusw,

    /// <summary>PSUBW.</summary>
    Psubw,

    /// <summary>PTEST.</summary>
    Ptest,

    /// <summary>PUNPCKHBW.</summary>
    Punpckhbw,

    /// <summary>PUNPCKHDQ.</summary>
    Punpckhdq,

    /// <summary>PUNPCKHQDQ.</summary>
    Punpckhqdq,

    /// <summary>PUNPCKHWD.</summary>
    Punpckhwd,

    /// <summary>PUNPCKLBW.</summary>
    Punpcklbw,

    /// <summary>PUNPCKLDQ.</summary>
    Punpckldq,

    /// <summary>PUNPCKLQDQ.</summary>
    Punpcklqdq,

    /// <summary>PUNPCKLWD.</summary>
    Punpcklwd,

    /// <summary>PUSH.</summary>
    Push,

    /// <summary>PUSHCS.</summary>
    PushCs,

    /// <summary>PUSHDS.</summary>
    PushDs,

    /// <summary>PUSHES.</summary>
    PushEs,

    /// <summary>PUSHFS.</summary>
    PushFs,

    /// <summary>PUSHGS.</summary>
    PushGs,

    /// <summary>PUSHSS.</summary>
    PushSs,

    /// <summary>PUSHA.</summary>
    Pusha,

    /// <summary>PUSHF.</summary>
    Pushf,

    /// <summary>PXOR.</summary>
    Pxor,

    /// <summary>RCL.</summary>
    Rcl,

    /// <summary>RCPPS.</summary>
    Rcpps,

    /// <summary>RCPSS.</summary>
    Rcpss,

    /// <summary>RCR.</summary>
    Rcr,

    /// <summary>RDFSBASE.</summary>
    Rdfsbase,

    /// <summary>RDGSBASE.</summary>
    Rdgsbase,

    /// <summary>RDMSR.</summary>
    Rdmsr,

    /// <summary>RDPID.</summary>
    Rdpid,

    /// <summary>RDPKRU.</summary>
    Rdpkru,

    /// <summary>RDPMC.</summary>
    Rdpmc,

    /// <summary>RDRAND.</summary>
    Rdrand,

    /// <summary>RDSEED.</summary>
    Rdseed,

    /// <summary>RDTSC.</summary>
    Rdtsc,

    /// <summary>RDTSCP.</summary>
    Rdtscp,

    /// <summary>RETFAR.</summary>
    RetFar,

    /// <summary>RETNEAR.</summary>
    RetNear,

    /// <summary>ROL.</summary>
    Rol,

    /// <summary>ROR.</summary>
    Ror,

    /// <summary>ROUNDPD.</summary>
    Roundpd,

    /// <summary>ROUNDPS.</summary>
    Roundps,

    /// <summary>ROUNDSD.</summary>
    Roundsd,

    /// <summary>ROUNDSS.</summary>
    Roundss,

    /// <summary>RSM.</summary>
    Rsm,

    /// <summary>RSQRTPS.</summary>
    Rsqrtps,

    /// <summary>RSQRTSS.</summary>
    Rsqrtss,

    /// <summary>SAHF.</summary>
    Sahf,

    /// <summary>SAL.</summary>
    Sal,

    /// <summary>SALC.</summary>
    Salc,

    /// <summary>SAR.</summary>
    Sar,

    /// <summary>SBB.</summary>
    Sbb,

    /// <summary>SCAS.</summary>
    Scas,

    /// <summary>SETCC.</summary>
    Setcc,

    /// <summary>SFENCE.</summary>
    Sfence,

    /// <summary>SGDT.</summary>
    Sgdt,

    /// <summary>SHA1RNDS4.</summary>
    Sha1rnds4,

    /// <summary>SHL.</summary>
    Shl,

    /// <summary>SHLD.</summary>
    Shld,

    /// <summary>SHR.</summary>
    Shr,

    /// <summary>SHRD.</summary>
    Shrd,

    /// <summary>SHUFPD.</summary>
    Shufpd,

    /// <summary>SHUFPS.</summary>
    Shufps,

    /// <summary>SIDT.</summary>
    Sidt,

    /// <summary>SLDT.</summary>
    Sldt,

    /// <summary>SMSW.</summary>
    Smsw,

    /// <summary>SQRTPD.</summary>
    Sqrtpd,

    /// <summary>SQRTPS.</summary>
    Sqrtps,

    /// <summary>SQRTSD.</summary>
    Sqrtsd,

    /// <summary>SQRTSS.</summary>
    Sqrtss,

    /// <summary>STAC.</summary>
    Stac,

    /// <summary>STC.</summary>
    Stc,

    /// <summary>STD.</summary>
    Std,

    /// <summary>STI.</summary>
    Sti,

    /// <summary>STMXCSR.</summary>
    Stmxcsr,

    /// <summary>STOS.</summary>
    Stos,

    /// <summary>STR.</summary>
    Str,

    /// <summary>SUB.</summary>
    Sub,

    /// <summary>SUBPD.</summary>
    Subpd,

    /// <summary>SUBPS.</summary>
    Subps,

    /// <summary>SUBSD.</summary>
    Subsd,

    /// <summary>SUBSS.</summary>
    Subss,

    /// <summary>SWAPGS.</summary>
    Swapgs,

    /// <summary>SYSCALL.</summary>
    Syscall,

    /// <summary>SYSENTER.</summary>
    Sysenter,

    /// <summary>SYSEXIT.</summary>
    Sysexit,

    /// <summary>SYSRET.</summary>
    Sysret,

    /// <summary>TEST.</summary>
    Test,

    /// <summary>TZCNT.</summary>
    Tzcnt,

    /// <summary>UCOMISD.</summary>
    Ucomisd,

    /// <summary>UCOMISS.</summary>
    Ucomiss,

    /// <summary>UD0.</summary>
    Ud0,

    /// <summary>UD1.</summary>
    Ud1,

    /// <summary>UD2.</summary>
    Ud2,

    /// <summary>UNPCKHPD.</summary>
    Unpckhpd,

    /// <summary>UNPCKHPS.</summary>
    Unpckhps,

    /// <summary>UNPCKLPD.</summary>
    Unpcklpd,

    /// <summary>UNPCKLPS.</summary>
    Unpcklps,

    /// <summary>VERR.</summary>
    Verr,

    /// <summary>VERW.</summary>
    Verw,

    /// <summary>VMCALL.</summary>
    Vmcall,

    /// <summary>VMCLEAR.</summary>
    Vmclear,

    /// <summary>VMFUNC.</summary>
    Vmfunc,

    /// <summary>VMLAUNCH.</summary>
    Vmlaunch,

    /// <summary>VMPTRLD.</summary>
    Vmptrld,

    /// <summary>VMPTRST.</summary>
    Vmptrst,

    /// <summary>VMREAD.</summary>
    Vmread,

    /// <summary>VMRESUME.</summary>
    Vmresume,

    /// <summary>VMWRITE.</summary>
    Vmwrite,

    /// <summary>VMXOFF.</summary>
    Vmxoff,

    /// <summary>VMXON.</summary>
    Vmxon,

    /// <summary>WBINVD.</summary>
    Wbinvd,

    /// <summary>WRFSBASE.</summary>
    Wrfsbase,

    /// <summary>WRGSBASE.</summary>
    Wrgsbase,

    /// <summary>WRMSR.</summary>
    Wrmsr,

    /// <summary>WRPKRU.</summary>
    Wrpkru,

    /// <summary>X87.</summary>
    X87,

    /// <summary>XABORT.</summary>
    Xabort,

    /// <summary>XADD.</summary>
    Xadd,

    /// <summary>XBEGIN.</summary>
    Xbegin,

    /// <summary>XCHG.</summary>
    Xchg,

    /// <summary>XEND.</summary>
    Xend,

    /// <summary>XGETBV.</summary>
    Xgetbv,

    /// <summary>XLAT.</summary>
    Xlat,

    /// <summary>XOR.</summary>
    Xor,

    /// <summary>XORPD.</summary>
    Xorpd,

    /// <summary>XORPS.</summary>
    Xorps,

    /// <summary>XRSTOR.</summary>
    Xrstor,

    /// <summary>XRSTORS.</summary>
    Xrstors,

    /// <summary>XSAVE.</summary>
    Xsave,

    /// <summary>XSAVEC.</summary>
    Xsavec,

    /// <summary>XSAVEOPT.</summary>
    Xsaveopt,

    /// <summary>XSAVES.</summary>
    Xsaves,

    /// <summary>XSETBV.</summary>
    Xsetbv,

    /// <summary>XTEST.</summary>
    Xtest,
}
