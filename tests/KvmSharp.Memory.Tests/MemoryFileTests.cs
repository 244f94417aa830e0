using KvmSharp.Memory;

namespace KvmSharp.Memory.Tests;

/// <summary>The snapshot memory file: GuestMemory.WriteTo and MapFromFile.</summary>
public sealed class MemoryFileTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("kvmsharp-memfile-").FullName;

    private static readonly MemoryRange[] Ranges = [new(0, 0x10_0000), new(0x20_0000, 0x4_0000)];

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void WriteTo_ThenMapFromFile_GivesTheSameBytes_AndWritesStayInTheProcess()
    {
        string path = Path.Combine(_dir, "memory.bin");
        using (var memory = GuestMemory.Create(Ranges))
        {
            memory.Write<ulong>(0x1000, 0x1122_3344_5566_7788);
            memory.Write<uint>(0xF_FFFC, 0xCAFE_BABE);
            memory.Write<ushort>(0x20_0000, 0xBEEF);
            memory.Write<byte>(0x23_FFFF, 0x5A);
            var reports = new List<long>();
            memory.WriteTo(path, new SyncProgress(reports));
            Assert.Equal(0x14_0000, reports[^1]);
        }

        Assert.Equal(0x14_0000, new FileInfo(path).Length);
        Assert.False(File.Exists(path + ".tmp"));
        byte[] before = File.ReadAllBytes(path);
        Assert.Equal(0xBEEF, BitConverter.ToUInt16(before, 0x10_0000));

        using (var restored = GuestMemory.MapFromFile(Ranges, path))
        {
            Assert.Equal(0x1122_3344_5566_7788UL, restored.Read<ulong>(0x1000));
            Assert.Equal(0xCAFE_BABEu, restored.Read<uint>(0xF_FFFC));
            Assert.Equal((ushort)0xBEEF, restored.Read<ushort>(0x20_0000));
            Assert.Equal((byte)0x5A, restored.Read<byte>(0x23_FFFF));
            Assert.Equal(0UL, restored.Read<ulong>(0x8000));
            restored.Write<ulong>(0x1000, 0);
            Assert.Equal(0UL, restored.Read<ulong>(0x1000));
        }

        Assert.Equal(before, File.ReadAllBytes(path));
    }

    [Fact]
    public void WriteTo_LeavesZeroPagesAsHoles()
    {
        string path = Path.Combine(_dir, "sparse.bin");
        using var memory = GuestMemory.Create(64UL << 20);
        memory.Write<byte>(0x10_0000, 1);
        memory.WriteTo(path);
        Assert.Equal(64L << 20, new FileInfo(path).Length);
        Assert.True(AllocatedBytes(path) < (1L << 20), $"{AllocatedBytes(path)} bytes allocated for one non-zero page");
    }

    [Fact]
    public void WriteTo_OverTheFileTheMemoryIsMappedFrom_KeepsTheMappedPages()
    {
        string path = Path.Combine(_dir, "memory.bin");
        using (var memory = GuestMemory.Create(Ranges))
        {
            memory.Write<uint>(0x3000, 7);
            memory.WriteTo(path);
        }

        using var restored = GuestMemory.MapFromFile(Ranges, path);
        restored.Write<uint>(0x4000, 9);
        restored.WriteTo(path);
        // Page 0x3000 was never copied into the process: had the file been rewritten in place, a later change would show.
        Assert.Equal(7u, restored.Read<uint>(0x3000));
        using var again = GuestMemory.MapFromFile(Ranges, path);
        Assert.Equal(7u, again.Read<uint>(0x3000));
        Assert.Equal(9u, again.Read<uint>(0x4000));
    }

    [Fact]
    public void MapFromFile_OfTheWrongSizeOrAMissingFile_SaysSoInOneLine()
    {
        string path = Path.Combine(_dir, "short.bin");
        File.WriteAllBytes(path, new byte[4096]);
        var wrong = Assert.Throws<GuestMemoryException>(() => GuestMemory.MapFromFile(Ranges, path));
        Assert.Equal($"The memory file '{path}' is 4096 bytes but the snapshot's machine has 1310720 bytes of RAM: it belongs to another snapshot.", wrong.Message);
        var missing = Assert.Throws<GuestMemoryException>(() => GuestMemory.MapFromFile(Ranges, Path.Combine(_dir, "none.bin")));
        Assert.StartsWith("Cannot open the memory file", missing.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', missing.Message);
    }

    private static long AllocatedBytes(string path)
    {
        var psi = new System.Diagnostics.ProcessStartInfo("stat", ["-c", "%b %B", path]) { RedirectStandardOutput = true };
        using var p = System.Diagnostics.Process.Start(psi)!;
        string[] parts = p.StandardOutput.ReadToEnd().Trim().Split(' ');
        p.WaitForExit();
        return long.Parse(parts[0], System.Globalization.CultureInfo.InvariantCulture) * long.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture);
    }

    private sealed class SyncProgress(List<long> reports) : IProgress<long>
    {
        public void Report(long value) => reports.Add(value);
    }
}
