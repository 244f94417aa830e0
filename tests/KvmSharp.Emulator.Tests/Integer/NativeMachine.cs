using System.Collections.Concurrent;
using KvmSharp.Native;

namespace KvmSharp.Emulator.Tests.Integer;

/// <summary>All general-purpose registers and RFLAGS, in and out of a native run (RAX..R15 in encoding order).</summary>
internal sealed class RegisterFile
{
    public ulong[] Gpr { get; } = new ulong[16];

    public ulong Flags { get; set; }

    public RegisterFile Clone()
    {
        var copy = new RegisterFile { Flags = Flags };
        Gpr.CopyTo(copy.Gpr, 0);
        return copy;
    }
}

/// <summary>
/// Runs one instruction natively on the host CPU with every general-purpose register (RSP included) and RFLAGS
/// loaded from a <see cref="RegisterFile"/>, over a data window at a fixed host address below 2 GiB, so that
/// string, stack and memory-operand instructions can be compared with the interpreter byte for byte: the
/// interpreter maps the same linear addresses onto its guest RAM (see <see cref="GuestMachine"/>).
/// </summary>
/// <remarks>
/// One private read/write/execute MAP_32BIT region holds the stubs, a register block the stubs address
/// absolutely, a transition stack for compatibility mode, and the window. 64-bit stubs save the callee-saved
/// registers and RSP in the block, load everything, run the instruction, store everything and return.
/// Compatibility-mode stubs far-return to the 32-bit user code segment Linux provides (0x23), load the eight
/// 32-bit registers, run the instruction, and far-return to 64-bit mode (0x33); they need IA-32 emulation in the
/// kernel (<see cref="Execution.NativeRunner.CompatibilityModeAvailable"/>). A signal that arrives while RSP
/// points into the window writes its frame below RSP: callers compare the stack area only from the final RSP up.
/// </remarks>
internal static unsafe class NativeMachine
{
    /// <summary>The data window's size: 32 pages.</summary>
    public const int WindowSize = 128 * 1024;

    /// <summary>The window's lower part holds data; the stack area above it holds RSP.</summary>
    public const int StackAreaOffset = 96 * 1024;

    private const int RegionSize = 2 * 1024 * 1024;
    private const int CodeAreaSize = 1024 * 1024;
    private const int StateOffset = CodeAreaSize;
    private const int TransitionStackTop = CodeAreaSize + (192 * 1024);
    private const int WindowOffset = CodeAreaSize + (256 * 1024);

    private const int InOffset = 0;
    private const int FlagsInOffset = 128;
    private const int OutOffset = 136;
    private const int FlagsOutOffset = 264;
    private const int HostRspOffset = 272;
    private const int HostDsOffset = 280;

    private const byte User32CodeSelector = 0x23;
    private const byte User64CodeSelector = 0x33;
    private const byte UserDataSelector = 0x2B;

    private static readonly Lock Gate = new();
    private static readonly ConcurrentDictionary<string, nint> Stubs = new();
    private static readonly Lazy<MemoryMapping> Region = new(CreateRegion);
    private static int _codeUsed;

    /// <summary>The window's host (and guest linear) address.</summary>
    public static ulong WindowAddress => (ulong)Region.Value.Address + WindowOffset;

