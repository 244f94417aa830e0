using System.Runtime.Intrinsics;
using KvmSharp.Emulator.Decoding;
using KvmSharp.Emulator.Execution;
using KvmSharp.Emulator.Mmu;

namespace KvmSharp.Emulator.Cpu;

/// <summary>SSE/SSE2 floating-point arithmetic, comparisons, logic, shuffles and conversions.</summary>
public sealed partial class Interpreter
{
    /// <summary>The operand form the mandatory prefix selects: none packed single, 66 packed double, F3 scalar single, F2 scalar double.</summary>
    private bool IsDoubleForm => _insn.MandatoryPrefix is MandatoryPrefix.P66 or MandatoryPrefix.PF2;

    private bool IsScalarForm => _insn.MandatoryPrefix is MandatoryPrefix.PF3 or MandatoryPrefix.PF2;

    /// <summary>ADD, SUB, MUL, DIV, MIN, MAX, SQRT and CMP in their PS, PD, SS and SD forms.</summary>
    private bool ExecuteFloatArithmetic()
    {
        if (!SseAvailable())
        {
            return false;
        }

        bool isDouble = IsDoubleForm;
        bool scalar = IsScalarForm;
        if (!ReadXmmOperand(scalar ? (isDouble ? 8 : 4) : 16, aligned: !scalar, out var source))
        {
            return false;
        }

        var destination = Xmm(_insn.Reg);
        uint mxcsr = _state.Fx.Mxcsr;
        uint flags = 0;
        byte opcode = _insn.Opcode;
        int predicate = (int)(_insn.Immediate & 7);
        Vector128<byte> result;
        if (isDouble)
        {
            var a = destination.AsUInt64();
            var b = source.AsUInt64();
            var r = a;
            for (int i = 0; i < (scalar ? 1 : 2); i++)
            {
                r = r.WithElement(i, FloatOperation<Binary64>(opcode, a.GetElement(i), b.GetElement(i), predicate, mxcsr, ref flags));
            }

            result = r.AsByte();
        }
        else
        {
            var a = destination.AsUInt32();
            var b = source.AsUInt32();
            var r = a;
            for (int i = 0; i < (scalar ? 1 : 4); i++)
            {
                r = r.WithElement(i, (uint)FloatOperation<Binary32>(opcode, a.GetElement(i), b.GetElement(i), predicate, mxcsr, ref flags));
            }

            result = r.AsByte();
        }

        if (!CommitSimdFloat(flags))
        {
            return false;
        }

        SetXmm(_insn.Reg, result);
        return true;
    }

    private static ulong FloatOperation<F>(byte opcode, ulong a, ulong b, int predicate, uint mxcsr, ref uint flags)
        where F : IBinaryFormat => opcode switch
        {
            0x51 => SseFloat.Sqrt<F>(b, mxcsr, ref flags),
            0x58 => SseFloat.Add<F>(a, b, mxcsr, ref flags),
            0x59 => SseFloat.Multiply<F>(a, b, mxcsr, ref flags),
            0x5C => SseFloat.Subtract<F>(a, b, mxcsr, ref flags),
            0x5D => SseFloat.Min<F>(a, b, mxcsr, ref flags),
            0x5E => SseFloat.Divide<F>(a, b, mxcsr, ref flags),
            0x5F => SseFloat.Max<F>(a, b, mxcsr, ref flags),
            _ => SseFloat.ComparePredicate<F>(a, b, predicate, mxcsr, ref flags)
                ? ulong.MaxValue >> (63 - F.FractionBits - F.ExponentBits)
                : 0,
        };

    /// <summary>RCPPS/RCPSS/RSQRTPS/RSQRTSS: table approximations, no exceptions.</summary>
    private bool ExecuteApproximation()
    {
        if (!SseAvailable())
        {
            return false;
        }

        bool scalar = IsScalarForm;
        if (!ReadXmmOperand(scalar ? 4 : 16, aligned: !scalar, out var source))
        {
            return false;
        }

        bool reciprocal = _insn.Opcode == 0x53;
        var b = source.AsUInt32();
        var r = Xmm(_insn.Reg).AsUInt32();
        for (int i = 0; i < (scalar ? 1 : 4); i++)
        {
            uint x = b.GetElement(i);
            r = r.WithElement(i, reciprocal ? SseApproximation.Reciprocal(x) : SseApproximation.ReciprocalSqrt(x));
        }

        SetXmm(_insn.Reg, r.AsByte());
        return true;
    }

