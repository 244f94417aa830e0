using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using KvmSharp.Emulator.Decoding;
using KvmSharp.Emulator.Execution;
using KvmSharp.Emulator.Mmu;
using KvmSharp.Hypervisor;

namespace KvmSharp.Emulator.Cpu;

/// <summary>
/// MMX, SSE and SSE2 instructions and the FXSAVE/FXRSTOR/LDMXCSR/STMXCSR group: the dispatch, the availability
/// checks (CR0.EM/TS, CR4.OSFXSR, pending x87 exceptions), operand access with the 16-byte alignment rule, and
/// the MXCSR exception commit. The families live in Interpreter.Simd*.cs; the arithmetic in Execution/Sse*.cs.
/// </summary>
public sealed partial class Interpreter
{
    private const ushort FswErrorSummary = 1 << 7;

    private bool ExecuteSimd()
    {
        if (_insn.Map != OpcodeMap.Map0F)
        {
            return Unimplemented(); // 0F38/0F3A: SSSE3, SSE4, AES, SHA, MOVBE, CRC32, ADX are not advertised
        }

        return _insn.Op switch
        {
            Mnemonic.Xadd or Mnemonic.Cmpxchg8b => ExecuteIntegerExtended(),
            Mnemonic.Ud0 => Fault(CpuException.InvalidOpcode),

            Mnemonic.Addps or Mnemonic.Addpd or Mnemonic.Addss or Mnemonic.Addsd
                or Mnemonic.Subps or Mnemonic.Subpd or Mnemonic.Subss or Mnemonic.Subsd
                or Mnemonic.Mulps or Mnemonic.Mulpd or Mnemonic.Mulss or Mnemonic.Mulsd
                or Mnemonic.Divps or Mnemonic.Divpd or Mnemonic.Divss or Mnemonic.Divsd
                or Mnemonic.Minps or Mnemonic.Minpd or Mnemonic.Minss or Mnemonic.Minsd
                or Mnemonic.Maxps or Mnemonic.Maxpd or Mnemonic.Maxss or Mnemonic.Maxsd
                or Mnemonic.Sqrtps or Mnemonic.Sqrtpd or Mnemonic.Sqrtss or Mnemonic.Sqrtsd
                or Mnemonic.Cmpps or Mnemonic.Cmppd or Mnemonic.Cmpss or Mnemonic.Cmpsd => ExecuteFloatArithmetic(),
            Mnemonic.Rcpps or Mnemonic.Rcpss or Mnemonic.Rsqrtps or Mnemonic.Rsqrtss => ExecuteApproximation(),
            Mnemonic.Andps or Mnemonic.Andpd or Mnemonic.Andnps or Mnemonic.Andnpd
                or Mnemonic.Orps or Mnemonic.Orpd or Mnemonic.Xorps or Mnemonic.Xorpd => ExecuteFloatLogic(),
            Mnemonic.Unpcklps or Mnemonic.Unpcklpd or Mnemonic.Unpckhps or Mnemonic.Unpckhpd
                or Mnemonic.Shufps or Mnemonic.Shufpd => ExecuteFloatShuffle(),
            Mnemonic.Comiss or Mnemonic.Comisd or Mnemonic.Ucomiss or Mnemonic.Ucomisd => ExecuteCompareToFlags(),
            Mnemonic.Cvtpi2ps or Mnemonic.Cvtpi2pd => ExecuteConvertFromMmx(),
            Mnemonic.Cvtps2pi or Mnemonic.Cvttps2pi or Mnemonic.Cvtpd2pi or Mnemonic.Cvttpd2pi => ExecuteConvertToMmx(),
            Mnemonic.Cvtsi2ss or Mnemonic.Cvtsi2sd => ExecuteConvertFromInteger(),
            Mnemonic.Cvtss2si or Mnemonic.Cvttss2si or Mnemonic.Cvtsd2si or Mnemonic.Cvttsd2si => ExecuteConvertToInteger(),
            Mnemonic.Cvtps2pd or Mnemonic.Cvtpd2ps or Mnemonic.Cvtss2sd or Mnemonic.Cvtsd2ss
                or Mnemonic.Cvtdq2ps or Mnemonic.Cvtps2dq or Mnemonic.Cvttps2dq
                or Mnemonic.Cvtdq2pd or Mnemonic.Cvtpd2dq or Mnemonic.Cvttpd2dq => ExecuteConvertPacked(),

            Mnemonic.Movups or Mnemonic.Movupd or Mnemonic.Movaps or Mnemonic.Movapd
                or Mnemonic.Movdqa or Mnemonic.Movdqu => ExecuteMoveFull(),
            Mnemonic.Movss or Mnemonic.Movsd => ExecuteMoveScalar(),
            Mnemonic.Movlps or Mnemonic.Movhlps or Mnemonic.Movlpd
                or Mnemonic.Movhps or Mnemonic.Movlhps or Mnemonic.Movhpd => ExecuteMoveHalf(),
            Mnemonic.Movntps or Mnemonic.Movntpd or Mnemonic.Movntdq => ExecuteMoveNonTemporal(),
            Mnemonic.Movntq => ExecuteMoveNonTemporalMmx(),
            Mnemonic.Movnti => ExecuteMoveNonTemporalInteger(),
            Mnemonic.Movmskps or Mnemonic.Movmskpd => ExecuteMoveMask(),
            Mnemonic.Movd or Mnemonic.Movq => ExecuteMoveQuadword(),
            Mnemonic.Movq2dq or Mnemonic.Movdq2q => ExecuteMoveBetweenFiles(),
            Mnemonic.Maskmovq or Mnemonic.Maskmovdqu => ExecuteMaskMove(),

            Mnemonic.Pshufw or Mnemonic.Pshufd or Mnemonic.Pshufhw or Mnemonic.Pshuflw => ExecuteShuffleInteger(),
            Mnemonic.Pinsrw => ExecuteInsertWord(),
            Mnemonic.Pextrw => ExecuteExtractWord(),
            Mnemonic.Pmovmskb => ExecuteMoveByteMask(),
            Mnemonic.Psrlw or Mnemonic.Psraw or Mnemonic.Psllw or Mnemonic.Psrld or Mnemonic.Psrad or Mnemonic.Pslld
                or Mnemonic.Psrlq or Mnemonic.Psllq or Mnemonic.Psrldq or Mnemonic.Pslldq
                when _insn.Opcode is >= 0x71 and <= 0x73 => ExecuteShiftImmediate(),
            Mnemonic.Punpcklbw or Mnemonic.Punpcklwd or Mnemonic.Punpckldq or Mnemonic.Punpcklqdq
                or Mnemonic.Punpckhbw or Mnemonic.Punpckhwd or Mnemonic.Punpckhdq or Mnemonic.Punpckhqdq
                or Mnemonic.Packsswb or Mnemonic.Packuswb or Mnemonic.Packssdw
                or Mnemonic.Pcmpgtb or Mnemonic.Pcmpgtw or Mnemonic.Pcmpgtd
                or Mnemonic.Pcmpeqb or Mnemonic.Pcmpeqw or Mnemonic.Pcmpeqd
                or Mnemonic.Psrlw or Mnemonic.Psrld or Mnemonic.Psrlq or Mnemonic.Psraw or Mnemonic.Psrad
                or Mnemonic.Psllw or Mnemonic.Pslld or Mnemonic.Psllq
                or Mnemonic.Paddb or Mnemonic.Paddw or Mnemonic.Paddd or Mnemonic.Paddq
                or Mnemonic.Psubb or Mnemonic.Psubw or Mnemonic.Psubd or Mnemonic.Psubq
                or Mnemonic.Paddsb or Mnemonic.Paddsw or Mnemonic.Paddusb or Mnemonic.Paddusw
                or Mnemonic.Psubsb or Mnemonic.Psubsw or Mnemonic.Psubusb or Mnemonic.Psubusw
                or Mnemonic.Pmullw or Mnemonic.Pmulhw or Mnemonic.Pmulhuw or Mnemonic.Pmuludq or Mnemonic.Pmaddwd
                or Mnemonic.Pand or Mnemonic.Pandn or Mnemonic.Por or Mnemonic.Pxor
                or Mnemonic.Pavgb or Mnemonic.Pavgw or Mnemonic.Psadbw
                or Mnemonic.Pminub or Mnemonic.Pmaxub or Mnemonic.Pminsw or Mnemonic.Pmaxsw => ExecutePackedInteger(),

            Mnemonic.Emms => ExecuteEmms(),
            Mnemonic.Fxsave => ExecuteFxsave(),
            Mnemonic.Fxrstor => ExecuteFxrstor(),
            Mnemonic.Ldmxcsr => ExecuteLdmxcsr(),
            Mnemonic.Stmxcsr => ExecuteStmxcsr(),
            Mnemonic.Clflush => ExecuteClflush(),
            Mnemonic.Lfence or Mnemonic.Mfence or Mnemonic.Sfence => true, // one vCPU in program order: nothing to order

            // SSE3 (MOVSLDUP, MOVSHDUP, MOVDDUP, HADD/HSUB, ADDSUB, LDDQU), VMX, XSAVE, CLFLUSHOPT, CLWB and FSGSBASE
            // are not advertised.
            _ => Unimplemented(),
        };
    }

