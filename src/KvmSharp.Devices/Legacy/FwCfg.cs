using System.Buffers.Binary;
using System.Text;
using KvmSharp.Devices.Bus;

namespace KvmSharp.Devices.Legacy;

/// <summary>
/// QEMU's firmware configuration device (fw_cfg), traditional I/O interface only: a guest selects an item by
/// writing its 16-bit key to the selector port 0x510 and reads the item's bytes one at a time from the data port
/// 0x511. Follows QEMU's docs/specs/fw_cfg.rst and hw/nvram/fw_cfg.c.
/// </summary>
/// <remarks>
/// <para>Registered as one two-port range at 0x510, like QEMU's combined x86 region (fw_cfg_comb_mem_ops): a
/// 16-bit write at the selector selects a key and rewinds the offset; a one-byte read at either port returns the
/// next byte of the item and advances, and past the item's end (or for a key with no item) returns 0 without
/// advancing; one-byte writes (the old write interface, ignored by QEMU since 2.4 on x86) are ignored, as are
/// other widths; reads of other widths return zeros.</para>
/// <para>Keys: bit 14 (FW_CFG_WRITE_CHANNEL) is ignored; keys with bit 15 (FW_CFG_ARCH_LOCAL) set select the
/// architecture's items, of which this model has none. Items: signature "QEMU" (0x0000), ID 1 = traditional
/// interface, no DMA (0x0001), RAM size (0x0003, u64 LE), CPU count (0x0005, u16 LE), max CPU count (0x000F, u16
/// LE), the file directory (0x0019) and the files from 0x0020 on, sorted by name (strcmp order of their bytes)
/// with keys assigned in that order, as QEMU does. The DMA interface (port 0x514) is not modelled.</para>
/// <para>Thread-safe. Selecting and reading allocate nothing; adding items (machine setup) does.</para>
/// </remarks>
public sealed class FwCfg : IBusDevice
{
    /// <summary>The selector port; register the device here with <see cref="PortCount"/> ports.</summary>
    public const ushort SelectorPort = 0x510;

    /// <summary>The data port.</summary>
    public const ushort DataPort = 0x511;

    /// <summary>Ports the device decodes: selector (offset 0) and data (offset 1).</summary>
    public const int PortCount = 2;

    // Item keys (fw_cfg.rst, "Selector (Control) Register" and "Standard Selector Keys").
    public const ushort SignatureKey = 0x0000;
    public const ushort IdKey = 0x0001;
    public const ushort RamSizeKey = 0x0003;
    public const ushort CpuCountKey = 0x0005;
    public const ushort MaxCpuCountKey = 0x000F;
    public const ushort FileDirectoryKey = 0x0019;
    public const ushort FirstFileKey = 0x0020;
    public const ushort WriteChannelBit = 0x4000;
    public const ushort ArchLocalBit = 0x8000;

    /// <summary>FW_CFG_ID feature bit 0: the traditional (port) interface. Bit 1 (DMA) stays clear.</summary>
    public const uint FeatureTraditional = 0b01;

    /// <summary>Longest file name: the directory's name field is 56 bytes including the terminating NUL.</summary>
    public const int MaxFileNameLength = 55;

    /// <summary>Bytes of one directory entry: be32 size, be16 select, be16 reserved, char name[56].</summary>
    public const int FileDirectoryEntrySize = 64;

    private const int FileNameFieldSize = 56;
    private const int SelectorOffset = 0;
    private const int MaxFiles = 0x4000 - FirstFileKey;

    private static readonly byte[] Signature = "QEMU"u8.ToArray();

    private readonly Lock _lock = new();
    private readonly Dictionary<ushort, byte[]> _items = [];
    private readonly List<KeyValuePair<byte[], byte[]>> _files = [];

    private ushort _selector;
    private byte[] _current = [];
    private int _offset;

    public FwCfg()
    {
        _items[SignatureKey] = Signature;
        var id = new byte[sizeof(uint)];
        BinaryPrimitives.WriteUInt32LittleEndian(id, FeatureTraditional);
        _items[IdKey] = id;
        SetRamSize(0);
        SetCpuCount(1, 1);
        RebuildFiles();
        _current = _items[SignatureKey];
    }

    /// <summary>Number of files added.</summary>
    public int FileCount
    {
        get
        {
            lock (_lock)
            {
                return _files.Count;
            }
        }
    }

    /// <summary>Sets FW_CFG_RAM_SIZE (u64 LE).</summary>
    public void SetRamSize(ulong bytes)
    {
        var item = new byte[sizeof(ulong)];
        BinaryPrimitives.WriteUInt64LittleEndian(item, bytes);
        SetItem(RamSizeKey, item);
    }

