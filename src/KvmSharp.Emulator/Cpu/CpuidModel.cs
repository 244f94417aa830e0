using System.Buffers.Binary;

namespace KvmSharp.Emulator.Cpu;

/// <summary>
/// What CPUID returns on the software CPU. It advertises exactly what the emulator implements (docs/emulator.md
/// lists the features): an Intel family-6 CPU with x87, MMX, SSE, SSE2, CX8/CX16, CMOV, FXSR, PAE/PGE/PAT/PSE,
/// NX, 1 GiB pages, SYSCALL/SYSENTER, RDTSCP, POPCNT, an xAPIC with TSC-deadline, an invariant TSC whose
/// frequency leaves 0x15/0x16 state (so Linux needs no calibration), and a hypervisor leaf that is not KVM's.
/// </summary>
public sealed class CpuidModel
{
    /// <summary>The highest basic leaf.</summary>
    public const uint MaxBasicLeaf = 0x16;

    /// <summary>The highest extended leaf.</summary>
    public const uint MaxExtendedLeaf = 0x8000_0008;

    /// <summary>Leaf 1 EDX: FPU TSC MSR PAE CX8 APIC SEP PGE CMOV PAT PSE CLFSH MMX FXSR SSE SSE2 (and DE/PSE36 off).</summary>
    public const uint Leaf1Edx = (1u << 0) | (1u << 3) | (1u << 4) | (1u << 5) | (1u << 6) | (1u << 8) | (1u << 9)
        | (1u << 11) | (1u << 13) | (1u << 15) | (1u << 16) | (1u << 19) | (1u << 23) | (1u << 24) | (1u << 25) | (1u << 26);

    /// <summary>Leaf 1 ECX without the TSC-deadline bit: CX16, POPCNT, hypervisor.</summary>
    public const uint Leaf1EcxBase = (1u << 13) | (1u << 23) | (1u << 31);

    /// <summary>Leaf 7 EBX: FDP_EXCPTN_ONLY (6) and ZERO_FCS_FDS (13); no instruction-set extensions.</summary>
    public const uint Leaf7Ebx = (1u << 6) | (1u << 13);

    /// <summary>Leaf 1 ECX bit 24: TSC-deadline timer.</summary>
    public const uint TscDeadlineBit = 1u << 24;

    /// <summary>0x80000001 EDX: SYSCALL, NX, PDPE1GB, RDTSCP, LM.</summary>
    public const uint Extended1Edx = (1u << 11) | (1u << 20) | (1u << 26) | (1u << 27) | (1u << 29);

    /// <summary>0x80000001 ECX: LAHF/SAHF in 64-bit mode.</summary>
    public const uint Extended1Ecx = 1u << 0;

    /// <summary>Family 6, model 0x2A (a plain Sandy Bridge-era signature), stepping 7.</summary>
    public const uint Signature = (6u << 8) | (0xAu << 4) | (0x2u << 16) | 7u;

    private const string Vendor = "GenuineIntel";
    private const string HypervisorVendor = "KvmSharpSoft"; // not "KVMKVMKVM": no KVM paravirtual interfaces here
    private const string Brand = "KvmSharp software x86-64 CPU";

    private readonly uint _apicId;
    private readonly uint _logicalCount;
    private readonly bool _tscDeadline;
    private readonly uint _ratioNumerator;
    private readonly uint _ratioDenominator;
    private readonly uint _crystalHz;
    private readonly uint _tscMhz;

    /// <param name="tscHz">The TSC frequency.</param>
    /// <param name="crystalHz">The core crystal clock (the local APIC timer's input before its divider).</param>
    /// <param name="apicId">This CPU's initial APIC ID.</param>
    /// <param name="logicalCount">The number of CPUs in the package.</param>
    /// <param name="tscDeadline">Whether the local APIC implements TSC-deadline mode.</param>
    public CpuidModel(long tscHz, long crystalHz, uint apicId = 0, uint logicalCount = 1, bool tscDeadline = true)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(tscHz, 1_000_000);
        ArgumentOutOfRangeException.ThrowIfLessThan(crystalHz, 1_000);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(crystalHz, uint.MaxValue);
        long gcd = Gcd(tscHz, crystalHz);
        long numerator = tscHz / gcd;
        long denominator = crystalHz / gcd;
        if (numerator > uint.MaxValue || denominator > uint.MaxValue)
        {
            throw new ArgumentException("The TSC and crystal frequencies need a ratio that fits CPUID leaf 0x15.", nameof(crystalHz));
        }

