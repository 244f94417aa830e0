using FsCheck;
using FsCheck.Fluent;
using KvmSharp.Emulator.Decoding;
using KvmSharp.Emulator.Execution;

namespace KvmSharp.Emulator.Tests.Integer;

/// <summary>
/// REP MOVS/STOS/LODS with 16-bit addresses, which the host cannot run: in real mode and in 32-bit code with a 67
/// prefix, with segment bases that are not page-aligned, overlapping segments, both directions, wrap-around at
/// 64 KiB and counts beyond one batch, checked against an element-by-element model over a copy of memory. This is
/// where the page-chunked bulk copy must give exactly the per-element result.
/// </summary>
public sealed class StringModelTests
{
    private const ulong RegionStart = 0x2_0000;
    private const int RegionSize = 0x7_0000;

    public enum Op
    {
        Movs,
        Stos,
        Lods,
    }

    [Fact]
    public void RepeatedStrings_With16BitAddresses_MatchTheElementByElementModel()
    {
        var cases =
            from op in Gen.Elements(Op.Movs, Op.Movs, Op.Stos, Op.Lods)
            from size in Gen.Elements(1, 2, 4)
            from realMode in Gen.Elements(false, true)
            from down in Gen.Elements(false, true)
            from dsBase in Gen.Choose(0x2_0000, 0x7_0000)
            from esDelta in Gen.Frequency((1, Gen.Constant(0)), (1, Gen.Choose(-8, 8)), (2, Gen.Choose(-0x4_0000, 0x4_0000)))
            from si in Gen.Choose(0, 0xFFFF)
            from di in Gen.Frequency((1, Gen.Elements(0xFFF0, 0x0008, 0x7FFF)), (3, Gen.Choose(0, 0xFFFF)))
            from count in Gen.Frequency((3, Gen.Choose(0, 64)), (2, Gen.Choose(65, 0x1100)), (1, Gen.Choose(0x1100, 0x2400)))
            from seed in Gen.Choose(0, int.MaxValue)
            select new ModelCase(op, size, realMode, down, dsBase, Math.Clamp(dsBase + esDelta, 0x2_0000, 0x7_0000), si, di, count, seed);
        Prop.ForAll(cases.ToArbitrary(), Check).Check(Config.QuickThrowOnFailure.WithMaxTest(150));
    }

    private static void Check(ModelCase c)
    {
        // Real-mode bases are multiples of 16; a protected-mode descriptor's base is any byte.
        ulong dsBase = c.RealMode ? (ulong)c.DsBase & ~0xFUL : (ulong)c.DsBase;
        ulong esBase = c.RealMode ? (ulong)c.EsBase & ~0xFUL : (ulong)c.EsBase;
        int size = c.Size;
        ushort si = (ushort)(c.Si & ~(size - 1)); // element-aligned: no element straddles the 64 KiB wrap
        ushort di = (ushort)(c.Di & ~(size - 1));

        using var m = c.RealMode
            ? StringSemanticsTests.RealMode(ds: 0, es: 0)
            : StringSemanticsTests.Flat32();
        m.State.Segment(SegmentName.Ds).Base = dsBase;
        m.State.Segment(SegmentName.Es).Base = esBase;
        var code = new List<byte>();
        if (!c.RealMode)
        {
            code.Add(0x67); // 16-bit addresses in 32-bit code
        }

        code.Add(0xF3);
        if ((size == 2 && !c.RealMode) || (size == 4 && c.RealMode))
        {
            code.Add(0x66);
        }

        byte opcode = c.Op switch { Op.Movs => 0xA4, Op.Stos => 0xAA, _ => 0xAC };
        code.Add(size == 1 ? opcode : (byte)(opcode + 1));
        m.Memory.Write(GuestMachine.CodeBase, code.ToArray());
        m.State.Rip = c.RealMode ? 0 : GuestMachine.CodeBase; // real mode: CS base 0x10000, IP 0
        ulong end = m.State.Rip + (ulong)code.Count;

        var memory = new byte[RegionSize];
        new Random(c.Seed).NextBytes(memory);
        m.Memory.Write(RegionStart, memory);
        ulong eax = 0x1234_5678_9ABC_DEF0 ^ (ulong)c.Seed;
        m.State.Rax = eax;
        m.State.Rsi = 0xAAAA_0000 | (ulong)si;
        m.State.Rdi = 0xBBBB_0000 | (ulong)di;
        m.State.Rcx = 0xCCCC_0000 | (uint)c.Count;
        m.State.RFlags = Flags.Reserved1 | (c.Down ? Flags.DF : 0);

        m.RunTo(end, maxSteps: 10);

        // The model: one element at a time.
        for (int k = 0; k < c.Count; k++)
        {
            int source = (int)(dsBase + si - RegionStart);
            int destination = (int)(esBase + di - RegionStart);
            switch (c.Op)
            {
                case Op.Movs:
                    var element = memory.AsSpan(source, size).ToArray();
                    element.CopyTo(memory, destination);
                    break;
                case Op.Stos:
                    for (int b = 0; b < size; b++)
                    {
                        memory[destination + b] = (byte)(eax >> (8 * b));
                    }

                    break;
                default:
                    ulong loaded = 0;
                    for (int b = 0; b < size; b++)
                    {
                        loaded |= (ulong)memory[source + b] << (8 * b);
                    }

                    eax = size == 4 ? loaded : (eax & ~Alu.SizeMask(size)) | loaded;
                    break;
            }

            int step = c.Down ? -size : size;
            if (c.Op != Op.Stos)
            {
                si = (ushort)(si + step);
            }

            if (c.Op != Op.Lods)
            {
                di = (ushort)(di + step);
            }
        }

        var actual = new byte[RegionSize];
        m.Memory.Read(RegionStart, actual);
        int firstDifference = actual.AsSpan().CommonPrefixLength(memory);
        Assert.True(firstDifference == RegionSize, $"{c}: memory differs first at 0x{RegionStart + (ulong)firstDifference:X}");
        Assert.Equal((0xAAAA_0000UL | si, 0xBBBB_0000UL | di, 0xCCCC_0000UL), (m.State.Rsi, m.State.Rdi, m.State.Rcx));
        Assert.Equal(eax, m.State.Rax);
    }

    public sealed record ModelCase(Op Op, int Size, bool RealMode, bool Down, int DsBase, int EsBase, int Si, int Di, int Count, int Seed);
}
