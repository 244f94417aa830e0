using System.Numerics;

namespace KvmSharp.Kvm;

/// <summary>
/// The CPUID table each vCPU gets: KVM_GET_SUPPORTED_CPUID (what the host and KVM can offer, including
/// KVM's paravirtual leaves 0x40000000/0x40000001: kvmclock, PV EOI, ...) with the topology of our
/// machine written in — one package, <c>vcpuCount</c> cores, one thread each, APIC ID = vCPU index.
/// Intel SDM Vol. 2A, CPUID leaves 01H, 04H, 0BH and 1FH.
/// </summary>
public static class VcpuCpuid
{
    public const uint HypervisorBit = 1u << 31;   // leaf 1 ECX[31]
    public const uint HyperThreadingBit = 1u << 28; // leaf 1 EDX[28]

    private const uint LevelTypeSmt = 1;
    private const uint LevelTypeCore = 2;

    public static CpuidEntry[] Build(ReadOnlySpan<CpuidEntry> supported, int apicId, int vcpuCount)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(apicId);
        ArgumentOutOfRangeException.ThrowIfLessThan(vcpuCount, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(apicId, vcpuCount);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(vcpuCount, 255);

        uint id = (uint)apicId;
        uint count = (uint)vcpuCount;
        // Bits of the APIC ID that select the core within the package.
        uint coreBits = count <= 1 ? 0 : (uint)BitOperations.Log2(BitOperations.RoundUpToPowerOf2(count));

        var result = new List<CpuidEntry>(supported.Length + 3);
        bool hasLeaf1F = false;
        foreach (var e in supported)
        {
            switch (e.Function)
            {
                case 0x1:
                    // EBX[31:24] initial APIC ID, [23:16] logical processors per package; keep CLFLUSH size and brand.
                    uint ebx = (e.Ebx & 0x0000_FFFF) | (id << 24) | (count << 16);
                    uint edx = count > 1 ? e.Edx | HyperThreadingBit : e.Edx & ~HyperThreadingBit;
                    result.Add(e with { Ebx = ebx, Ecx = e.Ecx | HypervisorBit, Edx = edx });
                    break;

                case 0x4:
                    // EAX[31:26] = cores per package - 1; EAX[25:14] = logical processors sharing the cache - 1
                    // (0 for per-core caches, all cores for the last level, which has EAX[7:5] = 3).
                    uint level = (e.Eax >> 5) & 0x7;
                    uint sharing = level >= 3 ? count - 1 : 0;
                    uint eax4 = (e.Eax & 0x0000_3FFF) | ((count - 1) << 26) | (sharing << 14);
                    result.Add(e with { Eax = e.Eax == 0 ? 0 : eax4 });
                    break;

                case 0xB:
                case 0x1F:
                    // Replaced as a whole below: the host's levels describe the host, not this machine.
                    hasLeaf1F |= e.Function == 0x1F;
                    break;

                default:
                    result.Add(e);
                    break;
            }
        }

        if (HasBasicLeaf(supported, 0xB))
        {
            for (uint sub = 0; sub <= 2; sub++)
            {
                result.Add(Topology(0xB, sub, id, count, coreBits));
            }
        }

        if (hasLeaf1F)
        {
            for (uint sub = 0; sub <= 2; sub++)
            {
                result.Add(Topology(0x1F, sub, id, count, coreBits));
            }
        }

        return [.. result];
    }

    /// <summary>Leaf 0BH/1FH subleaf: SMT level (1 thread), core level (all cores), then the invalid level.</summary>
    private static CpuidEntry Topology(uint function, uint subleaf, uint apicId, uint count, uint coreBits) => subleaf switch
    {
        0 => new CpuidEntry(function, 0, CpuidEntry.FlagSignificantIndex, 0, 1, (LevelTypeSmt << 8) | 0, apicId),
        1 => new CpuidEntry(function, 1, CpuidEntry.FlagSignificantIndex, coreBits, count, (LevelTypeCore << 8) | 1, apicId),
        _ => new CpuidEntry(function, subleaf, CpuidEntry.FlagSignificantIndex, 0, 0, subleaf, apicId),
    };

    private static bool HasBasicLeaf(ReadOnlySpan<CpuidEntry> supported, uint leaf)
    {
        foreach (var e in supported)
        {
            if (e.Function == 0)
            {
                return e.Eax >= leaf;
            }
        }

        return false;
    }
}
