using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using KvmSharp.Devices.InterruptControllers;
using KvmSharp.Emulator.Decoding;
using KvmSharp.Emulator.Execution;
using KvmSharp.Emulator.Mmu;
using KvmSharp.Hypervisor;
using KvmSharp.Memory;

namespace KvmSharp.Emulator.Cpu;

/// <summary>
/// The software CPU's interpreter: fetches, decodes and executes one instruction at a time in real mode, 16/32-bit
/// protected mode, compatibility mode and 64-bit mode. An instruction that faults has no architectural effect and
/// comes back as a <see cref="CpuException"/>; <see cref="DeliverException"/> then delivers it through the IDT.
/// </summary>
/// <remarks>
/// The interpreter is split by instruction family: this file holds the machinery every family uses (fetch,
/// segmentation, memory through the MMU, registers, the stack, port I/O) and the dispatch; the families live in
/// the other <c>Interpreter.*.cs</c> files. Every memory access is translated by the
/// <see cref="MemoryManagementUnit"/>; an access that crosses a 4 KiB boundary translates both pages before
/// touching either. Physical addresses outside guest RAM go to the <see cref="IVcpuIo"/> as MMIO.
/// </remarks>
public sealed partial class Interpreter
{
    private const ulong PageMask = GuestMemory.PageSize - 1;

    // CR0 bits the instruction families check (MP/EM/TS for x87, MMX and SSE).
    private const ulong Cr0Mp = 1UL << 1;
    private const ulong Cr0Em = 1UL << 2;
    private const ulong Cr0Ts = 1UL << 3;

    private readonly CpuState _state;
    private readonly GuestMemory _memory;
    private readonly MemoryManagementUnit _mmu;
    private IVcpuIo _io;
    private readonly ICpuPlatform _platform;
    private DecodedInstruction _insn;
    private CpuException _fault;
    private ulong _nextRip;
    private CpuMode _mode;
    private bool _stopAfterInstruction;

    // The page the last instruction came from: its linear and physical addresses, its host address, and the TLB epoch
    // and privilege it was translated under (ulong.MaxValue: none).
    private ulong _fetchLinearPage = ulong.MaxValue;
    private ulong _fetchPhysicalPage;
    private nint _fetchHost;
    private uint _fetchEpoch;
    private AccessPrivilege _fetchPrivilege;

    /// <summary>Creates an interpreter over <paramref name="state"/> in whatever mode it describes.</summary>
    /// <param name="state">The architectural state.</param>
    /// <param name="memory">Guest RAM.</param>
    /// <param name="io">Port I/O and MMIO; null answers every port and non-RAM address like an empty bus.</param>
    /// <param name="platform">TSC, platform MSRs and CR8; null uses a <see cref="StandalonePlatform"/>.</param>
    /// <exception cref="ArgumentException">The paging state is invalid (a PAE PDPTE with reserved bits).</exception>
    public Interpreter(CpuState state, GuestMemory memory, IVcpuIo? io = null, ICpuPlatform? platform = null)
        : this(state, memory, io, platform, DefaultDecodeCacheBits)
    {
    }

    /// <summary>
    /// An interpreter with a decoded-instruction cache of 2^<paramref name="decodeCacheBits"/> entries (1 to 16): tests
    /// that build an interpreter per case use a small one, since allocating and zeroing 5 MiB per case dominated their time.
    /// </summary>
    internal Interpreter(CpuState state, GuestMemory memory, IVcpuIo? io, ICpuPlatform? platform, int decodeCacheBits)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(decodeCacheBits, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(decodeCacheBits, DefaultDecodeCacheBits);
        ArgumentNullException.ThrowIfNull(state);
        _decodeCache = new DecodeCacheEntry[1 << decodeCacheBits];
        _decodeCacheMask = (1 << decodeCacheBits) - 1;
        int blockBits = Math.Max(1, decodeCacheBits - 3);
        _blocks = new DecodedBlock?[1 << blockBits];
        _blockMask = (1 << blockBits) - 1;
        ArgumentNullException.ThrowIfNull(memory);
        _state = state;
        _memory = memory;
        _io = io ?? EmptyIo.Instance;
        _platform = platform ?? new StandalonePlatform();
        _mmu = new MemoryManagementUnit(memory, supports1GbPages: true);
        (_pageKind, _pageGeneration) = CreatePageTables(memory);
        (_ramStart, _ramSize, _ramHost) = CreateRamMap(memory);
        ReloadPaging();
    }

    /// <summary>The architectural state.</summary>
    public CpuState State => _state;

    /// <summary>Where port I/O and MMIO go; the backend sets it for each run.</summary>
    public IVcpuIo Io
    {
        get => _io;
        set => _io = value ?? EmptyIo.Instance;
    }

    /// <summary>The MMU (its TLB caches translations: call <see cref="ReloadPaging"/> after editing page tables or CRs).</summary>
    public MemoryManagementUnit Mmu => _mmu;

    /// <summary>The platform (TSC, MSRs, CR8).</summary>
    public ICpuPlatform Platform => _platform;

