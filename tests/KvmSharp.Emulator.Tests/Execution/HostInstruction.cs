namespace KvmSharp.Emulator.Tests.Execution;

/// <summary>The instructions the differential tests run natively, on RAX (destination), R8 (source), CL (count), RDX.</summary>
public enum HostOp
{
    Add, Adc, Sub, Sbb, Cmp, And, Or, Xor, Test,
    Inc, Dec, Neg, Not,
    Rol, Ror, Rcl, Rcr, Shl, Shr, Sal, Sar,
    Shld, Shrd,
    Mul, Imul, Div, Idiv, Imul2, Imul3,
    Bt, Bts, Btr, Btc,
    Bsf, Bsr, Tzcnt, Lzcnt, Popcnt,
    Bswap, Cbw, Cwd,
    Daa, Das, Aaa, Aas, Aam, Aad,
}

/// <summary>Encodes a <see cref="HostOp"/> for a given operand size as machine code.</summary>
internal static class HostInstruction
{
    private const int Rax = 0;
    private const int R8 = 8;

    public static bool IsCompatibilityMode(HostOp op) => op is >= HostOp.Daa and <= HostOp.Aad;

    /// <summary>The instruction's bytes; <paramref name="immediate"/> is used by IMUL r, r/m, imm8, AAM and AAD.</summary>
    public static byte[] Encode(HostOp op, int size, byte immediate = 0)
    {
        var code = new List<byte>(8);
        switch (op)
        {
            case HostOp.Add: RegToRm(code, size, 0x00, R8, Rax); break;
            case HostOp.Or: RegToRm(code, size, 0x08, R8, Rax); break;
            case HostOp.Adc: RegToRm(code, size, 0x10, R8, Rax); break;
            case HostOp.Sbb: RegToRm(code, size, 0x18, R8, Rax); break;
            case HostOp.And: RegToRm(code, size, 0x20, R8, Rax); break;
            case HostOp.Sub: RegToRm(code, size, 0x28, R8, Rax); break;
            case HostOp.Xor: RegToRm(code, size, 0x30, R8, Rax); break;
            case HostOp.Cmp: RegToRm(code, size, 0x38, R8, Rax); break;
            case HostOp.Test: RegToRm(code, size, 0x84, R8, Rax); break;
            case HostOp.Inc: RegToRm(code, size, 0xFE, 0, Rax); break;
            case HostOp.Dec: RegToRm(code, size, 0xFE, 1, Rax); break;
            case HostOp.Not: RegToRm(code, size, 0xF6, 2, Rax); break;
            case HostOp.Neg: RegToRm(code, size, 0xF6, 3, Rax); break;
            case HostOp.Rol: RegToRm(code, size, 0xD2, 0, Rax); break;
            case HostOp.Ror: RegToRm(code, size, 0xD2, 1, Rax); break;
            case HostOp.Rcl: RegToRm(code, size, 0xD2, 2, Rax); break;
            case HostOp.Rcr: RegToRm(code, size, 0xD2, 3, Rax); break;
            case HostOp.Shl: RegToRm(code, size, 0xD2, 4, Rax); break;
            case HostOp.Shr: RegToRm(code, size, 0xD2, 5, Rax); break;
            case HostOp.Sal: RegToRm(code, size, 0xD2, 6, Rax); break; // the /6 alias of SHL
            case HostOp.Sar: RegToRm(code, size, 0xD2, 7, Rax); break;
            case HostOp.Mul: RegToRm(code, size, 0xF6, 4, R8); break;
            case HostOp.Imul: RegToRm(code, size, 0xF6, 5, R8); break;
            case HostOp.Div: RegToRm(code, size, 0xF6, 6, R8); break;
            case HostOp.Idiv: RegToRm(code, size, 0xF6, 7, R8); break;
            case HostOp.Shld: TwoByte(code, size, 0xA5, R8, Rax); break;
            case HostOp.Shrd: TwoByte(code, size, 0xAD, R8, Rax); break;
            case HostOp.Imul2: TwoByte(code, size, 0xAF, Rax, R8); break;
            case HostOp.Imul3: Modrm(code, size, [0x6B], Rax, R8); code.Add(immediate); break;
            case HostOp.Bt: TwoByte(code, size, 0xA3, R8, Rax); break;
            case HostOp.Bts: TwoByte(code, size, 0xAB, R8, Rax); break;
            case HostOp.Btr: TwoByte(code, size, 0xB3, R8, Rax); break;
            case HostOp.Btc: TwoByte(code, size, 0xBB, R8, Rax); break;
            case HostOp.Bsf: TwoByte(code, size, 0xBC, Rax, R8); break;
            case HostOp.Bsr: TwoByte(code, size, 0xBD, Rax, R8); break;
            case HostOp.Tzcnt: TwoByte(code, size, 0xBC, Rax, R8, 0xF3); break;
            case HostOp.Lzcnt: TwoByte(code, size, 0xBD, Rax, R8, 0xF3); break;
            case HostOp.Popcnt: TwoByte(code, size, 0xB8, Rax, R8, 0xF3); break;
            case HostOp.Bswap: Modrm(code, size, [0x0F], 1, Rax); break; // 0F C8+r written as 0F C8 (ModRM 11 001 000)
            case HostOp.Cbw: SizePrefix(code, size, 0); code.Add(0x98); break;
            case HostOp.Cwd: SizePrefix(code, size, 0); code.Add(0x99); break;
            case HostOp.Daa: code.Add(0x27); break;
            case HostOp.Das: code.Add(0x2F); break;
            case HostOp.Aaa: code.Add(0x37); break;
            case HostOp.Aas: code.Add(0x3F); break;
            case HostOp.Aam: code.AddRange([0xD4, immediate]); break;
            case HostOp.Aad: code.AddRange([0xD5, immediate]); break;
            default: throw new ArgumentOutOfRangeException(nameof(op), op, "No encoding.");
        }

        return [.. code];
    }

    /// <summary>A one-byte opcode whose byte form is <paramref name="byteOpcode"/> and other forms byteOpcode + 1.</summary>
    private static void RegToRm(List<byte> code, int size, byte byteOpcode, int reg, int rm) =>
        Modrm(code, size, [size == 1 ? byteOpcode : (byte)(byteOpcode + 1)], reg, rm);

    private static void TwoByte(List<byte> code, int size, byte opcode, int reg, int rm, byte mandatoryPrefix = 0) =>
        Modrm(code, size, [0x0F, opcode], reg, rm, mandatoryPrefix);

    private static void Modrm(List<byte> code, int size, byte[] opcode, int reg, int rm, byte mandatoryPrefix = 0)
    {
        if (size == 2)
        {
            code.Add(0x66);
        }

        if (mandatoryPrefix != 0)
        {
            code.Add(mandatoryPrefix);
        }

        int rex = (size == 8 ? 8 : 0) | ((reg >> 3) << 2) | (rm >> 3);
        if (rex != 0)
        {
            code.Add((byte)(0x40 | rex));
        }

        code.AddRange(opcode);
        code.Add((byte)(0xC0 | ((reg & 7) << 3) | (rm & 7)));
    }

    /// <summary>66 for 16-bit, then REX (W for 64-bit plus <paramref name="rexRxb"/>) when needed.</summary>
    private static void SizePrefix(List<byte> code, int size, int rexRxb)
    {
        if (size == 2)
        {
            code.Add(0x66);
        }

        int rex = (size == 8 ? 8 : 0) | rexRxb;
        if (rex != 0)
        {
            code.Add((byte)(0x40 | rex));
        }
    }
}
