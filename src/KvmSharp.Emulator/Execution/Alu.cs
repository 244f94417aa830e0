// The integer ALU of the software CPU.
//
// "Exact flags" means: for every operation here, the result and all six arithmetic flags (CF PF AF
// ZF SF OF) equal what the host CPU produces for the same operands, operand size and incoming RFLAGS,
// including the flags the SDM calls "undefined". Non-arithmetic RFLAGS bits pass through untouched.
//
// Undefined flags differ between vendors and sometimes between generations, so "exact" is relative
// to a host. The differential tests in tests/KvmSharp.Emulator.Tests/Execution run every instruction
// natively (64-bit stubs; compatibility-mode stubs for the BCD instructions), compare, and print the
// host's model name. Host used: GenuineIntel "Intel(R) Xeon(R) Processor", family 6 model 143
// (Sapphire Rapids) under KVM. What that host does where the SDM says "undefined":
//   AND/OR/XOR/TEST, shifts, SHLD/SHRD: AF = 0.
//   SHL/SAL/SHR/SAR/ROL/ROR/RCL/RCR/SHLD/SHRD by more than 1: OF is the OF of the first one-bit step.
//   RCL/RCR whose count reduces to 0 modulo 9 (bytes) or 17 (words): no flag changes at all.
//   SHLD/SHRD of 16-bit operands by 17-31: the 48-bit value dest:src:dest is shifted.
//   MUL/IMUL: SF and PF from the low half, ZF = AF = 0.  DIV/IDIV: all flags unchanged.
//   BT/BTS/BTR/BTC: only CF changes.  TZCNT/LZCNT: OF SF AF PF = 0.
//   BSF/BSR: CF OF SF AF = 0; PF from the index, or PF = 1 with ZF when the source is 0.
//   AAM: OF = AF = CF = 0.  AAD: all six flags as the byte ADD of AL and AH * imm8.  DAA/DAS: OF = 0.
//   AAA/AAS: OF = SF = 0, ZF and PF from the final AL (after the high nibble is cleared).
// The software CPU keeps these results on every host (a guest sees one CPU model). An AMD host
// differs in several of them (measured on an AMD EPYC host: AF after logic ops and double shifts, OF
// of multi-bit rotates, the flags after DIV/IDIV and LZCNT/TZCNT, ...); there the differential tests
// compare only the flags the manuals define (tests/KvmSharp.Emulator.Tests/HostCpu.cs).
//
// Everything is static, allocation-free, and takes operands as ulong (only the low `size` bytes are
// read), an operand size of 1, 2, 4 or 8 bytes, and the incoming RFLAGS.
using System.Numerics;
using System.Runtime.CompilerServices;

namespace KvmSharp.Emulator.Execution;

/// <summary>Integer ALU operations with host-exact RFLAGS.</summary>
public static class Alu
{
    private const ulong CarryOverflow = Flags.CF | Flags.OF;

    // ---------------------------------------------------------------- helpers

    /// <summary>All ones in the low <paramref name="size"/> bytes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong SizeMask(int size) => ulong.MaxValue >> (64 - (size << 3));

    /// <summary>The operand's sign bit: 0x80, 0x8000, 0x8000_0000 or 0x8000_0000_0000_0000.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong SignMask(int size) => 1UL << ((size << 3) - 1);

    /// <summary>Sign-extends the low <paramref name="size"/> bytes of <paramref name="value"/> to 64 bits.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static long SignExtend(ulong value, int size)
    {
        int unused = 64 - (size << 3);
        return (long)(value << unused) >> unused;
    }

    /// <summary>PF for a result: set when its low byte has an even number of one bits.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong ParityFlag(ulong result) => (ulong)(~BitOperations.PopCount(result & 0xFF) & 1) << Flags.ParityBit;

    /// <summary>True when the low byte of <paramref name="result"/> has even parity.</summary>
    public static bool Parity(ulong result) => ParityFlag(result) != 0;

    /// <summary>SF, ZF and PF of a result already truncated to <paramref name="size"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong SignZeroParity(ulong result, int size) =>
        (((result >> ((size << 3) - 1)) & 1) << Flags.SignBit)
        | (result == 0 ? Flags.ZF : 0)
        | ParityFlag(result);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong TopBit(ulong vector, int size) => (vector >> ((size << 3) - 1)) & 1;

    /// <summary>
    /// OF of a shift or rotate by two or more, as the host computes it: the OF of the first one-bit
    /// step applied to the original operand. For a count of 1 that is the SDM's definition.
    /// This helper gives MSB(a) ^ (MSB-1)(a): the first step's OF for SHL, ROL, RCL and SHLD.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong FirstStepLeftOverflow(ulong a, int size) => ((a >> ((size << 3) - 2)) ^ (a >> ((size << 3) - 1))) & 1;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong Merge(ulong rflags, ulong written, ulong bits) => (rflags & ~written) | bits;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong FlagIf(bool condition, ulong flag) => condition ? flag : 0;

