using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using KvmSharp.Emulator.Decoding;
using KvmSharp.Emulator.Execution;
using KvmSharp.Emulator.Mmu;
using KvmSharp.Memory;

namespace KvmSharp.Emulator.Cpu;

/// <summary>
/// The string instructions MOVS, CMPS, SCAS, LODS, STOS, INS, OUTS with REP/REPE/REPNE, and IN/OUT.
/// </summary>
/// <remarks>
/// rSI, rDI and rCX are used and updated at the address size (a 16-bit or 32-bit index wraps within its width;
/// a 32-bit write zero-extends the 64-bit register). The source segment is DS or the override (FS/GS only in
/// 64-bit mode); the destination is always ES. DF = 1 walks down.
/// <para>
/// Every iteration is complete on its own: a fault in iteration N leaves rSI/rDI/rCX as iteration N - 1 left
/// them, RIP at the instruction, and the fault reported. A repeated instruction runs at most
/// <see cref="StringBatchElements"/> elements per <see cref="Step"/>; if rCX is not exhausted then, or a device
/// asked to stop, RIP stays at the instruction and the next step continues it, so interrupts and I/O stops are
/// taken between batches.
/// </para>
/// <para>
/// REP MOVS and REP STOS between RAM pages copy or fill a whole page-bounded chunk at once: the first element's
/// address is translated (so a fault there is exactly the per-element fault), the chunk must stay within one page
/// on each side, within the segment limit and the address size, and both sides must be RAM. Anything else (MMIO,
/// an element that straddles a page, a chunk that would pass a limit) goes element by element through
/// ReadMemory/WriteMemory. An overlapping copy gives exactly the element-by-element result (a forward copy onto
/// a later address replicates the pattern).
/// </para>
/// </remarks>
public sealed partial class Interpreter
{
    /// <summary>The most elements a repeated string instruction processes in one step before yielding (4096: one page of bytes).</summary>
    public const int StringBatchElements = 4096;

    private const int BytesPerPage = (int)GuestMemory.PageSize;

    private bool ExecuteString()
    {
        var op = _insn.Op;
        if ((_insn.Prefixes & (InstructionPrefixes.Rep | InstructionPrefixes.Repne)) == 0)
        {
            return StringIteration(op);
        }

        // F3 is REPE and F2 REPNE for CMPS/SCAS; for the others either one repeats. With both, the last one
        // decides, as on the host.
        bool compares = op is Mnemonic.Cmps or Mnemonic.Scas;
        bool whileEqual = (_insn.Prefixes & InstructionPrefixes.Repne) == 0
            || ((_insn.Prefixes & InstructionPrefixes.Rep) != 0 && compares && LastRepeatPrefix() == 0xF3);
        int addressSize = _insn.AddressSize;
        ulong count = ReadRegister(Gpr.Rcx, addressSize);
        if (count == 0)
        {
            // Nothing moves, but the host still writes rCX, and MOVS/STOS their index registers, at the address
            // size: with a 67 prefix in 64-bit mode their upper halves are cleared (LODS/CMPS/SCAS keep rSI/rDI).
            WriteRegister(Gpr.Rcx, addressSize, 0);
            if (op is Mnemonic.Movs)
            {
                WriteRegister(Gpr.Rsi, addressSize, _state.Rsi);
            }

            if (op is Mnemonic.Movs or Mnemonic.Stos)
            {
                WriteRegister(Gpr.Rdi, addressSize, _state.Rdi);
            }

            return true;
        }

        int budget = StringBatchElements;
        while (count != 0)
        {
            if (budget <= 0 || _stopAfterInstruction)
            {
                _nextRip = _state.Rip; // continue next step
                return true;
            }

            int done = op switch
            {
                Mnemonic.Movs => MoveChunk(count, budget),
                Mnemonic.Stos => StoreChunk(count, budget),
                _ => 0,
            };
            if (done == 0)
            {
                if (!StringIteration(op))
                {
                    return false;
                }

                done = 1;
            }

            count -= (ulong)done;
            budget -= done;
            WriteRegister(Gpr.Rcx, addressSize, count);
            if (compares && ((_state.RFlags & Flags.ZF) != 0) != whileEqual)
            {
                break;
            }
        }

        return true;
    }