    /// <summary>ANDPS/ANDPD, ANDNPS/ANDNPD, ORPS/ORPD, XORPS/XORPD.</summary>
    private bool ExecuteFloatLogic()
    {
        if (!SseAvailable() || !ReadXmmOperand(16, aligned: true, out var b))
        {
            return false;
        }

        var a = Xmm(_insn.Reg);
        SetXmm(_insn.Reg, _insn.Opcode switch
        {
            0x54 => a & b,
            0x55 => Vector128.AndNot(b, a),
            0x56 => a | b,
            _ => a ^ b,
        });
        return true;
    }

    /// <summary>UNPCKLPS/PD, UNPCKHPS/PD, SHUFPS/PD.</summary>
    private bool ExecuteFloatShuffle()
    {
        if (!SseAvailable() || !ReadXmmOperand(16, aligned: true, out var b))
        {
            return false;
        }

        var a = Xmm(_insn.Reg);
        bool isDouble = _insn.MandatoryPrefix == MandatoryPrefix.P66;
        Vector128<byte> result;
        if (_insn.Opcode is 0x14 or 0x15)
        {
            result = SseInteger.Unpack(a, b, isDouble ? 8 : 4, 16, high: _insn.Opcode == 0x15);
        }
        else if (isDouble)
        {
            int order = (int)_insn.Immediate;
            result = Vector128.Create(a.AsUInt64().GetElement(order & 1), b.AsUInt64().GetElement((order >> 1) & 1)).AsByte();
        }
        else
        {
            int order = (int)_insn.Immediate;
            var da = a.AsUInt32();
            var db = b.AsUInt32();
            result = Vector128.Create(
                da.GetElement(order & 3),
                da.GetElement((order >> 2) & 3),
                db.GetElement((order >> 4) & 3),
                db.GetElement((order >> 6) & 3)).AsByte();
        }

        SetXmm(_insn.Reg, result);
        return true;
    }

    /// <summary>COMISS/COMISD/UCOMISS/UCOMISD: ZF, PF, CF from the comparison (111 unordered, 000 greater, 001 less, 100 equal); OF, SF, AF cleared.</summary>
    private bool ExecuteCompareToFlags()
    {
        if (!SseAvailable())
        {
            return false;
        }

        bool isDouble = _insn.MandatoryPrefix == MandatoryPrefix.P66;
        if (!ReadXmmOperand(isDouble ? 8 : 4, aligned: false, out var source))
        {
            return false;
        }

        bool signaling = _insn.Opcode == 0x2F;
        uint mxcsr = _state.Fx.Mxcsr;
        uint flags = 0;
        var destination = Xmm(_insn.Reg);
        var order = isDouble
            ? SseFloat.Compare<Binary64>(destination.AsUInt64().ToScalar(), source.AsUInt64().ToScalar(), signaling, mxcsr, ref flags)
            : SseFloat.Compare<Binary32>(destination.AsUInt32().ToScalar(), source.AsUInt32().ToScalar(), signaling, mxcsr, ref flags);
        if (!CommitSimdFloat(flags))
        {
            return false;
        }

        ulong result = order switch
        {
            FloatOrder.Unordered => Flags.ZF | Flags.PF | Flags.CF,
            FloatOrder.Less => Flags.CF,
            FloatOrder.Equal => Flags.ZF,
            _ => 0,
        };
        _state.RFlags = (_state.RFlags & ~Flags.Arithmetic) | result;
        return true;
    }

    // ---------------------------------------------------------------- conversions