    /// <summary>The shift/rotate count mask: 0x3F for 64-bit operands, 0x1F otherwise.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int ShiftCountMask(int size) => (size << 2) | 0x1F;

    // ---------------------------------------------------------------- add / subtract

    /// <summary>ADD: all six flags.</summary>
    public static AluResult Add(ulong a, ulong b, int size, ulong rflags) => AddWithCarry(a, b, 0, size, rflags, Flags.Arithmetic);

    /// <summary>ADC: ADD plus the incoming CF.</summary>
    public static AluResult Adc(ulong a, ulong b, int size, ulong rflags) => AddWithCarry(a, b, rflags & Flags.CF, size, rflags, Flags.Arithmetic);

    /// <summary>SUB: all six flags.</summary>
    public static AluResult Sub(ulong a, ulong b, int size, ulong rflags) => SubWithBorrow(a, b, 0, size, rflags, Flags.Arithmetic);

    /// <summary>SBB: SUB minus the incoming CF.</summary>
    public static AluResult Sbb(ulong a, ulong b, int size, ulong rflags) => SubWithBorrow(a, b, rflags & Flags.CF, size, rflags, Flags.Arithmetic);

    /// <summary>CMP: the flags of SUB; returns RFLAGS.</summary>
    public static ulong Cmp(ulong a, ulong b, int size, ulong rflags) => SubWithBorrow(a, b, 0, size, rflags, Flags.Arithmetic).RFlags;

    /// <summary>INC: like ADD 1, but CF is preserved.</summary>
    public static AluResult Inc(ulong a, int size, ulong rflags) => AddWithCarry(a, 1, 0, size, rflags, Flags.Arithmetic & ~Flags.CF);

    /// <summary>DEC: like SUB 1, but CF is preserved.</summary>
    public static AluResult Dec(ulong a, int size, ulong rflags) => SubWithBorrow(a, 1, 0, size, rflags, Flags.Arithmetic & ~Flags.CF);

    /// <summary>NEG: 0 - a; CF is set unless the operand is 0.</summary>
    public static AluResult Neg(ulong a, int size, ulong rflags) => SubWithBorrow(0, a, 0, size, rflags, Flags.Arithmetic);

    private static AluResult AddWithCarry(ulong a, ulong b, ulong carryIn, int size, ulong rflags, ulong written)
    {
        ulong mask = SizeMask(size);
        a &= mask;
        b &= mask;
        ulong result = (a + b + carryIn) & mask;
        // Carry out of each bit position: majority(a, b, carry in), where carry in = a ^ b ^ result.
        ulong carries = (a & b) | ((a ^ b) & ~result);
        ulong overflow = (a ^ result) & (b ^ result);
        ulong flags = (TopBit(carries, size) << Flags.CarryBit)
            | ((a ^ b ^ result) & Flags.AF)
            | (TopBit(overflow, size) << Flags.OverflowBit)
            | SignZeroParity(result, size);
        return new AluResult(result, Merge(rflags, written, flags & written));
    }

    private static AluResult SubWithBorrow(ulong a, ulong b, ulong borrowIn, int size, ulong rflags, ulong written)
    {
        ulong mask = SizeMask(size);
        a &= mask;
        b &= mask;
        ulong result = (a - b - borrowIn) & mask;
        ulong borrows = (~a & b) | (~(a ^ b) & result);
        ulong overflow = (a ^ b) & (a ^ result);
        ulong flags = (TopBit(borrows, size) << Flags.CarryBit)
            | ((a ^ b ^ result) & Flags.AF)
            | (TopBit(overflow, size) << Flags.OverflowBit)
            | SignZeroParity(result, size);
        return new AluResult(result, Merge(rflags, written, flags & written));
    }

    // ---------------------------------------------------------------- logic

    /// <summary>AND: CF = OF = 0; AF (undefined) is 0 on the host.</summary>
    public static AluResult And(ulong a, ulong b, int size, ulong rflags) => Logic(a & b, size, rflags);

    /// <summary>OR: CF = OF = 0; AF (undefined) is 0 on the host.</summary>
    public static AluResult Or(ulong a, ulong b, int size, ulong rflags) => Logic(a | b, size, rflags);

    /// <summary>XOR: CF = OF = 0; AF (undefined) is 0 on the host.</summary>
    public static AluResult Xor(ulong a, ulong b, int size, ulong rflags) => Logic(a ^ b, size, rflags);