    // ---------------------------------------------------------------- availability

    /// <summary>An SSE/SSE2 instruction on XMM registers: #UD with CR0.EM or without CR4.OSFXSR, #NM with CR0.TS.</summary>
    private bool SseAvailable()
    {
        if ((_state.Cr0 & Cr0Em) != 0 || (_state.Cr4 & X86SystemRegisters.Cr4Osfxsr) == 0)
        {
            return Fault(CpuException.InvalidOpcode);
        }

        return (_state.Cr0 & Cr0Ts) == 0 || Fault(CpuException.DeviceNotAvailable);
    }

    /// <summary>An instruction on MMX registers: #UD with CR0.EM, #NM with CR0.TS, #MF with an unmasked x87 exception pending.</summary>
    private bool MmxAvailable()
    {
        if ((_state.Cr0 & Cr0Em) != 0)
        {
            return Fault(CpuException.InvalidOpcode);
        }

        if ((_state.Cr0 & Cr0Ts) != 0)
        {
            return Fault(CpuException.DeviceNotAvailable);
        }

        return PendingX87Check();
    }

    /// <summary>#MF when FSW.ES reports an unmasked x87 exception that no x87 instruction has taken yet.</summary>
    private bool PendingX87Check() => (_state.Fx.Fsw & FswErrorSummary) == 0 || Fault(CpuException.X87FloatingPoint);

