using System.Buffers.Binary;
using KvmSharp.Devices.Virtio;
using KvmSharp.Memory;

namespace KvmSharp.Devices.Tests.Virtio;

/// <summary>
/// A virtio block device over a scratch raw image in its own temporary directory, a guest RAM, a driver queue and a
/// recording interrupt; helpers to build requests and read back the answer.
/// </summary>
internal sealed class BlockRig : IDisposable
{
    public const ushort QueueSize = 16;
    public const ulong RamSize = 0x20_0000;
    public const ulong RingBase = 0x1000;
    public const ulong IndirectTable = 0x4000;

    private readonly string _directory;

    public BlockRig(int sectors = 128, bool readOnly = false, string? serial = null, ulong? features = null, ushort queueSize = QueueSize)
    {
        _directory = Directory.CreateTempSubdirectory("kvmsharp-virtio-blk-").FullName;
        ImagePath = Path.Combine(_directory, "disk.img");
        OriginalImage = Pattern(sectors * BlockImage.SectorSize, seed: 1);
        File.WriteAllBytes(ImagePath, OriginalImage);
        Memory = GuestMemory.Create(RamSize);
        Driver = new DriverQueue(Memory, RingBase, queueSize);
        Arena = new GuestArena(0x10000, RamSize);
        Device = new VirtioBlock(Memory, BlockImage.Open(ImagePath, readOnly), serial);
        Device.Activate(features ?? Device.DeviceFeatures, [Driver.Layout], Interrupt);
    }

    public string ImagePath { get; }

    public byte[] OriginalImage { get; }

    public GuestMemory Memory { get; }

    public DriverQueue Driver { get; }

    public GuestArena Arena { get; }

    public RecordingVirtioInterrupt Interrupt { get; } = new();

    public VirtioBlock Device { get; }

    public byte[] ImageBytes() => File.ReadAllBytes(ImagePath);

    /// <summary>Deterministic non-zero-heavy bytes: every sector of the image and every guest buffer differs.</summary>
    public static byte[] Pattern(int length, int seed)
    {
        var bytes = new byte[length];
        uint x = (uint)seed * 2654435761u;
        for (int i = 0; i < length; i++)
        {
            x = (x * 1103515245u) + 12345u;
            bytes[i] = (byte)(x >> 16);
        }

        return bytes;
    }

    /// <summary>A 16-byte request header (type, reserved, sector) in guest RAM.</summary>
    public ulong Header(uint type, ulong sector, uint reserved = 0)
    {
        ulong at = Arena.Allocate(16);
        Memory.Write(at, type);
        Memory.Write(at + 4, reserved);
        Memory.Write(at + 8, sector);
        return at;
    }

    /// <summary>A guest buffer holding <paramref name="contents"/>.</summary>
    public ulong Buffer(byte[] contents)
    {
        ulong at = Arena.Allocate((ulong)Math.Max(contents.Length, 1));
        Memory.Write(at, contents);
        return at;
    }

    /// <summary>A guest buffer of <paramref name="length"/> bytes filled with 0xEE (so untouched bytes show).</summary>
    public ulong Filled(int length, byte value = 0xEE)
    {
        ulong at = Arena.Allocate((ulong)Math.Max(length, 1));
        Memory.Fill(at, (ulong)length, value);
        return at;
    }

    /// <summary>One status byte, preset to 0xEE.</summary>
    public ulong Status() => Filled(1);

    /// <summary>Discard/write-zeroes segments (sector, num_sectors, flags) in guest RAM.</summary>
    public ulong Segments(params (ulong Sector, uint Count, uint Flags)[] segments)
    {
        var raw = new byte[16 * segments.Length];
        for (int i = 0; i < segments.Length; i++)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(raw.AsSpan(16 * i), segments[i].Sector);
            BinaryPrimitives.WriteUInt32LittleEndian(raw.AsSpan((16 * i) + 8), segments[i].Count);
            BinaryPrimitives.WriteUInt32LittleEndian(raw.AsSpan((16 * i) + 12), segments[i].Flags);
        }

        return Buffer(raw);
    }

    /// <summary>Makes the chain available, kicks the device, and returns its single used element.</summary>
    public (uint Id, uint Length) Submit(params DriverBuffer[] chain)
    {
        ushort head = Driver.AddChain(chain);
        Device.QueueNotify(0);
        var used = Assert.Single(Driver.TakeUsed());
        Assert.Equal(head, used.Id);
        return used;
    }

    /// <summary>As <see cref="Submit"/>, through an indirect table.</summary>
    public (uint Id, uint Length) SubmitIndirect(params DriverBuffer[] chain)
    {
        ushort head = Driver.AddIndirectChain(IndirectTable, chain);
        Device.QueueNotify(0);
        var used = Assert.Single(Driver.TakeUsed());
        Assert.Equal(head, used.Id);
        return used;
    }

    public byte ReadByte(ulong address) => Memory.Read<byte>(address);

    public byte[] ReadBytes(ulong address, int length)
    {
        var bytes = new byte[length];
        Memory.Read(address, bytes);
        return bytes;
    }

    public void Dispose()
    {
        Device.Dispose();
        Memory.Dispose();
        Directory.Delete(_directory, recursive: true);
    }
}
