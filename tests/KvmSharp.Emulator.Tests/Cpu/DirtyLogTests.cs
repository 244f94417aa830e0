using KvmSharp.Emulator.Cpu;
using KvmSharp.Memory;

namespace KvmSharp.Emulator.Tests.Cpu;

/// <summary>The software CPU's stores reach the guest memory's dirty log: exactly the pages written, by every store path.</summary>
public sealed class DirtyLogTests
{
    // mov byte [0x20000], 1          (a store within a page: the host-pointer fast path)
    // mov [0x22ffc], rax             (8 bytes across 0x22000/0x23000: the split path)
    // mov rdi, 0x25000; mov ecx, 100; xor eax, eax; rep stosb   (the string fill)
    // hlt
    private static readonly byte[] Stores =
    [
        0xC6, 0x04, 0x25, 0x00, 0x00, 0x02, 0x00, 0x01,
        0x48, 0x89, 0x04, 0x25, 0xFC, 0x2F, 0x02, 0x00,
        0x48, 0xBF, 0x00, 0x50, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00,
        0xB9, 0x64, 0x00, 0x00, 0x00,
        0x31, 0xC0,
        0xF3, 0xAA,
        0xF4,
    ];

    [Fact]
    public void Stores_AndPageWalkBits_LogExactlyTheirPages()
    {
        using var f = new CpuFixture(Stores);
        f.Memory.StartDirtyLog();

        Assert.Equal(StepStatus.Halted, f.Run().Status);

        var bitmaps = f.Memory.CreateDirtyBitmaps();
        f.Memory.CollectDirty(bitmaps);
        // The four paging levels (the walks set accessed and dirty bits), then the three stores' pages.
        Assert.Equal([0x1000UL, 0x2000, 0x3000, 0x4000, 0x2_0000, 0x2_2000, 0x2_3000, 0x2_5000], Assert.Single(bitmaps).DirtyPageAddresses());
    }

    [Fact]
    public void WithoutADirtyLog_StoresLogNothing_AndCollectingIsRefused()
    {
        using var f = new CpuFixture(Stores);

        Assert.Equal(StepStatus.Halted, f.Run().Status);

        Assert.False(f.Memory.IsLoggingDirty);
        Assert.Throws<InvalidOperationException>(() => f.Memory.CollectDirty(f.Memory.CreateDirtyBitmaps()));
    }
}
