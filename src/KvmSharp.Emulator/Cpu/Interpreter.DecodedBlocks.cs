using KvmSharp.Emulator.Decoding;
using KvmSharp.Memory;

namespace KvmSharp.Emulator.Cpu;

/// <summary>
/// Decoded blocks, for 64-bit code: the straight-line run of instructions from an address to the first
/// unconditional control transfer (JMP, CALL, RET, INT, IRET, SYSCALL/SYSRET, HLT, UD), the end of the page or
/// <see cref="MaxBlockInstructions"/>, decoded once. Conditional branches do not end a block: when they fall through,
/// the next instruction is already decoded.
/// </summary>
/// <remarks>
/// Entering a block checks what a decoded-instruction cache hit checks (physical address and mode, the page's write
/// generation, and the bytes in memory, which catches writes the CPU did not see: DMA, the VMM). Each later
/// instruction of the block is taken when RIP is where the previous one ended, the privilege and the TLB epoch are
/// those the block was entered with (so the page is still mapped the same way) and the page has not been written
/// (a store into the block's own page ends it, so self-modifying code runs its new bytes). A write by a device
/// while a block runs is seen at the next block entry, as a real CPU sees cross-modifying code only after it
/// serializes. Instructions that cross a page, code outside RAM and other modes use the per-instruction cache.
/// </remarks>
public sealed partial class Interpreter
{
    /// <summary>At most this many instructions in one decoded block.</summary>
    internal const int MaxBlockInstructions = 24;

    private readonly DecodedBlock?[] _blocks;
    private readonly int _blockMask;

    // The block being run: its instructions, how many, the next one's index and RIP, and what it was entered under.
    private DecodedInstruction[] _blockInstructions = [];
    private int _blockCount;
    private int _blockIndex;
    private ulong _blockNextRip;
    private int _blockCpl;
    private uint _blockEpoch;
    private ulong _blockPage;
    private uint _blockGeneration;

    /// <summary>Blocks decoded (each miss decodes one).</summary>
    public ulong BlocksDecoded { get; private set; }

    /// <summary>
    /// Makes the block at <paramref name="physical"/> (RAM at host address <paramref name="host"/>) the current one,
    /// decoding it when it is not cached or is stale, and fetches its first instruction (setting <see cref="_nextRip"/>). False when not even one
    /// instruction decodes inside the page (an invalid encoding, or one that continues on the next page): the
    /// caller fetches it the slow way, which raises the fault or decodes across the page.
    /// </summary>
    private unsafe bool EnterBlock(ulong rip, ulong physical, nint host)
    {
        ulong page = physical >> 12;
        ulong tag = DecodeTag(physical, CpuMode.Long64);
        int slot = (int)(physical ^ (physical >> 13) ^ (physical >> 27)) & _blockMask;
        var block = _blocks[slot];
        if (block is null || block.Tag != tag || block.Generation != _pageGeneration[page]
            || !new ReadOnlySpan<byte>((void*)host, block.ByteLength).SequenceEqual(block.Bytes.AsSpan(0, block.ByteLength)))
        {
            block = _blocks[slot] ??= new DecodedBlock();
            if (!DecodeBlock(block, physical, host, tag))
            {
                return false;
            }
        }
        else
        {
            DecodeCacheHits++;
        }

        _blockInstructions = block.Instructions;
        _blockCount = block.Count;
        _blockIndex = 1;
        _blockCpl = _state.Cpl;
        _blockEpoch = _mmu.Tlb.Epoch;
        _blockPage = page;
        _blockGeneration = block.Generation;
        ref readonly var first = ref block.Instructions[0];
        ulong end = rip + first.Length; // from the source: reading _insn right after the copy stalls on the store
        _blockNextRip = end;
        _nextRip = end;
        _insn = first;
        return true;
    }

    private unsafe bool DecodeBlock(DecodedBlock block, ulong physical, nint host, ulong tag)
    {
        ulong page = physical >> 12;
        int inPage = (int)(GuestMemory.PageSize - (physical & PageMask));
        var code = new ReadOnlySpan<byte>((void*)host, inPage);
        int count = 0;
        int offset = 0;
        while (count < MaxBlockInstructions && offset < inPage)
        {
            ref var insn = ref block.Instructions[count];
            if (InstructionDecoder.Decode(code[offset..], CpuMode.Long64, ref insn) != DecodeStatus.Ok)
            {
                break; // invalid, or continues on the next page: the slow path handles it when execution gets there
            }

            offset += insn.Length;
            count++;
            if (EndsBlock(insn.Op))
            {
                break;
            }
        }

        if (count == 0)
        {
            block.Tag = 0;
            return false;
        }

        code[..offset].CopyTo(block.Bytes);
        block.Tag = tag;
        block.Count = count;
        block.ByteLength = offset;
        block.Generation = _pageGeneration[page];
        _pageKind[page] = PageHoldsCode;
        BlocksDecoded++;
        return true;
    }

    private static bool EndsBlock(Mnemonic op) => op switch
    {
        Mnemonic.JmpNear or Mnemonic.JmpFar or Mnemonic.CallNear or Mnemonic.CallFar or Mnemonic.RetNear or Mnemonic.RetFar
            or Mnemonic.Int or Mnemonic.Int1 or Mnemonic.Int3 or Mnemonic.Into or Mnemonic.Iret
            or Mnemonic.Syscall or Mnemonic.Sysret or Mnemonic.Sysenter or Mnemonic.Sysexit
            or Mnemonic.Hlt or Mnemonic.Ud0 or Mnemonic.Ud1 or Mnemonic.Ud2 => true,
        _ => false,
    };

    private sealed class DecodedBlock
    {
        /// <summary>Physical address of the first instruction with the mode in bits 56 and up; 0 when empty.</summary>
        public ulong Tag;
        public uint Generation;
        public int Count;
        public int ByteLength;
        public readonly DecodedInstruction[] Instructions = new DecodedInstruction[MaxBlockInstructions];
        public readonly byte[] Bytes = new byte[MaxBlockInstructions * InstructionDecoder.MaxInstructionLength];
    }
}