    /// <summary>TEST: the flags of AND; returns RFLAGS.</summary>
    public static ulong Test(ulong a, ulong b, int size, ulong rflags) => Logic(a & b, size, rflags).RFlags;

    /// <summary>NOT: no flags change.</summary>
    public static ulong Not(ulong a, int size) => ~a & SizeMask(size);

    private static AluResult Logic(ulong result, int size, ulong rflags)
    {
        result &= SizeMask(size);
        return new AluResult(result, Merge(rflags, Flags.Arithmetic, SignZeroParity(result, size)));
    }

    // ---------------------------------------------------------------- shifts

    /// <summary>
    /// SHL/SAL. The count is masked to 5 bits (6 for 64-bit operands); a masked count of 0 changes no
    /// flags. CF is the last bit shifted out (0 once the count passes the width). OF is defined for a
    /// count of 1 as MSB(result) ^ CF; for larger counts the host gives the first step's OF,
    /// MSB(a) ^ (MSB-1)(a). AF (undefined) is 0 on the host.
    /// </summary>
    public static AluResult Shl(ulong a, ulong count, int size, ulong rflags)
    {
        int n = (int)count & ShiftCountMask(size);
        if (n == 0)
        {
            return new AluResult(a & SizeMask(size), rflags);
        }

        int bits = size << 3;
        a &= SizeMask(size);
        // For 8/16-bit operands n can exceed the width; a << (n - 1) still fits in 64 bits (16 + 30).
        ulong carry = ((a << (n - 1)) >> (bits - 1)) & 1;
        ulong result = (a << n) & SizeMask(size);
        ulong flags = carry | (FirstStepLeftOverflow(a, size) << Flags.OverflowBit) | SignZeroParity(result, size);
        return new AluResult(result, Merge(rflags, Flags.Arithmetic, flags));
    }

    /// <summary>SAL (including the undocumented /6 encoding the decoder reports as Sal): identical to <see cref="Shl"/>.</summary>
    public static AluResult Sal(ulong a, ulong count, int size, ulong rflags) => Shl(a, count, size, rflags);

    /// <summary>
    /// SHR. CF is the last bit shifted out; OF = MSB of the original operand for every count (the
    /// SDM defines it for count 1 only); AF (undefined) is 0 on the host.
    /// </summary>
    public static AluResult Shr(ulong a, ulong count, int size, ulong rflags)
    {
        int n = (int)count & ShiftCountMask(size);
        if (n == 0)
        {
            return new AluResult(a & SizeMask(size), rflags);
        }

        a &= SizeMask(size);
        ulong carry = (a >> (n - 1)) & 1;
        ulong result = a >> n;
        ulong flags = carry | (TopBit(a, size) << Flags.OverflowBit) | SignZeroParity(result, size);
        return new AluResult(result, Merge(rflags, Flags.Arithmetic, flags));
    }

    /// <summary>SAR. CF is the last bit shifted out (the sign once the count passes the width); OF = 0.</summary>
    public static AluResult Sar(ulong a, ulong count, int size, ulong rflags)
    {
        int n = (int)count & ShiftCountMask(size);
        if (n == 0)
        {
            return new AluResult(a & SizeMask(size), rflags);
        }

        long signed = SignExtend(a, size);
        ulong carry = (ulong)(signed >> (n - 1)) & 1;
        ulong result = (ulong)(signed >> n) & SizeMask(size);
        ulong flags = carry | SignZeroParity(result, size);
        return new AluResult(result, Merge(rflags, Flags.Arithmetic, flags));
    }

    // ---------------------------------------------------------------- rotates

    /// <summary>
    /// ROL. Only CF and OF change, and only when the masked count is non-zero (even if it is a multiple
    /// of the width). CF = LSB(result); OF is the first one-bit step's, MSB(a) ^ (MSB-1)(a).
    /// </summary>
    public static AluResult Rol(ulong a, ulong count, int size, ulong rflags)
    {
        int n = (int)count & ShiftCountMask(size);
        ulong mask = SizeMask(size);
        a &= mask;
        if (n == 0)
        {
            return new AluResult(a, rflags);
        }

        int bits = size << 3;
        int r = n & (bits - 1);
        ulong result = ((a << r) | (a >> ((bits - r) & 63) & (r == 0 ? 0 : ulong.MaxValue))) & mask;
        ulong carry = result & 1;
        ulong flags = carry | (FirstStepLeftOverflow(a, size) << Flags.OverflowBit);
        return new AluResult(result, Merge(rflags, CarryOverflow, flags));
    }