    /// <summary>Instructions retired since creation.</summary>
    public ulong InstructionsRetired { get; private set; }

    /// <summary>Reloads the MMU from CR0/CR3/CR4/EFER in <see cref="State"/> and flushes the TLB.</summary>
    /// <exception cref="ArgumentException">A PAE PDPTE sets a reserved bit.</exception>
    public void ReloadPaging()
    {
        if (!_mmu.TryLoad(_state.Cr0, _state.Cr3, _state.Cr4, _state.Efer))
        {
            ThrowBadPdpte();
        }
    }

    /// <summary>Runs until HLT, an exception, an I/O stop, or <paramref name="maxInstructions"/> completed instructions.</summary>
    public RunResult Run(int maxInstructions)
    {
        int executed = 0;
        while (executed < maxInstructions)
        {
            var result = Step();
            if (result.Status == StepStatus.Exception)
            {
                return new RunResult(StepStatus.Exception, executed, result.Exception);
            }

            executed++;
            if (result.Status != StepStatus.Executed)
            {
                return new RunResult(result.Status, executed, default);
            }
        }

        return new RunResult(StepStatus.Executed, executed, default);
    }

    /// <summary>Executes one instruction.</summary>
    public StepResult Step()
    {
        var status = StepCore();
        return new StepResult(status, status == StepStatus.Exception ? _fault : default);
    }

    /// <summary>
    /// The vCPU's batch loop: runs up to <paramref name="maxInstructions"/> instructions and stops after one that does
    /// not simply execute (halt, fault, I/O stop) or after which the CPU can take a maskable interrupt
    /// <paramref name="apic"/> holds. The same as <see cref="Step"/> in a loop with that check between steps, without
    /// a call and a result per instruction.
    /// </summary>
    public RunResult RunUntilInterrupt(int maxInstructions, LocalApic apic)
    {
        ArgumentNullException.ThrowIfNull(apic);
        int executed = 0;
        while (executed < maxInstructions)
        {
            var status = StepCore();
            if (status == StepStatus.Exception)
            {
                return new RunResult(StepStatus.Exception, executed, _fault);
            }

            executed++;
            if (status != StepStatus.Executed)
            {
                return new RunResult(status, executed, default);
            }

            if (InterruptsEnabled && apic.HasPendingMaskableInterrupt)
            {
                break;
            }
        }

        return new RunResult(StepStatus.Executed, executed, default);
    }

