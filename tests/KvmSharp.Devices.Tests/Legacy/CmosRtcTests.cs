using FsCheck;
using FsCheck.Fluent;
using KvmSharp.Devices.Bus;
using KvmSharp.Devices.Legacy;

namespace KvmSharp.Devices.Tests.Legacy;

public class CmosRtcTests
{
    // Thursday 29 February 2024, 13:45:56.250 UTC.
    private static readonly DateTimeOffset Start = new(2024, 2, 29, 13, 45, 56, 250, TimeSpan.Zero);

    private readonly FakeTimeProvider _time = new(Start);
    private readonly CmosRtc _rtc;

    public CmosRtcTests() => _rtc = new CmosRtc(_time);

    [Fact]
    public void TimeRegisters_InBcd_ByDefault()
    {
        Assert.Equal(
            new byte[] { 0x56, 0x45, 0x13, 0x05, 0x29, 0x02, 0x24, 0x20 },
            ReadTime());
        Assert.Equal(0x26, Reg(0x0A));
        Assert.Equal(0x02, Reg(0x0B));
    }

    [Fact]
    public void TimeRegisters_InBinary_WhenRegisterBDmIsSet()
    {
        Write(0x0B, 0x06);

        Assert.Equal(new byte[] { 56, 45, 13, 5, 29, 2, 24, 20 }, ReadTime());
    }

    [Theory]
    [InlineData(13, 0x00, 0x81)] // 1 PM, BCD
    [InlineData(13, 0x04, 0x81)] // 1 PM, binary
    [InlineData(0, 0x00, 0x12)]  // midnight is 12 AM
    [InlineData(12, 0x00, 0x92)] // noon is 12 PM
    [InlineData(23, 0x04, 0x8B)] // 11 PM, binary
    [InlineData(9, 0x00, 0x09)]  // 9 AM
    public void Hours_In12HourMode_CarryPmInBit7(int hour, byte registerB, byte expected)
    {
        _time.SetUtcNow(new DateTimeOffset(2024, 2, 29, hour, 0, 0, TimeSpan.Zero));
        Write(0x0B, registerB);

        Assert.Equal(expected, Reg(0x04));
    }

    [Fact]
    public void Uip_IsSetOnlyInTheLast244MicrosecondsOfEachSecond()
    {
        _time.SetUtcNow(new DateTimeOffset(2024, 2, 29, 13, 45, 56, TimeSpan.Zero).AddTicks(TimeSpan.TicksPerSecond - 2441));
        Assert.Equal(0x26, Reg(0x0A));
        Assert.Equal(0x56, Reg(0x00));

        _time.Advance(TimeSpan.FromTicks(1)); // 244.0 µs before the boundary
        Assert.Equal(0xA6, Reg(0x0A));
        Assert.Equal(0x56, Reg(0x00)); // the registers still hold the old second during the update

        _time.Advance(TimeSpan.FromTicks(2439));
        Assert.Equal(0xA6, Reg(0x0A));

        _time.Advance(TimeSpan.FromTicks(1)); // the boundary: UIP falls, the second has moved on
        Assert.Equal(0x26, Reg(0x0A));
        Assert.Equal(0x57, Reg(0x00));
    }

    [Fact]
    public void SetBit_FreezesTheClock_AndClearsUip_AndAWrittenTimeRunsFromWhereItWasSet()
    {
        _time.SetUtcNow(new DateTimeOffset(2024, 2, 29, 13, 45, 56, 999, TimeSpan.Zero).AddTicks(9000));
        Write(0x0B, 0x82);
        Assert.Equal(0x26, Reg(0x0A));
        _time.Advance(TimeSpan.FromSeconds(10));
        Assert.Equal(0x56, Reg(0x00));

        // Set 2031-12-31 23:59:58 (BCD, 24-hour).
        Write(0x00, 0x58);
        Write(0x02, 0x59);
        Write(0x04, 0x23);
        Write(0x07, 0x31);
        Write(0x08, 0x12);
        Write(0x09, 0x31);
        Write(0x32, 0x20);
        Write(0x0B, 0x02);

        Assert.Equal(new byte[] { 0x58, 0x59, 0x23, 0x04, 0x31, 0x12, 0x31, 0x20 }, ReadTime());
        _time.Advance(TimeSpan.FromSeconds(2));
        Assert.Equal(new byte[] { 0x00, 0x00, 0x00, 0x05, 0x01, 0x01, 0x32, 0x20 }, ReadTime());
        Assert.Equal(new DateTime(2032, 1, 1, 0, 0, 0, 999, DateTimeKind.Utc).AddTicks(9000), _rtc.GuestTime);
    }

    [Fact]
    public void WritingOneTimeRegisterOfARunningClock_OffsetsTheGuestClockFromHostTime()
    {
        Write(0x09, 0x30); // year 2030, everything else kept

        // 2030 has no 29 February: the day clamps to the 28th, a Thursday (5).
        Assert.Equal(new byte[] { 0x56, 0x45, 0x13, 0x05, 0x28, 0x02, 0x30, 0x20 }, ReadTime());
        _time.Advance(TimeSpan.FromMinutes(15));
        Assert.Equal(new byte[] { 0x56, 0x00, 0x14, 0x05, 0x28, 0x02, 0x30, 0x20 }, ReadTime());
    }