    /// <summary>ROR. CF = MSB(result); OF is the first one-bit step's, LSB(a) ^ MSB(a).</summary>
    public static AluResult Ror(ulong a, ulong count, int size, ulong rflags)
    {
        int n = (int)count & ShiftCountMask(size);
        ulong mask = SizeMask(size);
        a &= mask;
        if (n == 0)
        {
            return new AluResult(a, rflags);
        }

        int bits = size << 3;
        int r = n & (bits - 1);
        ulong result = ((a >> r) | (a << ((bits - r) & 63) & (r == 0 ? 0 : ulong.MaxValue))) & mask;
        ulong carry = TopBit(result, size);
        ulong flags = carry | (((a ^ TopBit(a, size)) & 1) << Flags.OverflowBit);
        return new AluResult(result, Merge(rflags, CarryOverflow, flags));
    }

    /// <summary>
    /// RCL: rotates the (width + 1)-bit value CF:operand. The masked count is reduced modulo 9 for
    /// bytes and 17 for words; when that leaves 0 (a byte rotated by 9 or 18, a word by 17) no flag
    /// changes, not even OF. Otherwise OF is the first one-bit step's, MSB(a) ^ (MSB-1)(a).
    /// </summary>
    public static AluResult Rcl(ulong a, ulong count, int size, ulong rflags)
    {
        int n = (int)count & ShiftCountMask(size);
        ulong mask = SizeMask(size);
        a &= mask;
        if (n == 0)
        {
            return new AluResult(a, rflags);
        }

        int bits = size << 3;
        n %= bits + 1;
        if (n == 0)
        {
            return new AluResult(a, rflags);
        }

        UInt128 wide = ((UInt128)(rflags & Flags.CF) << bits) | a;
        UInt128 wideMask = (UInt128.One << (bits + 1)) - 1;
        UInt128 rotated = ((wide << n) | (wide >> (bits + 1 - n))) & wideMask;
        ulong result = (ulong)rotated & mask;
        ulong carry = (ulong)(rotated >> bits) & 1;
        ulong flags = carry | (FirstStepLeftOverflow(a, size) << Flags.OverflowBit);
        return new AluResult(result, Merge(rflags, CarryOverflow, flags));
    }

    /// <summary>RCR: the mirror of <see cref="Rcl"/>; OF is the first one-bit step's, CF(before) ^ MSB(a).</summary>
    public static AluResult Rcr(ulong a, ulong count, int size, ulong rflags)
    {
        int n = (int)count & ShiftCountMask(size);
        ulong mask = SizeMask(size);
        a &= mask;
        if (n == 0)
        {
            return new AluResult(a, rflags);
        }

        int bits = size << 3;
        n %= bits + 1;
        if (n == 0)
        {
            return new AluResult(a, rflags);
        }

        UInt128 wide = ((UInt128)(rflags & Flags.CF) << bits) | a;
        UInt128 wideMask = (UInt128.One << (bits + 1)) - 1;
        UInt128 rotated = ((wide >> n) | (wide << (bits + 1 - n))) & wideMask;
        ulong result = (ulong)rotated & mask;
        ulong carry = (ulong)(rotated >> bits) & 1;
        ulong flags = carry | (((rflags & Flags.CF) ^ TopBit(a, size)) << Flags.OverflowBit);
        return new AluResult(result, Merge(rflags, CarryOverflow, flags));
    }

    // ---------------------------------------------------------------- double shifts

    /// <summary>
    /// SHLD dest, src, count (16/32/64-bit). The count is masked to 5 (6) bits; 0 changes nothing.
    /// For 16-bit operands with a count above 16 the host shifts the 48-bit value dest:src:dest.
    /// CF is the last bit shifted out; OF is the first one-bit step's, MSB(dest) ^ (MSB-1)(dest); AF is 0.
    /// </summary>
    public static AluResult Shld(ulong dest, ulong src, ulong count, int size, ulong rflags)
    {
        int n = (int)count & ShiftCountMask(size);
        ulong mask = SizeMask(size);
        dest &= mask;
        src &= mask;
        if (n == 0)
        {
            return new AluResult(dest, rflags);
        }

        ulong result;
        ulong carry;
        if (size == 8)
        {
            result = (dest << n) | (src >> (64 - n));
            carry = (dest >> (64 - n)) & 1;
        }
        else
        {
            // dest:src:dest as a 48-bit (16-bit operands) or dest:src as a 64-bit value; only the
            // 16-bit case can have a count past the width, and then the third copy of dest shows.
            int bits = size << 3;
            UInt128 wide = ((UInt128)dest << (2 * bits)) | ((UInt128)src << bits) | dest;
            result = (ulong)(wide >> (2 * bits - n)) & mask;
            carry = (ulong)(wide >> (3 * bits - n)) & 1;
        }

        ulong flags = carry | (FirstStepLeftOverflow(dest, size) << Flags.OverflowBit) | SignZeroParity(result, size);
        return new AluResult(result, Merge(rflags, Flags.Arithmetic, flags));
    }

