using FsCheck;
using FsCheck.Fluent;
using KvmSharp.Emulator.Mmu;
using KvmSharp.Memory;
using static KvmSharp.Emulator.Tests.Mmu.PagingFixture;

namespace KvmSharp.Emulator.Tests.Mmu;

public class TlbPropertyTests
{
    private const int TablePages = 8;

    private static readonly int[] ReservedCandidates = [13, 21, 40, 47, 52, 62];

    /// <summary>
    /// Random paging structures (every mode, random R/W, U/S, XD, PS, G, A/D, the odd reserved bit, entries pointing
    /// outside RAM) and a random sequence of accesses, INVLPGs, CR3 reloads and CR0.WP toggles. With the tables left
    /// unchanged, every answer of the TLB-backed MMU must equal a fresh walk: a hit never grants what a walk denies,
    /// and never denies or remaps what it grants.
    /// </summary>
    [Fact]
    public void TheMmu_AnswersEveryAccess_ExactlyAsAFreshWalk()
    {
        Prop.ForAll(Gen.Choose(0, int.MaxValue).ToArbitrary(), static seed => Run(seed))
            .Check(Config.QuickThrowOnFailure.WithMaxTest(300));
    }

    private static bool Run(int seed)
    {
        var rng = new Random(seed);
        using var memory = GuestMemory.Create(16 * 4096);
        var mode = (PagingMode)rng.Next(1, 4);
        bool wide = mode != PagingMode.Bits32;
        int maxPhysicalAddressBits = rng.Next(2) == 0 ? 36 : 46;
        bool gigabytePages = rng.Next(2) == 0;

        for (ulong page = 1; page <= TablePages; page++)
        {
            for (ulong offset = 0; offset < 4096; offset += wide ? 8UL : 4UL)
            {
                ulong entry = RandomEntry(rng);
                if (wide)
                {
                    memory.Write(page * 4096 + offset, entry);
                }
                else
                {
                    memory.Write(page * 4096 + offset, (uint)entry);
                }
            }
        }

        ulong cr3 = 0x1000;
        if (mode == PagingMode.Pae)
        {
            cr3 += (ulong)rng.Next(4) * 32;
            for (ulong i = 0; i < 4; i++)
            {
                memory.Write(cr3 + i * 8, rng.Next(8) == 0 ? 0UL : ((ulong)rng.Next(1, TablePages + 1) << 12) | P);
            }
        }

        ulong cr0 = Pe | Pg | (rng.Next(2) == 0 ? Wp : 0);
        ulong cr4 = (mode == PagingMode.Bits32 ? 0 : Pae) | (rng.Next(2) == 0 ? Pse : 0) | (rng.Next(2) == 0 ? Pge : 0);
        ulong efer = (mode == PagingMode.FourLevel ? Lme | Lma : 0) | (rng.Next(2) == 0 ? Nxe : 0);

        var mmu = new MemoryManagementUnit(memory, maxPhysicalAddressBits, gigabytePages);
        var reference = new PageWalker(memory, maxPhysicalAddressBits, gigabytePages);
        Assert.True(mmu.TryLoad(cr0, cr3, cr4, efer));
        Assert.Equal(mode, mmu.State.Mode);

        for (int step = 0; step < 120; step++)
        {
            int op = rng.Next(24);
            if (op == 0)
            {
                mmu.InvalidatePage(RandomLinear(rng, mode));
            }
            else if (op == 1)
            {
                // May fail under PAE once walks set A (a reserved PDPTE bit) in a PDPT page that is also a table.
                mmu.TryWriteCr3(mmu.State.Cr3);
            }
            else if (op == 2)
            {
                Assert.True(mmu.TryWriteCr0(mmu.State.Cr0 ^ Wp));
            }
            else
            {
                ulong linear = RandomLinear(rng, mode);
                var access = (MemoryAccess)rng.Next(3);
                var privilege = (AccessPrivilege)rng.Next(3);
                var state = mmu.State;
                var expected = reference.Walk(linear, access, privilege, in state, out var translation, out var expectedFault);
                var actual = mmu.Translate(linear, access, privilege, out ulong physical, out var fault);
                string where = $"seed {seed}, step {step}, {mode}, 0x{linear:x} {access} {privilege}";
                Assert.True(expected == actual, $"{where}: walk {expected}, MMU {actual}");
                if (actual == TranslationStatus.Ok)
                {
                    Assert.True(translation.PhysicalAddress == physical, $"{where}: walk 0x{translation.PhysicalAddress:x}, MMU 0x{physical:x}");
                }
                else
                {
                    Assert.True(expectedFault == fault, $"{where}: walk {expectedFault}, MMU {fault}");
                }
            }
        }

        return true;
    }

    private static ulong RandomEntry(Random rng)
    {
        ulong entry = rng.Next(8) == 0 ? 0 : P;
        bool large = rng.Next(4) == 0;
        if (large)
        {
            entry |= Ps | ((ulong)rng.Next(4) << 21);
        }
        else
        {
            entry |= rng.Next(8) == 0 ? (ulong)rng.Next(0, 64) << 12 : (ulong)rng.Next(1, TablePages + 1) << 12;
        }

        entry |= rng.Next(4) != 0 ? W : 0;
        entry |= rng.Next(4) != 0 ? U : 0;
        entry |= rng.Next(2) == 0 ? A : 0;
        entry |= rng.Next(2) == 0 ? D : 0;
        entry |= rng.Next(4) == 0 ? G : 0;
        entry |= rng.Next(4) == 0 ? Xd : 0;
        if (rng.Next(16) == 0)
        {
            entry |= 1UL << ReservedCandidates[rng.Next(ReservedCandidates.Length)];
        }

        return entry;
    }

    private static ulong RandomLinear(Random rng, PagingMode mode)
    {
        ulong offset = (ulong)rng.Next(4096);
        ulong i1 = (ulong)rng.Next(4);
        ulong i2 = (ulong)rng.Next(4);
        ulong i3 = (ulong)rng.Next(4);
        return mode switch
        {
            PagingMode.FourLevel => rng.Next(16) switch
            {
                0 => 0x8000_0000_0000_0000 | (i2 << 21) | offset,
                1 => 0xFFFF_FF80_0000_0000 | (i3 << 30) | (i2 << 21) | (i1 << 12) | offset,
                _ => ((ulong)rng.Next(4) << 39) | (i3 << 30) | (i2 << 21) | (i1 << 12) | offset,
            },
            PagingMode.Pae => (rng.Next(8) == 0 ? 0x1_0000_0000UL : 0) | (i3 << 30) | (i2 << 21) | (i1 << 12) | offset,
            _ => (rng.Next(8) == 0 ? 0x1_0000_0000UL : 0) | (i2 << 22) | (i1 << 12) | offset,
        };
    }
}