    [Fact]
    public void DividerOtherThan010_StopsTheClock_AndRestoringItRestarts()
    {
        Write(0x0A, 0x76);
        Assert.Equal(0x76, Reg(0x0A));
        _time.Advance(TimeSpan.FromSeconds(30));
        Assert.Equal(0x56, Reg(0x00));

        Write(0x0A, 0x26);
        _time.Advance(TimeSpan.FromSeconds(3));
        Assert.Equal(0x59, Reg(0x00));
    }

    [Fact]
    public void RegisterC_ReportsACompletedUpdate_AndReadingClearsIt()
    {
        Assert.Equal(0x00, Reg(0x0C));
        _time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(0x10, Reg(0x0C));
        Assert.Equal(0x00, Reg(0x0C));

        Write(0x0B, 0x12); // UIE
        _time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(0x90, Reg(0x0C));
        Assert.Equal(0x00, Reg(0x0C));

        Write(0x0C, 0xFF); // read-only
        Assert.Equal(0x00, Reg(0x0C));
    }

    [Fact]
    public void RegisterD_AlwaysReportsValidRamAndTime()
    {
        Write(0x0D, 0x00);
        Assert.Equal(0x80, Reg(0x0D));
    }

    [Fact]
    public void SetBit_ClearsUie()
    {
        Write(0x0B, 0x92);
        Assert.Equal(0x82, Reg(0x0B));
    }

    [Fact]
    public void IndexPort_KeepsNmiDisableSeparately_AndReadsAs0xFF()
    {
        _rtc.Write(0, [0x8F]);
        Assert.True(_rtc.NmiDisabled);
        Assert.Equal(0x0F, _rtc.Index);
        _rtc.Write(1, [0x5A]);
        Assert.Equal(0x5A, _rtc.ReadRam(0x0F));

        byte[] data = new byte[1];
        _rtc.Read(0, data);
        Assert.Equal(0xFF, data[0]);

        _rtc.Write(0, [0x0F]);
        Assert.False(_rtc.NmiDisabled);
        _rtc.Read(1, data);
        Assert.Equal(0x5A, data[0]);
    }

    [Fact]
    public void GarbageTimeWrites_AreClamped_NeverThrown()
    {
        Write(0x0B, 0x82);
        Write(0x00, 0xFF);
        Write(0x02, 0x99);
        Write(0x04, 0x3F);
        Write(0x07, 0x00);
        Write(0x08, 0x13);
        Write(0x09, 0xAA);
        Write(0x32, 0x00);
        Write(0x0B, 0x02);

        // 0099-12-01 23:59:59, a Tuesday (3); the clock runs on from the host's sub-second (.250).
        Assert.Equal(new byte[] { 0x59, 0x59, 0x23, 0x03, 0x01, 0x12, 0x99, 0x00 }, ReadTime());
        Assert.Equal(new DateTime(99, 12, 1, 23, 59, 59, 250, DateTimeKind.Utc), _rtc.GuestTime);
    }

    [Fact]
    public void SetMemorySize_FillsTheBytesAsQemuPcCmosInit_For512MiB()
    {
        _rtc.SetMemorySize(512UL << 20);

        Assert.Equal(new byte[] { 0x80, 0x02, 0xFF, 0xFF }, RamBytes(0x15, 4));
        Assert.Equal(new byte[] { 0xFF, 0xFF }, RamBytes(0x30, 2));
        Assert.Equal(new byte[] { 0x00, 0x1F }, RamBytes(0x34, 2)); // (512 - 16) MiB / 64 KiB = 7936
        Assert.Equal(new byte[] { 0x00, 0x00, 0x00 }, RamBytes(0x5B, 3));
    }

    [Fact]
    public void SetMemorySize_SplitsAt3GiB_ForLargeMachines()
    {
        _rtc.SetMemorySize(8UL << 30);

        Assert.Equal(new byte[] { 0x80, 0x02, 0xFF, 0xFF }, RamBytes(0x15, 4));
        Assert.Equal(new byte[] { 0x00, 0xBF }, RamBytes(0x34, 2)); // (3 GiB - 16 MiB) / 64 KiB = 0xBF00
        Assert.Equal(new byte[] { 0x00, 0x40, 0x01 }, RamBytes(0x5B, 3)); // 5 GiB / 64 KiB = 0x14000
    }

    [Fact]
    public void SetMemorySize_SmallMachines()
    {
        _rtc.SetMemorySize((1UL << 20) + (512UL << 10));
        Assert.Equal(new byte[] { 0x80, 0x02, 0x00, 0x02 }, RamBytes(0x15, 4));
        Assert.Equal(new byte[] { 0x00, 0x02 }, RamBytes(0x30, 2));
        Assert.Equal(new byte[] { 0x00, 0x00 }, RamBytes(0x34, 2));

        _rtc.SetMemorySplit(512UL << 10, 0);
        Assert.Equal(new byte[] { 0x00, 0x02, 0x00, 0x00 }, RamBytes(0x15, 4));

    }

