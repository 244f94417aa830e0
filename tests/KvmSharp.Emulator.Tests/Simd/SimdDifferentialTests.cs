namespace KvmSharp.Emulator.Tests.Simd;

/// <summary>
/// Every MMX/SSE/SSE2 encoding in <see cref="SimdForms"/> runs natively on the host and in the interpreter from the
/// same FsCheck-generated states (edge values of the operand type mixed with random ones, register and memory
/// forms, all four rounding modes, FTZ and DAZ, all exceptions masked); the whole SIMD state, GPRs, RFLAGS and
/// memory must match.
/// </summary>
public sealed class SimdDifferentialTests
{
    public static TheoryData<string> FloatArithmetic => SimdForms.Names(SimdForms.FloatArithmetic);

    public static TheoryData<string> Conversions => SimdForms.Names(SimdForms.Conversions);

    public static TheoryData<string> FloatOther => SimdForms.Names(SimdForms.FloatOther);

    public static TheoryData<string> Moves => SimdForms.Names(SimdForms.Moves);

    public static TheoryData<string> Integer => SimdForms.Names(SimdForms.Integer);

    [Theory]
    [MemberData(nameof(FloatArithmetic))]
    public void FloatArithmetic_MatchesTheHost(string form) => SimdDifferential.Check(SimdForms.Named(form), 4000);

    [Theory]
    [MemberData(nameof(Conversions))]
    public void Conversion_MatchesTheHost(string form) => SimdDifferential.Check(SimdForms.Named(form), 4000);

    [Theory]
    [MemberData(nameof(FloatOther))]
    public void FloatLogicShuffleCompareApproximation_MatchesTheHost(string form) => SimdDifferential.Check(SimdForms.Named(form), 1500);

    [Theory]
    [MemberData(nameof(Moves))]
    public void Move_MatchesTheHost(string form) => SimdDifferential.Check(SimdForms.Named(form), 800);

    [Theory]
    [MemberData(nameof(Integer))]
    public void PackedInteger_MatchesTheHost(string form) => SimdDifferential.Check(SimdForms.Named(form), 800);
}
