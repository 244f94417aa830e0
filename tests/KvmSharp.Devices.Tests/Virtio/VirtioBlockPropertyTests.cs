using FsCheck;
using FsCheck.Fluent;
using KvmSharp.Devices.Virtio;

namespace KvmSharp.Devices.Tests.Virtio;

/// <summary>
/// Random requests — random types, sectors, header lengths, data pieces in either direction, buffers outside RAM or
/// overflowing, missing status bytes, direct or indirect — never make the block device throw. Each one is answered
/// (a status in the last writable byte, or used length 0 when the chain was refused or had no status byte), or the
/// device asks for a reset. The image changes only where a successful write, discard or write-zeroes says, and
/// guest RAM only in the chain's writable buffers and the used ring.
/// </summary>
[Collection(VirtioTestCollection.Name)]
public sealed class VirtioBlockPropertyTests
{
    private const int Sector = 512;
    private const int Sectors = 64;
    private const ulong WatchedRam = 0x4_0000;

    private enum Placement
    {
        InRam,
        OutsideRam,
        Overflowing,
    }

    private sealed record Piece(int Length, bool Writable, Placement Placement, int Seed);

    private sealed record Request(uint Type, ulong Sector, int HeaderLength, Piece[] Data, bool HasStatus, bool Indirect);

    private static readonly Gen<ulong> Sectors_ = Gen.Frequency(
        (8, Gen.Choose(0, Sectors + 4).Select(static s => (ulong)s)),
        (1, Gen.Elements(ulong.MaxValue, 1UL << 55, (ulong)Sectors)));

    private static readonly Gen<Piece> Pieces =
        from length in Gen.Frequency((6, Gen.Elements(512, 1024, 16, 32)), (2, Gen.Elements(0, 1, 100, 513)), (1, Gen.Choose(0, 2048)))
        from writable in Gen.Elements(true, false)
        from placement in Gen.Frequency((18, Gen.Constant(Placement.InRam)), (1, Gen.Constant(Placement.OutsideRam)), (1, Gen.Constant(Placement.Overflowing)))
        from seed in Gen.Choose(1, 1_000_000)
        select new Piece(length, writable, placement, seed);

    private static readonly Gen<Request> Requests =
        from type in Gen.Elements(0u, 0u, 1u, 1u, 4u, 8u, 11u, 13u, 13u, 2u, 99u)
        from sector in Sectors_
        from headerLength in Gen.Frequency((8, Gen.Constant(16)), (1, Gen.Elements(0, 8, 15, 24)))
        from data in Gen.Choose(0, 3).SelectMany(static n => Pieces.ArrayOf(n))
        from hasStatus in Gen.Frequency((9, Gen.Constant(true)), (1, Gen.Constant(false)))
        from indirect in Gen.Elements(false, false, true)
        select new Request(type, sector, headerLength, data, hasStatus, indirect);

    private sealed record RawDescriptor(int Target, uint Length, ushort Flags, ushort Next);

    private sealed record RawRing(ulong Features, RawDescriptor[] Table, RawDescriptor[][] Indirect, ushort[] Heads, ushort AvailableIndex, int[] HeaderTypes, int[] HeaderSectors);

    private const ushort RawQueueSize = 8;
    private const int RawBuffers = 6;

    // Targets 0..5: headers and data buffers in RAM; 6, 7: the indirect tables; 8: outside RAM; 9: overflowing.
    private static readonly Gen<RawDescriptor> RawDescriptors =
        from target in Gen.Frequency((8, Gen.Choose(0, RawBuffers - 1)), (2, Gen.Choose(RawBuffers, RawBuffers + 1)), (1, Gen.Choose(RawBuffers + 2, RawBuffers + 3)))
        from length in Gen.Elements(0u, 1u, 8u, 16u, 17u, 32u, 100u, 512u, 1024u, 0xFFFF_FFFFu)
        from flags in Gen.Choose(0, 7)
        from next in Gen.Choose(0, RawQueueSize + 1)
        select new RawDescriptor(target, length, (ushort)flags, (ushort)next);

