namespace KvmSharp.Emulator.Tests.Simd;

/// <summary>
/// The floating-point forms again with random exception masks: where the host raises #XM (caught as SIGFPE), the
/// interpreter must raise #XM with the same MXCSR flags and an unchanged destination; elsewhere everything must
/// match as in <see cref="SimdDifferentialTests"/>.
/// </summary>
public sealed class SimdExceptionDifferentialTests
{
    public static TheoryData<string> FloatingPointForms
    {
        get
        {
            var data = new TheoryData<string>();
            foreach (var form in SimdForms.FloatArithmetic.Concat(SimdForms.Conversions).Concat(SimdForms.FloatOther))
            {
                if (form.Opcode is 0x2A or 0x2C or 0x2D or 0x5A or 0x5B or 0xE6 or 0x2E or 0x2F or 0x51 or 0x58 or 0x59 or 0x5C or 0x5D or 0x5E or 0x5F or 0xC2)
                {
                    data.Add(form.Name);
                }
            }

            return data;
        }
    }

    [Theory]
    [MemberData(nameof(FloatingPointForms))]
    public void WithUnmaskedExceptions_FaultsAndFlags_MatchTheHost(string form) =>
        SimdDifferential.Check(SimdForms.Named(form), 2000, SimdValues.AnyMxcsr, catchSimdFault: true);
}
