using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using KvmSharp.Native;

namespace KvmSharp.Emulator.Tests.X87;

/// <summary>
/// Runs one x87 instruction natively on the host CPU from a prepared state: the stub saves the caller's x87/SSE state
/// (FXSAVE64), loads the prepared FXSAVE image (FXRSTOR64), points RSI at a 128-byte memory area, loads RAX and
/// RFLAGS, executes the instruction, and stores RFLAGS, RAX and the resulting FXSAVE image before restoring the
/// caller's state. The instruction's memory operand must be [rsi] or [rsi + disp8].
/// </summary>
/// <remarks>
/// No waiting x87 instruction runs after the one under test (FXSAVE and FXRSTOR never raise #MF), so an unmasked
/// exception it raises stays pending in the saved image instead of reaching the test process as SIGFPE; the
/// prepared state must not already hold a pending exception (an unmasked flag) when the instruction waits.
/// </remarks>
internal sealed unsafe class X87NativeRunner : IDisposable
{
    public const int MemorySize = 128;

    private const int FxInOffset = 0;
    private const int FxOutOffset = 512;
    private const int SavedOffset = 1024;
    private const int MemoryOffset = 1536;
    private const int RaxInOffset = MemoryOffset + MemorySize;
    private const int FlagsInOffset = RaxInOffset + 8;
    private const int RaxOutOffset = RaxInOffset + 16;
    private const int FlagsOutOffset = RaxInOffset + 24;
    private const int BlockSize = 2048;

    private static readonly ConcurrentDictionary<string, (MemoryMapping Stub, int InstructionOffset)> Stubs = new();

    private readonly byte* _block;

    public X87NativeRunner()
    {
        // SAFETY: a private, 64-byte aligned block (FXSAVE needs 16) freed in Dispose; the stubs touch only
        // [_block, _block + BlockSize).
        _block = (byte*)NativeMemory.AlignedAlloc(BlockSize, 64);
        new Span<byte>(_block, BlockSize).Clear();
    }

    /// <summary>The host address of the memory operand area (what FDP records for [rsi]).</summary>
    public ulong MemoryAddress => (ulong)(_block + MemoryOffset);

    /// <summary>Runs <paramref name="instruction"/>; returns the host address of its first byte (what FIP records).</summary>
    public ulong Run(ReadOnlySpan<byte> instruction, ReadOnlySpan<byte> fxIn, Span<byte> fxOut, Span<byte> memory,
        ulong raxIn, ulong flagsIn, out ulong raxOut, out ulong flagsOut)
    {
        string key = Convert.ToHexString(instruction);
        var stub = Stubs.GetOrAdd(key, static (_, bytes) => Build(bytes), instruction.ToArray());
        var block = new Span<byte>(_block, BlockSize);
        fxIn[..512].CopyTo(block[FxInOffset..]);
        memory[..MemorySize].CopyTo(block[MemoryOffset..]);
        MemoryMarshal.Write(block[RaxInOffset..], raxIn);
        MemoryMarshal.Write(block[FlagsInOffset..], flagsIn);
        // SAFETY: the stub is live for the process (never removed from the cache); it reads and writes only the
        // block RDI points to, saves and restores the caller's x87/SSE state, preserves the callee-saved registers
        // and leaves DF clear.
        ((delegate* unmanaged<byte*, void>)stub.Stub.Address)(_block);
        block.Slice(FxOutOffset, 512).CopyTo(fxOut);
        block.Slice(MemoryOffset, MemorySize).CopyTo(memory);
        raxOut = MemoryMarshal.Read<ulong>(block[RaxOutOffset..]);
        flagsOut = MemoryMarshal.Read<ulong>(block[FlagsOutOffset..]);
        return (ulong)stub.Stub.Address + (ulong)stub.InstructionOffset;
    }

    private static (MemoryMapping, int) Build(byte[] instruction)
    {
        var code = new List<byte>(96);
        code.AddRange([0x48, 0x0F, 0xAE, 0x87]); Add32(code, SavedOffset);   // fxsave64 [rdi+saved]
        code.AddRange([0x48, 0x0F, 0xAE, 0x0F]);                             // fxrstor64 [rdi]
        code.AddRange([0x48, 0x8D, 0xB7]); Add32(code, MemoryOffset);        // lea rsi, [rdi+memory]
        code.AddRange([0x48, 0x8B, 0x87]); Add32(code, RaxInOffset);         // mov rax, [rdi+raxIn]
        code.AddRange([0xFF, 0xB7]); Add32(code, FlagsInOffset);             // push qword [rdi+flagsIn]
        code.Add(0x9D);                                                       // popfq
        int offset = code.Count;
        code.AddRange(instruction);
        code.Add(0x9C);                                                       // pushfq
        code.AddRange([0x8F, 0x87]); Add32(code, FlagsOutOffset);            // pop qword [rdi+flagsOut]
        code.AddRange([0x48, 0x89, 0x87]); Add32(code, RaxOutOffset);        // mov [rdi+raxOut], rax
        code.AddRange([0x48, 0x0F, 0xAE, 0x87]); Add32(code, FxOutOffset);   // fxsave64 [rdi+fxOut]
        code.AddRange([0x48, 0x0F, 0xAE, 0x8F]); Add32(code, SavedOffset);   // fxrstor64 [rdi+saved]
        code.AddRange([0xFC, 0xC3]);                                          // cld; ret
        return (MemoryMapping.Executable([.. code]), offset);
    }

    private static void Add32(List<byte> code, int value)
    {
        code.Add((byte)value);
        code.Add((byte)(value >> 8));
        code.Add((byte)(value >> 16));
        code.Add((byte)(value >> 24));
    }

    public void Dispose() => NativeMemory.AlignedFree(_block);
}
