namespace KvmSharp.Emulator.Tests.X87;

/// <summary>
/// FSIN, FCOS, FSINCOS, FPTAN, FPATAN, F2XM1, FYL2X and FYL2XP1 run natively and in the interpreter. Everything is
/// compared exactly (special operands, stack effects, C2, flags, tags) except finite results, which may differ by
/// one unit in the last place (and C1 with them): the hardware's approximations are not correctly rounded.
/// </summary>
public sealed class X87TranscendentalDifferentialTests : IDisposable
{
    private const int Cases = 4000;

    private readonly X87Differential _differential = new() { UlpTolerance = 1 };

    public static TheoryData<string> Instructions => new()
    {
        "D9FE", // FSIN
        "D9FF", // FCOS
        "D9FB", // FSINCOS
        "D9F2", // FPTAN
        "D9F3", // FPATAN
        "D9F0", // F2XM1
        "D9F1", // FYL2X
        "D9F9", // FYL2XP1
    };

    [Theory]
    [MemberData(nameof(Instructions))]
    public void Transcendental_MatchesTheHost_WithinOneUlp(string hex) =>
        _differential.Check(Convert.FromHexString(hex), X87Generators.Inputs(OperandKind.None), Cases);

    [Theory]
    [MemberData(nameof(Instructions))]
    public void Transcendental_OnEveryPairOfEdgeValues_MatchesTheHost_WithinOneUlp(string hex) =>
        _differential.Check(Convert.FromHexString(hex), X87Generators.Inputs(OperandKind.None), 1, X87Generators.EdgePairs());

    public void Dispose() => _differential.Dispose();
}
