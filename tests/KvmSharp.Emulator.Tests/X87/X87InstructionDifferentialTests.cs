namespace KvmSharp.Emulator.Tests.X87;

/// <summary>
/// Every other non-transcendental x87 instruction, run natively and in the interpreter from FsCheck-generated
/// states (see <see cref="X87ArithmeticDifferentialTests"/>): loads and stores of every memory format, constants,
/// compares (FCOM*, FUCOM*, FICOM*, FCOMI*, FTST, FXAM), FCMOVcc, FSQRT, FRNDINT, FSCALE, FXTRACT, FPREM/FPREM1,
/// sign operations, stack manipulation, and the control instructions.
/// </summary>
public sealed class X87InstructionDifferentialTests : IDisposable
{
    private const int Cases = 2500;

    private readonly X87Differential _differential = new();

    public static TheoryData<string, OperandKind> LoadsAndStores => new()
    {
        { "D906", OperandKind.Single },     // FLD m32fp
        { "DD06", OperandKind.Double },     // FLD m64fp
        { "DB2E", OperandKind.Extended },   // FLD m80fp
        { "DB06", OperandKind.Int32 },      // FILD m32int
        { "DF06", OperandKind.Int16 },      // FILD m16int
        { "DF2E", OperandKind.Int64 },      // FILD m64int
        { "DF26", OperandKind.Bcd },        // FBLD
        { "D916", OperandKind.None },       // FST m32fp
        { "D91E", OperandKind.None },       // FSTP m32fp
        { "DD16", OperandKind.None },       // FST m64fp
        { "DD1E", OperandKind.None },       // FSTP m64fp
        { "DB3E", OperandKind.None },       // FSTP m80fp
        { "DB16", OperandKind.None },       // FIST m32int
        { "DB1E", OperandKind.None },       // FISTP m32int
        { "DF16", OperandKind.None },       // FIST m16int
        { "DF1E", OperandKind.None },       // FISTP m16int
        { "DF3E", OperandKind.None },       // FISTP m64int
        { "DF36", OperandKind.None },       // FBSTP
        { "D94610", OperandKind.None },     // FLD m32fp [rsi+16]
        { "66DD5608", OperandKind.None },   // FST m64fp [rsi+8] with an ignored 66 prefix
    };

    public static TheoryData<string> RegisterInstructions()
    {
        var data = new TheoryData<string>();
        foreach (int i in new[] { 0, 1, 2, 7 })
        {
            data.Add($"D9{0xC0 + i:X2}"); // FLD ST(i)
            data.Add($"D9{0xC8 + i:X2}"); // FXCH
            data.Add($"D8{0xD0 + i:X2}"); // FCOM
            data.Add($"D8{0xD8 + i:X2}"); // FCOMP
            data.Add($"DD{0xE0 + i:X2}"); // FUCOM
            data.Add($"DD{0xE8 + i:X2}"); // FUCOMP
            data.Add($"DB{0xE8 + i:X2}"); // FUCOMI
            data.Add($"DB{0xF0 + i:X2}"); // FCOMI
            data.Add($"DF{0xE8 + i:X2}"); // FUCOMIP
            data.Add($"DF{0xF0 + i:X2}"); // FCOMIP
            data.Add($"DD{0xC0 + i:X2}"); // FFREE
            data.Add($"DF{0xC0 + i:X2}"); // FFREEP
            data.Add($"DD{0xD0 + i:X2}"); // FST ST(i)
            data.Add($"DD{0xD8 + i:X2}"); // FSTP ST(i)
            for (int cc = 0; cc < 4; cc++)
            {
                data.Add($"DA{0xC0 + (cc << 3) + i:X2}"); // FCMOVB/E/BE/U
                data.Add($"DB{0xC0 + (cc << 3) + i:X2}"); // FCMOVNB/NE/NBE/NU
            }
        }

        foreach (string hex in new[]
        {
            "DED9", "DAE9",                                         // FCOMPP, FUCOMPP
            "D9D0", "D9E0", "D9E1", "D9E4", "D9E5",                 // FNOP, FCHS, FABS, FTST, FXAM
            "D9E8", "D9E9", "D9EA", "D9EB", "D9EC", "D9ED", "D9EE", // constants
            "D9F4", "D9F5", "D9F6", "D9F7", "D9F8", "D9FA", "D9FC", "D9FD", // FXTRACT FPREM1 FDECSTP FINCSTP FPREM FSQRT FRNDINT FSCALE
            "DBE2", "DBE3", "DBE0", "DBE1", "DBE4",                 // FNCLEX, FNINIT, FNENI, FNDISI, FNSETPM
            "DFE0",                                                 // FNSTSW AX
        })
        {
            data.Add(hex);
        }

        return data;
    }

    public static TheoryData<string, OperandKind> MemoryCompares => new()
    {
        { "D816", OperandKind.Single },     // FCOM m32fp
        { "D81E", OperandKind.Single },     // FCOMP m32fp
        { "DC16", OperandKind.Double },     // FCOM m64fp
        { "DC1E", OperandKind.Double },     // FCOMP m64fp
        { "DA16", OperandKind.Int32 },      // FICOM m32int
        { "DA1E", OperandKind.Int32 },      // FICOMP m32int
        { "DE16", OperandKind.Int16 },      // FICOM m16int
        { "DE1E", OperandKind.Int16 },      // FICOMP m16int
    };

    public static TheoryData<string, OperandKind> ControlInstructions => new()
    {
        { "D92E", OperandKind.ControlWord },     // FLDCW
        { "D93E", OperandKind.None },            // FNSTCW
        { "DD3E", OperandKind.None },            // FNSTSW m16
        { "D936", OperandKind.None },            // FNSTENV (28 bytes)
        { "66D936", OperandKind.None },          // FNSTENV (14 bytes)
        { "48D936", OperandKind.None },          // FNSTENV with REX.W: still 28 bytes
        { "DD36", OperandKind.None },            // FNSAVE (108 bytes)
        { "66DD36", OperandKind.None },          // FNSAVE (94 bytes)
        { "D926", OperandKind.Environment32 },   // FLDENV
        { "66D926", OperandKind.Environment16 }, // FLDENV (14 bytes)
        { "DD26", OperandKind.Save32 },          // FRSTOR
        { "66DD26", OperandKind.Save16 },        // FRSTOR (94 bytes)
    };

    [Theory]
    [MemberData(nameof(LoadsAndStores))]
    public void LoadOrStore_MatchesTheHost(string hex, OperandKind kind) =>
        _differential.Check(Convert.FromHexString(hex), X87Generators.Inputs(kind, fullStackOften: true), Cases);

    [Theory]
    [MemberData(nameof(RegisterInstructions))]
    public void RegisterInstruction_MatchesTheHost(string hex) =>
        _differential.Check(Convert.FromHexString(hex), X87Generators.Inputs(OperandKind.None, fullStackOften: true), Cases);

    [Theory]
    [MemberData(nameof(MemoryCompares))]
    public void MemoryCompare_MatchesTheHost(string hex, OperandKind kind) =>
        _differential.Check(Convert.FromHexString(hex), X87Generators.Inputs(kind), Cases);

    [Theory]
    [MemberData(nameof(ControlInstructions))]
    public void ControlInstruction_MatchesTheHost(string hex, OperandKind kind) =>
        _differential.Check(Convert.FromHexString(hex), X87Generators.Inputs(kind), Cases);

    public void Dispose() => _differential.Dispose();
}
