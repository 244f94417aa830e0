using System.Buffers.Binary;
using KvmSharp.Emulator.Decoding;
using KvmSharp.Emulator.Execution;
using KvmSharp.Emulator.Mmu;

namespace KvmSharp.Emulator.Cpu;

/// <summary>
/// The general-purpose instructions outside the core switch: strings and port I/O (Interpreter.Strings.cs),
/// XADD/CMPXCHG (Interpreter.Exchange.cs), ENTER/LEAVE/PUSHA/POPA (Interpreter.StackFrames.cs), and here bit
/// scans and counts, double shifts, flag and accumulator instructions, BCD, BOUND, XLAT and prefetch hints.
/// </summary>
public sealed partial class Interpreter
{
    private const ulong LahfFlags = Flags.SF | Flags.ZF | Flags.AF | Flags.PF | Flags.CF;

    private bool ExecuteIntegerExtended() => _insn.Op switch
    {
        Mnemonic.Movs or Mnemonic.Cmps or Mnemonic.Scas or Mnemonic.Lods or Mnemonic.Stos
            or Mnemonic.Ins or Mnemonic.Outs => ExecuteString(),
        Mnemonic.In => ExecuteIn(),
        Mnemonic.Out => ExecuteOut(),
        Mnemonic.Xadd => ExecuteXadd(),
        Mnemonic.Cmpxchg => ExecuteCmpxchg(),
        Mnemonic.Cmpxchg8b => ExecuteCmpxchgDouble(),
        Mnemonic.Enter => ExecuteEnter(),
        Mnemonic.Leave => ExecuteLeave(),
        Mnemonic.Pusha => ExecutePusha(),
        Mnemonic.Popa => ExecutePopa(),
        Mnemonic.Bsf or Mnemonic.Bsr or Mnemonic.Tzcnt or Mnemonic.Lzcnt => ExecuteBitScan(),
        Mnemonic.Popcnt => ExecutePopcnt(),
        Mnemonic.Shld or Mnemonic.Shrd => ExecuteDoubleShift(),
        Mnemonic.Lahf => ExecuteLahf(),
        Mnemonic.Sahf => SetFlags((_state.RFlags & ~LahfFlags) | ((_state.Rax >> 8) & LahfFlags)),
        Mnemonic.Cld => SetFlags(_state.RFlags & ~Flags.DF),
        Mnemonic.Std => SetFlags(_state.RFlags | Flags.DF),
        Mnemonic.Salc => SetAccumulatorByte((_state.RFlags & Flags.CF) != 0 ? 0xFFUL : 0),
        Mnemonic.Daa or Mnemonic.Das or Mnemonic.Aaa or Mnemonic.Aas or Mnemonic.Aam or Mnemonic.Aad => ExecuteDecimalAdjust(),
        Mnemonic.Bound => ExecuteBound(),
        Mnemonic.Xlat => ExecuteXlat(),

        // Hints that never fault. 0F 18 /0-3 need SSE (advertised). 0F 0D (PREFETCH/PREFETCHW/PREFETCHWT1) is
        // enumerated by CPUID 80000001H:ECX.PRFCHW, which we do not set; Intel CPUs without that bit still
        // execute the memory forms as NOPs (Windows 8.1 relies on it), so they are NOPs here too. The register
        // forms are #UD in the decoder.
        Mnemonic.Prefetchnta or Mnemonic.Prefetcht0 or Mnemonic.Prefetcht1 or Mnemonic.Prefetcht2
            or Mnemonic.Prefetch or Mnemonic.Prefetchw or Mnemonic.Prefetchwt1 => true,
        _ => Unimplemented(),
    };

    /// <summary>
    /// BSF/BSR, and the F3 forms (TZCNT/LZCNT encodings), which execute as BSF/BSR because BMI1 and ABM are not
    /// advertised. A zero source sets ZF and leaves the destination register untouched, upper half included, as
    /// this Intel host does (Alu.cs).
    /// </summary>
    private bool ExecuteBitScan()
    {
        int size = _insn.OperandSize;
        if (!ReadRm(size, MemoryAccess.Read, out ulong source))
        {
            return false;
        }

        ulong destination = ReadRegister(_insn.Reg, size);
        var r = _insn.Op is Mnemonic.Bsf or Mnemonic.Tzcnt
            ? Alu.Bsf(destination, source, size, _state.RFlags)
            : Alu.Bsr(destination, source, size, _state.RFlags);
        if (source != 0)
        {
            WriteRegister(_insn.Reg, size, r.Value);
        }

        _state.RFlags = r.RFlags;
        return true;
    }