    private static readonly Gen<RawRing> RawRings =
        from features in Gen.Elements(VirtioFeatures.EventIndex | VirtioFeatures.IndirectDescriptors, VirtioFeatures.IndirectDescriptors, 0UL)
        from table in RawDescriptors.ArrayOf(RawQueueSize)
        from indirect in RawDescriptors.ArrayOf(RawQueueSize).ArrayOf(2)
        from heads in Gen.Frequency((9, Gen.Choose(0, RawQueueSize - 1)), (1, Gen.Choose(RawQueueSize, RawQueueSize + 2))).Select(static h => (ushort)h).ArrayOf(RawQueueSize)
        from available in Gen.Frequency((9, Gen.Choose(1, RawQueueSize)), (1, Gen.Choose(RawQueueSize + 1, 0xFFFF)))
        from types in Gen.Elements(0, 4, 8, 2, 99).ArrayOf(3)
        from sectors in Gen.Choose(0, Sectors + 2).ArrayOf(3)
        select new RawRing(VirtioFeatures.Version1 | features, table, indirect, heads, (ushort)available, types, sectors);

    /// <summary>
    /// Raw random rings over buffers holding non-writing request headers (read, flush, get-id, unknown types):
    /// whatever the flags, lengths and links, nothing throws, every chain is used or the device asks for a reset,
    /// the image never changes, and guest RAM changes only in the used ring and in ranges some descriptor marked
    /// device-writable.
    /// </summary>
    [Fact]
    public void RawRandomChains_NeverThrow_NeverTouchTheImage_AndWriteOnlyWritableRanges()
    {
        Prop.ForAll(RawRings.ToArbitrary(), static ring => RunRaw(ring)).Check(Config.QuickThrowOnFailure.WithMaxTest(300));
    }

    private static bool RunRaw(RawRing ring)
    {
        using var rig = new BlockRig(sectors: Sectors, queueSize: RawQueueSize);
        var targets = new ulong[RawBuffers + 4];
        for (int i = 0; i < RawBuffers; i++)
        {
            targets[i] = i < 3 ? rig.Header((uint)ring.HeaderTypes[i], (ulong)ring.HeaderSectors[i]) : rig.Buffer(BlockRig.Pattern(1024, i));
            rig.Filled(1024, 0x11); // every target has 1 KiB of RAM after it
        }

        targets[RawBuffers] = BlockRig.IndirectTable;
        targets[RawBuffers + 1] = BlockRig.IndirectTable + 0x400;
        targets[RawBuffers + 2] = BlockRig.RamSize - 8;
        targets[RawBuffers + 3] = ulong.MaxValue - 8;

        var writableRanges = new List<(ulong Address, ulong Length)>();
        void Write(ulong table, int index, RawDescriptor d)
        {
            rig.Driver.WriteDescriptorAt(table, index, targets[d.Target], d.Length, d.Flags, d.Next);
            if ((d.Flags & SplitVirtQueue.DescriptorFlagWrite) != 0)
            {
                writableRanges.Add((targets[d.Target], d.Length));
            }
        }

        for (int i = 0; i < RawQueueSize; i++)
        {
            Write(rig.Driver.DescriptorTable, i, ring.Table[i]);
            Write(targets[RawBuffers], i, ring.Indirect[0][i]);
            Write(targets[RawBuffers + 1], i, ring.Indirect[1][i]);
        }

        for (int i = 0; i < RawQueueSize; i++)
        {
            rig.Memory.Write(rig.Driver.AvailableRing + 4 + (2UL * (uint)i), ring.Heads[i]);
        }

        rig.Driver.SetAvailableIndex(ring.AvailableIndex);
        rig.Device.Activate(ring.Features | (rig.Device.DeviceFeatures & ~(VirtioFeatures.EventIndex | VirtioFeatures.IndirectDescriptors)), [rig.Driver.Layout], rig.Interrupt);
        byte[] ramBefore = rig.ReadBytes(0, (int)WatchedRam);

        rig.Device.QueueNotify(0);

        bool answered = rig.Interrupt.NeedsResetCalls == 1 || (rig.Interrupt.NeedsResetCalls == 0 && rig.Driver.UsedIndex == ring.AvailableIndex);
        byte[] ramAfter = rig.ReadBytes(0, (int)WatchedRam);
        for (int i = 0; i < ramAfter.Length; i++)
        {
            ulong at = (ulong)i;
            if (ramAfter[i] != ramBefore[i]
                && !(at >= rig.Driver.UsedRing && at < rig.Driver.End)
                && !writableRanges.Exists(r => at >= r.Address && at - r.Address < r.Length))
            {
                return false;
            }
        }

        return answered && rig.ImageBytes().AsSpan().SequenceEqual(rig.OriginalImage);
    }