    /// <summary>
    /// Runs <paramref name="instruction"/> from <paramref name="input"/> over a window holding
    /// <paramref name="windowIn"/>; returns the registers afterwards and copies the window to <paramref name="windowOut"/>.
    /// </summary>
    /// <param name="compatibilityMode">Run in 32-bit compatibility mode: only the low 32 bits of RAX..RDI are loaded and stored.</param>
    public static RegisterFile Run(byte[] instruction, bool compatibilityMode, RegisterFile input, ReadOnlySpan<byte> windowIn, Span<byte> windowOut)
    {
        nint region = Region.Value.Address;
        lock (Gate)
        {
            nint stub = Stubs.GetOrAdd(
                (compatibilityMode ? "32:" : "64:") + Convert.ToHexString(instruction),
                static (_, args) => args.Compat ? Build32(args.Code) : Build64(args.Code),
                (Code: instruction, Compat: compatibilityMode));
            // SAFETY: the region is a live private mapping of RegionSize bytes for the process's life; the register
            // block and the window lie inside it; Gate serialises their use.
            var state = new Span<ulong>((void*)(region + StateOffset), 48);
            var window = new Span<byte>((void*)(region + WindowOffset), WindowSize);
            state.Clear();
            input.Gpr.CopyTo(state[(InOffset / 8)..]);
            state[FlagsInOffset / 8] = input.Flags;
            windowIn.CopyTo(window);

            // SAFETY: the stub restores the callee-saved registers, RSP, DS/ES and DF before returning; the
            // instruction it runs must only touch the window (the callers choose registers accordingly).
            ((delegate* unmanaged<void>)stub)();

            var output = new RegisterFile { Flags = state[FlagsOutOffset / 8] };
            state.Slice(OutOffset / 8, 16).CopyTo(output.Gpr);
            window.CopyTo(windowOut);
            return output;
        }
    }

    private static MemoryMapping CreateRegion()
    {
        var mapping = MemoryMapping.AnonymousLowExecutable(RegionSize);
        if ((ulong)mapping.Address + RegionSize > 0x8000_0000UL)
        {
            mapping.Dispose();
            throw new InvalidOperationException("mmap(MAP_32BIT) returned memory above 2 GiB: the native machine needs memory below it.");
        }

        return mapping;
    }

    private static uint StateAddress(int offset) => (uint)(Region.Value.Address + StateOffset + offset);

    private static nint Build64(byte[] instruction)
    {
        var code = new List<byte>(512);
        code.AddRange([0x53, 0x55, 0x41, 0x54, 0x41, 0x55, 0x41, 0x56, 0x41, 0x57]); // push rbx, rbp, r12-r15
        Absolute64(code, [0x48, 0x89], 4, HostRspOffset);                             // mov [HostRsp], rsp
        Absolute64(code, [0xFF], 6, FlagsInOffset);                                   // push qword [FlagsIn]
        code.Add(0x9D);                                                               // popfq
        for (int r = 0; r < 16; r++)
        {
            Absolute64(code, [(byte)(0x48 | (r >> 3 << 2)), 0x8B], r & 7, InOffset + (8 * r)); // mov r, [In + 8r]
        }

        code.AddRange(instruction);
        for (int r = 0; r < 16; r++)
        {
            Absolute64(code, [(byte)(0x48 | (r >> 3 << 2)), 0x89], r & 7, OutOffset + (8 * r)); // mov [Out + 8r], r
        }

        Absolute64(code, [0x48, 0x8B], 4, HostRspOffset);                             // mov rsp, [HostRsp]
        code.Add(0x9C);                                                               // pushfq
        Absolute64(code, [0x8F], 0, FlagsOutOffset);                                  // pop qword [FlagsOut]
        code.Add(0xFC);                                                               // cld
        code.AddRange([0x41, 0x5F, 0x41, 0x5E, 0x41, 0x5D, 0x41, 0x5C, 0x5D, 0x5B, 0xC3]); // pop r15-r12, rbp, rbx; ret
        return Place(code);
    }