    /// <summary>One instruction; on <see cref="StepStatus.Exception"/> the fault is in <see cref="_fault"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private StepStatus StepCore()
    {
        _mode = _state.Mode;
        bool shadow = _state.InterruptShadow;
        if (!Fetch())
        {
            return StepStatus.Exception;
        }

        if (_mode != CpuMode.Long64)
        {
            _nextRip &= _mode == CpuMode.Protected32 ? 0xFFFF_FFFFUL : 0xFFFFUL;
        }

        _stopAfterInstruction = false;
        var status = Execute();
        if (status == StepStatus.Exception)
        {
            return StepStatus.Exception;
        }

        if (shadow)
        {
            _state.InterruptShadow = false; // the shadow covers one instruction (STI/MOV SS set it again for the next)
        }

        _state.Rip = _nextRip;
        InstructionsRetired++;
        if (_stopAfterInstruction && status == StepStatus.Executed)
        {
            status = StepStatus.IoStop;
        }

        return status;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowBadPdpte() =>
        throw new ArgumentException("CR3 points at PAE page-directory-pointer entries with reserved bits set.", "state");

    // ---------------------------------------------------------------- fetch

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool Fetch()
    {
        ulong rip = _state.Rip;
        if (_mode == CpuMode.Long64 && _blockIndex < _blockCount && rip == _blockNextRip && _state.Cpl == _blockCpl
            && _blockEpoch == _mmu.Tlb.Epoch && _pageGeneration[_blockPage] == _blockGeneration)
        {
            // The next instruction of the current decoded block: same page, mapping, privilege and page contents. The
            // end is computed from the block's copy: reading it back from _insn right after the copy stalls on the store.
            ref readonly var next = ref _blockInstructions[_blockIndex++];
            ulong end = rip + next.Length;
            _blockNextRip = end;
            _nextRip = end;
            _insn = next;
            DecodeCacheHits++;
            return true;
        }

        return FetchOutsideBlock(rip);
    }

    /// <summary>Fetches into <see cref="_insn"/> and sets <see cref="_nextRip"/> (unmasked) when not inside a block.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private bool FetchOutsideBlock(ulong rip)
    {
        _blockCount = 0;
        int available = InstructionDecoder.MaxInstructionLength;
        ulong linear = rip;
        if (_mode != CpuMode.Long64)
        {
            ref var cs = ref _state.Cs;
            if (rip > cs.Limit)
            {
                return Fault(CpuException.GeneralProtection);
            }

            available = (int)Math.Min((ulong)available, (ulong)cs.Limit - rip + 1);
            linear = (uint)(cs.Base + rip);
        }

        ulong physical;
        nint host;
        var privilege = Privilege;
        if ((linear & ~PageMask) == _fetchLinearPage && _fetchEpoch == _mmu.Tlb.Epoch && privilege == _fetchPrivilege)
        {
            physical = _fetchPhysicalPage | (linear & PageMask);
            host = _fetchHost + (nint)(linear & PageMask);
        }
        else if (!TranslateFetchPage(linear, privilege, out physical, out host))
        {
            return false;
        }

        if (_mode == CpuMode.Long64 && host != 0 && EnterBlock(rip, physical, host))
        {
            return true;
        }

        // Decoded-instruction cache: hit when this physical address was decoded in this mode and its page has not been written since.
        ulong tag = DecodeTag(physical, _mode);
        ref var entry = ref _decodeCache[DecodeCacheIndex(physical)];
        ulong page = physical >> 12;
        if (entry.Tag == tag && host != 0 && page < (ulong)_pageGeneration.Length && entry.Generation == _pageGeneration[page]
            && entry.Instruction.Length <= available && CachedBytesMatch(host, physical, ref entry))
        {
            _insn = entry.Instruction;
            DecodeCacheHits++;
        }
        else if (!FetchSlow(linear, physical, available, tag, ref entry))
        {
            return false;
        }

        _nextRip = rip + _insn.Length;
        return true;
    }

    /// <summary>
    /// Translates an instruction fetch from a page other than the last one, and remembers the page's translation and
    /// host address (when it is RAM) until the TLB is next flushed or the privilege changes, so fetches from the
    /// same page skip the TLB.
    /// </summary>
    private unsafe bool TranslateFetchPage(ulong linear, AccessPrivilege privilege, out ulong physical, out nint host)
    {
        host = 0;
        if (!Translate(linear, MemoryAccess.Execute, privilege, out physical))
        {
            _fetchLinearPage = ulong.MaxValue;
            return false;
        }

        byte* pointer = RamPointer(physical);
        if (pointer == null)
        {
            _fetchLinearPage = ulong.MaxValue;
            return true;
        }

        host = (nint)pointer;
        _fetchLinearPage = linear & ~PageMask;
        _fetchPhysicalPage = physical & ~PageMask;
        _fetchHost = host - (nint)(physical & PageMask);
        _fetchEpoch = _mmu.Tlb.Epoch;
        _fetchPrivilege = privilege;
        return true;
    }

    private bool FetchSlow(ulong linear, ulong physical, int available, ulong tag, ref DecodeCacheEntry entry)
    {
        Span<byte> code = stackalloc byte[InstructionDecoder.MaxInstructionLength];
        int first = (int)Math.Min((ulong)available, GuestMemory.PageSize - (linear & PageMask));
        ReadPhysical(physical, code[..first]);
        var status = InstructionDecoder.Decode(code[..first], _mode, ref _insn);
        bool crossesPage = false;
        if (status == DecodeStatus.NeedMoreBytes && first < available)
        {
            // The instruction continues on the next page: fetch it only now, so its #PF is reported only when needed.
            ulong nextLinear = _mode == CpuMode.Long64 ? linear + (ulong)first : (uint)(linear + (ulong)first);
            if (!Translate(nextLinear, MemoryAccess.Execute, false, out ulong next))
            {
                return false;
            }

            ReadPhysical(next, code[first..available]);
            status = InstructionDecoder.Decode(code[..available], _mode, ref _insn);
            crossesPage = true;
        }

        switch (status)
        {
            case DecodeStatus.Ok:
                ulong page = physical >> 12;
                if (!crossesPage && page < (ulong)_pageKind.Length && _pageKind[page] != PageNotRam)
                {
                    entry.Tag = tag;
                    entry.Generation = _pageGeneration[page];
                    entry.Instruction = _insn;
                    entry.Bytes = PackBytes(code[.._insn.Length]);
                    _pageKind[page] = PageHoldsCode;
                }

                return true;
            case DecodeStatus.Invalid:
                UndefinedOpcodes.Record(_insn);
                return Fault(CpuException.InvalidOpcode);
            default:
                return Fault(CpuException.GeneralProtection); // longer than 15 bytes, or beyond the CS limit
        }
    }

    /// <summary>Counts of fetched encodings that raised #UD, by opcode.</summary>
    public UndefinedOpcodeCounters UndefinedOpcodes { get; } = new();

    // ---------------------------------------------------------------- faults

    private bool Fault(CpuException exception)
    {
        _fault = exception;
        return false;
    }

    /// <summary>#UD for an encoding the decoder accepts but this CPU does not implement; counted.</summary>
    private bool Unimplemented()
    {
        UndefinedOpcodes.Record(_insn);
        return Fault(CpuException.InvalidOpcode);
    }

    private bool GeneralProtection() => Fault(CpuException.GeneralProtection);

    private bool SegmentFault(SegmentName segment) =>
        Fault(segment == SegmentName.Ss ? CpuException.StackFault : CpuException.GeneralProtection);

    // ---------------------------------------------------------------- linear and physical memory

    private AccessPrivilege Privilege => _state.Cpl == 3 ? AccessPrivilege.User : AccessPrivilege.Supervisor;

    private bool Translate(ulong linear, MemoryAccess access, bool stack, out ulong physical) =>
        Translate(linear, access, Privilege, out physical);

    private bool Translate(ulong linear, MemoryAccess access, AccessPrivilege privilege, out ulong physical)
    {
        var status = _mmu.Translate(linear, access, privilege, out physical, out var pageFault);
        if (status == TranslationStatus.Ok)
        {
            return true;
        }

        if (status == TranslationStatus.PageFault)
        {
            _state.Cr2 = pageFault.LinearAddress;
            return Fault(CpuException.PageFault((uint)pageFault.ErrorCode));
        }

        return Fault(CpuException.GeneralProtection);
    }

    private void ReadPhysical(ulong physical, Span<byte> destination)
    {
        if (!_memory.TryRead(physical, destination))
        {
            _io.MmioRead(physical, destination);
            _stopAfterInstruction |= _io.StopRequested;
        }
    }

    private void WritePhysical(ulong physical, ReadOnlySpan<byte> source)
    {
        ulong page = physical >> 12;
        if (page < (ulong)_pageKind.Length && _pageKind[page] == PageHoldsCode)
        {
            InvalidateDecodedPage(page);
        }

        if (!_memory.TryWrite(physical, source))
        {
            _io.MmioWrite(physical, source);
            _stopAfterInstruction |= _io.StopRequested;
        }
    }

    /// <summary>Translates the one or two pages an access of <paramref name="size"/> (at most 4096) bytes touches.</summary>
    private bool TranslateRange(ulong linear, int size, MemoryAccess access, AccessPrivilege privilege, out ulong first, out ulong second, out int firstLength)
    {
        second = 0;
        firstLength = (int)Math.Min((ulong)size, GuestMemory.PageSize - (linear & PageMask));
        if (!Translate(linear, access, privilege, out first))
        {
            return false;
        }

        ulong next = linear + (ulong)firstLength;
        if (_mode != CpuMode.Long64 && (_state.Efer & X86SystemRegisters.EferLma) == 0)
        {
            next = (uint)next; // linear addresses wrap at 4 GiB outside long mode
        }

        return firstLength == size || Translate(next, access, privilege, out second);
    }

    /// <summary>Reads up to 8 bytes at a linear address, zero-extended.</summary>
    private unsafe bool ReadLinear(ulong linear, int size, MemoryAccess access, AccessPrivilege privilege, out ulong value)
    {
        value = 0;
        if ((linear & PageMask) + (ulong)size <= GuestMemory.PageSize)
        {
            // Fast path: one page, and RAM — read straight from the host mapping.
            if (!Translate(linear, access, privilege, out ulong physical))
            {
                return false;
            }

            byte* host = RamPointer(physical);
            if (host != null)
            {
                value = size switch
                {
                    1 => *host,
                    2 => *(ushort*)host,
                    4 => *(uint*)host,
                    _ => *(ulong*)host,
                };
                return true;
            }
        }

        if (!TranslateRange(linear, size, access, privilege, out ulong first, out ulong second, out int firstLength))
        {
            return false;
        }

        Span<byte> bytes = stackalloc byte[8];
        bytes.Clear();
        ReadPhysical(first, bytes[..firstLength]);
        if (firstLength < size)
        {
            ReadPhysical(second, bytes[firstLength..size]);
        }

        value = BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        return true;
    }

    /// <summary>Writes the low <paramref name="size"/> (at most 8) bytes of <paramref name="value"/> at a linear address.</summary>
    private unsafe bool WriteLinear(ulong linear, int size, ulong value, AccessPrivilege privilege)
    {
        if ((linear & PageMask) + (ulong)size <= GuestMemory.PageSize)
        {
            if (!Translate(linear, MemoryAccess.Write, privilege, out ulong physical))
            {
                return false;
            }

            byte* host = RamPointer(physical);
            if (host != null)
            {
                ulong page = physical >> 12;
                if (_pageKind[page] == PageHoldsCode)
                {
                    InvalidateDecodedPage(page);
                }

                switch (size)
                {
                    case 1: *host = (byte)value; break;
                    case 2: *(ushort*)host = (ushort)value; break;
                    case 4: *(uint*)host = (uint)value; break;
                    default: *(ulong*)host = value; break;
                }

                _memory.MarkDirty(physical, (ulong)size); // one load and a branch while no dirty log runs
                return true;
            }
        }

        if (!TranslateRange(linear, size, MemoryAccess.Write, privilege, out ulong first, out ulong second, out int firstLength))
        {
            return false;
        }

        Span<byte> bytes = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, value);
        WritePhysical(first, bytes[..firstLength]);
        if (firstLength < size)
        {
            WritePhysical(second, bytes[firstLength..size]);
        }

        return true;
    }