    /// <summary>Sets FW_CFG_NB_CPUS and FW_CFG_MAX_CPUS (u16 LE each); <paramref name="maxCpus"/> defaults to <paramref name="cpus"/>.</summary>
    public void SetCpuCount(ushort cpus, ushort? maxCpus = null)
    {
        ushort max = maxCpus ?? cpus;
        if (cpus == 0 || max < cpus)
        {
            throw new ArgumentOutOfRangeException(nameof(cpus), cpus, $"A machine needs at least one CPU and no more than its maximum ({max}). Check the CPU counts.");
        }

        var count = new byte[sizeof(ushort)];
        BinaryPrimitives.WriteUInt16LittleEndian(count, cpus);
        var maxCount = new byte[sizeof(ushort)];
        BinaryPrimitives.WriteUInt16LittleEndian(maxCount, max);
        SetItem(CpuCountKey, count);
        SetItem(MaxCpuCountKey, maxCount);
    }

    /// <summary>
    /// Adds a named file (e.g. "etc/e820", "opt/org.example/config"). Names are at most 55 bytes of UTF-8, contain
    /// no NUL, and are unique; files get keys from 0x0020 in name order, so adding one renumbers those after it.
    /// The device keeps <paramref name="data"/> (do not change it afterwards).
    /// </summary>
    public void AddFile(string name, byte[] data)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentNullException.ThrowIfNull(data);
        byte[] encoded = Encoding.UTF8.GetBytes(name);
        if (encoded.Length > MaxFileNameLength)
        {
            throw new ArgumentException($"fw_cfg file name '{name}' is {encoded.Length} bytes long; the limit is {MaxFileNameLength}. Use a shorter name.", nameof(name));
        }

        if (Array.IndexOf(encoded, (byte)0) >= 0)
        {
            throw new ArgumentException("fw_cfg file names cannot contain NUL characters. Remove them from the name.", nameof(name));
        }

        lock (_lock)
        {
            int index = 0;
            while (index < _files.Count)
            {
                int order = encoded.AsSpan().SequenceCompareTo(_files[index].Key);
                if (order == 0)
                {
                    throw new ArgumentException($"fw_cfg already has a file named '{name}'. Give each file a unique name.", nameof(name));
                }

                if (order < 0)
                {
                    break;
                }

                index++;
            }

            if (_files.Count == MaxFiles)
            {
                throw new ArgumentException($"fw_cfg holds at most {MaxFiles} files. Add fewer files.", nameof(name));
            }

            _files.Insert(index, new KeyValuePair<byte[], byte[]>(encoded, data));
            RebuildFiles();
        }
    }

    /// <summary>The key a file was given, or null if there is no such file.</summary>
    public ushort? GetFileKey(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        byte[] encoded = Encoding.UTF8.GetBytes(name);
        lock (_lock)
        {
            for (int i = 0; i < _files.Count; i++)
            {
                if (encoded.AsSpan().SequenceEqual(_files[i].Key))
                {
                    return (ushort)(FirstFileKey + i);
                }
            }

            return null;
        }
    }

    public void Read(ulong offset, Span<byte> data)
    {
        if (data.Length != 1)
        {
            data.Clear();
            return;
        }

        lock (_lock)
        {
            data[0] = _offset < _current.Length ? _current[_offset++] : (byte)0;
        }
    }

    public void Write(ulong offset, ReadOnlySpan<byte> data)
    {
        if (offset != SelectorOffset || data.Length != sizeof(ushort))
        {
            return;
        }

        lock (_lock)
        {
            Select(BinaryPrimitives.ReadUInt16LittleEndian(data));
        }
    }

    public FwCfgState Save()
    {
        lock (_lock)
        {
            return new FwCfgState(_selector, _offset);
        }
    }

    public void Restore(FwCfgState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        lock (_lock)
        {
            Select(state.Selector);
            _offset = Math.Clamp(state.Offset, 0, _current.Length);
        }
    }

    private void Select(ushort key)
    {
        _selector = key;
        _offset = 0;
        _current = (key & ArchLocalBit) == 0 && _items.TryGetValue((ushort)(key & ~WriteChannelBit), out var item) ? item : [];
    }

    private void SetItem(ushort key, byte[] item)
    {
        lock (_lock)
        {
            _items[key] = item;
            if ((ushort)(_selector & ~WriteChannelBit) == key && (_selector & ArchLocalBit) == 0)
            {
                _current = item;
            }
        }
    }

    /// <summary>Rebuilds the file directory and the file keys from the sorted file list (caller holds the lock).</summary>
    private void RebuildFiles()
    {
        for (ushort key = FirstFileKey; _items.Remove(key); key++)
        {
        }

        var directory = new byte[sizeof(uint) + (_files.Count * FileDirectoryEntrySize)];
        BinaryPrimitives.WriteUInt32BigEndian(directory, (uint)_files.Count);
        for (int i = 0; i < _files.Count; i++)
        {
            ushort key = (ushort)(FirstFileKey + i);
            var entry = directory.AsSpan(sizeof(uint) + (i * FileDirectoryEntrySize), FileDirectoryEntrySize);
            BinaryPrimitives.WriteUInt32BigEndian(entry, (uint)_files[i].Value.Length);
            BinaryPrimitives.WriteUInt16BigEndian(entry[4..], key);
            _files[i].Key.CopyTo(entry.Slice(8, FileNameFieldSize));
            _items[key] = _files[i].Value;
        }

        SetItem(FileDirectoryKey, directory);
        Select(_selector);
    }
}