    /// <summary>CVTPI2PS (two int32 to the low two singles) and CVTPI2PD (to two doubles); an MMX source enters MMX state.</summary>
    private bool ExecuteConvertFromMmx()
    {
        bool fromRegister = !_insn.HasMemoryOperand;
        if (!(fromRegister ? SseWithMmxAvailable() : SseAvailable()) || !ReadMmxOperand(8, out ulong source))
        {
            return false;
        }

        uint mxcsr = _state.Fx.Mxcsr;
        uint flags = 0;
        long low = (int)source;
        long high = (int)(source >> 32);
        Vector128<byte> result;
        if (_insn.MandatoryPrefix == MandatoryPrefix.P66)
        {
            result = Vector128.Create(
                SseFloat.FromInteger<Binary64>(low, mxcsr, ref flags),
                SseFloat.FromInteger<Binary64>(high, mxcsr, ref flags)).AsByte();
        }
        else
        {
            ulong pair = SseFloat.FromInteger<Binary32>(low, mxcsr, ref flags)
                | (SseFloat.FromInteger<Binary32>(high, mxcsr, ref flags) << 32);
            result = Xmm(_insn.Reg).AsUInt64().WithElement(0, pair).AsByte();
        }

        if (fromRegister)
        {
            TouchMmx(); // the transition to MMX state happens even when a SIMD exception then faults
        }

        if (!CommitSimdFloat(flags))
        {
            return false;
        }

        SetXmm(_insn.Reg, result);
        return true;
    }

    /// <summary>CVT(T)PS2PI (two singles from xmm/m64) and CVT(T)PD2PI (two doubles from xmm/m128) to two int32 in an MMX register.</summary>
    private bool ExecuteConvertToMmx()
    {
        bool isDouble = _insn.MandatoryPrefix == MandatoryPrefix.P66;
        if (!SseWithMmxAvailable() || !ReadXmmOperand(isDouble ? 16 : 8, aligned: isDouble, out var source))
        {
            return false;
        }

        bool truncate = _insn.Opcode == 0x2C;
        uint mxcsr = _state.Fx.Mxcsr;
        uint flags = 0;
        long low;
        long high;
        if (isDouble)
        {
            low = SseFloat.ToInteger<Binary64>(source.AsUInt64().GetElement(0), 4, truncate, mxcsr, ref flags);
            high = SseFloat.ToInteger<Binary64>(source.AsUInt64().GetElement(1), 4, truncate, mxcsr, ref flags);
        }
        else
        {
            low = SseFloat.ToInteger<Binary32>(source.AsUInt32().GetElement(0), 4, truncate, mxcsr, ref flags);
            high = SseFloat.ToInteger<Binary32>(source.AsUInt32().GetElement(1), 4, truncate, mxcsr, ref flags);
        }

        TouchMmx(); // the transition to MMX state happens even when a SIMD exception then faults
        if (!CommitSimdFloat(flags))
        {
            return false;
        }

        SetMmx(_insn.Reg, (uint)low | ((ulong)(uint)high << 32));
        return true;
    }

    /// <summary>CVTSI2SS/CVTSI2SD xmm, r/m32 (r/m64 with REX.W): the low element; the rest of the register is kept.</summary>
    private bool ExecuteConvertFromInteger()
    {
        int size = _insn.RexW ? 8 : 4;
        if (!SseAvailable() || !ReadRm(size, MemoryAccess.Read, out ulong source))
        {
            return false;
        }

        long value = size == 8 ? (long)source : (int)source;
        uint mxcsr = _state.Fx.Mxcsr;
        uint flags = 0;
        var destination = Xmm(_insn.Reg);
        Vector128<byte> result = _insn.MandatoryPrefix == MandatoryPrefix.PF2
            ? destination.AsUInt64().WithElement(0, SseFloat.FromInteger<Binary64>(value, mxcsr, ref flags)).AsByte()
            : destination.AsUInt32().WithElement(0, (uint)SseFloat.FromInteger<Binary32>(value, mxcsr, ref flags)).AsByte();
        if (!CommitSimdFloat(flags))
        {
            return false;
        }

        SetXmm(_insn.Reg, result);
        return true;
    }

    /// <summary>CVT(T)SS2SI/CVT(T)SD2SI r32 (r64 with REX.W), xmm/m.</summary>
    private bool ExecuteConvertToInteger()
    {
        bool isDouble = _insn.MandatoryPrefix == MandatoryPrefix.PF2;
        if (!SseAvailable() || !ReadXmmOperand(isDouble ? 8 : 4, aligned: false, out var source))
        {
            return false;
        }

        int size = _insn.RexW ? 8 : 4;
        bool truncate = _insn.Opcode == 0x2C;
        uint mxcsr = _state.Fx.Mxcsr;
        uint flags = 0;
        long value = isDouble
            ? SseFloat.ToInteger<Binary64>(source.AsUInt64().ToScalar(), size, truncate, mxcsr, ref flags)
            : SseFloat.ToInteger<Binary32>(source.AsUInt32().ToScalar(), size, truncate, mxcsr, ref flags);
        if (!CommitSimdFloat(flags))
        {
            return false;
        }

        WriteRegister(_insn.Reg, size, (ulong)value);
        return true;
    }

