using KvmSharp.Emulator.Cpu;
using KvmSharp.Emulator.Tests.Cpu;
using KvmSharp.Hypervisor;

namespace KvmSharp.Emulator.Tests.Simd;

/// <summary>What the interpreter did with one instruction: the step's outcome and the state after it.</summary>
internal readonly record struct SimdInterpretedResult(StepResult Step, SimdMachineState State, CpuState Cpu);

/// <summary>
/// Runs one instruction in the interpreter from a <see cref="SimdMachineState"/>: 64-bit mode at CPL 0 with
/// CR4.OSFXSR and CR4.OSXMMEXCPT set, the data area at <see cref="CpuFixture.DataBase"/>. Each run gets a new
/// <see cref="Interpreter"/>, so nothing decoded before can be reused.
/// </summary>
internal sealed class SimdInterpreterRunner : IDisposable
{
    public const ulong DataBase = CpuFixture.DataBase;

    private readonly CpuFixture _fixture = new([0x90]);

    public GuestMemoryAccess Memory => new(_fixture);

    /// <summary>Runs <paramref name="code"/> (one instruction) from <paramref name="input"/>; <paramref name="configure"/> may change CRs and the like first.</summary>
    public SimdInterpretedResult Run(byte[] code, SimdMachineState input, Action<CpuState>? configure = null)
    {
        var state = _fixture.State;
        _fixture.Memory.Write(CpuFixture.CodeBase, (ReadOnlySpan<byte>)code);
        _fixture.Memory.Write(DataBase, (ReadOnlySpan<byte>)input.Data);
        state.Rip = CpuFixture.CodeBase;
        state.Cr0 = X86SystemRegisters.Cr0Pe | X86SystemRegisters.Cr0Pg | X86SystemRegisters.Cr0Wp | X86SystemRegisters.Cr0Mp | X86SystemRegisters.Cr0Ne;
        state.Cr4 = X86SystemRegisters.Cr4Pae | X86SystemRegisters.Cr4Osfxsr | X86SystemRegisters.Cr4Osxmmexcpt;
        state.RFlags = input.Flags;
        for (int r = 0; r < 16; r++)
        {
            ulong value = input.Gpr[r];
            if (r is SimdMachineState.Rsi or SimdMachineState.Rdi)
            {
                value += DataBase;
            }

            state[r] = value;
        }

        Assert.True(state.Fx.TryRestore(input.FxImage), "The input image sets reserved MXCSR bits.");
        configure?.Invoke(state);
        var interpreter = new Interpreter(state, _fixture.Memory, null, null, CpuFixture.DecodeCacheBits);
        var step = interpreter.Step();

        var output = new SimdMachineState { Flags = state.RFlags };
        input.FxImage.CopyTo(output.FxImage, 0);
        state.Fx.Save(output.FxImage);
        for (int r = 0; r < 16; r++)
        {
            ulong value = state[r];
            if (r is SimdMachineState.Rsi or SimdMachineState.Rdi)
            {
                value -= DataBase;
            }

            output.Gpr[r] = value;
        }

        _fixture.Memory.Read(DataBase, output.Data);
        return new SimdInterpretedResult(step, output, state);
    }

    public void Dispose() => _fixture.Dispose();

    /// <summary>Reads and writes guest memory around a run.</summary>
    internal readonly struct GuestMemoryAccess(CpuFixture fixture)
    {
        public void Write(ulong address, ReadOnlySpan<byte> bytes) => fixture.Memory.Write(address, bytes);

        public void Read(ulong address, Span<byte> bytes) => fixture.Memory.Read(address, bytes);
    }
}
