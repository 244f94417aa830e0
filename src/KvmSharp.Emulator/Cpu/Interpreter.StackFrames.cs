using System.Buffers.Binary;
using KvmSharp.Emulator.Decoding;
using KvmSharp.Emulator.Execution;
using KvmSharp.Emulator.Mmu;

namespace KvmSharp.Emulator.Cpu;

/// <summary>
/// ENTER, LEAVE, PUSHA and POPA. Every push is checked, in push order, before the first byte is written, so a
/// fault reports the push hardware would fault on (CR2 included) and leaves memory and registers as they were;
/// the values then go out in one block (split in two only where a 16/32-bit stack pointer wraps).
/// </summary>
public sealed partial class Interpreter
{
    /// <summary>ENTER pushes at most 32 values: rBP, 31 outer frame pointers and the new frame pointer.</summary>
    private const int MaxEnterValues = 33;

    /// <summary>
    /// ENTER imm16, imm8 (SDM Vol. 2A, ENTER): push rBP; for nesting level L &gt; 0 copy L - 1 frame pointers
    /// from [rBP - i * size] (rBP as wide as the stack pointer) and push the new frame pointer; then rBP = the
    /// frame pointer (operand size) and the stack pointer drops by imm16. Like Bochs, the final stack pointer is
    /// write-checked for one operand-size value before anything is committed.
    /// </summary>
    private bool ExecuteEnter()
    {
        int size = _insn.OperandSize;
        int stackSize = StackAddressSize;
        ulong stackMask = Alu.SizeMask(stackSize);
        int level = _insn.Immediate2 & 0x1F;
        int values = level == 0 ? 1 : level + 1;
        ulong top = StackPointer;
        ulong bottom = (top - (ulong)(values * size)) & stackMask;
        ulong framePointer = StackRegisterAfter(top - (ulong)size);

        Span<byte> frame = stackalloc byte[MaxEnterValues * 8];
        frame = frame[..(values * size)];
        if (!ProbePushes(bottom, values, size))
        {
            return false;
        }

        // Value j (0 = the first pushed) lands j + 1 slots below the old top.
        WriteSlot(frame, values - 1, size, _state.Rbp);
        ulong outer = ReadRegister(Gpr.Rbp, stackSize);
        for (int j = 1; j < level; j++)
        {
            outer = (outer - (ulong)size) & stackMask;
            if (!ReadMemory(SegmentName.Ss, outer, size, MemoryAccess.Read, out ulong value))
            {
                return false;
            }

            WriteSlot(frame, values - 1 - j, size, value);
        }

        if (level > 0)
        {
            WriteSlot(frame, 0, size, framePointer);
        }

        ulong final = (bottom - (_insn.Immediate & 0xFFFF)) & stackMask;
        if (!ProbePushes(final, 1, size))
        {
            return false;
        }

        WriteStackBytes(bottom, frame);
        WriteRegister(Gpr.Rbp, size, framePointer);
        SetStackPointer(final);
        return true;
    }

    /// <summary>LEAVE: the stack pointer = rBP (stack width), then pop rBP (operand size).</summary>
    private bool ExecuteLeave()
    {
        int size = _insn.OperandSize;
        ulong frame = ReadRegister(Gpr.Rbp, StackAddressSize);
        if (!ReadMemory(SegmentName.Ss, frame, size, MemoryAccess.Read, out ulong saved))
        {
            return false;
        }

        SetStackPointer(frame + (ulong)size);
        WriteRegister(Gpr.Rbp, size, saved);
        return true;
    }

    /// <summary>PUSHA/PUSHAD: AX, CX, DX, BX, the original SP, BP, SI, DI (#UD in 64-bit mode, in the decoder).</summary>
    private bool ExecutePusha()
    {
        int size = _insn.OperandSize;
        Span<byte> block = stackalloc byte[32];
        block = block[..(8 * size)];
        for (int register = Gpr.Rax; register <= Gpr.Rdi; register++)
        {
            WriteSlot(block, 7 - register, size, _state[register]);
        }

        ulong bottom = (StackPointer - (ulong)block.Length) & Alu.SizeMask(StackAddressSize);
        if (!ProbePushes(bottom, 8, size))
        {
            return false;
        }

        WriteStackBytes(bottom, block);
        SetStackPointer(bottom);
        return true;
    }