    [Fact]
    public void RandomRequests_AreAnsweredAndChangeOnlyWhatTheyShould()
    {
        Prop.ForAll(Requests.ArrayOf().Select(static r => r.Take(8).ToArray()).ToArbitrary(), static requests => Run(requests))
            .Check(Config.QuickThrowOnFailure.WithMaxTest(150));
    }

    private static bool Run(Request[] requests)
    {
        using var rig = new BlockRig(sectors: Sectors);
        foreach (var request in requests)
        {
            if (!RunOne(rig, request))
            {
                return false;
            }

            if (rig.Interrupt.NeedsResetCalls != 0)
            {
                break;
            }
        }

        return true;
    }

    private static bool RunOne(BlockRig rig, Request request)
    {
        var chain = new List<DriverBuffer>();
        if (request.HeaderLength > 0)
        {
            ulong header = rig.Header(request.Type, request.Sector);
            rig.Filled(8, 0); // room for a 24-byte "header"
            chain.Add(DriverBuffer.Out(header, (uint)request.HeaderLength));
        }

        foreach (var piece in request.Data)
        {
            ulong address = piece.Placement switch
            {
                Placement.InRam => rig.Buffer(request.Type is 11 or 13 && !piece.Writable ? SegmentBytes(piece) : BlockRig.Pattern(piece.Length, piece.Seed)),
                Placement.OutsideRam => BlockRig.RamSize - 8,
                _ => ulong.MaxValue - 4,
            };
            chain.Add(new DriverBuffer(address, (uint)piece.Length, piece.Writable));
        }

        if (request.HasStatus)
        {
            chain.Add(DriverBuffer.In(rig.Status(), 1));
        }

        if (chain.Count == 0)
        {
            return true;
        }

        // A readable buffer after a writable one is a malformed chain: keep some, as a hostile driver would.
        ushort head = request.Indirect ? rig.Driver.AddIndirectChain(BlockRig.IndirectTable, [.. chain]) : rig.Driver.AddChain([.. chain]);
        byte[] imageBefore = rig.ImageBytes();
        byte[] ramBefore = rig.ReadBytes(0, (int)WatchedRam);
        long malformedBefore = rig.Device.QueueCounters.MalformedChains;

        rig.Device.QueueNotify(0);

        if (rig.Interrupt.NeedsResetCalls != 0)
        {
            return rig.ImageBytes().AsSpan().SequenceEqual(imageBefore);
        }

        var used = rig.Driver.TakeUsed();
        if (used.Count != 1 || used[0].Id != head)
        {
            return false;
        }

        bool refused = rig.Device.QueueCounters.MalformedChains != malformedBefore;
        var writable = chain.Where(static b => b.Writable).ToList();
        var statusBuffer = writable.LastOrDefault(static b => b.Length > 0);
        if (refused || statusBuffer.Length == 0)
        {
            // Nothing answered (a refused chain, or no writable byte for a status): used length 0, nothing touched.
            return used[0].Length == 0
                && rig.ImageBytes().AsSpan().SequenceEqual(imageBefore)
                && OnlyChanged(rig, ramBefore, []);
        }

        byte answer = rig.ReadByte(statusBuffer.Address + statusBuffer.Length - 1);
        if (answer > VirtioBlock.StatusUnsupported)
        {
            return false;
        }

        byte[] imageAfter = rig.ImageBytes();
        if (!OnlyChanged(rig, ramBefore, writable))
        {
            return false;
        }

        // Judge the answer by what the device parsed: the readable bytes as one stream, the header first.
        byte[] readable = [.. chain.Where(static b => !b.Writable).SelectMany(b => rig.ReadBytes(b.Address, (int)b.Length))];
        uint type = readable.Length >= 16 ? BitConverter.ToUInt32(readable, 0) : uint.MaxValue;
        ulong sector = readable.Length >= 16 ? BitConverter.ToUInt64(readable, 8) : 0;
        if (answer != VirtioBlock.StatusOk || type is VirtioBlock.RequestIn or VirtioBlock.RequestFlush or VirtioBlock.RequestGetId)
        {
            if (!imageAfter.AsSpan().SequenceEqual(imageBefore))
            {
                return false;
            }

            if (answer == VirtioBlock.StatusOk && type == VirtioBlock.RequestIn)
            {
                // A successful read filled the data area with the image's sectors.
                byte[] data = [.. writable.SelectMany(b => rig.ReadBytes(b.Address, (int)b.Length))];
                int length = data.Length - 1;
                return data.AsSpan(0, length).SequenceEqual(imageBefore.AsSpan((int)sector * Sector, length));
            }

            return answer != VirtioBlock.StatusOk || type is VirtioBlock.RequestFlush or VirtioBlock.RequestGetId;
        }

        // A successful write changed exactly its range to its data; discard and write zeroes zeroed their segments.
        var expected = (byte[])imageBefore.Clone();
        if (type == VirtioBlock.RequestOut)
        {
            readable.AsSpan(16).CopyTo(expected.AsSpan((int)sector * Sector));
        }
        else if (type is VirtioBlock.RequestDiscard or VirtioBlock.RequestWriteZeroes)
        {
            for (int i = 16; i < readable.Length; i += 16)
            {
                int first = (int)BitConverter.ToUInt64(readable, i);
                int count = (int)BitConverter.ToUInt32(readable, i + 8);
                Array.Clear(expected, first * Sector, count * Sector);
            }
        }
        else
        {
            return false; // No other type may succeed.
        }

        return imageAfter.AsSpan().SequenceEqual(expected);
    }