    /// <summary>
    /// The last of F2/F3 among the instruction's prefixes. The decoder records both but not their order, so this
    /// reads the prefix bytes again (the instruction was just fetched from there); only CMPS/SCAS with both need it.
    /// </summary>
    private byte LastRepeatPrefix()
    {
        Span<byte> code = stackalloc byte[InstructionDecoder.MaxInstructionLength];
        code = code[.._insn.Length];
        ulong linear = _mode == CpuMode.Long64 ? _state.Rip : (uint)(_state.Cs.Base + _state.Rip);
        if (!ReadLinearBytes(linear, code, MemoryAccess.Execute, Privilege))
        {
            return 0xF3;
        }

        byte last = 0xF3;
        foreach (byte b in code)
        {
            if (b is 0xF2 or 0xF3)
            {
                last = b;
            }
            else if (b is not (0x26 or 0x2E or 0x36 or 0x3E or 0x64 or 0x65 or 0x66 or 0x67 or 0xF0)
                && !(_mode == CpuMode.Long64 && (b & 0xF0) == 0x40))
            {
                break; // the opcode
            }
        }

        return last;
    }

    private bool Descending => (_state.RFlags & Flags.DF) != 0;

    /// <summary>The element size: the operand size, at most 4 for the port forms (REX.W does not widen INS/OUTS).</summary>
    private int StringElementSize => _insn.Op is Mnemonic.Ins or Mnemonic.Outs ? Math.Min((int)_insn.OperandSize, 4) : _insn.OperandSize;

    /// <summary>Moves rSI or rDI by <paramref name="bytes"/> in the DF direction, at the address size.</summary>
    private void AdvanceIndex(int register, ulong offset, ulong bytes) =>
        WriteRegister(register, _insn.AddressSize, Descending ? offset - bytes : offset + bytes);

    /// <summary>One element of a string instruction; on a fault nothing has changed.</summary>
    private bool StringIteration(Mnemonic op)
    {
        int size = StringElementSize;
        int addressSize = _insn.AddressSize;
        ulong source = ReadRegister(Gpr.Rsi, addressSize);
        ulong destination = ReadRegister(Gpr.Rdi, addressSize);
        ulong value;
        ulong other;
        switch (op)
        {
            case Mnemonic.Movs:
                if (!ReadMemory(_insn.EffectiveSegment, source, size, MemoryAccess.Read, out value)
                    || !WriteMemory(SegmentName.Es, destination, size, value))
                {
                    return false;
                }

                AdvanceIndex(Gpr.Rsi, source, (ulong)size);
                AdvanceIndex(Gpr.Rdi, destination, (ulong)size);
                return true;

            case Mnemonic.Stos:
                if (!WriteMemory(SegmentName.Es, destination, size, _state.Rax))
                {
                    return false;
                }

                AdvanceIndex(Gpr.Rdi, destination, (ulong)size);
                return true;

            case Mnemonic.Lods:
                if (!ReadMemory(_insn.EffectiveSegment, source, size, MemoryAccess.Read, out value))
                {
                    return false;
                }

                WriteRegister(Gpr.Rax, size, value);
                AdvanceIndex(Gpr.Rsi, source, (ulong)size);
                return true;

            case Mnemonic.Cmps:
                if (!ReadMemory(_insn.EffectiveSegment, source, size, MemoryAccess.Read, out value)
                    || !ReadMemory(SegmentName.Es, destination, size, MemoryAccess.Read, out other))
                {
                    return false;
                }

                _state.RFlags = Alu.Cmp(value, other, size, _state.RFlags);
                AdvanceIndex(Gpr.Rsi, source, (ulong)size);
                AdvanceIndex(Gpr.Rdi, destination, (ulong)size);
                return true;

            case Mnemonic.Scas:
                if (!ReadMemory(SegmentName.Es, destination, size, MemoryAccess.Read, out other))
                {
                    return false;
                }

                _state.RFlags = Alu.Cmp(ReadRegister(Gpr.Rax, size), other, size, _state.RFlags);
                AdvanceIndex(Gpr.Rdi, destination, (ulong)size);
                return true;

            case Mnemonic.Ins:
            {
                // The permission check comes first; the destination is checked before the port is read, so a
                // faulting INS does not consume device data when it restarts.
                ushort port = (ushort)_state.Rdx;
                if (!CheckPortAccess(port, size)
                    || !ProbeWrite(SegmentName.Es, destination, size)
                    || !PortIn(port, size, out value)
                    || !WriteMemory(SegmentName.Es, destination, size, value))
                {
                    return false;
                }

                AdvanceIndex(Gpr.Rdi, destination, (ulong)size);
                return true;
            }

            default: // OUTS
            {
                ushort port = (ushort)_state.Rdx;
                if (!CheckPortAccess(port, size)
                    || !ReadMemory(_insn.EffectiveSegment, source, size, MemoryAccess.Read, out value)
                    || !PortOut(port, size, value))
                {
                    return false;
                }

                AdvanceIndex(Gpr.Rsi, source, (ulong)size);
                return true;
            }
        }
    }