    private static nint Build32(byte[] instruction)
    {
        uint start = (uint)(Region.Value.Address + _codeUsed);
        var code = new List<byte>(512);

        // 64-bit entry: save the callee-saved registers, DS and RSP; far return to the 32-bit code segment.
        code.AddRange([0x53, 0x55, 0x41, 0x54, 0x41, 0x55, 0x41, 0x56, 0x41, 0x57]); // push rbx, rbp, r12-r15
        code.AddRange([0x8C, 0xD8]);                                                  // mov eax, ds
        Absolute64(code, [0x48, 0x89], 0, HostDsOffset);                              // mov [HostDs], rax
        Absolute64(code, [0x48, 0x89], 4, HostRspOffset);                             // mov [HostRsp], rsp
        code.AddRange([0x48, 0xC7, 0xC4]); Add32(code, (uint)(Region.Value.Address + TransitionStackTop)); // mov rsp, imm32
        code.AddRange([0x6A, User32CodeSelector]);                                    // push 0x23
        int entryPatch = code.Count + 1;
        code.Add(0x68); Add32(code, 0);                                               // push entry32
        code.AddRange([0x48, 0xCB]);                                                  // retfq

        // 32-bit: flat data segments, load the registers, run, store, far return to 64-bit mode.
        Patch32(code, entryPatch, start + (uint)code.Count);
        code.AddRange([0x66, 0xB8, UserDataSelector, 0x00]);                          // mov ax, 0x2b
        code.AddRange([0x8E, 0xD8, 0x8E, 0xC0, 0x8E, 0xD0]);                          // mov ds, ax; mov es, ax; mov ss, ax
        code.AddRange([0xFF, 0x35]); Add32(code, StateAddress(FlagsInOffset));        // push dword [FlagsIn]
        code.Add(0x9D);                                                               // popfd
        for (int r = 0; r < 8; r++)
        {
            code.AddRange([0x8B, (byte)(0x05 | (r << 3))]); Add32(code, StateAddress(InOffset + (8 * r))); // mov r32, [In + 8r]
        }

        code.AddRange(instruction);
        for (int r = 0; r < 8; r++)
        {
            code.AddRange([0x89, (byte)(0x05 | (r << 3))]); Add32(code, StateAddress(OutOffset + (8 * r))); // mov [Out + 8r], r32
        }

        code.Add(0xBC); Add32(code, (uint)(Region.Value.Address + TransitionStackTop)); // mov esp, imm32
        code.Add(0x9C);                                                               // pushfd
        code.AddRange([0x8F, 0x05]); Add32(code, StateAddress(FlagsOutOffset));       // pop dword [FlagsOut]
        code.AddRange([0x6A, User64CodeSelector]);                                    // push 0x33
        int returnPatch = code.Count + 1;
        code.Add(0x68); Add32(code, 0);                                               // push return64
        code.Add(0xCB);                                                               // retf

        // Back in 64-bit mode: restore RSP, DS/ES and the callee-saved registers.
        Patch32(code, returnPatch, start + (uint)code.Count);
        Absolute64(code, [0x48, 0x8B], 4, HostRspOffset);                             // mov rsp, [HostRsp]
        Absolute64(code, [0x48, 0x8B], 0, HostDsOffset);                              // mov rax, [HostDs]
        code.AddRange([0x8E, 0xD8, 0x8E, 0xC0]);                                      // mov ds, ax; mov es, ax
        code.AddRange([0x41, 0x5F, 0x41, 0x5E, 0x41, 0x5D, 0x41, 0x5C, 0x5D, 0x5B]); // pop r15-r12, rbp, rbx
        code.AddRange([0xFC, 0xC3]);                                                  // cld; ret
        return Place(code);
    }

    /// <summary>Emits opcode bytes with a ModRM/SIB pair that addresses [disp32] absolutely, then the block offset's address.</summary>
    private static void Absolute64(List<byte> code, byte[] opcode, int reg, int offset)
    {
        code.AddRange(opcode);
        code.Add((byte)(0x04 | (reg << 3)));
        code.Add(0x25);
        Add32(code, StateAddress(offset));
    }

    private static nint Place(List<byte> code)
    {
        if (_codeUsed + code.Count > CodeAreaSize)
        {
            throw new InvalidOperationException("The native machine's code area is full: use fewer distinct instructions.");
        }

        nint address = Region.Value.Address + _codeUsed;
        var bytes = code.ToArray();
        // SAFETY: [address, address + bytes.Length) lies inside the region's code area (checked above).
        bytes.CopyTo(new Span<byte>((void*)address, bytes.Length));
        _codeUsed = (_codeUsed + bytes.Length + 15) & ~15;
        return address;
    }

    private static void Add32(List<byte> code, uint value)
    {
        code.Add((byte)value);
        code.Add((byte)(value >> 8));
        code.Add((byte)(value >> 16));
        code.Add((byte)(value >> 24));
    }

    private static void Patch32(List<byte> code, int offset, uint value)
    {
        code[offset] = (byte)value;
        code[offset + 1] = (byte)(value >> 8);
        code[offset + 2] = (byte)(value >> 16);
        code[offset + 3] = (byte)(value >> 24);
    }
}