    /// <summary>POPA/POPAD: DI, SI, BP, (SP skipped), BX, DX, CX, AX.</summary>
    private bool ExecutePopa()
    {
        int size = _insn.OperandSize;
        Span<byte> block = stackalloc byte[32];
        block = block[..(8 * size)];
        ulong top = StackPointer;
        if (!ReadStackBytes(top, block))
        {
            return false;
        }

        for (int register = Gpr.Rax; register <= Gpr.Rdi; register++)
        {
            if (register != Gpr.Rsp)
            {
                int offset = (7 - register) * size;
                ulong value = size == 2 ? BinaryPrimitives.ReadUInt16LittleEndian(block[offset..]) : BinaryPrimitives.ReadUInt32LittleEndian(block[offset..]);
                WriteRegister(register, size, value);
            }
        }

        SetStackPointer(top + (ulong)block.Length);
        return true;
    }

    /// <summary>The stack-pointer register as it reads after setting its stack-width part to <paramref name="offset"/> (ENTER's FrameTemp).</summary>
    private ulong StackRegisterAfter(ulong offset) => StackAddressSize switch
    {
        8 => offset,
        4 => (uint)offset,
        _ => (_state.Rsp & ~0xFFFFUL) | (offset & 0xFFFF),
    };

    private static void WriteSlot(Span<byte> block, int slot, int size, ulong value)
    {
        var target = block.Slice(slot * size, size);
        switch (size)
        {
            case 8:
                BinaryPrimitives.WriteUInt64LittleEndian(target, value);
                break;
            case 4:
                BinaryPrimitives.WriteUInt32LittleEndian(target, (uint)value);
                break;
            default:
                BinaryPrimitives.WriteUInt16LittleEndian(target, (ushort)value);
                break;
        }
    }

    /// <summary>How many of <paramref name="length"/> bytes from a stack offset fit before the stack width wraps to 0.</summary>
    private int StackBytesBeforeWrap(ulong offset, int length)
    {
        ulong room = Alu.SizeMask(StackAddressSize) - offset; // bytes after the first one
        return room >= (ulong)(length - 1) ? length : (int)room + 1;
    }

    /// <summary>
    /// Checks <paramref name="count"/> pushes of <paramref name="size"/> bytes whose lowest lands at SS:
    /// <paramref name="bottom"/>, highest first as they would be written; the first that would fault faults.
    /// </summary>
    private bool ProbePushes(ulong bottom, int count, int size)
    {
        ulong mask = Alu.SizeMask(StackAddressSize);
        for (int i = count - 1; i >= 0; i--)
        {
            if (!ProbeWrite(SegmentName.Ss, (bottom + (ulong)(i * size)) & mask, size))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>Writes a block at SS:<paramref name="offset"/> that <see cref="ProbePushes"/> accepted (so it cannot fault).</summary>
    private void WriteStackBytes(ulong offset, ReadOnlySpan<byte> block)
    {
        int first = StackBytesBeforeWrap(offset, block.Length);
        WriteMemoryBytes(SegmentName.Ss, offset, block[..first]);
        if (first < block.Length)
        {
            WriteMemoryBytes(SegmentName.Ss, 0, block[first..]);
        }
    }

    private bool ReadStackBytes(ulong offset, Span<byte> block)
    {
        int first = StackBytesBeforeWrap(offset, block.Length);
        return ReadMemoryBytes(SegmentName.Ss, offset, block[..first])
            && (first == block.Length || ReadMemoryBytes(SegmentName.Ss, 0, block[first..]));
    }

    /// <summary>Runs the segment and paging checks of a write of <paramref name="length"/> (at most 4096) bytes without writing.</summary>
    private bool ProbeWrite(SegmentName segment, ulong offset, int length) =>
        Linear(segment, offset, length, MemoryAccess.Write, out ulong linear)
        && TranslateRange(linear, length, MemoryAccess.Write, Privilege, out _, out _, out _);
}