    /// <summary>Discard/write-zeroes segments: sector 0..70, 0..10 sectors, flags 0..3 (unmap and a reserved bit).</summary>
    private static byte[] SegmentBytes(Piece piece)
    {
        var bytes = new byte[piece.Length];
        var random = new Random(piece.Seed);
        for (int i = 0; i + 16 <= bytes.Length; i += 16)
        {
            BitConverter.TryWriteBytes(bytes.AsSpan(i), (ulong)random.Next(0, 71));
            BitConverter.TryWriteBytes(bytes.AsSpan(i + 8), (uint)random.Next(0, 11));
            BitConverter.TryWriteBytes(bytes.AsSpan(i + 12), (uint)(random.Next(0, 8) == 0 ? random.Next(0, 4) : 0));
        }

        return bytes;
    }

    /// <summary>Guest RAM below <see cref="WatchedRam"/> changed only in the used ring and <paramref name="writable"/>.</summary>
    private static bool OnlyChanged(BlockRig rig, byte[] before, List<DriverBuffer> writable)
    {
        byte[] after = rig.ReadBytes(0, (int)WatchedRam);
        for (int i = 0; i < after.Length; i++)
        {
            if (after[i] == before[i])
            {
                continue;
            }

            ulong at = (ulong)i;
            bool inUsedRing = at >= rig.Driver.UsedRing && at < rig.Driver.End;
            bool inWritable = writable.Exists(b => at >= b.Address && at - b.Address < b.Length);
            if (!inUsedRing && !inWritable)
            {
                return false;
            }
        }

        return true;
    }
}
