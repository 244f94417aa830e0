using KvmSharp.Emulator.Decoding;
using KvmSharp.Emulator.Execution;
using KvmSharp.Emulator.Mmu;

namespace KvmSharp.Emulator.Cpu;

/// <summary>The core integer instructions: moves, ALU groups, shifts, multiply/divide, stack, near branches, SETcc/CMOVcc, bit tests.</summary>
public sealed partial class Interpreter
{
    private bool ExecuteMov()
    {
        int size = _insn.OperandSize;
        byte opcode = _insn.Opcode;
        switch (opcode)
        {
            case 0x88 or 0x89:
                return WriteRm(size, ReadRegister(_insn.Reg, size));
            case 0x8A or 0x8B:
                if (!ReadRm(size, MemoryAccess.Read, out ulong value))
                {
                    return false;
                }

                WriteRegister(_insn.Reg, size, value);
                return true;
            case >= 0xB0 and <= 0xBF:
                WriteRegister(_insn.OpcodeRegister, size, _insn.Immediate);
                return true;
            case 0xC6 or 0xC7:
                return WriteRm(size, (ulong)_insn.SignedImmediate);
            case 0xA0 or 0xA1:
            {
                // MOV AL/rAX, moffs: the offset is an address-size immediate in DS (or the override).
                var segment = _insn.SegmentOverride == SegmentName.None || (_mode == CpuMode.Long64 && _insn.SegmentOverride < SegmentName.Fs)
                    ? SegmentName.Ds
                    : _insn.SegmentOverride;
                if (!ReadMemory(segment, _insn.Immediate & AddressMask, size, MemoryAccess.Read, out ulong loaded))
                {
                    return false;
                }

                WriteRegister(Gpr.Rax, size, loaded);
                return true;
            }

            case 0xA2 or 0xA3:
            {
                var segment = _insn.SegmentOverride == SegmentName.None || (_mode == CpuMode.Long64 && _insn.SegmentOverride < SegmentName.Fs)
                    ? SegmentName.Ds
                    : _insn.SegmentOverride;
                return WriteMemory(segment, _insn.Immediate & AddressMask, size, ReadRegister(Gpr.Rax, size));
            }

            default:
                return Unimplemented(); // 8C/8E (segment registers) are system instructions
        }
    }

    private bool ExecuteMoveExtend()
    {
        int size = _insn.OperandSize;
        int sourceSize = _insn.Op == Mnemonic.Movsxd ? Math.Min(size, 4) : (_insn.Opcode & 1) == 0 ? 1 : 2;
        if (!ReadRm(sourceSize, MemoryAccess.Read, out ulong value))
        {
            return false;
        }

        if (_insn.Op != Mnemonic.Movzx)
        {
            value = (ulong)Alu.SignExtend(value, sourceSize);
        }

        WriteRegister(_insn.Reg, size, value);
        return true;
    }

    private bool ExecuteLea()
    {
        ulong address = OperandOffset();
        WriteRegister(_insn.Reg, _insn.OperandSize, address); // no segment base: LEA yields the offset
        return true;
    }

    private AluResult Arithmetic(ulong a, ulong b, int size)
    {
        ulong f = _state.RFlags;
        return _insn.Op switch
        {
            Mnemonic.Add => Alu.Add(a, b, size, f),
            Mnemonic.Or => Alu.Or(a, b, size, f),
            Mnemonic.Adc => Alu.Adc(a, b, size, f),
            Mnemonic.Sbb => Alu.Sbb(a, b, size, f),
            Mnemonic.And => Alu.And(a, b, size, f),
            Mnemonic.Sub => Alu.Sub(a, b, size, f),
            Mnemonic.Xor => Alu.Xor(a, b, size, f),
            _ => new AluResult(a, Alu.Cmp(a, b, size, f)),
        };
    }