    // ---------------------------------------------------------------- bulk REP MOVS / REP STOS

    /// <summary>
    /// Copies up to <paramref name="budget"/> elements of a REP MOVS in one page-bounded chunk; returns how many,
    /// or 0 when the chunk cannot be done in bulk (the caller then runs one element, which also reports any fault).
    /// </summary>
    private int MoveChunk(ulong count, int budget)
    {
        int size = _insn.OperandSize;
        bool down = Descending;
        int addressSize = _insn.AddressSize;
        ulong source = ReadRegister(Gpr.Rsi, addressSize);
        ulong destination = ReadRegister(Gpr.Rdi, addressSize);
        var sourceSegment = _insn.EffectiveSegment;
        if (!Linear(sourceSegment, source, size, MemoryAccess.Read, out ulong sourceFirst)
            || !Linear(SegmentName.Es, destination, size, MemoryAccess.Write, out ulong destinationFirst))
        {
            return 0;
        }

        int n = (int)Math.Min(count, (ulong)budget);
        n = Math.Min(n, ElementsWithinPage(sourceFirst, size, down));
        n = Math.Min(n, ElementsWithinPage(destinationFirst, size, down));
        n = ElementsBeforeWrap(source, size, down, n);
        n = ElementsBeforeWrap(destination, size, down, n);
        if (n <= 1)
        {
            return 0;
        }

        int bytes = n * size;
        ulong span = (ulong)(bytes - size); // from the lowest element's start to the highest one's
        ulong sourceLow = down ? source - span : source;
        ulong destinationLow = down ? destination - span : destination;
        if (!Linear(sourceSegment, sourceLow, bytes, MemoryAccess.Read, out _)
            || !Linear(SegmentName.Es, destinationLow, bytes, MemoryAccess.Write, out _)
            || !Translate(sourceFirst, MemoryAccess.Read, Privilege, out ulong sourcePhysical)
            || !Translate(destinationFirst, MemoryAccess.Write, Privilege, out ulong destinationPhysical)
            || !_memory.TryGetSpan(down ? sourcePhysical - span : sourcePhysical, bytes, out var from)
            || !_memory.TryGetSpan(down ? destinationPhysical - span : destinationPhysical, bytes, out var to))
        {
            return 0;
        }

        CopyElements(from, to, size, down);
        _memory.MarkDirty(down ? destinationPhysical - span : destinationPhysical, (ulong)bytes);
        AdvanceIndex(Gpr.Rsi, source, (ulong)bytes);
        AdvanceIndex(Gpr.Rdi, destination, (ulong)bytes);
        return n;
    }

    /// <summary>Fills up to <paramref name="budget"/> elements of a REP STOS in one page-bounded chunk; 0 as for <see cref="MoveChunk"/>.</summary>
    private int StoreChunk(ulong count, int budget)
    {
        int size = _insn.OperandSize;
        bool down = Descending;
        ulong destination = ReadRegister(Gpr.Rdi, _insn.AddressSize);
        if (!Linear(SegmentName.Es, destination, size, MemoryAccess.Write, out ulong first))
        {
            return 0;
        }

        int n = (int)Math.Min(count, (ulong)budget);
        n = Math.Min(n, ElementsWithinPage(first, size, down));
        n = ElementsBeforeWrap(destination, size, down, n);
        if (n <= 1)
        {
            return 0;
        }

        int bytes = n * size;
        ulong span = (ulong)(bytes - size);
        if (!Linear(SegmentName.Es, down ? destination - span : destination, bytes, MemoryAccess.Write, out _)
            || !Translate(first, MemoryAccess.Write, Privilege, out ulong physical)
            || !_memory.TryGetSpan(down ? physical - span : physical, bytes, out var to))
        {
            return 0;
        }

        ulong value = _state.Rax;
        switch (size)
        {
            case 1:
                to.Fill((byte)value);
                break;
            case 2:
                MemoryMarshal.Cast<byte, ushort>(to).Fill((ushort)value);
                break;
            case 4:
                MemoryMarshal.Cast<byte, uint>(to).Fill((uint)value);
                break;
            default:
                MemoryMarshal.Cast<byte, ulong>(to).Fill(value);
                break;
        }

        _memory.MarkDirty(down ? physical - span : physical, (ulong)bytes);
        AdvanceIndex(Gpr.Rdi, destination, (ulong)bytes);
        return n;
    }

