using KvmSharp.Emulator.Execution;

namespace KvmSharp.Emulator.Tests.Execution;

/// <summary>Exact-value tests for the parts of <see cref="Alu"/> the host cannot check directly.</summary>
public class AluTests(ITestOutputHelper output)
{
    private const ulong Clean = Flags.Reserved1;

    [Fact]
    public void FlagBits_AreTheArchitecturalPositions()
    {
        Assert.Equal(0x001UL, Flags.CF);
        Assert.Equal(0x004UL, Flags.PF);
        Assert.Equal(0x010UL, Flags.AF);
        Assert.Equal(0x040UL, Flags.ZF);
        Assert.Equal(0x080UL, Flags.SF);
        Assert.Equal(0x400UL, Flags.DF);
        Assert.Equal(0x800UL, Flags.OF);
        Assert.Equal(0x8D5UL, Flags.Arithmetic);
    }

    [Theory]
    [InlineData(0x00UL, true)]
    [InlineData(0x01UL, false)]
    [InlineData(0x03UL, true)]
    [InlineData(0xFFUL, true)]
    [InlineData(0x7FUL, false)]
    [InlineData(0x1_00UL, true)] // only the low byte counts
    [InlineData(0x1_01UL, false)]
    public void Parity_CountsTheLowByteOnly(ulong value, bool even) => Assert.Equal(even, Alu.Parity(value));

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(4)]
    [InlineData(8)]
    public void Idiv_MinByMinusOne_IsADivideError_ForEverySize(int size)
    {
        ulong min = Alu.SignMask(size);
        ulong minusOne = Alu.SizeMask(size);
        // The dividend is the sign extension of MIN into the high half.
        var result = Alu.Idiv(minusOne, min, minusOne, size, Clean);
        Assert.True(result.DivideError);
        Assert.Equal(0UL, result.Quotient);
        // MIN / 1 and (+2^(n-1)) / -1 = MIN fit; (+2^(n-1)) / 1 does not; MAX / -1 = MIN + 1.
        Assert.Equal(min, Alu.Idiv(minusOne, min, 1, size, Clean).Quotient);
        Assert.Equal(min, Alu.Idiv(0, min, minusOne, size, Clean).Quotient);
        Assert.True(Alu.Idiv(0, min, 1, size, Clean).DivideError);
        Assert.Equal(min + 1, Alu.Idiv(0, min - 1, minusOne, size, Clean).Quotient);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(4)]
    [InlineData(8)]
    public void Division_ByZero_AndAQuotientTooWide_AreDivideErrors(int size)
    {
        Assert.True(Alu.Div(0, 1, 0, size, Clean).DivideError);
        Assert.True(Alu.Idiv(0, 1, 0, size, Clean).DivideError);
        Assert.True(Alu.Div(1, 0, 1, size, Clean).DivideError);
        var fits = Alu.Div(1, 0, 2, size, Clean);
        Assert.False(fits.DivideError);
        Assert.Equal(Alu.SignMask(size), fits.Quotient);
        Assert.Equal(0UL, fits.Remainder);
        // Bits above the operand size are ignored.
        ulong garbage = size == 8 ? 0 : ~Alu.SizeMask(size);
        Assert.Equal(Alu.Div(0, 100, 7, size, Clean), Alu.Div(garbage, garbage | 100, garbage | 7, size, Clean));
    }

    [Theory]
    [InlineData(0x0000_0000UL, 4, 0L)]
    [InlineData(31UL, 4, 0L)]
    [InlineData(32UL, 4, 4L)]
    [InlineData(100UL, 4, 12L)]
    [InlineData(0xFFFF_FFFFUL, 4, -4L)]          // bit -1: the last bit of the dword before
    [InlineData(0xFFFF_FFE0UL, 4, -4L)]          // bit -32
    [InlineData(0xFFFF_FFDFUL, 4, -8L)]          // bit -33
    [InlineData(0xFFFFUL, 2, -2L)]               // bit -1 with a 16-bit offset
    [InlineData(0x8000UL, 2, -4096L)]            // bit -32768
    [InlineData(0x10UL, 2, 2L)]
    [InlineData(64UL, 8, 8L)]
    [InlineData(0x8000_0000_0000_0000UL, 8, -0x1000_0000_0000_0000L)]
    public void BitStringDisplacement_IsTheSignedUnitOffsetInBytes(ulong offset, int size, long displacement)
    {
        Assert.Equal(displacement, Alu.BitStringDisplacement(offset, size));
        // The bit within the unit is offset mod width, which Bt applies: bit -1 is the unit's top bit.
        ulong topBitSet = Alu.SignMask(size);
        if ((offset & (ulong)(size * 8 - 1)) == (ulong)(size * 8 - 1))
        {
            Assert.Equal(Flags.CF, Alu.Bt(topBitSet, offset, size, Clean) & Flags.CF);
        }
    }

    [Theory]
    [InlineData(0x80UL, 2, 0xFF80UL, 0xFFFFUL)]
    [InlineData(0x7FUL, 2, 0x007FUL, 0UL)]
    [InlineData(0x8000UL, 4, 0xFFFF_8000UL, 0xFFFF_FFFFUL)]
    [InlineData(0x8000_0000UL, 8, 0xFFFF_FFFF_8000_0000UL, 0xFFFF_FFFF_FFFF_FFFFUL)]
    [InlineData(0x1234_7FFF_FFFFUL, 8, 0x7FFF_FFFFUL, 0UL)]
    public void SignExtensionHelpers_MatchCbwAndCwdFamilies(ulong accumulator, int size, ulong extended, ulong signOfExtended)
    {
        Assert.Equal(extended, Alu.SignExtendAccumulator(accumulator, size));
        Assert.Equal(signOfExtended, Alu.SignOfAccumulator(extended, size));
    }

    [Fact]
    public void ZeroCounts_ChangeNoFlags_AndKeepTheOperand()
    {
        const ulong Incoming = Flags.Arithmetic | Flags.Reserved1 | Flags.DF;
        Assert.Equal(new AluResult(0x34, Incoming), Alu.Shl(0x1234, 0x20, 1, Incoming)); // 0x20 & 0x1F = 0
        Assert.Equal(new AluResult(0x1234, Incoming), Alu.Rcr(0x1234, 0x40, 8, Incoming));
        Assert.Equal(new AluResult(0x1234, Incoming), Alu.Shld(0x1234, 0xFFFF, 0, 2, Incoming));
        Assert.Equal(new AluResult(0x12, Incoming), Alu.Rcl(0x12, 9, 1, Incoming)); // 9 mod 9 = 0
    }

    [Fact]
    public void IncAndDec_PreserveCarry_AndOtherBitsPassThrough()
    {
        const ulong Incoming = Flags.CF | Flags.DF | Flags.IF | Flags.Reserved1;
        var inc = Alu.Inc(0xFF, 1, Incoming);
        Assert.Equal(0UL, inc.Value);
        Assert.Equal(Incoming | Flags.ZF | Flags.PF | Flags.AF, inc.RFlags);
        var dec = Alu.Dec(0, 1, Flags.Reserved1);
        Assert.Equal(0xFFUL, dec.Value);
        Assert.Equal(Flags.Reserved1 | Flags.SF | Flags.PF | Flags.AF, dec.RFlags);
    }

    [Fact]
    public void HotFunctions_DoNotAllocate()
    {
        ulong flags = Clean;
        ulong sink = 0;
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (ulong i = 1; i < 2000; i++)
        {
            var add = Alu.Adc(i * 0x9E37_79B9, i, 8, flags);
            var rcl = Alu.Rcl(add.Value, i, 2, add.RFlags);
            var shld = Alu.Shld(rcl.Value, i, i, 2, rcl.RFlags);
            var product = Alu.Imul(shld.Value, i, 8, shld.RFlags);
            var quotient = Alu.Idiv(product.High, product.Low, i, 8, product.RFlags);
            var scan = Alu.Bsr(0, quotient.Quotient | 1, 4, quotient.RFlags);
            var aad = Alu.Aad(scan.Value, 10, scan.RFlags);
            flags = aad.RFlags;
            sink ^= aad.Value ^ quotient.Remainder;
        }

        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        output.WriteLine($"checksum {sink:X}");
        Assert.Equal(0, allocated);
    }
}