    [Fact]
    public void SetMemorySize_SplitsAtTheGivenLimit()
    {
        // KvmSharp's layout (3 GiB): 0x1FFFFFFF bytes go above 4 GiB, 0x1FFF units of 64 KiB.
        _rtc.SetMemorySize(0xDFFF_FFFFUL);
        Assert.Equal(new byte[] { 0x00, 0xBF }, RamBytes(0x34, 2));
        Assert.Equal(new byte[] { 0xFF, 0x1F, 0x00 }, RamBytes(0x5B, 3));

        // QEMU i440FX keeps up to 0xE0000000 bytes below 4 GiB: (0xDFFFFFFF - 16 MiB) / 64 KiB = 0xDEFF.
        _rtc.SetMemorySize(0xDFFF_FFFFUL, lowMemoryLimit: 0xE000_0000);
        Assert.Equal(new byte[] { 0xFF, 0xDE }, RamBytes(0x34, 2));
        Assert.Equal(new byte[] { 0x00, 0x00, 0x00 }, RamBytes(0x5B, 3));
    }

    [Fact]
    public void RamWrites_RoundTrip_ForAnyRamAddressAndValue()
    {
        var rtc = new CmosRtc(_time);
        var ramAddresses = Gen.Choose(0x0E, 0x7F).Where(static a => a != 0x32)
            .Zip(Gen.Choose(0, 255), static (address, value) => (Address: (byte)address, Value: (byte)value));

        Prop.ForAll(ramAddresses.ToArbitrary(), pair =>
        {
            rtc.Write(0, [pair.Address]);
            rtc.Write(1, [pair.Value]);
            byte[] data = new byte[1];
            rtc.Read(1, data);
            return data[0] == pair.Value && rtc.ReadRam(pair.Address) == pair.Value;
        }).QuickCheckThrowOnFailure();
    }

    [Fact]
    public void SaveAndRestore_KeepRamAndTheGuestClockOffset()
    {
        _rtc.WriteRam(0x40, 0x99);
        Write(0x09, 0x30);
        _rtc.Write(0, [0x80 | 0x10]);
        CmosRtcState saved = _rtc.Save();
        Assert.Equal(0x30, saved.Data[0x09]);
        Assert.Equal(128, saved.Data.Length);

        var copy = new CmosRtc(_time);
        copy.Restore(saved);
        _time.Advance(TimeSpan.FromSeconds(4));

        Assert.Equal(0x99, copy.ReadRam(0x40));
        Assert.True(copy.NmiDisabled);
        Assert.Equal(0x10, copy.Index);
        Assert.Equal(0x30, copy.ReadRegisterValue(0x09));
        Assert.Equal(0x00, copy.ReadRegisterValue(0x00));
        Assert.Throws<ArgumentException>(() => copy.Restore(saved with { Data = new byte[64] }));
    }

    [Fact]
    public void RoutedThroughAnIoBus_AtPort70()
    {
        var io = new IoDispatcher();
        io.Ports.Register(CmosRtc.IndexPort, CmosRtc.PortCount, _rtc, "cmos");
        Span<byte> b = stackalloc byte[1];

        io.PortWrite(0x70, [0x80 | 0x04]);
        io.PortRead(0x71, b);
        Assert.Equal(0x13, b[0]);
        io.PortWrite(0x70, [0x0A]);
        io.PortRead(0x71, b);
        Assert.Equal(0x26, b[0]);
        Assert.Equal(0L, io.Ports.UnhandledReads);
    }

    [Fact]
    public void PortAccesses_AllocateNothing()
    {
        Span<byte> b = stackalloc byte[1];
        for (int i = 0; i < 100; i++)
        {
            _rtc.Write(0, [0x00]);
            _rtc.Read(1, b);
        }

        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 10_000; i++)
        {
            _rtc.Write(0, [(byte)(i & 0x0F)]);
            _rtc.Read(1, b);
            _rtc.Write(0, [0x0A]);
            _rtc.Read(1, b);
        }

        Assert.Equal(0L, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    private byte[] ReadTime() =>
        [Reg(0x00), Reg(0x02), Reg(0x04), Reg(0x06), Reg(0x07), Reg(0x08), Reg(0x09), Reg(0x32)];

    private byte[] RamBytes(int start, int count)
    {
        var bytes = new byte[count];
        for (int i = 0; i < count; i++)
        {
            bytes[i] = _rtc.ReadRam(start + i);
        }

        return bytes;
    }

    private byte Reg(byte index)
    {
        _rtc.Write(0, [index]);
        byte[] data = new byte[1];
        _rtc.Read(1, data);
        return data[0];
    }

    private void Write(byte index, byte value)
    {
        _rtc.Write(0, [index]);
        _rtc.Write(1, [value]);
    }
}
