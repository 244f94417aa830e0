using System.Runtime.Intrinsics.X86;
using System.Text;
using KvmSharp.Emulator.Execution;

namespace KvmSharp.Emulator.Tests;

/// <summary>
/// The host CPU the differential tests compare with, and what may differ between it and the CPU the software CPU
/// models. The software CPU is one fixed model, an Intel one (CPUID says GenuineIntel; src/KvmSharp.Emulator/
/// Execution/Alu.cs records the host its undefined results were taken from), whatever host it runs on: a guest sees
/// the same CPU everywhere. On an Intel host every result is compared, including the ones the manuals leave
/// undefined or implementation-specific. On another vendor's host (AMD) those vendor-specific results are not
/// compared; everything the architecture defines still is, exactly:
/// <list type="bullet">
/// <item>arithmetic flags the SDM and the AMD APM both call undefined for the instruction (<see cref="UndefinedFlags"/>);</item>
/// <item>FOP/FIP/FDP in FXSAVE/FNSTENV/FNSAVE images, which AMD writes only while an unmasked x87 exception is
/// pending (APM Vol. 5, FXSAVE) and then not as Intel does;</item>
/// <item>the underflow flag of x87 transcendentals on tiny results (AMD detects tininess differently): such cases are not compared;</item>
/// <item>16-bit SHLD/SHRD by more than 16, and a test program that reads ZF after IMUL: skipped with the reason;</item>
/// <item>MXCSR_MASK, which on AMD includes MXCSR.MM (bit 17, misaligned-exception mask) that an Intel CPU lacks;</item>
/// <item>RCPSS/RSQRTSS and their packed forms, whose approximation tables differ: within the architectural bound |error| ≤ 1.5 × 2^-12 instead;</item>
/// <item>the upper halves of RCX/RSI/RDI after a 32-bit-address REP string instruction with a zero count (Intel writes the 32-bit registers, AMD leaves them).</item>
/// </list>
/// </summary>
internal static class HostCpu
{
    public static string Vendor { get; } = ReadVendor();

    /// <summary>The host is the vendor the software CPU models, so vendor-specific results are compared too.</summary>
    public static bool IsIntel => Vendor == "GenuineIntel";

    /// <summary>
    /// The arithmetic flags both vendors' manuals leave undefined after <paramref name="mnemonic"/> (lower case, as
    /// objdump prints it) with a masked shift/rotate count of <paramref name="count"/> (null: not known, assume any),
    /// or 0 on an Intel host, where they are compared.
    /// </summary>
    public static ulong UndefinedFlags(string mnemonic, ulong? count = null)
    {
        if (IsIntel)
        {
            return 0;
        }

        bool multiBit = count is not ulong c || c > 1;
        bool anyShift = count is not ulong d || d != 0;
        return mnemonic switch
        {
            "and" or "or" or "xor" or "test" => Flags.AF,
            "shl" or "sal" or "shr" or "sar" => (anyShift ? Flags.AF : 0) | (multiBit ? Flags.OF : 0),
            "shld" or "shrd" => (anyShift ? Flags.AF : 0) | (multiBit ? Flags.OF : 0),
            "rol" or "ror" or "rcl" or "rcr" => multiBit ? Flags.OF : 0,
            "mul" or "imul" => Flags.SF | Flags.ZF | Flags.AF | Flags.PF,
            "div" or "idiv" => Flags.Arithmetic,
            "bt" or "bts" or "btr" or "btc" => Flags.OF | Flags.SF | Flags.AF | Flags.PF,
            "bsf" or "bsr" => Flags.CF | Flags.OF | Flags.SF | Flags.AF | Flags.PF,
            "tzcnt" or "lzcnt" => Flags.OF | Flags.SF | Flags.AF | Flags.PF,
            "daa" or "das" => Flags.OF,
            "aaa" or "aas" => Flags.OF | Flags.SF | Flags.ZF | Flags.PF,
            "aam" or "aad" => Flags.OF | Flags.AF | Flags.CF,
            _ => 0,
        };
    }

    private static string ReadVendor()
    {
        if (!X86Base.IsSupported)
        {
            return "unknown";
        }

        var (_, ebx, ecx, edx) = X86Base.CpuId(0, 0);
        Span<byte> text = stackalloc byte[12];
        BitConverter.TryWriteBytes(text, ebx);
        BitConverter.TryWriteBytes(text[4..], edx);
        BitConverter.TryWriteBytes(text[8..], ecx);
        return Encoding.ASCII.GetString(text);
    }
}