    private bool ExecuteAlu()
    {
        int size = _insn.OperandSize;
        bool writes = _insn.Op != Mnemonic.Cmp;
        var access = writes ? MemoryAccess.Write : MemoryAccess.Read;
        ulong mask = Alu.SizeMask(size);
        if (_insn.Opcode is >= 0x80 and <= 0x83)
        {
            // r/m, imm: 83 sign-extends imm8, 81 sign-extends imm32 to 64 bits.
            if (!ReadRm(size, access, out ulong dest))
            {
                return false;
            }

            var r = Arithmetic(dest, (ulong)_insn.SignedImmediate & mask, size);
            return Commit(writes, size, r, toRm: true);
        }

        switch (_insn.Opcode & 7)
        {
            case 0 or 1:
            {
                if (!ReadRm(size, access, out ulong dest))
                {
                    return false;
                }

                var r = Arithmetic(dest, ReadRegister(_insn.Reg, size), size);
                return Commit(writes, size, r, toRm: true);
            }

            case 2 or 3:
            {
                if (!ReadRm(size, MemoryAccess.Read, out ulong source))
                {
                    return false;
                }

                var r = Arithmetic(ReadRegister(_insn.Reg, size), source, size);
                return Commit(writes, size, r, toRm: false);
            }

            default:
            {
                var r = Arithmetic(ReadRegister(Gpr.Rax, size), (ulong)_insn.SignedImmediate & mask, size);
                if (writes)
                {
                    WriteRegister(Gpr.Rax, size, r.Value);
                }

                _state.RFlags = r.RFlags;
                return true;
            }
        }
    }

    private bool Commit(bool writes, int size, AluResult result, bool toRm)
    {
        if (writes)
        {
            if (toRm)
            {
                if (!WriteRm(size, result.Value))
                {
                    return false;
                }
            }
            else
            {
                WriteRegister(_insn.Reg, size, result.Value);
            }
        }

        _state.RFlags = result.RFlags;
        return true;
    }

    private bool ExecuteTest()
    {
        int size = _insn.OperandSize;
        ulong a;
        ulong b;
        switch (_insn.Opcode)
        {
            case 0x84 or 0x85:
                if (!ReadRm(size, MemoryAccess.Read, out a))
                {
                    return false;
                }

                b = ReadRegister(_insn.Reg, size);
                break;
            case 0xA8 or 0xA9:
                a = ReadRegister(Gpr.Rax, size);
                b = (ulong)_insn.SignedImmediate;
                break;
            default: // F6/F7 /0 /1
                if (!ReadRm(size, MemoryAccess.Read, out a))
                {
                    return false;
                }

                b = (ulong)_insn.SignedImmediate;
                break;
        }

        _state.RFlags = Alu.Test(a, b & Alu.SizeMask(size), size, _state.RFlags);
        return true;
    }

    private bool ExecuteUnary()
    {
        int size = _insn.OperandSize;
        ulong f = _state.RFlags;
        if (_insn.Map == OpcodeMap.OneByte && _insn.Opcode is >= 0x40 and <= 0x4F)
        {
            // INC/DEC r16/r32 (40-4F outside 64-bit mode, where they are REX): the register is in the opcode.
            int register = _insn.Opcode & 7;
            ulong operand = ReadRegister(register, size);
            var result = _insn.Op == Mnemonic.Inc ? Alu.Inc(operand, size, f) : Alu.Dec(operand, size, f);
            WriteRegister(register, size, result.Value);
            _state.RFlags = result.RFlags;
            return true;
        }

        if (!ReadRm(size, MemoryAccess.Write, out ulong value))
        {
            return false;
        }

        var r = _insn.Op switch
        {
            Mnemonic.Inc => Alu.Inc(value, size, f),
            Mnemonic.Dec => Alu.Dec(value, size, f),
            Mnemonic.Neg => Alu.Neg(value, size, f),
            _ => new AluResult(Alu.Not(value, size), f),
        };
        return Commit(true, size, r, toRm: true);
    }

    private bool ExecuteShift()
    {
        int size = _insn.OperandSize;
        ulong count = _insn.Opcode switch
        {
            0xC0 or 0xC1 => _insn.Immediate,
            0xD0 or 0xD1 => 1,
            _ => _state.Rcx & 0xFF,
        };
        if (!ReadRm(size, MemoryAccess.Write, out ulong value))
        {
            return false;
        }

        ulong f = _state.RFlags;
        var r = _insn.Op switch
        {
            Mnemonic.Rol => Alu.Rol(value, count, size, f),
            Mnemonic.Ror => Alu.Ror(value, count, size, f),
            Mnemonic.Rcl => Alu.Rcl(value, count, size, f),
            Mnemonic.Rcr => Alu.Rcr(value, count, size, f),
            Mnemonic.Shr => Alu.Shr(value, count, size, f),
            Mnemonic.Sar => Alu.Sar(value, count, size, f),
            _ => Alu.Shl(value, count, size, f),
        };
        return Commit(true, size, r, toRm: true);
    }