    /// <summary>Reads <paramref name="destination"/>.Length (at most 4096) bytes at a linear address.</summary>
    private bool ReadLinearBytes(ulong linear, Span<byte> destination, MemoryAccess access, AccessPrivilege privilege)
    {
        if (!TranslateRange(linear, destination.Length, access, privilege, out ulong first, out ulong second, out int firstLength))
        {
            return false;
        }

        ReadPhysical(first, destination[..firstLength]);
        if (firstLength < destination.Length)
        {
            ReadPhysical(second, destination[firstLength..]);
        }

        return true;
    }

    /// <summary>Writes <paramref name="source"/> (at most 4096 bytes) at a linear address; both pages are checked first.</summary>
    private bool WriteLinearBytes(ulong linear, ReadOnlySpan<byte> source, AccessPrivilege privilege)
    {
        if (!TranslateRange(linear, source.Length, MemoryAccess.Write, privilege, out ulong first, out ulong second, out int firstLength))
        {
            return false;
        }

        WritePhysical(first, source[..firstLength]);
        if (firstLength < source.Length)
        {
            WritePhysical(second, source[firstLength..]);
        }

        return true;
    }

    // ---------------------------------------------------------------- segmentation

    /// <summary>
    /// Turns <paramref name="segment"/>:<paramref name="offset"/> into a linear address for an access of
    /// <paramref name="size"/> bytes, with the checks of the current mode: canonical form in 64-bit mode (FS/GS add
    /// their base); elsewhere a usable segment, type (no writes to code or read-only data, no reads of execute-only
    /// code) and limit (expand-up or expand-down). #SS(0) for SS, #GP(0) otherwise.
    /// </summary>
    private bool Linear(SegmentName segment, ulong offset, int size, MemoryAccess access, out ulong linear)
    {
        if (_mode == CpuMode.Long64)
        {
            linear = segment >= SegmentName.Fs ? offset + _state.Segment(segment).Base : offset;
            return (IsCanonical(linear) && IsCanonical(linear + (ulong)size - 1)) || SegmentFault(segment);
        }

        ref var s = ref _state.Segment(segment);
        linear = 0;
        if (_mode != CpuMode.Real16)
        {
            if (s.Unusable != 0 || s.Present == 0)
            {
                return SegmentFault(segment);
            }

            bool code = (s.Type & 8) != 0;
            if (access == MemoryAccess.Write ? code || (s.Type & 2) == 0 : code && (s.Type & 2) == 0)
            {
                return SegmentFault(segment);
            }
        }

        ulong last = offset + (ulong)size - 1;
        bool within = (s.Type & 0xC) == 4
            ? offset > s.Limit && last <= (s.Db != 0 ? 0xFFFF_FFFFUL : 0xFFFFUL) // expand-down data
            : last <= s.Limit;
        if (!within)
        {
            return SegmentFault(segment);
        }

        linear = (uint)(s.Base + offset);
        return true;
    }