        _ratioNumerator = (uint)numerator;
        _ratioDenominator = (uint)denominator;
        _crystalHz = (uint)crystalHz;
        _tscMhz = (uint)(tscHz / 1_000_000);
        _apicId = apicId;
        _logicalCount = Math.Max(1, logicalCount);
        _tscDeadline = tscDeadline;
    }

    /// <summary>Answers CPUID for <paramref name="leaf"/> and <paramref name="subleaf"/>; unknown leaves read as zero.</summary>
    public void Query(uint leaf, uint subleaf, out uint eax, out uint ebx, out uint ecx, out uint edx)
    {
        eax = ebx = ecx = edx = 0;
        switch (leaf)
        {
            case 0:
                eax = MaxBasicLeaf;
                Text(Vendor, 0, out ebx);
                Text(Vendor, 4, out edx);
                Text(Vendor, 8, out ecx);
                break;
            case 1:
                eax = Signature;
                ebx = (_apicId << 24) | (_logicalCount << 16) | (8u << 8); // CLFLUSH line = 8 * 8 bytes
                ecx = Leaf1EcxBase | (_tscDeadline ? TscDeadlineBit : 0);
                edx = Leaf1Edx;
                break;
            case 7 when subleaf == 0:
                // EBX bit 6: the x87 data pointer is updated only on unmasked exceptions; bit 13: FCS and FDS are
                // stored as zero — both what the x87 and FXSAVE emulation do, as this host's CPU does.
                ebx = Leaf7Ebx;
                break;
            case 0x15:
                eax = _ratioDenominator;
                ebx = _ratioNumerator;
                ecx = _crystalHz;
                break;
            case 0x16:
                eax = _tscMhz;
                ebx = _tscMhz;
                ecx = _crystalHz / 1_000_000;
                break;
            case 0x4000_0000:
                eax = 0x4000_0000;
                Text(HypervisorVendor, 0, out ebx);
                Text(HypervisorVendor, 4, out ecx);
                Text(HypervisorVendor, 8, out edx);
                break;
            case 0x8000_0000:
                eax = MaxExtendedLeaf;
                break;
            case 0x8000_0001:
                ecx = Extended1Ecx;
                edx = Extended1Edx;
                break;
            case 0x8000_0002 or 0x8000_0003 or 0x8000_0004:
                int at = (int)(leaf - 0x8000_0002) * 16;
                Text(Brand, at, out eax);
                Text(Brand, at + 4, out ebx);
                Text(Brand, at + 8, out ecx);
                Text(Brand, at + 12, out edx);
                break;
            case 0x8000_0007:
                edx = 1u << 8; // invariant TSC
                break;
            case 0x8000_0008:
                eax = (48u << 8) | 46u; // 48-bit linear, 46-bit physical addresses (the MMU's MAXPHYADDR)
                break;
        }
    }

    private static void Text(string text, int offset, out uint value)
    {
        Span<byte> bytes = stackalloc byte[4];
        bytes.Clear();
        for (int i = 0; i < 4 && offset + i < text.Length; i++)
        {
            bytes[i] = (byte)text[offset + i];
        }

        value = BinaryPrimitives.ReadUInt32LittleEndian(bytes);
    }

    private static long Gcd(long a, long b)
    {
        while (b != 0)
        {
            (a, b) = (b, a % b);
        }

        return a;
    }

    /// <summary>The brand string CPUID 0x80000002-4 return.</summary>
    public static string BrandString => Brand;
}