    private bool ExecutePopcnt()
    {
        int size = _insn.OperandSize;
        if (!ReadRm(size, MemoryAccess.Read, out ulong source))
        {
            return false;
        }

        var r = Alu.Popcnt(source, size, _state.RFlags);
        WriteRegister(_insn.Reg, size, r.Value);
        _state.RFlags = r.RFlags;
        return true;
    }

    /// <summary>SHLD/SHRD r/m, r, imm8 (0F A4/AC) or CL (0F A5/AD).</summary>
    private bool ExecuteDoubleShift()
    {
        int size = _insn.OperandSize;
        ulong count = (_insn.Opcode & 1) == 0 ? _insn.Immediate : _state.Rcx & 0xFF;
        if (!ReadRm(size, MemoryAccess.Write, out ulong destination))
        {
            return false;
        }

        ulong source = ReadRegister(_insn.Reg, size);
        var r = _insn.Op == Mnemonic.Shld
            ? Alu.Shld(destination, source, count, size, _state.RFlags)
            : Alu.Shrd(destination, source, count, size, _state.RFlags);
        return Commit(true, size, r, toRm: true);
    }

    /// <summary>LAHF: AH = SF:ZF:0:AF:0:PF:1:CF (valid in 64-bit mode: LAHF_LM is advertised).</summary>
    private bool ExecuteLahf()
    {
        ulong ah = (_state.RFlags & LahfFlags) | Flags.Reserved1;
        _state.Rax = (_state.Rax & ~0xFF00UL) | (ah << 8);
        return true;
    }

    private bool SetAccumulatorByte(ulong value)
    {
        _state.Rax = (_state.Rax & ~0xFFUL) | (value & 0xFF);
        return true;
    }

    /// <summary>DAA/DAS on AL, AAA/AAS on AX, AAM/AAD imm8 on AX (all #UD in 64-bit mode, in the decoder).</summary>
    private bool ExecuteDecimalAdjust()
    {
        ulong rax = _state.Rax;
        ulong f = _state.RFlags;
        AluResult r;
        switch (_insn.Op)
        {
            case Mnemonic.Daa:
                r = Alu.Daa(rax, f);
                SetAccumulatorByte(r.Value);
                break;
            case Mnemonic.Das:
                r = Alu.Das(rax, f);
                SetAccumulatorByte(r.Value);
                break;
            case Mnemonic.Aaa:
                r = Alu.Aaa(rax, f);
                WriteRegister(Gpr.Rax, 2, r.Value);
                break;
            case Mnemonic.Aas:
                r = Alu.Aas(rax, f);
                WriteRegister(Gpr.Rax, 2, r.Value);
                break;
            case Mnemonic.Aam:
                r = Alu.Aam(rax, (byte)_insn.Immediate, f, out bool divideError);
                if (divideError)
                {
                    return Fault(CpuException.DivideError);
                }

                WriteRegister(Gpr.Rax, 2, r.Value);
                break;
            default:
                r = Alu.Aad(rax, (byte)_insn.Immediate, f);
                WriteRegister(Gpr.Rax, 2, r.Value & 0xFF); // AH = 0
                break;
        }

        _state.RFlags = r.RFlags;
        return true;
    }

    /// <summary>BOUND r16/32, m16&amp;16/m32&amp;32: #BR unless lower &lt;= index &lt;= upper (signed); both bounds are read first.</summary>
    private bool ExecuteBound()
    {
        int size = _insn.OperandSize;
        Span<byte> bounds = stackalloc byte[8];
        bounds = bounds[..(2 * size)];
        if (!ReadRmBytes(bounds))
        {
            return false;
        }

        long lower = size == 2 ? BinaryPrimitives.ReadInt16LittleEndian(bounds) : BinaryPrimitives.ReadInt32LittleEndian(bounds);
        long upper = size == 2 ? BinaryPrimitives.ReadInt16LittleEndian(bounds[2..]) : BinaryPrimitives.ReadInt32LittleEndian(bounds[4..]);
        long index = Alu.SignExtend(ReadRegister(_insn.Reg, size), size);
        return (index >= lower && index <= upper) || Fault(CpuException.BoundRange);
    }

    /// <summary>XLAT: AL = [seg:rBX + AL], the sum truncated to the address size; DS unless overridden.</summary>
    private bool ExecuteXlat()
    {
        ulong offset = (ReadRegister(Gpr.Rbx, _insn.AddressSize) + (_state.Rax & 0xFF)) & AddressMask;
        if (!ReadMemory(_insn.EffectiveSegment, offset, 1, MemoryAccess.Read, out ulong value))
        {
            return false;
        }

        return SetAccumulatorByte(value);
    }
}
