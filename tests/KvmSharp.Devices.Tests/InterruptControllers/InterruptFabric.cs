using System.Buffers.Binary;
using KvmSharp.Devices.InterruptControllers;

namespace KvmSharp.Devices.Tests.InterruptControllers;

/// <summary>A PC's interrupt fabric as the machine builder will wire it: PIC, IOAPIC, APIC bus, LAPICs, router.</summary>
internal sealed class InterruptFabric
{
    /// <summary>The TSC runs at 1 GHz: 100 TSC ticks per 100 ns fake-clock tick.</summary>
    public const long TscHz = 1_000_000_000;

    public InterruptFabric(int cpus = 1, uint timerGsi = 0)
    {
        var sync = new Lock();
        Pic = new Pic8259Pair(sync);
        Bus = new ApicBus(sync, Pic);
        IoApic = new IoApic(sync, Bus);
        Router = new InterruptRouter(Pic, IoApic, Bus, timerGsi);
        Lapics = new LocalApic[cpus];
        for (int i = 0; i < cpus; i++)
        {
            Lapics[i] = new LocalApic(Bus, (byte)i, i == 0, Time, ReadTsc, TscHz);
        }
    }

    public FakeTimeProvider Time { get; } = new(new DateTimeOffset(2024, 1, 1, 0, 0, 0, TimeSpan.Zero));

    public Pic8259Pair Pic { get; }

    public ApicBus Bus { get; }

    public IoApic IoApic { get; }

    public InterruptRouter Router { get; }

    public LocalApic[] Lapics { get; }

    public LocalApic Lapic => Lapics[0];

    public long Now => Time.GetTimestamp();

    public ulong ReadTsc() => (ulong)Time.GetTimestamp() * 100;

    public void Advance(long ticks) => Time.Advance(TimeSpan.FromTicks(ticks));

    public static uint Read(LocalApic apic, int offset)
    {
        byte[] data = new byte[4];
        apic.Read((ulong)offset, data);
        return BinaryPrimitives.ReadUInt32LittleEndian(data);
    }

    public static void Write(LocalApic apic, int offset, uint value)
    {
        byte[] data = new byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(data, value);
        apic.Write((ulong)offset, data);
    }

    public uint Read(int offset) => Read(Lapic, offset);

    public void Write(int offset, uint value) => Write(Lapic, offset, value);

    public void WriteIoApic(byte index, uint value)
    {
        IoApic.Write(0x00, BitConverter.GetBytes((uint)index));
        IoApic.Write(0x10, BitConverter.GetBytes(value));
    }

    public uint ReadIoApic(byte index)
    {
        IoApic.Write(0x00, BitConverter.GetBytes((uint)index));
        byte[] data = new byte[4];
        IoApic.Read(0x10, data);
        return BinaryPrimitives.ReadUInt32LittleEndian(data);
    }

    public void PicOut(int port, byte value)
    {
        var chip = port >= 0xA0 ? Pic.Slave : Pic.Master;
        chip.Write((ulong)(port & 1), [value]);
    }

    /// <summary>Linux's init_8259A: vectors 0x30/0x38, cascade, then the given masks.</summary>
    public void InitPic(byte masterMask, byte slaveMask = 0xFF)
    {
        PicOut(0x20, 0x11);
        PicOut(0x21, 0x30);
        PicOut(0x21, 0x04);
        PicOut(0x21, 0x01);
        PicOut(0xA0, 0x11);
        PicOut(0xA1, 0x38);
        PicOut(0xA1, 0x02);
        PicOut(0xA1, 0x01);
        PicOut(0x21, masterMask);
        PicOut(0xA1, slaveMask);
    }

    /// <summary>Software-enables every LAPIC with spurious vector 0xFF.</summary>
    public void EnableApics()
    {
        foreach (var apic in Lapics)
        {
            Write(apic, LocalApic.RegisterSvr, 0x1FF);
        }
    }
}