    /// <summary>SHRD dest, src, count: the mirror of <see cref="Shld"/>; OF is the first one-bit step's, LSB(src) ^ MSB(dest).</summary>
    /// <remarks>For 16-bit operands with a count above 16 the host shifts the 48-bit value dest:src:dest right.</remarks>
    public static AluResult Shrd(ulong dest, ulong src, ulong count, int size, ulong rflags)
    {
        int n = (int)count & ShiftCountMask(size);
        ulong mask = SizeMask(size);
        dest &= mask;
        src &= mask;
        if (n == 0)
        {
            return new AluResult(dest, rflags);
        }

        ulong result;
        ulong carry;
        if (size == 8)
        {
            result = (dest >> n) | (src << (64 - n));
            carry = (dest >> (n - 1)) & 1;
        }
        else
        {
            int bits = size << 3;
            UInt128 wide = ((UInt128)dest << (2 * bits)) | ((UInt128)src << bits) | dest;
            result = (ulong)(wide >> n) & mask;
            carry = (ulong)(wide >> (n - 1)) & 1;
        }

        ulong flags = carry | (((src ^ TopBit(dest, size)) & 1) << Flags.OverflowBit) | SignZeroParity(result, size);
        return new AluResult(result, Merge(rflags, Flags.Arithmetic, flags));
    }

    // ---------------------------------------------------------------- multiply

    /// <summary>
    /// MUL (one operand): unsigned a * b; CF = OF = (high half != 0). SF, ZF, AF, PF are undefined;
    /// see <see cref="MultiplyFlags"/> for what the host does.
    /// </summary>
    public static MulResult Mul(ulong a, ulong b, int size, ulong rflags)
    {
        ulong mask = SizeMask(size);
        a &= mask;
        b &= mask;
        ulong low;
        ulong high;
        if (size == 8)
        {
            high = Math.BigMul(a, b, out low);
        }
        else
        {
            ulong product = a * b;
            low = product & mask;
            high = (product >> (size << 3)) & mask;
        }

        return new MulResult(low, high, MultiplyFlags(low, high != 0, size, rflags));
    }

    /// <summary>IMUL (one operand): signed a * b; CF = OF = (the high half is not the sign extension of the low).</summary>
    public static MulResult Imul(ulong a, ulong b, int size, ulong rflags)
    {
        ulong mask = SizeMask(size);
        long sa = SignExtend(a, size);
        long sb = SignExtend(b, size);
        ulong low;
        ulong high;
        bool overflow;
        if (size == 8)
        {
            long signedHigh = Math.BigMul(sa, sb, out long signedLow);
            low = (ulong)signedLow;
            high = (ulong)signedHigh;
            overflow = signedHigh != (signedLow >> 63);
        }
        else
        {
            long product = sa * sb;
            low = (ulong)product & mask;
            high = (ulong)(product >> (size << 3)) & mask;
            overflow = product != SignExtend(low, size);
        }

        return new MulResult(low, high, MultiplyFlags(low, overflow, size, rflags));
    }

    /// <summary>
    /// IMUL r, r/m and IMUL r, r/m, imm (16/32/64-bit): the truncated signed product. For the
    /// three-operand form pass the immediate sign-extended to the operand size.
    /// </summary>
    public static AluResult ImulTruncated(ulong a, ulong b, int size, ulong rflags)
    {
        var product = Imul(a, b, size, rflags);
        return new AluResult(product.Low, product.RFlags);
    }

    /// <summary>
    /// Flags after MUL/IMUL: CF = OF = overflow. The undefined ones follow the host: SF and PF from
    /// the low half, ZF and AF cleared.
    /// </summary>
    private static ulong MultiplyFlags(ulong low, bool overflow, int size, ulong rflags)
    {
        ulong flags = FlagIf(overflow, CarryOverflow)
            | (TopBit(low, size) << Flags.SignBit)
            | ParityFlag(low);
        return Merge(rflags, Flags.Arithmetic, flags);
    }

    // ---------------------------------------------------------------- divide

    /// <summary>
    /// DIV: the unsigned (2 * size)-byte dividend high:low (AH:AL, DX:AX, EDX:EAX, RDX:RAX) divided by
    /// <paramref name="divisor"/>. #DE on a zero divisor or a quotient that does not fit. The flags
    /// are undefined; the host leaves them unchanged.
    /// </summary>
    public static DivResult Div(ulong high, ulong low, ulong divisor, int size, ulong rflags)
    {
        ulong mask = SizeMask(size);
        high &= mask;
        low &= mask;
        divisor &= mask;
        if (divisor == 0 || high >= divisor)
        {
            // high >= divisor is exactly "the quotient needs more than size bytes".
            return default(DivResult) with { DivideError = true };
        }

        ulong quotient;
        ulong remainder;
        if (size == 8)
        {
            quotient = DivideUnsigned128(high, low, divisor, out remainder);
        }
        else
        {
            ulong dividend = (high << (size << 3)) | low;
            (quotient, remainder) = Math.DivRem(dividend, divisor);
        }

        return new DivResult(quotient, remainder, DivideFlags(rflags), false);
    }

