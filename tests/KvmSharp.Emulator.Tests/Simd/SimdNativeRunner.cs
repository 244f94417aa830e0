using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using KvmSharp.Native;

namespace KvmSharp.Emulator.Tests.Simd;

/// <summary>What a native run produced: the state after the instruction, and whether it raised #XM (SIGFPE).</summary>
internal readonly record struct SimdNativeResult(SimdMachineState State, bool Faulted, uint FaultMxcsr);

/// <summary>
/// Runs one instruction natively with a whole SIMD state: per instruction a stub saves the host's FPU state,
/// loads the case's FXSAVE image (FXRSTOR64), all GPRs but RSP and RFLAGS, runs the instruction, stores the GPRs
/// and RFLAGS, takes an FXSAVE64 image and restores the host's FPU state. The instruction may use every register
/// except RSP. Memory operands should use RSI or RDI, which point into a 1 KiB data area.
/// </summary>
/// <remarks>
/// With <c>catchSimdFault</c>, a SIGFPE handler (installed once, chaining every other SIGFPE to the handler the
/// runtime had) catches an #XM raised by exactly the stub's instruction: it records MXCSR as the kernel saved it
/// and resumes after the instruction, so the stub stores the (unchanged) state as usual.
/// </remarks>
internal static unsafe class SimdNativeRunner
{
    private const int ImageIn = 0;
    private const int ImageOut = 512;
    private const int HostSave = 1024;
    private const int GprIn = 1536;
    private const int GprOut = 1664;
    private const int FlagsIn = 1792;
    private const int FlagsOut = 1800;
    private const int DataArea = 4096;
    private const int BlockSize = 8192;
    private const int Sigfpe = 8;
    private const int SaSiginfo = 4;

    private static readonly ConcurrentDictionary<string, Stub> Stubs = new();
    private static readonly Lock FaultLock = new();
    private static MemoryMapping? _handler;
    private static ulong* _faultSlot;

    /// <summary>Runs <paramref name="instruction"/> from <paramref name="input"/>.</summary>
    public static SimdNativeResult Run(byte[] instruction, SimdMachineState input, bool catchSimdFault = false)
    {
        var stub = Stubs.GetOrAdd(Convert.ToHexString(instruction), static (_, bytes) => Build(bytes), instruction);
        byte* block = (byte*)NativeMemory.AlignedAlloc(BlockSize, 4096);
        try
        {
            var span = new Span<byte>(block, BlockSize);
            span.Clear();
            input.FxImage.CopyTo(span[ImageIn..]);
            ulong dataAddress = (ulong)(block + DataArea);
            for (int r = 0; r < 16; r++)
            {
                ulong value = input.Gpr[r];
                if (r is SimdMachineState.Rsi or SimdMachineState.Rdi)
                {
                    value += dataAddress;
                }

                ((ulong*)(block + GprIn))[r] = value;
            }

            *(ulong*)(block + FlagsIn) = input.Flags;
            input.Data.CopyTo(span[DataArea..]);

            bool faulted = false;
            uint faultMxcsr = 0;
            if (catchSimdFault)
            {
                lock (FaultLock)
                {
                    EnsureHandler();
                    _faultSlot[0] = (ulong)stub.Mapping.Address + (ulong)stub.InstructionOffset;
                    _faultSlot[1] = (ulong)stub.Mapping.Address + (ulong)stub.ResumeOffset;
                    _faultSlot[2] = 0;
                    Invoke(stub, block);
                    faulted = _faultSlot[2] != 0;
                    faultMxcsr = (uint)_faultSlot[3];
                    _faultSlot[0] = 0;
                }
            }
            else
            {
                Invoke(stub, block);
            }

            var output = new SimdMachineState { Flags = *(ulong*)(block + FlagsOut) };
            span.Slice(ImageOut, 512).CopyTo(output.FxImage);
            for (int r = 0; r < 16; r++)
            {
                ulong value = ((ulong*)(block + GprOut))[r];
                if (r is SimdMachineState.Rsi or SimdMachineState.Rdi)
                {
                    value -= dataAddress;
                }

                output.Gpr[r] = value;
            }

            span.Slice(DataArea, SimdMachineState.DataSize).CopyTo(output.Data);
            return new SimdNativeResult(output, faulted, faultMxcsr);
        }
        finally
        {
            NativeMemory.AlignedFree(block);
        }
    }

    private static void Invoke(Stub stub, byte* block)
    {
        // SAFETY: the stub lives for the process (never removed from the cache); it reads and writes only the
        // 8 KiB block RDI points to, saves and restores the callee-saved registers, RSP and the host's whole
        // x87/SSE state (FXSAVE64/FXRSTOR64 into the block), and clears DF before returning.
        ((delegate* unmanaged<byte*, void>)stub.Mapping.Address)(block);
    }

    private sealed record Stub(MemoryMapping Mapping, int InstructionOffset, int ResumeOffset);

