using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using KvmSharp.Native;

namespace KvmSharp.Emulator.Tests.Execution;

/// <summary>Registers in and out of a native stub. The layout is the stubs' contract (offsets in comments).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct NativeState
{
    public ulong Rax;      // 0
    public ulong R8;       // 8: the source operand of two-operand instructions
    public ulong Rcx;      // 16: the shift count (CL)
    public ulong Rdx;      // 24
    public ulong FlagsIn;  // 32
    public ulong FlagsOut; // 40
    public ulong OutRax;   // 48
    public ulong OutRdx;   // 56
    public ulong OutR8;    // 64
    public ulong OutRcx;   // 72
    public ulong SavedRsp; // 80: used by compatibility-mode stubs
    public ulong SavedDs;  // 88
}

/// <summary>
/// Runs one x86 instruction natively on the host CPU: builds, per (instruction bytes, mode), a tiny
/// function that loads RAX, R8, RCX, RDX and RFLAGS from a <see cref="NativeState"/> (pointer in RDI),
/// executes the instruction, and stores RFLAGS and the registers back. Stubs are cached for the life
/// of the process. The instruction may only touch RAX, RCX, RDX, R8 and RFLAGS.
/// </summary>
/// <remarks>
/// Compatibility-mode stubs (for DAA/DAS/AAA/AAS/AAM/AAD, which are #UD in 64-bit mode) far-return to
/// the 32-bit user code segment Linux provides (selector 0x23), run the instruction on a private stack
/// below 4 GiB, and far-return to 64-bit mode (selector 0x33). They need IA-32 emulation in the kernel;
/// <see cref="CompatibilityModeAvailable"/> checks the descriptor with LAR first, so a kernel without it
/// skips those tests instead of faulting the test process.
/// </remarks>
internal static unsafe class NativeRunner
{
    private const int LowRegionSize = 1 << 20;
    private const int LowStackSize = 256 * 1024;
    private const ushort User32CodeSelector = 0x23;
    private const ushort User64CodeSelector = 0x33;
    private const ushort UserDataSelector = 0x2B;

    private static readonly ConcurrentDictionary<string, MemoryMapping> Stubs = new();
    private static readonly ConcurrentDictionary<string, nint> CompatStubs = new();
    private static readonly Lock CompatLock = new();
    private static readonly Lazy<bool> CompatProbe = new(ProbeCompatibilityMode);
    private static nint _lowRegion;
    private static MemoryMapping? _lowMapping;
    private static int _lowCodeUsed;

    /// <summary>Executes <paramref name="instruction"/> in 64-bit mode.</summary>
    public static NativeState Run(ReadOnlySpan<byte> instruction, NativeState input)
    {
        string key = Convert.ToHexString(instruction);
        var stub = Stubs.GetOrAdd(key, static (_, bytes) => MemoryMapping.Executable(Build64(bytes)), instruction.ToArray());
        // SAFETY: the stub is live for the process (never removed from the cache); it reads and writes
        // only the NativeState that RDI points to (a local here), preserves RBX/RBP/R12-R15 and RSP,
        // and leaves DF clear, as the SysV ABI requires.
        var function = (delegate* unmanaged<NativeState*, void>)stub.Address;
        function(&input);
        return input;
    }

    /// <summary>Whether the kernel offers a present 32-bit user code segment (IA-32 emulation).</summary>
    public static bool CompatibilityModeAvailable => CompatProbe.Value;

    /// <summary>Executes <paramref name="instruction"/> in 32-bit compatibility mode (RAX and RFLAGS only).</summary>
    public static NativeState RunCompatibilityMode(ReadOnlySpan<byte> instruction, NativeState input)
    {
        if (!CompatibilityModeAvailable)
        {
            throw new InvalidOperationException("The kernel has no 32-bit user code segment: enable CONFIG_IA32_EMULATION.");
        }

        lock (CompatLock)
        {
            EnsureLowRegion();
            string key = Convert.ToHexString(instruction);
            nint stub = CompatStubs.GetOrAdd(key, static (_, bytes) => BuildCompat(bytes), instruction.ToArray());
            var state = (NativeState*)(_lowRegion + LowRegionSize - LowStackSize - 4096);
            // SAFETY: the low region is a private RWX mapping below 2 GiB that lives for the process; the
            // state slot and the stack are inside it; the stub saves RSP, DS and the callee-saved registers
            // and restores them before returning in 64-bit mode. CompatLock serialises use of the slot.
            *state = input;
            ((delegate* unmanaged<void>)stub)();
            return *state;
        }
    }

    private static byte[] Build64(byte[] instruction)
    {
        var code = new List<byte>(64);
        code.AddRange([0x48, 0x8B, 0x07]);             // mov rax, [rdi]
        code.AddRange([0x4C, 0x8B, 0x47, 0x08]);       // mov r8, [rdi+8]
        code.AddRange([0x48, 0x8B, 0x4F, 0x10]);       // mov rcx, [rdi+16]
        code.AddRange([0x48, 0x8B, 0x57, 0x18]);       // mov rdx, [rdi+24]
        code.AddRange([0xFF, 0x77, 0x20]);             // push qword [rdi+32]
        code.Add(0x9D);                                // popfq
        code.AddRange(instruction);
        code.Add(0x9C);                                // pushfq
        code.AddRange([0x8F, 0x47, 0x28]);             // pop qword [rdi+40]
        code.AddRange([0x48, 0x89, 0x47, 0x30]);       // mov [rdi+48], rax
        code.AddRange([0x48, 0x89, 0x57, 0x38]);       // mov [rdi+56], rdx
        code.AddRange([0x4C, 0x89, 0x47, 0x40]);       // mov [rdi+64], r8
        code.AddRange([0x48, 0x89, 0x4F, 0x48]);       // mov [rdi+72], rcx
        code.AddRange([0xFC, 0xC3]);                   // cld; ret
        return [.. code];
    }