    /// <summary>
    /// IDIV: signed division, quotient truncated toward zero, remainder with the dividend's sign. #DE
    /// on a zero divisor or a quotient outside the signed range (including MIN / -1).
    /// </summary>
    public static DivResult Idiv(ulong high, ulong low, ulong divisor, int size, ulong rflags)
    {
        ulong mask = SizeMask(size);
        long signedDivisor = SignExtend(divisor, size);
        if (signedDivisor == 0)
        {
            return default(DivResult) with { DivideError = true };
        }

        int bits = size << 3;
        Int128 dividend = size == 8
            ? (Int128)(((UInt128)high << 64) | low)
            : (Int128)(long)((SignExtend(high, size) << bits) | (long)(low & mask));
        // Int128 division itself overflows only for Int128.MinValue / -1 (a 64-bit IDIV of
        // RDX:RAX = 2^127 by -1); every other quotient overflow is caught by the range check below.
        if (signedDivisor == -1 && dividend == Int128.MinValue)
        {
            return default(DivResult) with { DivideError = true };
        }

        Int128 quotient = Int128.DivRem(dividend, signedDivisor).Quotient;
        Int128 remainder = dividend - (quotient * signedDivisor);
        Int128 limit = Int128.One << (bits - 1);
        if (quotient >= limit || quotient < -limit)
        {
            return default(DivResult) with { DivideError = true };
        }

        return new DivResult((ulong)quotient & mask, (ulong)remainder & mask, DivideFlags(rflags), false);
    }

    private static ulong DivideUnsigned128(ulong high, ulong low, ulong divisor, out ulong remainder)
    {
        UInt128 dividend = ((UInt128)high << 64) | low;
        UInt128 quotient = dividend / divisor;
        remainder = (ulong)(dividend - (quotient * divisor));
        return (ulong)quotient;
    }

    /// <summary>Flags after a successful DIV/IDIV (all undefined by the SDM): see the remarks of <see cref="Div"/>.</summary>
    private static ulong DivideFlags(ulong rflags) => rflags;

    // ---------------------------------------------------------------- bit test

    /// <summary>BT with a register bit offset (taken modulo the width). CF = the bit; ZF is unchanged.</summary>
    public static ulong Bt(ulong value, ulong bitOffset, int size, ulong rflags) =>
        BitTestFlags(value, bitOffset, size, rflags);

    /// <summary>BTS: BT, then set the bit.</summary>
    public static AluResult Bts(ulong value, ulong bitOffset, int size, ulong rflags) =>
        new((value | BitMask(bitOffset, size)) & SizeMask(size), BitTestFlags(value, bitOffset, size, rflags));

    /// <summary>BTR: BT, then clear the bit.</summary>
    public static AluResult Btr(ulong value, ulong bitOffset, int size, ulong rflags) =>
        new(value & ~BitMask(bitOffset, size) & SizeMask(size), BitTestFlags(value, bitOffset, size, rflags));

    /// <summary>BTC: BT, then complement the bit.</summary>
    public static AluResult Btc(ulong value, ulong bitOffset, int size, ulong rflags) =>
        new((value ^ BitMask(bitOffset, size)) & SizeMask(size), BitTestFlags(value, bitOffset, size, rflags));