    /// <summary>Reads 1-8 bytes at <paramref name="segment"/>:<paramref name="offset"/>.</summary>
    private bool ReadMemory(SegmentName segment, ulong offset, int size, MemoryAccess access, out ulong value)
    {
        if (!Linear(segment, offset, size, access == MemoryAccess.Write ? MemoryAccess.Write : MemoryAccess.Read, out ulong linear))
        {
            value = 0;
            return false;
        }

        return ReadLinear(linear, size, access, Privilege, out value);
    }

    /// <summary>Writes 1-8 bytes at <paramref name="segment"/>:<paramref name="offset"/>.</summary>
    private bool WriteMemory(SegmentName segment, ulong offset, int size, ulong value) =>
        Linear(segment, offset, size, MemoryAccess.Write, out ulong linear) && WriteLinear(linear, size, value, Privilege);

    /// <summary>Reads any number of bytes (up to 4096) at <paramref name="segment"/>:<paramref name="offset"/>.</summary>
    private bool ReadMemoryBytes(SegmentName segment, ulong offset, Span<byte> destination, MemoryAccess access = MemoryAccess.Read) =>
        Linear(segment, offset, destination.Length, access, out ulong linear) && ReadLinearBytes(linear, destination, access, Privilege);

    /// <summary>Writes any number of bytes (up to 4096) at <paramref name="segment"/>:<paramref name="offset"/>.</summary>
    private bool WriteMemoryBytes(SegmentName segment, ulong offset, ReadOnlySpan<byte> source) =>
        Linear(segment, offset, source.Length, MemoryAccess.Write, out ulong linear) && WriteLinearBytes(linear, source, Privilege);

    /// <summary>The linear address of a memory operand, for alignment checks (no segment checks).</summary>
    private ulong LinearAddressOf(SegmentName segment, ulong offset) =>
        _mode == CpuMode.Long64
            ? (segment >= SegmentName.Fs ? offset + _state.Segment(segment).Base : offset)
            : (uint)(_state.Segment(segment).Base + offset);