    private static nint BuildCompat(byte[] instruction)
    {
        uint state = (uint)(_lowRegion + LowRegionSize - LowStackSize - 4096);
        uint stackTop = (uint)(_lowRegion + LowRegionSize - 64);
        uint start = (uint)(_lowRegion + _lowCodeUsed);
        var code = new List<byte>(160);

        // 64-bit entry: save callee-saved registers, DS and RSP; switch to the low stack; far return to 0x23.
        code.AddRange([0x53, 0x55, 0x41, 0x54, 0x41, 0x55, 0x41, 0x56, 0x41, 0x57]); // push rbx, rbp, r12-r15
        code.AddRange([0x8C, 0xD8]);                                   // mov eax, ds
        code.AddRange([0x48, 0x89, 0x04, 0x25]); Add32(code, state + 88); // mov [state.SavedDs], rax
        code.AddRange([0x48, 0x89, 0x24, 0x25]); Add32(code, state + 80); // mov [state.SavedRsp], rsp
        code.AddRange([0x48, 0xC7, 0xC4]); Add32(code, stackTop);         // mov rsp, stackTop
        code.AddRange([0x6A, (byte)User32CodeSelector]);               // push 0x23
        int entryPatch = code.Count + 1;
        code.Add(0x68); Add32(code, 0);                                // push compatEntry
        code.AddRange([0x48, 0xCB]);                                   // retfq

        // 32-bit compatibility-mode code: flat data segments, run the instruction, far return to 0x33.
        Patch32(code, entryPatch, start + (uint)code.Count);
        code.AddRange([0x66, 0xB8, (byte)UserDataSelector, 0x00]);     // mov ax, 0x2b
        code.AddRange([0x8E, 0xD8, 0x8E, 0xC0, 0x8E, 0xD0]);           // mov ds, ax; mov es, ax; mov ss, ax
        code.Add(0xA1); Add32(code, state);                            // mov eax, [state.Rax]
        code.AddRange([0xFF, 0x35]); Add32(code, state + 32);          // push dword [state.FlagsIn]
        code.Add(0x9D);                                                // popfd
        code.AddRange(instruction);
        code.Add(0x9C);                                                // pushfd
        code.AddRange([0x8F, 0x05]); Add32(code, state + 40);          // pop dword [state.FlagsOut]
        code.Add(0xA3); Add32(code, state + 48);                       // mov [state.OutRax], eax
        code.AddRange([0x6A, (byte)User64CodeSelector]);               // push 0x33
        int returnPatch = code.Count + 1;
        code.Add(0x68); Add32(code, 0);                                // push return64
        code.Add(0xCB);                                                // retf

        // Back in 64-bit mode: restore RSP, DS and the callee-saved registers.
        Patch32(code, returnPatch, start + (uint)code.Count);
        code.AddRange([0x48, 0x8B, 0x24, 0x25]); Add32(code, state + 80); // mov rsp, [state.SavedRsp]
        code.AddRange([0x48, 0x8B, 0x04, 0x25]); Add32(code, state + 88); // mov rax, [state.SavedDs]
        code.AddRange([0x8E, 0xD8, 0x8E, 0xC0]);                       // mov ds, ax; mov es, ax
        code.AddRange([0x41, 0x5F, 0x41, 0x5E, 0x41, 0x5D, 0x41, 0x5C, 0x5D, 0x5B]); // pop r15-r12, rbp, rbx
        code.AddRange([0xFC, 0xC3]);                                   // cld; ret

        if (_lowCodeUsed + code.Count > LowRegionSize - LowStackSize - 8192)
        {
            throw new InvalidOperationException("The compatibility-mode code area is full: use fewer distinct instructions.");
        }

        var bytes = code.ToArray();
        // SAFETY: [start, start + bytes.Length) lies in the low region's code area (checked above).
        bytes.CopyTo(new Span<byte>((void*)(nint)start, bytes.Length));
        _lowCodeUsed = (_lowCodeUsed + bytes.Length + 15) & ~15;
        return (nint)start;
    }

    private static void EnsureLowRegion()
    {
        if (_lowRegion != 0)
        {
            return;
        }

        var mapping = MemoryMapping.AnonymousLowExecutable(LowRegionSize);
        nint address = mapping.Address;
        if ((ulong)address + LowRegionSize > 0x8000_0000UL)
        {
            mapping.Dispose();
            throw new InvalidOperationException("mmap(MAP_32BIT) returned memory above 2 GiB: compatibility-mode stubs need memory below it.");
        }

        _lowMapping = mapping; // kept for the process's life, like the stubs that live in it
        _lowRegion = address;
    }

    private static bool ProbeCompatibilityMode()
    {
        // lar eax, ecx with ECX = 0x23: ZF = 1 and the access rights when the descriptor is usable.
        // Wanted: present (bit 15), DPL 3 (bits 13-14), code segment (bits 11-12 = 11b), D = 1, L = 0.
        ReadOnlySpan<byte> lar = [0x0F, 0x02, 0xC1];
        var output = Run(lar, new NativeState { Rax = 0, Rcx = User32CodeSelector, FlagsIn = 0x2 });
        if ((output.FlagsOut & 0x40) == 0)
        {
            return false;
        }

        uint rights = (uint)output.OutRax;
        return (rights & 0x8000) != 0 && (rights & 0x6000) == 0x6000 && (rights & 0x1800) == 0x1800
            && (rights & 0x40_0000) != 0 && (rights & 0x20_0000) == 0;
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