    private static Stub Build(byte[] instruction)
    {
        var code = new List<byte>(256);
        code.AddRange([0x53, 0x55, 0x41, 0x54, 0x41, 0x55, 0x41, 0x56, 0x41, 0x57]); // push rbx, rbp, r12-r15
        RdiMemory(code, [0x48, 0x0F, 0xAE], 0, HostSave);                           // fxsave64 [rdi+HostSave]
        RdiMemory(code, [0x48, 0x0F, 0xAE], 1, ImageIn);                            // fxrstor64 [rdi+ImageIn]
        code.Add(0x57);                                                            // push rdi
        for (int r = 0; r < 16; r++)
        {
            if (r is 4 or 7)
            {
                continue;
            }

            MoveRegister(code, load: true, r, GprIn + (8 * r));                    // mov r, [rdi+GprIn+8r]
        }

        RdiMemory(code, [0xFF], 6, FlagsIn);                                       // push qword [rdi+FlagsIn]
        code.Add(0x9D);                                                            // popfq
        MoveRegister(code, load: true, 7, GprIn + (8 * 7));                        // mov rdi, [rdi+GprIn+56]
        int instructionOffset = code.Count;
        code.AddRange(instruction);
        int resumeOffset = code.Count;
        code.Add(0x9C);                                                            // pushfq
        code.AddRange([0x48, 0x87, 0x7C, 0x24, 0x08]);                             // xchg rdi, [rsp+8]
        RdiMemory(code, [0x8F], 0, FlagsOut);                                      // pop qword [rdi+FlagsOut]
        for (int r = 0; r < 16; r++)
        {
            if (r is 4 or 7)
            {
                continue;
            }

            MoveRegister(code, load: false, r, GprOut + (8 * r));                  // mov [rdi+GprOut+8r], r
        }

        RdiMemory(code, [0x8F], 0, GprOut + (8 * 7));                              // pop qword [rdi+GprOut+56]
        RdiMemory(code, [0x48, 0x0F, 0xAE], 0, ImageOut);                          // fxsave64 [rdi+ImageOut]
        RdiMemory(code, [0x48, 0x0F, 0xAE], 1, HostSave);                          // fxrstor64 [rdi+HostSave]
        code.AddRange([0x41, 0x5F, 0x41, 0x5E, 0x41, 0x5D, 0x41, 0x5C, 0x5D, 0x5B]); // pop r15-r12, rbp, rbx
        code.AddRange([0xFC, 0xC3]);                                               // cld; ret
        return new Stub(MemoryMapping.Executable(code.ToArray()), instructionOffset, resumeOffset);
    }

    /// <summary>opcode with ModRM (mod 10, reg, rm = RDI) and a 32-bit displacement.</summary>
    private static void RdiMemory(List<byte> code, byte[] opcode, int reg, int displacement)
    {
        code.AddRange(opcode);
        code.Add((byte)(0x80 | (reg << 3) | 7));
        code.AddRange(BitConverter.GetBytes(displacement));
    }

    private static void MoveRegister(List<byte> code, bool load, int register, int displacement)
    {
        code.Add((byte)(0x48 | ((register >> 3) << 2)));
        RdiMemory(code, [load ? (byte)0x8B : (byte)0x89], register & 7, displacement);
    }

    // ---------------------------------------------------------------- SIGFPE

    [StructLayout(LayoutKind.Sequential)]
    private struct SigAction
    {
        public nint Handler;
        public fixed ulong Mask[16];
        public int Flags;
        public nint Restorer;
    }

    [DllImport("libc", EntryPoint = "sigaction")]
    private static extern int NativeSigAction(int signal, SigAction* action, SigAction* oldAction);

    private static void EnsureHandler()
    {
        if (_handler is not null)
        {
            return;
        }

        // Slot: [0] the instruction's address, [1] where to resume, [2] faulted, [3] MXCSR at the fault, [4] the previous handler.
        _faultSlot = (ulong*)NativeMemory.AllocZeroed(64);
        var code = new List<byte>(96);
        code.AddRange([0x48, 0xB8]);
        code.AddRange(BitConverter.GetBytes((ulong)_faultSlot));           // mov rax, slot
        code.AddRange([0x48, 0x8B, 0x8A, 0xA8, 0x00, 0x00, 0x00]);         // mov rcx, [rdx+168] (uc_mcontext.gregs[REG_RIP])
        code.AddRange([0x48, 0x3B, 0x08]);                                 // cmp rcx, [rax]
        int jne = code.Count;
        code.AddRange([0x75, 0x00]);                                       // jne chain
        code.AddRange([0x48, 0x8B, 0x48, 0x08]);                           // mov rcx, [rax+8]
        code.AddRange([0x48, 0x89, 0x8A, 0xA8, 0x00, 0x00, 0x00]);         // mov [rdx+168], rcx
        code.AddRange([0x48, 0xC7, 0x40, 0x10, 0x01, 0x00, 0x00, 0x00]);   // mov qword [rax+16], 1
        code.AddRange([0x48, 0x8B, 0x8A, 0xE0, 0x00, 0x00, 0x00]);         // mov rcx, [rdx+224] (uc_mcontext.fpregs)
        code.AddRange([0x8B, 0x49, 0x18]);                                 // mov ecx, [rcx+24] (mxcsr)
        code.AddRange([0x89, 0x48, 0x18]);                                 // mov [rax+24], ecx
        code.Add(0xC3);                                                    // ret
        code[jne + 1] = (byte)(code.Count - (jne + 2));
        code.AddRange([0xFF, 0x60, 0x20]);                                 // chain: jmp [rax+32]
        var handler = MemoryMapping.Executable(code.ToArray());

        SigAction action = default;
        SigAction previous = default;
        action.Handler = handler.Address;
        action.Flags = SaSiginfo;
        // SAFETY: both structs are glibc's struct sigaction layout on x86-64; sigaction copies them.
        if (NativeSigAction(Sigfpe, null, &previous) != 0)
        {
            throw new InvalidOperationException("sigaction(SIGFPE) failed.");
        }

        if ((previous.Flags & SaSiginfo) == 0 || previous.Handler == 0)
        {
            throw new InvalidOperationException("The runtime's SIGFPE handler is not an SA_SIGINFO handler; cannot chain to it.");
        }

        _faultSlot[4] = (ulong)previous.Handler;
        action.Restorer = previous.Restorer;
        action.Flags |= previous.Flags & ~SaSiginfo;
        if (NativeSigAction(Sigfpe, &action, null) != 0)
        {
            throw new InvalidOperationException("sigaction(SIGFPE) failed.");
        }

        _handler = handler;
    }
}