    /// <summary>The offset of the ModRM memory operand: displacement + base (or RIP) + index * scale, truncated to the address size: what LEA yields.</summary>
    private ulong OperandOffset()
    {
        ulong address = _insn.Displacement;
        if (_insn.IsRipRelative)
        {
            address += _nextRip;
        }
        else if (_insn.Base != DecodedInstruction.NoRegister)
        {
            address += _state[_insn.Base];
        }

        if (_insn.Index != DecodedInstruction.NoRegister)
        {
            address += _state[_insn.Index] * _insn.Scale;
        }

        return _insn.AddressSize switch
        {
            4 => (uint)address,
            2 => address & 0xFFFF,
            _ => address,
        };
    }

    /// <summary>The address-size mask (for RSI/RDI/RCX in string instructions, LOOP, XLAT).</summary>
    private ulong AddressMask => _insn.AddressSize switch
    {
        2 => 0xFFFF,
        4 => 0xFFFF_FFFF,
        _ => ulong.MaxValue,
    };

    // ---------------------------------------------------------------- registers

    private ulong ReadRegister(int register, int size)
    {
        if (size == 1 && register is >= 4 and < 8 && !_insn.HasRex)
        {
            return (_state[register - 4] >> 8) & 0xFF; // AH, CH, DH, BH
        }

        return _state[register] & Alu.SizeMask(size);
    }

    private void WriteRegister(int register, int size, ulong value)
    {
        switch (size)
        {
            case 8:
                _state[register] = value;
                break;
            case 4:
                _state[register] = (uint)value;
                break;
            case 2:
                _state[register] = (_state[register] & ~0xFFFFUL) | (value & 0xFFFF);
                break;
            default:
                if (register is >= 4 and < 8 && !_insn.HasRex)
                {
                    int full = register - 4;
                    _state[full] = (_state[full] & ~0xFF00UL) | ((value & 0xFF) << 8);
                }
                else
                {
                    _state[register] = (_state[register] & ~0xFFUL) | (value & 0xFF);
                }

                break;
        }
    }

    /// <summary>Reads the ModRM r/m operand; <paramref name="access"/> is Write for a read-modify-write destination.</summary>
    private bool ReadRm(int size, MemoryAccess access, out ulong value)
    {
        if (!_insn.HasMemoryOperand)
        {
            value = ReadRegister(_insn.Rm, size);
            return true;
        }

        return ReadMemory(_insn.EffectiveSegment, OperandOffset(), size, access, out value);
    }

    private bool WriteRm(int size, ulong value)
    {
        if (!_insn.HasMemoryOperand)
        {
            WriteRegister(_insn.Rm, size, value);
            return true;
        }

        return WriteMemory(_insn.EffectiveSegment, OperandOffset(), size, value);
    }

    /// <summary>Reads the ModRM memory operand's bytes (any size up to 4096; the caller checked it is memory).</summary>
    private bool ReadRmBytes(Span<byte> destination) =>
        ReadMemoryBytes(_insn.EffectiveSegment, OperandOffset(), destination);

    /// <summary>Writes the ModRM memory operand's bytes (the caller checked it is memory).</summary>
    private bool WriteRmBytes(ReadOnlySpan<byte> source) =>
        WriteMemoryBytes(_insn.EffectiveSegment, OperandOffset(), source);

    // ---------------------------------------------------------------- stack

    /// <summary>The width of the stack pointer: 8 in 64-bit mode, else 4 or 2 by SS.B.</summary>
    private int StackAddressSize => _mode == CpuMode.Long64 ? 8 : _state.Ss.Db != 0 ? 4 : 2;

    private ulong StackPointer => StackAddressSize switch
    {
        8 => _state.Rsp,
        4 => (uint)_state.Rsp,
        _ => _state.Rsp & 0xFFFF,
    };

    private void SetStackPointer(ulong value)
    {
        switch (StackAddressSize)
        {
            case 8:
                _state.Rsp = value;
                break;
            case 4:
                _state.Rsp = (uint)value;
                break;
            default:
                _state.Rsp = (_state.Rsp & ~0xFFFFUL) | (value & 0xFFFF);
                break;
        }
    }

    private bool Push(ulong value, int size)
    {
        ulong rsp = StackPointer - (ulong)size;
        if (StackAddressSize == 2)
        {
            rsp &= 0xFFFF;
        }
        else if (StackAddressSize == 4)
        {
            rsp = (uint)rsp;
        }

        if (!WriteMemory(SegmentName.Ss, rsp, size, value))
        {
            return false;
        }

        SetStackPointer(rsp);
        return true;
    }

    /// <summary>Reads the value <paramref name="depth"/> bytes above the top of the stack.</summary>
    private bool PeekStack(int size, out ulong value, int depth = 0)
    {
        ulong offset = StackPointer + (ulong)depth;
        if (StackAddressSize == 2)
        {
            offset &= 0xFFFF;
        }
        else if (StackAddressSize == 4)
        {
            offset = (uint)offset;
        }

        return ReadMemory(SegmentName.Ss, offset, size, MemoryAccess.Read, out value);
    }

    /// <summary>Pops <paramref name="size"/> bytes after a successful <see cref="PeekStack"/>.</summary>
    private void DiscardStack(ulong bytes) => SetStackPointer(StackPointer + bytes);