    /// <summary>The XMM-to-XMM conversions: CVTPS2PD, CVTPD2PS, CVTSS2SD, CVTSD2SS, CVTDQ2PS, CVT(T)PS2DQ, CVTDQ2PD, CVT(T)PD2DQ.</summary>
    private bool ExecuteConvertPacked()
    {
        if (!SseAvailable())
        {
            return false;
        }

        var op = _insn.Op;
        (int size, bool aligned) = op switch
        {
            Mnemonic.Cvtps2pd or Mnemonic.Cvtdq2pd or Mnemonic.Cvtsd2ss => (8, false),
            Mnemonic.Cvtss2sd => (4, false),
            _ => (16, true),
        };
        if (!ReadXmmOperand(size, aligned, out var source))
        {
            return false;
        }

        uint mxcsr = _state.Fx.Mxcsr;
        uint flags = 0;
        var destination = Xmm(_insn.Reg);
        var singles = source.AsUInt32();
        var doubles = source.AsUInt64();
        Vector128<byte> result;
        switch (op)
        {
            case Mnemonic.Cvtps2pd:
                result = Vector128.Create(
                    SseFloat.SingleToDouble(singles.GetElement(0), mxcsr, ref flags),
                    SseFloat.SingleToDouble(singles.GetElement(1), mxcsr, ref flags)).AsByte();
                break;
            case Mnemonic.Cvtpd2ps:
                result = Vector128.Create(
                    SseFloat.DoubleToSingle(doubles.GetElement(0), mxcsr, ref flags),
                    SseFloat.DoubleToSingle(doubles.GetElement(1), mxcsr, ref flags),
                    0u,
                    0u).AsByte();
                break;
            case Mnemonic.Cvtss2sd:
                result = destination.AsUInt64().WithElement(0, SseFloat.SingleToDouble(singles.GetElement(0), mxcsr, ref flags)).AsByte();
                break;
            case Mnemonic.Cvtsd2ss:
                result = destination.AsUInt32().WithElement(0, SseFloat.DoubleToSingle(doubles.GetElement(0), mxcsr, ref flags)).AsByte();
                break;
            case Mnemonic.Cvtdq2ps:
            {
                var r = Vector128<uint>.Zero;
                for (int i = 0; i < 4; i++)
                {
                    r = r.WithElement(i, (uint)SseFloat.FromInteger<Binary32>((int)singles.GetElement(i), mxcsr, ref flags));
                }

                result = r.AsByte();
                break;
            }

            case Mnemonic.Cvtps2dq or Mnemonic.Cvttps2dq:
            {
                bool truncate = op == Mnemonic.Cvttps2dq;
                var r = Vector128<uint>.Zero;
                for (int i = 0; i < 4; i++)
                {
                    r = r.WithElement(i, (uint)SseFloat.ToInteger<Binary32>(singles.GetElement(i), 4, truncate, mxcsr, ref flags));
                }

                result = r.AsByte();
                break;
            }

            case Mnemonic.Cvtdq2pd:
                result = Vector128.Create(
                    SseFloat.FromInteger<Binary64>((int)singles.GetElement(0), mxcsr, ref flags),
                    SseFloat.FromInteger<Binary64>((int)singles.GetElement(1), mxcsr, ref flags)).AsByte();
                break;
            default: // CVTPD2DQ, CVTTPD2DQ
            {
                bool truncate = op == Mnemonic.Cvttpd2dq;
                uint low = (uint)SseFloat.ToInteger<Binary64>(doubles.GetElement(0), 4, truncate, mxcsr, ref flags);
                uint high = (uint)SseFloat.ToInteger<Binary64>(doubles.GetElement(1), 4, truncate, mxcsr, ref flags);
                result = Vector128.Create(low, high, 0u, 0u).AsByte();
                break;
            }
        }

        if (!CommitSimdFloat(flags))
        {
            return false;
        }

        SetXmm(_insn.Reg, result);
        return true;
    }
}
