using System.Buffers.Binary;
using FsCheck;
using FsCheck.Fluent;

namespace KvmSharp.Emulator.Tests.Simd;

/// <summary>
/// FXSAVE/FXRSTOR in both layouts (REX.W: 64-bit FIP/FDP; without: 32-bit offsets and zero selectors), LDMXCSR,
/// STMXCSR and EMMS, natively and in the interpreter from the same random states: the saved image (including
/// which of bytes 416-511 are left alone), the restored state and MXCSR must match.
/// </summary>
public sealed class SimdStateDifferentialTests
{
    private static readonly byte[] Fxsave64 = [0x48, 0x0F, 0xAE, 0x06];   // fxsave64 [rsi]
    private static readonly byte[] Fxsave32 = [0x0F, 0xAE, 0x06];         // fxsave [rsi]
    private static readonly byte[] Fxrstor64 = [0x48, 0x0F, 0xAE, 0x0E];  // fxrstor64 [rsi]
    private static readonly byte[] Fxrstor32 = [0x0F, 0xAE, 0x0E];        // fxrstor [rsi]
    private static readonly byte[] Emms = [0x0F, 0x77];

    public static TheoryData<string> SaveForms => new() { nameof(Fxsave64), nameof(Fxsave32) };

    public static TheoryData<string> RestoreForms => new() { nameof(Fxrstor64), nameof(Fxrstor32) };

    private static Gen<SimdMachineState> States => SimdValues.State(ValueKind.Integer, SimdValues.MaskedMxcsr);

    [Theory]
    [MemberData(nameof(SaveForms))]
    public void Fxsave_WritesTheSameImageAsTheHost(string form)
    {
        byte[] code = form == nameof(Fxsave64) ? Fxsave64 : Fxsave32;
        using var runner = new SimdInterpreterRunner();
        Prop.ForAll(States.ToArbitrary(), state => SimdDifferential.CompareRun(runner, code, state, storedFxImage: 256))
            .Check(Config.QuickThrowOnFailure.WithMaxTest(400));
    }

    [Theory]
    [MemberData(nameof(RestoreForms))]
    public void Fxrstor_LoadsTheSameStateAsTheHost(string form)
    {
        byte[] code = form == nameof(Fxrstor64) ? Fxrstor64 : Fxrstor32;
        using var runner = new SimdInterpreterRunner();
        var gen = States.Zip(States, static (state, source) => (state, source))
            .Zip(Gen.Choose(0, 0xFFFF).Two(), static (pair, words) => (pair.state, pair.source, Fcw: (ushort)words.Item1, Fsw: (ushort)words.Item2));
        Prop.ForAll(gen.ToArbitrary(), c =>
        {
            // Any control and status word (pending x87 exceptions included: nothing after FXRSTOR takes them),
            // selectors in the 32-bit layout's FCS/FDS slots and a MXCSR_MASK field, which FXRSTOR ignores.
            var image = c.source.FxImage.AsSpan();
            BinaryPrimitives.WriteUInt16LittleEndian(image, c.Fcw);
            BinaryPrimitives.WriteUInt16LittleEndian(image[2..], c.Fsw);
            BinaryPrimitives.WriteUInt16LittleEndian(image[6..], (ushort)(c.Fcw ^ c.Fsw));
            BinaryPrimitives.WriteUInt32LittleEndian(image[28..], c.Fcw);
            image.CopyTo(c.state.Data.AsSpan(256));
            SimdDifferential.CompareRun(runner, code, c.state);
        }).Check(Config.QuickThrowOnFailure.WithMaxTest(400));
    }

    [Fact]
    public void Ldmxcsr_AndStmxcsr_MatchTheHost()
    {
        using var runner = new SimdInterpreterRunner();
        var gen = States.Zip(Gen.Choose(0, 0xFFFF), static (state, value) => (state, value));
        Prop.ForAll(gen.ToArbitrary(), c =>
        {
            BinaryPrimitives.WriteUInt32LittleEndian(c.state.Data.AsSpan(256 + 20), (uint)c.value);
            SimdDifferential.CompareRun(runner, [0x0F, 0xAE, 0x56, 20], c.state); // ldmxcsr [rsi+20]
            SimdDifferential.CompareRun(runner, [0x0F, 0xAE, 0x5E, 36], c.state); // stmxcsr [rsi+36]
        }).Check(Config.QuickThrowOnFailure.WithMaxTest(300));
    }

    [Fact]
    public void Emms_MatchesTheHost()
    {
        using var runner = new SimdInterpreterRunner();
        Prop.ForAll(States.ToArbitrary(), state => SimdDifferential.CompareRun(runner, Emms, state))
            .Check(Config.QuickThrowOnFailure.WithMaxTest(200));
    }

    [Fact]
    public void Fences_AndClflush_ChangeNothing_LikeTheHost()
    {
        using var runner = new SimdInterpreterRunner();
        byte[][] codes =
        [
            [0x0F, 0xAE, 0xE8], // lfence
            [0x0F, 0xAE, 0xF0], // mfence
            [0x0F, 0xAE, 0xF8], // sfence
            [0x0F, 0xAE, 0x7E, 0x10], // clflush [rsi+16]
        ];
        Prop.ForAll(States.ToArbitrary(), state =>
        {
            foreach (var code in codes)
            {
                SimdDifferential.CompareRun(runner, code, state);
            }
        }).Check(Config.QuickThrowOnFailure.WithMaxTest(50));
    }
}
