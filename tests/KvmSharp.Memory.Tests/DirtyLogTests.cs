namespace KvmSharp.Memory.Tests;

/// <summary>GuestMemory's dirty log: what the VMM's writes and reported ranges mark, per region, and collecting it.</summary>
public sealed class DirtyLogTests : IDisposable
{
    // Two regions with a hole: [0, 64 KiB) and [1 MiB, 1 MiB + 32 KiB).
    private readonly GuestMemory _memory = GuestMemory.Create([new MemoryRange(0, 0x1_0000), new MemoryRange(0x10_0000, 0x8000)]);

    public void Dispose() => _memory.Dispose();

    private List<ulong> Collect()
    {
        var bitmaps = _memory.CreateDirtyBitmaps();
        _memory.CollectDirty(bitmaps);
        return [.. bitmaps.SelectMany(b => b.DirtyPageAddresses())];
    }

    [Fact]
    public void Writes_MarkEveryPageTheyTouch_AndReadsNone()
    {
        _memory.StartDirtyLog();
        _memory.Write(0x0FFF, (ReadOnlySpan<byte>)[1, 2]);                // across pages 0 and 1
        _memory.Write<ulong>(0x10_7FF8, 7);                                // the second region's last page
        _memory.Fill(0x3000, 0x2001, 0xAA);                                // pages 3, 4 and the first byte of 5
        Span<byte> buffer = stackalloc byte[16];
        _memory.Read(0x9000, buffer);
        Assert.True(_memory.TryGetSpan(0xA000, 16, out _));               // a span alone marks nothing

        Assert.Equal([0x0000UL, 0x1000, 0x3000, 0x4000, 0x5000, 0x10_7000], Collect());
        Assert.Empty(Collect()); // collecting cleared the log
    }

    [Fact]
    public void MarkDirty_ClipsToRam_AndMarkDirtyHost_MapsHostAddressesBack()
    {
        _memory.StartDirtyLog();
        _memory.MarkDirty(0xF000, 0x10_2000 - 0xF000);                            // from the first region's last page over the hole into the second
        Assert.True(_memory.TryGetHostAddress(0x10_4000, 0x1000, out nint host));
        Assert.Equal([0xF000UL, 0x10_0000, 0x10_1000], Collect());

        _memory.MarkDirtyHost(host + 0x10, 0x1000);                        // 0x10_4010 .. 0x10_500F
        _memory.MarkDirtyHost(12345, 0x1000);                              // not guest RAM: ignored
        _memory.MarkDirty(0x2_0000, 0x1000);                               // in the hole: ignored
        Assert.Equal([0x10_4000UL, 0x10_5000], Collect());
    }

    [Fact]
    public void Stopped_MarksNothing_AndRestartingStartsClean()
    {
        _memory.StartDirtyLog();
        _memory.Write<byte>(0x2000, 1);
        _memory.StopDirtyLog();
        _memory.Write<byte>(0x6000, 1);
        Assert.False(_memory.IsLoggingDirty);

        _memory.StartDirtyLog();
        _memory.Write<byte>(0x7000, 1);
        Assert.Equal([0x7000UL], Collect());
    }

    [Fact]
    public async Task ConcurrentWriters_LoseNoPage_WhileACollectorRuns()
    {
        _memory.StartDirtyLog();
        var collected = new HashSet<ulong>();
        using var done = new ManualResetEventSlim();
        var collector = Task.Run(() =>
        {
            while (!done.IsSet)
            {
                collected.UnionWith(Collect());
            }
        });
        Parallel.For(0, 4, writer =>
        {
            for (ulong page = (ulong)writer; page < 16; page += 4)
            {
                _memory.Write<uint>(page * 0x1000, 1);
                _memory.MarkDirty(0x10_0000 + (page % 8 * 0x1000), 4);
            }
        });
        done.Set();
        await collector;
        collected.UnionWith(Collect());

        var expected = Enumerable.Range(0, 16).Select(p => (ulong)p * 0x1000).Concat(Enumerable.Range(0, 8).Select(p => 0x10_0000 + ((ulong)p * 0x1000)));
        Assert.Equal(expected.Order(), collected.Order());
    }
}