    // ---------------------------------------------------------------- control flow

    private static bool IsCanonical(ulong address) => (ulong)((long)(address << 16) >> 16) == address;

    /// <summary>A near branch within CS: canonical in 64-bit mode, within the CS limit elsewhere.</summary>
    private bool Branch(ulong target)
    {
        if (_mode == CpuMode.Long64)
        {
            if (!IsCanonical(target))
            {
                return GeneralProtection();
            }
        }
        else if (target > _state.Cs.Limit)
        {
            return GeneralProtection();
        }

        _nextRip = target;
        return true;
    }

    /// <summary>The target of a relative branch, truncated to the operand size outside 64-bit mode.</summary>
    private bool RelativeTarget(out ulong target)
    {
        target = _nextRip + (ulong)_insn.SignedImmediate;
        if (_insn.OperandSize == 2)
        {
            target &= 0xFFFF;
        }
        else if (_mode != CpuMode.Long64)
        {
            target = (uint)target;
        }

        return true;
    }

    private bool Condition(int condition)
    {
        ulong f = _state.RFlags;
        bool cf = (f & Flags.CF) != 0;
        bool zf = (f & Flags.ZF) != 0;
        bool sf = (f & Flags.SF) != 0;
        bool of = (f & Flags.OF) != 0;
        bool pf = (f & Flags.PF) != 0;
        bool result = (condition >> 1) switch
        {
            0 => of,
            1 => cf,
            2 => zf,
            3 => cf || zf,
            4 => sf,
            5 => pf,
            6 => sf != of,
            _ => zf || sf != of,
        };
        return result ^ ((condition & 1) != 0);
    }

    // ---------------------------------------------------------------- port I/O

    /// <summary>
    /// Whether the current privilege may access <paramref name="size"/> ports from <paramref name="port"/>: always in
    /// real mode; in protected mode when CPL &lt;= IOPL, else when the TSS I/O permission bitmap clears every bit.
    /// False sets the fault: #GP(0) when refused, or the #PF of reading the bitmap.
    /// </summary>
    private bool PortAllowed(ushort port, int size)
    {
        if (_mode == CpuMode.Real16 && (_state.RFlags & Flags.VM) == 0)
        {
            return true;
        }

        int iopl = (int)((_state.RFlags & Flags.Iopl) >> Flags.IoplShift);
        if (_state.Cpl <= iopl && (_state.RFlags & Flags.VM) == 0)
        {
            return true;
        }

        // A 32/64-bit TSS (type 9 available, or 11 busy, as TR holds after LTR) keeps the bitmap's offset at 0x66;
        // every bit for the ports must be within the TSS limit and clear.
        ref var tr = ref _state.Tr;
        if ((tr.Type & 0xD) != 9 || tr.Limit < 0x67)
        {
            return GeneralProtection();
        }

        if (!ReadLinear(tr.Base + 0x66, 2, MemoryAccess.Read, AccessPrivilege.Supervisor, out ulong bitmapOffset))
        {
            return false;
        }

        ulong byteOffset = bitmapOffset + (ulong)(port >> 3);
        if (byteOffset + 1 > tr.Limit)
        {
            return GeneralProtection();
        }

        if (!ReadLinear(tr.Base + byteOffset, 2, MemoryAccess.Read, AccessPrivilege.Supervisor, out ulong bits))
        {
            return false;
        }

        ulong mask = ((1UL << size) - 1) << (port & 7);
        return (bits & mask) == 0 || GeneralProtection();
    }

    private bool PortIn(ushort port, int size, out ulong value)
    {
        value = 0;
        if (!PortAllowed(port, size))
        {
            return false;
        }

        Span<byte> bytes = stackalloc byte[8];
        bytes.Clear();
        _io.PortRead(port, bytes[..size]);
        value = BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        _stopAfterInstruction |= _io.StopRequested;
        return true;
    }