    private bool ExecuteMultiply()
    {
        int size = _insn.OperandSize;
        if (!ReadRm(size, MemoryAccess.Read, out ulong source))
        {
            return false;
        }

        ulong f = _state.RFlags;
        if (_insn.Map == OpcodeMap.Map0F || _insn.Opcode is 0x69 or 0x6B)
        {
            // IMUL r, r/m (0F AF) and IMUL r, r/m, imm (69, 6B): the truncated product.
            ulong other = _insn.Map == OpcodeMap.Map0F ? ReadRegister(_insn.Reg, size) : (ulong)_insn.SignedImmediate & Alu.SizeMask(size);
            var r = Alu.ImulTruncated(other, source, size, f);
            WriteRegister(_insn.Reg, size, r.Value);
            _state.RFlags = r.RFlags;
            return true;
        }

        var product = _insn.Op == Mnemonic.Mul
            ? Alu.Mul(ReadRegister(Gpr.Rax, size), source, size, f)
            : Alu.Imul(ReadRegister(Gpr.Rax, size), source, size, f);
        if (size == 1)
        {
            WriteRegister(Gpr.Rax, 2, (product.High << 8) | product.Low);
        }
        else
        {
            WriteRegister(Gpr.Rax, size, product.Low);
            WriteRegister(Gpr.Rdx, size, product.High);
        }

        _state.RFlags = product.RFlags;
        return true;
    }

    private bool ExecuteDivide()
    {
        int size = _insn.OperandSize;
        if (!ReadRm(size, MemoryAccess.Read, out ulong divisor))
        {
            return false;
        }

        ulong high = size == 1 ? (_state.Rax >> 8) & 0xFF : ReadRegister(Gpr.Rdx, size);
        ulong low = ReadRegister(Gpr.Rax, size);
        var r = _insn.Op == Mnemonic.Div
            ? Alu.Div(high, low, divisor, size, _state.RFlags)
            : Alu.Idiv(high, low, divisor, size, _state.RFlags);
        if (r.DivideError)
        {
            return Fault(CpuException.DivideError);
        }

        if (size == 1)
        {
            WriteRegister(Gpr.Rax, 2, (r.Remainder << 8) | r.Quotient);
        }
        else
        {
            WriteRegister(Gpr.Rax, size, r.Quotient);
            WriteRegister(Gpr.Rdx, size, r.Remainder);
        }

        _state.RFlags = r.RFlags;
        return true;
    }

    private bool ExecutePush()
    {
        int size = _insn.OperandSize;
        ulong value;
        switch (_insn.Opcode)
        {
            case >= 0x50 and <= 0x57:
                value = ReadRegister(_insn.OpcodeRegister, size);
                break;
            case 0x68 or 0x6A:
                value = (ulong)_insn.SignedImmediate;
                break;
            default: // FF /6
                if (!ReadRm(size, MemoryAccess.Read, out value))
                {
                    return false;
                }

                break;
        }

        return Push(value, size);
    }

    private bool ExecutePop()
    {
        int size = _insn.OperandSize;
        if (!PeekStack(size, out ulong value))
        {
            return false;
        }

        ulong oldRsp = _state.Rsp;
        DiscardStack((ulong)size);
        if (_insn.Opcode != 0x8F)
        {
            WriteRegister(_insn.OpcodeRegister, size, value);
            return true;
        }

        // POP r/m computes a memory destination's address with the incremented RSP (SDM Vol. 2B, POP).
        if (!WriteRm(size, value))
        {
            _state.Rsp = oldRsp;
            return false;
        }

        return true;
    }

    private bool ExecuteCall()
    {
        int size = _insn.OperandSize;
        ulong target;
        if (_insn.Opcode == 0xE8)
        {
            RelativeTarget(out target);
        }
        else if (!ReadRm(size, MemoryAccess.Read, out target))
        {
            return false;
        }

        // The target is checked before anything is pushed, so a bad target leaves the stack untouched.
        ulong returnAddress = _nextRip;
        if (!Branch(target))
        {
            return false;
        }

        if (!Push(returnAddress, size))
        {
            _nextRip = returnAddress;
            return false;
        }

        return true;
    }