    /// <summary>An SSE instruction that also reads or writes an MMX register (CVTPI2PS ...): the SSE checks, then #MF.</summary>
    private bool SseWithMmxAvailable() => SseAvailable() && PendingX87Check();

    // ---------------------------------------------------------------- registers

    private Vector128<byte> Xmm(int register) =>
        Vector128.Create(_state.Fx.Xmm(register, 0), _state.Fx.Xmm(register, 1)).AsByte();

    private void SetXmm(int register, Vector128<byte> value)
    {
        var quadwords = value.AsUInt64();
        _state.Fx.Xmm(register, 0) = quadwords.GetElement(0);
        _state.Fx.Xmm(register, 1) = quadwords.GetElement(1);
    }

    /// <summary>MMX register <paramref name="register"/> (ModRM fields name mm0-mm7: REX.R/REX.B are ignored).</summary>
    private ulong Mmx(int register) => _state.Fx.Significand(register & 7);

    /// <summary>Writes an MMX register: TOP = 0, all tags valid, and the register's sign/exponent all ones.</summary>
    private void SetMmx(int register, ulong value)
    {
        _state.Fx.Significand(register & 7) = value;
        _state.Fx.EnterMmx(register & 7);
    }

    /// <summary>An MMX instruction that writes no MMX register still moves the x87 unit to MMX state.</summary>
    private void TouchMmx() => _state.Fx.EnterMmx(-1);