    private bool PortOut(ushort port, int size, ulong value)
    {
        if (!PortAllowed(port, size))
        {
            return false;
        }

        Span<byte> bytes = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, value);
        _io.PortWrite(port, bytes[..size]);
        _stopAfterInstruction |= _io.StopRequested;
        return true;
    }

    // ---------------------------------------------------------------- dispatch

    private StepStatus Execute()
    {
        bool ok = _insn.Op switch
        {
            Mnemonic.Nop or Mnemonic.Pause => true,
            Mnemonic.Mov => ExecuteMov(),
            Mnemonic.Movzx or Mnemonic.Movsx or Mnemonic.Movsxd => ExecuteMoveExtend(),
            Mnemonic.Lea => ExecuteLea(),
            Mnemonic.Add or Mnemonic.Or or Mnemonic.Adc or Mnemonic.Sbb
                or Mnemonic.And or Mnemonic.Sub or Mnemonic.Xor or Mnemonic.Cmp => ExecuteAlu(),
            Mnemonic.Test => ExecuteTest(),
            Mnemonic.Inc or Mnemonic.Dec or Mnemonic.Neg or Mnemonic.Not => ExecuteUnary(),
            Mnemonic.Rol or Mnemonic.Ror or Mnemonic.Rcl or Mnemonic.Rcr
                or Mnemonic.Shl or Mnemonic.Sal or Mnemonic.Shr or Mnemonic.Sar => ExecuteShift(),
            Mnemonic.Mul or Mnemonic.Imul => ExecuteMultiply(),
            Mnemonic.Div or Mnemonic.Idiv => ExecuteDivide(),
            Mnemonic.Push => ExecutePush(),
            Mnemonic.Pop => ExecutePop(),
            Mnemonic.CallNear => ExecuteCall(),
            Mnemonic.RetNear => ExecuteRet(),
            Mnemonic.JmpNear => ExecuteJmp(),
            Mnemonic.Jcc => !Condition(_insn.Condition) || (RelativeTarget(out ulong target) && Branch(target)),
            Mnemonic.Loop or Mnemonic.Loope or Mnemonic.Loopne or Mnemonic.Jrcxz => ExecuteLoop(),
            Mnemonic.Setcc => WriteRm(1, Condition(_insn.Condition) ? 1UL : 0UL),
            Mnemonic.Cmovcc => ExecuteCmov(),
            Mnemonic.Xchg => ExecuteXchg(),
            Mnemonic.Cbw => SetAccumulator(Alu.SignExtendAccumulator(_state.Rax, _insn.OperandSize)),
            Mnemonic.Cwd => SetRdx(Alu.SignOfAccumulator(_state.Rax, _insn.OperandSize)),
            Mnemonic.Bswap => SetOpcodeRegister(Alu.Bswap(_state[_insn.OpcodeRegister], _insn.OperandSize)),
            Mnemonic.Bt or Mnemonic.Bts or Mnemonic.Btr or Mnemonic.Btc => ExecuteBitTest(),
            Mnemonic.Clc => SetFlags(_state.RFlags & ~Flags.CF),
            Mnemonic.Stc => SetFlags(_state.RFlags | Flags.CF),
            Mnemonic.Cmc => SetFlags(_state.RFlags ^ Flags.CF),
            Mnemonic.Hlt => _state.Cpl == 0 || GeneralProtection(),
            _ => ExecuteOther(),
        };

        if (!ok)
        {
            return StepStatus.Exception;
        }

        return _insn.Op == Mnemonic.Hlt ? StepStatus.Halted : StepStatus.Executed;
    }

    /// <summary>Routes what the core switch does not handle to its family: x87, SSE/MMX, system, other integer.</summary>
    private bool ExecuteOther()
    {
        if (_insn.Map == OpcodeMap.OneByte && (_insn.Opcode is >= 0xD8 and <= 0xDF || _insn.Opcode == 0x9B))
        {
            return ExecuteX87();
        }

        if (IsSimdInstruction())
        {
            return ExecuteSimd();
        }

        return ExecuteSystem();
    }

    /// <summary>
    /// MMX/SSE/SSE2 encodings and their state instructions: the 0F38/0F3A maps, 0F 10-17, 28-2F, 50-7F, C2-C6,
    /// D0-FF, and group 15 (0F AE: FXSAVE/FXRSTOR/LDMXCSR/STMXCSR/XSAVE/fences/CLFLUSH).
    /// </summary>
    private bool IsSimdInstruction()
    {
        if (_insn.Map is OpcodeMap.Map0F38 or OpcodeMap.Map0F3A)
        {
            return true;
        }

        if (_insn.Map != OpcodeMap.Map0F)
        {
            return false;
        }

        byte op = _insn.Opcode;
        return op is (>= 0x10 and <= 0x17) or (>= 0x28 and <= 0x2F) or (>= 0x50 and <= 0x7F)
            or (>= 0xC2 and <= 0xC6) or >= 0xD0 or 0xAE or 0x77;
    }

    private bool SetFlags(ulong rflags)
    {
        _state.RFlags = rflags;
        return true;
    }

    private bool SetAccumulator(ulong value)
    {
        WriteRegister(Gpr.Rax, _insn.OperandSize, value);
        return true;
    }

    private bool SetRdx(ulong value)
    {
        WriteRegister(Gpr.Rdx, _insn.OperandSize, value);
        return true;
    }

    private bool SetOpcodeRegister(ulong value)
    {
        WriteRegister(_insn.OpcodeRegister, _insn.OperandSize, value);
        return true;
    }

    /// <summary>An <see cref="IVcpuIo"/> with nothing on it: reads all ones, ignores writes.</summary>
    private sealed class EmptyIo : IVcpuIo
    {
        public static readonly EmptyIo Instance = new();

        public bool StopRequested => false;

        public void PortRead(ushort port, Span<byte> data) => data.Fill(0xFF);

        public void PortWrite(ushort port, ReadOnlySpan<byte> data)
        {
        }

        public void MmioRead(ulong address, Span<byte> data) => data.Fill(0xFF);

        public void MmioWrite(ulong address, ReadOnlySpan<byte> data)
        {
        }
    }
}