    /// <summary>
    /// Elements that fit in the page of <paramref name="linear"/> (the first element's address), walking up or
    /// down; 0 when the first element itself straddles the page end.
    /// </summary>
    private static int ElementsWithinPage(ulong linear, int size, bool down)
    {
        int inPage = (int)(linear & PageMask);
        if (inPage + size > BytesPerPage)
        {
            return 0;
        }

        return down ? (inPage / size) + 1 : (BytesPerPage - inPage) / size;
    }

    /// <summary>How many of <paramref name="n"/> elements from <paramref name="offset"/> stay within the address size without wrapping.</summary>
    private int ElementsBeforeWrap(ulong offset, int size, bool down, int n)
    {
        if (n <= 0)
        {
            return 0;
        }

        ulong room = AddressMask - offset; // bytes above the first byte of the first element
        if (room < (ulong)(size - 1))
        {
            return 0; // the first element wraps
        }

        ulong fit = down ? offset / (ulong)size : (room - (ulong)(size - 1)) / (ulong)size; // elements after the first
        return fit >= (ulong)(n - 1) ? n : (int)fit + 1;
    }

    /// <summary>
    /// Copies <paramref name="from"/> to <paramref name="to"/> (equal lengths, whole elements) with the result of
    /// copying element by element in the DF direction: a plain memmove unless the destination overlaps source
    /// bytes that are still to be read, where the copy replicates the pattern as hardware does.
    /// </summary>
    private static void CopyElements(Span<byte> from, Span<byte> to, int size, bool down)
    {
        long distance = Unsafe.ByteOffset(ref MemoryMarshal.GetReference(from), ref MemoryMarshal.GetReference(to));
        long ahead = down ? -distance : distance; // how far the writes run ahead of the reads
        if (ahead <= 0 || ahead >= from.Length)
        {
            from.CopyTo(to);
            return;
        }

        if (ahead >= size)
        {
            // Every byte is read after the write that lands on it, in element order and in byte order alike.
            if (down)
            {
                for (int i = from.Length - 1; i >= 0; i--)
                {
                    to[i] = from[i];
                }
            }
            else
            {
                for (int i = 0; i < from.Length; i++)
                {
                    to[i] = from[i];
                }
            }

            return;
        }

        // The destination starts inside the element being read: each element is read whole before it is written.
        Span<byte> element = stackalloc byte[8];
        element = element[..size];
        int elements = from.Length / size;
        for (int k = 0; k < elements; k++)
        {
            int offset = (down ? elements - 1 - k : k) * size;
            from.Slice(offset, size).CopyTo(element);
            element.CopyTo(to.Slice(offset, size));
        }
    }

    // ---------------------------------------------------------------- IN / OUT

    /// <summary>IN AL/AX/EAX from imm8 (E4/E5) or DX (EC/ED); a 32-bit result zero-extends RAX, 8/16-bit ones merge.</summary>
    private bool ExecuteIn()
    {
        int size = Math.Min((int)_insn.OperandSize, 4);
        ushort port = (_insn.Opcode & 8) == 0 ? (ushort)_insn.Immediate : (ushort)_state.Rdx;
        if (!CheckPortAccess(port, size) || !PortIn(port, size, out ulong value))
        {
            return false;
        }

        WriteRegister(Gpr.Rax, size, value);
        return true;
    }

    /// <summary>OUT imm8 (E6/E7) or DX (EE/EF), AL/AX/EAX.</summary>
    private bool ExecuteOut()
    {
        int size = Math.Min((int)_insn.OperandSize, 4);
        ushort port = (_insn.Opcode & 8) == 0 ? (ushort)_insn.Immediate : (ushort)_state.Rdx;
        return CheckPortAccess(port, size) && PortOut(port, size, _state.Rax);
    }

    /// <summary>The I/O permission check (IOPL, then the TSS bitmap) on its own, before an instruction touches memory or a device.</summary>
    private bool CheckPortAccess(ushort port, int size) => PortAllowed(port, size);
}