    // ---------------------------------------------------------------- memory operands

    /// <summary>
    /// Reads <paramref name="size"/> bytes of the ModRM memory operand into the low bytes of a vector (zeros above).
    /// With <paramref name="aligned"/>, an address that is not a multiple of 16 raises #GP(0) (after the segment checks).
    /// </summary>
    private bool ReadSimdMemory(int size, bool aligned, out Vector128<byte> value)
    {
        value = default;
        var segment = _insn.EffectiveSegment;
        if (!Linear(segment, OperandOffset(), size, MemoryAccess.Read, out ulong linear))
        {
            return false;
        }

        if (aligned && (linear & 15) != 0)
        {
            return GeneralProtection();
        }

        Span<byte> bytes = stackalloc byte[16];
        bytes.Clear();
        if (!ReadLinearBytes(linear, bytes[..size], MemoryAccess.Read, Privilege))
        {
            return false;
        }

        value = Vector128.Create<byte>(bytes);
        return true;
    }

    /// <summary>Writes the low <paramref name="size"/> bytes of <paramref name="value"/> to the ModRM memory operand (both pages checked first).</summary>
    private bool WriteSimdMemory(int size, bool aligned, Vector128<byte> value)
    {
        var segment = _insn.EffectiveSegment;
        if (!Linear(segment, OperandOffset(), size, MemoryAccess.Write, out ulong linear))
        {
            return false;
        }

        if (aligned && (linear & 15) != 0)
        {
            return GeneralProtection();
        }

        Span<byte> bytes = stackalloc byte[16];
        value.CopyTo(bytes);
        return WriteLinearBytes(linear, bytes[..size], Privilege);
    }

    /// <summary>The xmm/m source: the whole register Rm, or <paramref name="size"/> bytes of memory zero-extended.</summary>
    private bool ReadXmmOperand(int size, bool aligned, out Vector128<byte> value)
    {
        if (!_insn.HasMemoryOperand)
        {
            value = Xmm(_insn.Rm);
            return true;
        }

        return ReadSimdMemory(size, aligned, out value);
    }

    /// <summary>The mm/m source: MMX register Rm, or <paramref name="size"/> (4 or 8) bytes of memory zero-extended.</summary>
    private bool ReadMmxOperand(int size, out ulong value)
    {
        if (!_insn.HasMemoryOperand)
        {
            value = Mmx(_insn.Rm);
            return true;
        }

        bool ok = ReadSimdMemory(size, false, out var bytes);
        value = bytes.AsUInt64().ToScalar();
        return ok;
    }

    // ---------------------------------------------------------------- SIMD floating-point exceptions

    /// <summary>
    /// Records the exception flags an SSE floating-point instruction raised and decides whether its result may be
    /// written (SDM Vol. 1, 11.5.3): an unmasked pre-computation exception (IE, DE, ZE) reports only the
    /// pre-computation flags; otherwise all flags are set and any unmasked one faults. A fault is #XM with
    /// CR4.OSXMMEXCPT, else #UD; the destination is left unchanged.
    /// </summary>
    private bool CommitSimdFloat(uint flags)
    {
        uint mxcsr = _state.Fx.Mxcsr;
        uint unmasked = Mxcsr.UnmaskedExceptions(mxcsr);
        uint preComputation = flags & Mxcsr.PreComputationFlags;
        if ((preComputation & unmasked) != 0)
        {
            _state.Fx.Mxcsr = mxcsr | preComputation;
            return SimdFloatingPointFault();
        }

        _state.Fx.Mxcsr = mxcsr | flags;
        return (flags & unmasked) == 0 || SimdFloatingPointFault();
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private bool SimdFloatingPointFault() =>
        Fault((_state.Cr4 & X86SystemRegisters.Cr4Osxmmexcpt) != 0 ? CpuException.SimdFloatingPoint : CpuException.InvalidOpcode);
}
