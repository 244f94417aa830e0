using System.Buffers.Binary;
using KvmSharp.Emulator.Decoding;
using KvmSharp.Emulator.Execution;
using KvmSharp.Emulator.Mmu;

namespace KvmSharp.Emulator.Cpu;

/// <summary>
/// XADD, CMPXCHG, CMPXCHG8B and CMPXCHG16B. LOCK is legal on their memory forms; the decoder already raises #UD
/// for LOCK on a register form or on an instruction that does not allow it. A memory destination is read with
/// write intent (so a read-only page faults before anything changes) and is always written, also when a compare
/// fails: hardware writes the old value back.
/// </summary>
/// <remarks>
/// One interpreter runs one vCPU on one thread, so the read-modify-write sequences here are atomic with respect
/// to this vCPU only; several interpreter threads sharing guest RAM would need host atomics for LOCKed forms.
/// </remarks>
public sealed partial class Interpreter
{
    /// <summary>XADD r/m, r: TEMP = DEST + SRC; SRC = DEST; DEST = TEMP (so XADD r, r with one register keeps the sum).</summary>
    private bool ExecuteXadd()
    {
        int size = _insn.OperandSize;
        if (!ReadRm(size, MemoryAccess.Write, out ulong destination))
        {
            return false;
        }

        ulong source = ReadRegister(_insn.Reg, size);
        var r = Alu.Add(destination, source, size, _state.RFlags);
        if (_insn.HasMemoryOperand)
        {
            if (!WriteRm(size, r.Value))
            {
                return false;
            }

            WriteRegister(_insn.Reg, size, destination);
        }
        else
        {
            WriteRegister(_insn.Reg, size, destination);
            WriteRegister(_insn.Rm, size, r.Value);
        }

        _state.RFlags = r.RFlags;
        return true;
    }

    /// <summary>
    /// CMPXCHG r/m, r: flags of CMP accumulator, DEST. Equal: DEST = SRC. Not equal: the accumulator = DEST, and a
    /// memory DEST is written back with its own value. A register DEST is written only when equal and the
    /// accumulator only when not, so a 32-bit form zero-extends exactly the register it writes.
    /// </summary>
    private bool ExecuteCmpxchg()
    {
        int size = _insn.OperandSize;
        if (!ReadRm(size, MemoryAccess.Write, out ulong destination))
        {
            return false;
        }

        ulong accumulator = ReadRegister(Gpr.Rax, size);
        ulong flags = Alu.Cmp(accumulator, destination, size, _state.RFlags);
        if (accumulator == destination)
        {
            if (!WriteRm(size, ReadRegister(_insn.Reg, size)))
            {
                return false;
            }
        }
        else
        {
            if (_insn.HasMemoryOperand && !WriteRm(size, destination))
            {
                return false;
            }

            WriteRegister(Gpr.Rax, size, destination);
        }

        _state.RFlags = flags;
        return true;
    }

    /// <summary>
    /// CMPXCHG8B m64 (EDX:EAX vs m64, ECX:EBX stored) and, with REX.W, CMPXCHG16B m128 (RDX:RAX, RCX:RBX), whose
    /// operand must be 16-byte aligned (#GP(0)). Only ZF changes. A 66 prefix does not change the size.
    /// </summary>
    private bool ExecuteCmpxchgDouble()
    {
        int half = _insn.OperandSize == 8 ? 8 : 4;
        var segment = _insn.EffectiveSegment;
        ulong offset = OperandOffset();
        if (half == 8 && (LinearAddressOf(segment, offset) & 15) != 0)
        {
            return GeneralProtection();
        }

        Span<byte> memory = stackalloc byte[16];
        memory = memory[..(2 * half)];
        if (!ReadMemoryBytes(segment, offset, memory, MemoryAccess.Write))
        {
            return false;
        }

        ulong low = half == 8 ? BinaryPrimitives.ReadUInt64LittleEndian(memory) : BinaryPrimitives.ReadUInt32LittleEndian(memory);
        ulong high = half == 8 ? BinaryPrimitives.ReadUInt64LittleEndian(memory[8..]) : BinaryPrimitives.ReadUInt32LittleEndian(memory[4..]);
        bool equal = low == ReadRegister(Gpr.Rax, half) && high == ReadRegister(Gpr.Rdx, half);
        if (equal)
        {
            WriteHalves(memory, half, ReadRegister(Gpr.Rbx, half), ReadRegister(Gpr.Rcx, half));
        }

        if (!WriteMemoryBytes(segment, offset, memory))
        {
            return false;
        }

        if (!equal)
        {
            WriteRegister(Gpr.Rax, half, low);
            WriteRegister(Gpr.Rdx, half, high);
        }

        _state.RFlags = equal ? _state.RFlags | Flags.ZF : _state.RFlags & ~Flags.ZF;
        return true;
    }

    private static void WriteHalves(Span<byte> memory, int half, ulong low, ulong high)
    {
        if (half == 8)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(memory, low);
            BinaryPrimitives.WriteUInt64LittleEndian(memory[8..], high);
        }
        else
        {
            BinaryPrimitives.WriteUInt32LittleEndian(memory, (uint)low);
            BinaryPrimitives.WriteUInt32LittleEndian(memory[4..], (uint)high);
        }
    }
}
