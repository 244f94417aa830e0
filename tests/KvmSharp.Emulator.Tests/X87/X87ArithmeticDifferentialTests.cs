namespace KvmSharp.Emulator.Tests.X87;

/// <summary>
/// FADD/FMUL/FSUB(R)/FDIV(R) in every form (D8 and DC register forms, DE popping forms, m32fp, m64fp, m16int and
/// m32int operands) run natively and in the interpreter from FsCheck-generated states: all rounding and precision
/// controls, masked and unmasked exceptions, denormals, pseudo-denormals, unnormals, infinities, NaNs, empty
/// registers.
/// </summary>
public sealed class X87ArithmeticDifferentialTests : IDisposable
{
    private const int Cases = 2500;

    private readonly X87Differential _differential = new();

    public static TheoryData<string> RegisterForms()
    {
        var data = new TheoryData<string>();
        foreach (int op in new[] { 0, 1, 4, 5, 6, 7 })
        {
            foreach (int i in new[] { 0, 1, 3, 7 })
            {
                data.Add($"D8{0xC0 | (op << 3) | i:X2}");
                if (i != 0 || op < 4)
                {
                    data.Add($"DC{0xC0 | (op << 3) | i:X2}");
                }

                data.Add($"DE{0xC0 | (op << 3) | i:X2}");
            }
        }

        return data;
    }

    public static TheoryData<string, OperandKind> MemoryForms()
    {
        var data = new TheoryData<string, OperandKind>();
        foreach (int op in new[] { 0, 1, 4, 5, 6, 7 })
        {
            byte modrm = (byte)((op << 3) | 6);
            data.Add($"D8{modrm:X2}", OperandKind.Single);
            data.Add($"DC{modrm:X2}", OperandKind.Double);
            data.Add($"DA{modrm:X2}", OperandKind.Int32);
            data.Add($"DE{modrm:X2}", OperandKind.Int16);
        }

        return data;
    }

    /// <summary>Two-operand register instructions over every pair of edge values, every RC, masked and unmasked.</summary>
    [Theory]
    [InlineData("D8C1")] // FADD
    [InlineData("D8C9")] // FMUL
    [InlineData("D8E1")] // FSUB
    [InlineData("D8E9")] // FSUBR
    [InlineData("D8F1")] // FDIV
    [InlineData("D8F9")] // FDIVR
    [InlineData("D8D9")] // FCOMP
    [InlineData("DBE9")] // FUCOMI
    [InlineData("D9F8")] // FPREM
    [InlineData("D9F5")] // FPREM1
    [InlineData("D9FD")] // FSCALE
    [InlineData("D9F4")] // FXTRACT
    [InlineData("D9FA")] // FSQRT
    [InlineData("D9FC")] // FRNDINT
    public void EdgePairs_MatchTheHost(string hex) =>
        _differential.Check(Convert.FromHexString(hex), X87Generators.Inputs(OperandKind.None), 1, X87Generators.EdgePairs());

    [Theory]
    [MemberData(nameof(RegisterForms))]
    public void RegisterForm_MatchesTheHost(string hex) =>
        _differential.Check(Convert.FromHexString(hex), X87Generators.Inputs(OperandKind.None), Cases);

    [Theory]
    [MemberData(nameof(MemoryForms))]
    public void MemoryForm_MatchesTheHost(string hex, OperandKind kind) =>
        _differential.Check(Convert.FromHexString(hex), X87Generators.Inputs(kind), Cases);

    public void Dispose() => _differential.Dispose();
}
