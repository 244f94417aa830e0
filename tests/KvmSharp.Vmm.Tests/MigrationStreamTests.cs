using System.Buffers.Binary;
using KvmSharp.Memory;
using KvmSharp.Vmm.Migration;

namespace KvmSharp.Vmm.Tests;

/// <summary>The migration wire format: pages, zero pages and rounds into the destination's RAM, the state, the checksum; every refusal one line.</summary>
public sealed class MigrationStreamTests : IDisposable
{
    private static readonly MemoryRange[] Layout = [new(0, 0x10_0000), new(0x1_0000_0000, 0x8_0000)];
    private readonly GuestMemory _source = GuestMemory.Create(Layout);
    private readonly GuestMemory _destination = GuestMemory.Create(Layout);

    public void Dispose()
    {
        _source.Dispose();
        _destination.Dispose();
    }

    private static MigrationHeader Header => new("""{"vcpus":1}"""u8.ToArray(), Layout);

    /// <summary>Two rounds: every page first (random bytes in some, zero in the rest), then a few rewritten.</summary>
    private byte[] TwoRounds(out long firstRoundPages, out long zeroPages)
    {
        var random = new Random(20261208);
        var page = new byte[4096];
        foreach (ulong address in new ulong[] { 0x0, 0x1000, 0x5000, 0xF_F000, 0x1_0000_0000, 0x1_0007_F000 })
        {
            random.NextBytes(page);
            _source.Write(address, page);
        }

        using var wire = new MemoryStream();
        var writer = new MigrationWriter(wire);
        writer.WriteHeader(Header);
        var all = _source.CreateDirtyBitmaps();
        foreach (var bitmap in all)
        {
            bitmap.MarkRangeConcurrent(0, bitmap.PageCount);
        }

        firstRoundPages = writer.WritePages(_source, all);
        zeroPages = writer.ZeroPagesSent;
        writer.WriteRoundEnd(0);

        _source.Write<ulong>(0x5008, 0xDEAD_BEEF);
        _source.Fill(0x1000, 0x1000, 0); // a page that became zero
        var second = _source.CreateDirtyBitmaps();
        second[0].MarkDirty(0x5);
        second[0].MarkDirty(0x1);
        writer.WritePages(_source, second);
        writer.WriteRoundEnd(1);
        writer.WriteState("state-bytes"u8);
        writer.WriteEnd();
        return wire.ToArray();
    }

    [Fact]
    public void RoundTrip_TheDestinationsRamEqualsTheSources_AndTheStateArrives()
    {
        byte[] wire = TwoRounds(out long firstRound, out long zero);
        Assert.Equal((0x10_0000 + 0x8_0000) / 4096, firstRound);
        Assert.Equal(firstRound - 6, zero);

        var reader = new MigrationReader(new MemoryStream(wire));
        var header = reader.ReadHeader();
        Assert.Equal(Header.Machine, header.Machine);
        Assert.Equal(Layout, header.Ram);
        Assert.Equal("state-bytes"u8.ToArray(), reader.ReadPagesUntilState(_destination));
        reader.ReadEnd();

        Assert.Equal(2, reader.Rounds);
        foreach (var region in Layout)
        {
            var a = new byte[region.Size];
            var b = new byte[region.Size];
            _source.Read(region.Start, a);
            _destination.Read(region.Start, b);
            Assert.True(a.AsSpan().SequenceEqual(b), $"RAM at 0x{region.Start:x} differs");
        }

        Assert.Equal(0xDEAD_BEEFUL, _destination.Read<ulong>(0x5008));
        // Zero pages travel as counts: the stream is the six data pages of round one, the page rewritten in round two
        // (the one that became zero is a count), and small records.
        Assert.InRange(wire.Length, 7 * 4096, (7 * 4096) + 1024);
    }

    [Fact]
    public void AFlippedByte_FailsTheChecksum()
    {
        byte[] wire = TwoRounds(out _, out _);
        wire[200] ^= 1; // inside the first data page

        var reader = new MigrationReader(new MemoryStream(wire));
        reader.ReadHeader();
        reader.ReadPagesUntilState(_destination);
        var e = Assert.Throws<MigrationException>(reader.ReadEnd);
        Assert.StartsWith("The migration stream is corrupt: checksum 0x", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Refusals_AreOneLineEach_AndWriteNothingOutsideRam()
    {
        byte[] wire = TwoRounds(out _, out _);

        byte[] notOurs = (byte[])wire.Clone();
        notOurs[0] = (byte)'X';
        Assert.Equal("The incoming connection is not a KvmSharp migration stream.", Refused(notOurs, _destination));

        byte[] newer = (byte[])wire.Clone();
        BinaryPrimitives.WriteUInt16LittleEndian(newer.AsSpan(8), 2);
        Assert.Equal("The source sends migration format 2.0; this KvmSharp takes 1.0 to 1.0. Use the same KvmSharp version on both sides.", Refused(newer, _destination));

        using (var smaller = GuestMemory.Create([new MemoryRange(0, 0x10_0000)]))
        {
            Assert.Equal("The source's RAM layout (0x0+1 MiB, 0x100000000+0 MiB) differs from this machine's (0x0+1 MiB). Start the destination with the same memory size.",
                Refused(wire, smaller));
        }

        // A run past its region's end: region 1 has 128 pages; ask for pages 127 and 128.
        int headerLength = 8 + 8 + Header.Machine.Length + 4 + (16 * Layout.Length);
        byte[] outside = wire[..headerLength].Concat(new byte[] { 1, 1, 0, 0, 0, 127, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0 }).Concat(new byte[8192]).ToArray();
        Assert.Equal("The migration stream is corrupt: 2 pages from page 127 of RAM region 1, outside its RAM.", Refused(outside, _destination));

        Assert.Equal("The migration stream ended early: the source stopped sending (see its output).", Refused(wire[..(headerLength + 100)], _destination));
    }

    private static string Refused(byte[] wire, GuestMemory memory)
    {
        var reader = new MigrationReader(new MemoryStream(wire));
        return Assert.Throws<MigrationException>(() =>
        {
            reader.ReadHeader();
            reader.ReadPagesUntilState(memory);
            reader.ReadEnd();
        }).Message;
    }
}