    /// <summary>
    /// For BT/BTS/BTR/BTC with a memory operand and a register bit offset: the signed byte
    /// displacement from the operand's effective address to the operand-size unit that holds the
    /// bit. The bit within that unit is then <c>bitOffset % (size * 8)</c>, which every Bt* function
    /// applies. (Immediate offsets are masked to the width and have no displacement.)
    /// </summary>
    public static long BitStringDisplacement(ulong bitOffset, int size)
    {
        long signedOffset = SignExtend(bitOffset, size);
        int unitShift = BitOperations.Log2((uint)size) + 3;
        return (signedOffset >> unitShift) * size;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong BitMask(ulong bitOffset, int size) => 1UL << (int)(bitOffset & (ulong)((size << 3) - 1));

    /// <summary>CF = the tested bit; OF, SF, AF, PF are undefined and the host leaves them unchanged.</summary>
    private static ulong BitTestFlags(ulong value, ulong bitOffset, int size, ulong rflags)
    {
        ulong bit = (value >> (int)(bitOffset & (ulong)((size << 3) - 1))) & 1;
        return Merge(rflags, Flags.CF, bit);
    }

    // ---------------------------------------------------------------- bit scan / count

    /// <summary>
    /// BSF dest, src: the index of the lowest set bit. When src is 0, ZF is set and the result is
    /// <paramref name="dest"/> unchanged (what Intel and AMD do; the SDM says undefined). The other
    /// flags are undefined; see <see cref="BitScanFlags"/>. The test host also leaves the upper half
    /// of a 32-bit destination register intact when src is 0 (no zero-extension): the executor
    /// should skip the register write in that case.
    /// </summary>
    public static AluResult Bsf(ulong dest, ulong src, int size, ulong rflags)
    {
        src &= SizeMask(size);
        bool zero = src == 0;
        ulong result = zero ? dest & SizeMask(size) : (ulong)BitOperations.TrailingZeroCount(src);
        return new AluResult(result, BitScanFlags(zero, result, rflags));
    }

    /// <summary>BSR dest, src: the index of the highest set bit; src 0 as for <see cref="Bsf"/>.</summary>
    public static AluResult Bsr(ulong dest, ulong src, int size, ulong rflags)
    {
        src &= SizeMask(size);
        bool zero = src == 0;
        ulong result = zero ? dest & SizeMask(size) : (ulong)(63 - BitOperations.LeadingZeroCount(src));
        return new AluResult(result, BitScanFlags(zero, result, rflags));
    }

    /// <summary>
    /// ZF = (src == 0). Of the undefined flags, the host clears CF, OF, SF and AF, and computes PF
    /// from the index found, or sets it when src is 0 (as if the result were 0, whatever dest holds).
    /// </summary>
    private static ulong BitScanFlags(bool zero, ulong result, ulong rflags) =>
        Merge(rflags, Flags.Arithmetic, zero ? Flags.ZF | Flags.PF : ParityFlag(result));

    /// <summary>TZCNT: trailing zeros (the width when src is 0); CF = (src == 0), ZF = (result == 0).</summary>
    public static AluResult Tzcnt(ulong src, int size, ulong rflags)
    {
        src &= SizeMask(size);
        ulong result = src == 0 ? (ulong)(size << 3) : (ulong)BitOperations.TrailingZeroCount(src);
        return new AluResult(result, CountFlags(src == 0, result, rflags));
    }

    /// <summary>LZCNT: leading zeros within the width; CF = (src == 0), ZF = (result == 0).</summary>
    public static AluResult Lzcnt(ulong src, int size, ulong rflags)
    {
        src &= SizeMask(size);
        ulong result = (ulong)(BitOperations.LeadingZeroCount(src) - (64 - (size << 3)));
        return new AluResult(result, CountFlags(src == 0, result, rflags));
    }

    /// <summary>POPCNT: the number of set bits; ZF = (src == 0), CF OF SF AF PF cleared.</summary>
    public static AluResult Popcnt(ulong src, int size, ulong rflags)
    {
        src &= SizeMask(size);
        ulong result = (ulong)BitOperations.PopCount(src);
        return new AluResult(result, Merge(rflags, Flags.Arithmetic, FlagIf(src == 0, Flags.ZF)));
    }

    /// <summary>CF and ZF as defined; OF, SF, AF, PF (undefined) are cleared, as on the host.</summary>
    private static ulong CountFlags(bool sourceZero, ulong result, ulong rflags) =>
        Merge(rflags, Flags.Arithmetic, FlagIf(sourceZero, Flags.CF) | FlagIf(result == 0, Flags.ZF));

    // ---------------------------------------------------------------- byte swap, sign extension

    /// <summary>BSWAP (32/64-bit). With a 16-bit operand size the host writes 0 to the register.</summary>
    public static ulong Bswap(ulong value, int size) => size switch
    {
        8 => System.Buffers.Binary.BinaryPrimitives.ReverseEndianness(value),
        4 => System.Buffers.Binary.BinaryPrimitives.ReverseEndianness((uint)value),
        _ => 0,
    };

    /// <summary>
    /// CBW/CWDE/CDQE: sign-extends the low half of the accumulator to <paramref name="size"/> bytes
    /// (AL to AX for 2, AX to EAX for 4, EAX to RAX for 8).
    /// </summary>
    public static ulong SignExtendAccumulator(ulong accumulator, int size) =>
        (ulong)SignExtend(accumulator, size >> 1) & SizeMask(size);

    /// <summary>CWD/CDQ/CQO: the value of DX/EDX/RDX, all ones when the accumulator is negative, else 0.</summary>
    public static ulong SignOfAccumulator(ulong accumulator, int size) =>
        (ulong)(SignExtend(accumulator, size) >> 63) & SizeMask(size);

    // ---------------------------------------------------------------- BCD (16/32-bit modes only; #UD in 64-bit mode)

    /// <summary>DAA on AL. Returns the new AL. OF (undefined) is 0 on the host.</summary>
    public static AluResult Daa(ulong al, ulong rflags)
    {
        ulong oldAl = al & 0xFF;
        bool oldCarry = (rflags & Flags.CF) != 0;
        ulong value = oldAl;
        bool adjustLow = (oldAl & 0xF) > 9 || (rflags & Flags.AF) != 0;
        bool adjustHigh = oldAl > 0x99 || oldCarry;
        value += adjustLow ? 6UL : 0;
        value += adjustHigh ? 0x60UL : 0;
        value &= 0xFF;
        ulong flags = FlagIf(adjustLow, Flags.AF) | FlagIf(adjustHigh, Flags.CF) | SignZeroParity(value, 1);
        return new AluResult(value, Merge(rflags, Flags.Arithmetic, flags));
    }

    /// <summary>DAS on AL. Returns the new AL. OF (undefined) is 0 on the host.</summary>
    public static AluResult Das(ulong al, ulong rflags)
    {
        ulong oldAl = al & 0xFF;
        bool oldCarry = (rflags & Flags.CF) != 0;
        bool adjustLow = (oldAl & 0xF) > 9 || (rflags & Flags.AF) != 0;
        bool carry = adjustLow && oldAl < 6;
        ulong value = adjustLow ? oldAl - 6 : oldAl;
        bool adjustHigh = oldAl > 0x99 || oldCarry;
        value -= adjustHigh ? 0x60UL : 0;
        value &= 0xFF;
        ulong flags = FlagIf(adjustLow, Flags.AF) | FlagIf(adjustHigh || carry, Flags.CF) | SignZeroParity(value, 1);
        return new AluResult(value, Merge(rflags, Flags.Arithmetic, flags));
    }

    /// <summary>
    /// AAA on AX: when the low nibble of AL is above 9 or AF is set, AX += 0x106 (the P6-and-later
    /// form, which carries into AH) and AF = CF = 1. AL's high nibble is then cleared. Returns the new
    /// AX. Of the undefined flags, OF and SF are 0 and ZF, PF follow the final AL.
    /// </summary>
    public static AluResult Aaa(ulong ax, ulong rflags)
    {
        ax &= 0xFFFF;
        bool adjust = (ax & 0xF) > 9 || (rflags & Flags.AF) != 0;
        ulong value = adjust ? ax + 0x106 : ax;
        value &= 0xFF0F;
        ulong flags = FlagIf(adjust, Flags.AF | Flags.CF) | SignZeroParity(value & 0xFF, 1);
        return new AluResult(value, Merge(rflags, Flags.Arithmetic, flags));
    }

    /// <summary>AAS on AX: the mirror of <see cref="Aaa"/> (AX -= 6, AH -= 1). Returns the new AX.</summary>
    public static AluResult Aas(ulong ax, ulong rflags)
    {
        ax &= 0xFFFF;
        bool adjust = (ax & 0xF) > 9 || (rflags & Flags.AF) != 0;
        ulong value = adjust ? ax - 6 - 0x100 : ax;
        value &= 0xFF0F;
        ulong flags = FlagIf(adjust, Flags.AF | Flags.CF) | SignZeroParity(value & 0xFF, 1);
        return new AluResult(value, Merge(rflags, Flags.Arithmetic, flags));
    }

    /// <summary>
    /// AAM imm8 on AX: AH = AL / imm8, AL = AL % imm8; SF ZF PF from AL, and OF AF CF (undefined) are
    /// 0 on the host. A zero immediate raises #DE: <paramref name="divideError"/> is set and AX and
    /// RFLAGS are returned unchanged.
    /// </summary>
    public static AluResult Aam(ulong ax, byte divisor, ulong rflags, out bool divideError)
    {
        divideError = divisor == 0;
        if (divideError)
        {
            return new AluResult(ax & 0xFFFF, rflags);
        }

        ulong al = ax & 0xFF;
        ulong quotient = al / divisor;
        ulong remainder = al - (quotient * divisor);
        ulong value = (quotient << 8) | remainder;
        return new AluResult(value, Merge(rflags, Flags.Arithmetic, SignZeroParity(remainder, 1)));
    }

    /// <summary>
    /// AAD imm8 on AX: AL = AL + AH * imm8, AH = 0. The host sets all six flags as the byte ADD of AL
    /// and (AH * imm8) mod 256 would (the SDM defines only SF, ZF, PF).
    /// </summary>
    public static AluResult Aad(ulong ax, byte multiplier, ulong rflags) =>
        Add(ax & 0xFF, ((ax >> 8) & 0xFF) * multiplier, 1, rflags);
}