    private bool ExecuteRet()
    {
        int size = _insn.OperandSize;
        if (!PeekStack(size, out ulong target) || !Branch(target))
        {
            return false;
        }

        DiscardStack((ulong)size + (_insn.Opcode == 0xC2 ? _insn.Immediate : 0));
        return true;
    }

    private bool ExecuteJmp()
    {
        ulong target;
        if (_insn.Opcode == 0xFF)
        {
            if (!ReadRm(_insn.OperandSize, MemoryAccess.Read, out target))
            {
                return false;
            }
        }
        else
        {
            RelativeTarget(out target);
        }

        return Branch(target);
    }

    private bool ExecuteLoop()
    {
        int countSize = _insn.AddressSize;
        ulong count = ReadRegister(Gpr.Rcx, countSize);
        bool taken;
        if (_insn.Op == Mnemonic.Jrcxz)
        {
            taken = count == 0;
        }
        else
        {
            count = (count - 1) & Alu.SizeMask(countSize);
            bool zf = (_state.RFlags & Flags.ZF) != 0;
            taken = count != 0 && _insn.Op switch
            {
                Mnemonic.Loope => zf,
                Mnemonic.Loopne => !zf,
                _ => true,
            };
        }

        if (taken && !(RelativeTarget(out ulong target) && Branch(target)))
        {
            return false;
        }

        if (_insn.Op != Mnemonic.Jrcxz)
        {
            WriteRegister(Gpr.Rcx, countSize, count);
        }

        return true;
    }

    private bool ExecuteCmov()
    {
        int size = _insn.OperandSize;
        if (!ReadRm(size, MemoryAccess.Read, out ulong source))
        {
            return false; // the source is read (and may fault) whether or not the condition holds
        }

        // A 32-bit CMOV writes the destination (zero-extending it) even when the condition is false.
        WriteRegister(_insn.Reg, size, Condition(_insn.Condition) ? source : ReadRegister(_insn.Reg, size));
        return true;
    }

    private bool ExecuteXchg()
    {
        int size = _insn.OperandSize;
        if (_insn.Opcode is >= 0x90 and <= 0x97)
        {
            int other = _insn.OpcodeRegister;
            ulong a = ReadRegister(Gpr.Rax, size);
            ulong b = ReadRegister(other, size);
            WriteRegister(Gpr.Rax, size, b);
            WriteRegister(other, size, a);
            return true;
        }

        if (!ReadRm(size, MemoryAccess.Write, out ulong rm))
        {
            return false;
        }

        ulong reg = ReadRegister(_insn.Reg, size);
        if (!WriteRm(size, reg))
        {
            return false;
        }

        WriteRegister(_insn.Reg, size, rm);
        return true;
    }

    private bool ExecuteBitTest()
    {
        int size = _insn.OperandSize;
        bool immediate = _insn.Opcode == 0xBA;
        ulong offset = immediate ? _insn.Immediate & (ulong)((size << 3) - 1) : ReadRegister(_insn.Reg, size);
        bool writes = _insn.Op != Mnemonic.Bt;
        var access = writes ? MemoryAccess.Write : MemoryAccess.Read;
        ulong address = 0;
        ulong value;
        if (_insn.HasMemoryOperand)
        {
            // A register bit offset addresses a bit string: it may select a unit before or after the operand.
            address = OperandOffset();
            if (!immediate)
            {
                address = (address + (ulong)Alu.BitStringDisplacement(offset, size)) & AddressMask;
            }

            if (!ReadMemory(_insn.EffectiveSegment, address, size, access, out value))
            {
                return false;
            }
        }
        else
        {
            value = ReadRegister(_insn.Rm, size);
        }

        ulong f = _state.RFlags;
        if (!writes)
        {
            _state.RFlags = Alu.Bt(value, offset, size, f);
            return true;
        }

        var r = _insn.Op switch
        {
            Mnemonic.Bts => Alu.Bts(value, offset, size, f),
            Mnemonic.Btr => Alu.Btr(value, offset, size, f),
            _ => Alu.Btc(value, offset, size, f),
        };
        if (_insn.HasMemoryOperand)
        {
            if (!WriteMemory(_insn.EffectiveSegment, address, size, r.Value))
            {
                return false;
            }
        }
        else
        {
            WriteRegister(_insn.Rm, size, r.Value);
        }

        _state.RFlags = r.RFlags;
        return true;
    }
}
