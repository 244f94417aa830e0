using KvmSharp.Devices.Interrupts;
using KvmSharp.Devices.InterruptControllers;

namespace KvmSharp.Devices.Tests.InterruptControllers;

public class InterruptRouterTests
{
    [Theory]
    [InlineData(0u, 0u, 0)]
    [InlineData(0u, 2u, -1)]  // GSI 2 is only IOAPIC pin 2: PIC input 2 is the cascade
    [InlineData(0u, 4u, 4)]
    [InlineData(0u, 15u, 15)]
    [InlineData(0u, 16u, -1)]
    [InlineData(2u, 2u, 0)]   // QEMU's layout: ISA IRQ0 at GSI 2
    [InlineData(2u, 0u, -1)]
    [InlineData(2u, 9u, 9)]
    public void PicInputOf_FollowsTheMadtOverride(uint timerGsi, uint gsi, int picInput)
    {
        var f = new InterruptFabric(timerGsi: timerGsi);
        Assert.Equal(picInput, f.Router.PicInputOf(gsi));
    }

    [Fact]
    public void IsaGsi_ReachesBothPicAndIoApic_HighGsiOnlyIoApic()
    {
        var f = new InterruptFabric();
        f.InitPic(masterMask: 0xFF, slaveMask: 0xFF);

        f.Router.SetLevel(4, true);
        f.Router.SetLevel(20, true);
        f.Router.SetLevel(24, true);

        Assert.Equal(0x0010, f.Pic.RequestRegister);
        Assert.Equal((1u << 4) | (1u << 20), f.IoApic.PinLevels);
        Assert.Equal(1, f.Router.IgnoredLevels);
    }

    [Fact]
    public void TimerGsi2_PitLineDrivesPicInput0AndIoApicPin2()
    {
        var f = new InterruptFabric(timerGsi: 2);
        f.InitPic(masterMask: 0xFF);

        f.Router.SetLevel(2, true);

        Assert.Equal(0x0001, f.Pic.RequestRegister);
        Assert.Equal(1u << 2, f.IoApic.PinLevels);
    }

    [Fact]
    public void LinuxCheckTimer_PitIrq0ReachesTheCpuThroughIoApicPin0()
    {
        // check_timer(): the 8259 is masked, LINT0 masked, the timer pin programmed edge/high to the BSP.
        var f = new InterruptFabric();
        var line = new GsiIrqLine(f.Router, f.Router.TimerGsi);
        var pit = new Pit8254(f.Time, line);
        f.InitPic(masterMask: 0xFF, slaveMask: 0xFF);
        f.EnableApics();
        f.Write(LocalApic.RegisterLvtLint0, 0x0001_0700);
        f.WriteIoApic(0x11, 0x0000_0000);
        f.WriteIoApic(0x10, 0x0000_0030); // pin 0: vector 0x30, fixed, physical, edge, unmasked

        pit.Write(3, [0x34]);             // mode 2, HZ = 250: LATCH 4773
        pit.Write(0, [0xA5]);
        pit.Write(0, [0x12]);

        int ticks = 0;
        for (int i = 0; i < 10; i++)
        {
            f.Advance(pit.NextDeadline - f.Now);
            pit.Poll(f.Now);
            if (f.Lapic.HasPendingInterrupt)
            {
                Assert.Equal(0x30, f.Lapic.AcknowledgeInterrupt());
                f.Write(LocalApic.RegisterEoi, 0);
                ticks++;
            }
        }

        Assert.Equal(10, ticks);
        Assert.Equal(0, f.Pic.InServiceRegister);
    }

    [Fact]
    public void Msi_PhysicalFixed_SetsIrrOfTheAddressedApic()
    {
        var f = new InterruptFabric(cpus: 2);
        f.EnableApics();

        f.Router.SignalMsi(0xFEE0_1000, 0x0000_4051); // APIC ID 1, vector 0x51, edge

        Assert.False(f.Lapics[0].HasPendingInterrupt);
        Assert.True(f.Lapics[1].IsRequested(0x51));
        Assert.False(f.Lapics[1].IsLevelTriggered(0x51));
        Assert.Equal(0x51, f.Lapics[1].AcknowledgeInterrupt());
    }

    [Fact]
    public void Msi_LogicalFlat_AndLevelTrigger()
    {
        var f = new InterruptFabric(cpus: 2);
        f.EnableApics();
        InterruptFabric.Write(f.Lapics[0], LocalApic.RegisterLdr, 0x0100_0000);
        InterruptFabric.Write(f.Lapics[1], LocalApic.RegisterLdr, 0x0200_0000);

        f.Router.SignalMsi(0xFEE0_3004, 0x0000_C052); // logical 0x03: both, level

        Assert.True(f.Lapics[0].IsRequested(0x52));
        Assert.True(f.Lapics[1].IsRequested(0x52));
        Assert.True(f.Lapics[1].IsLevelTriggered(0x52));
    }

    [Fact]
    public void Msi_NmiAndBadAddresses()
    {
        var f = new InterruptFabric();
        f.Router.SignalMsi(0xFEE0_0000, 0x0000_0400);
        Assert.True(f.Lapic.HasPendingNmi);
        Assert.True(f.Lapic.TakeNmi());

        f.EnableApics();
        f.Router.SignalMsi(0xFED0_0000, 0x0000_0060);
        f.Router.SignalMsi(0x1_FEE0_0000, 0x0000_0060);
        f.Router.SignalMsi(0xFEE0_0000, 0x0000_0260); // SMI: not modelled
        Assert.False(f.Lapic.HasPendingInterrupt);
        Assert.Equal(3, f.Router.IgnoredMsis);
    }

    [Fact]
    public void Msi_RedirectionHintArbitratesLowestPriority()
    {
        var f = new InterruptFabric(cpus: 2);
        f.EnableApics();
        foreach (var apic in f.Lapics)
        {
            InterruptFabric.Write(apic, LocalApic.RegisterLdr, 0x0300_0000);
        }

        f.Lapics[0].Tpr = 0x20;
        f.Lapics[1].Tpr = 0x10;
        f.Router.SignalMsi(0xFEE0_300C, 0x0000_0053); // RH + DM, logical 0x03

        Assert.False(f.Lapics[0].IsRequested(0x53));
        Assert.True(f.Lapics[1].IsRequested(0x53));
    }

    [Fact]
    public void Ipi_FixedShorthandsInitAndStartup()
    {
        var f = new InterruptFabric(cpus: 2);
        f.EnableApics();
        var bsp = f.Lapics[0];
        var ap = f.Lapics[1];

        f.Write(LocalApic.RegisterIcrHigh, 0x0100_0000);
        f.Write(LocalApic.RegisterIcrLow, 0x0000_4041);   // fixed to APIC ID 1
        Assert.True(ap.IsRequested(0x41));
        Assert.False(bsp.IsRequested(0x41));
        Assert.Equal(0x0000_4041u, f.Read(LocalApic.RegisterIcrLow)); // delivery status idle

        f.Write(LocalApic.RegisterIcrLow, 0x0004_4042);   // self
        Assert.True(bsp.IsRequested(0x42));
        Assert.False(ap.IsRequested(0x42));

        f.Write(LocalApic.RegisterIcrLow, 0x000C_4043);   // all excluding self
        Assert.False(bsp.IsRequested(0x43));
        Assert.True(ap.IsRequested(0x43));

        f.Write(LocalApic.RegisterIcrLow, 0x0008_4044);   // all including self
        Assert.True(bsp.IsRequested(0x44));
        Assert.True(ap.IsRequested(0x44));

        // The INIT-SIPI-SIPI sequence Linux's wakeup_secondary_cpu_via_init sends.
        f.Write(LocalApic.RegisterIcrLow, 0x0000_C500);   // INIT, level assert
        f.Write(LocalApic.RegisterIcrLow, 0x0000_8500);   // INIT, level de-assert
        f.Write(LocalApic.RegisterIcrLow, 0x0000_0608);   // start-up, page 8
        Assert.True(ap.TakeInit());
        Assert.False(ap.TakeInit());
        Assert.Equal(0x08, ap.TakeStartupVector());
        Assert.Equal(-1, ap.TakeStartupVector());
        Assert.False(bsp.TakeInit());

        f.Write(LocalApic.RegisterIcrLow, 0x0000_4400);   // NMI
        Assert.True(ap.HasPendingNmi);
        Assert.False(bsp.HasPendingNmi);
    }

    [Fact]
    public void Ipi_LogicalClusterModel()
    {
        var f = new InterruptFabric(cpus: 2);
        f.EnableApics();
        foreach (var apic in f.Lapics)
        {
            InterruptFabric.Write(apic, LocalApic.RegisterDfr, 0x0FFF_FFFF); // cluster model
        }

        InterruptFabric.Write(f.Lapics[0], LocalApic.RegisterLdr, 0x1100_0000); // cluster 1, bit 0
        InterruptFabric.Write(f.Lapics[1], LocalApic.RegisterLdr, 0x2100_0000); // cluster 2, bit 0

        f.Write(LocalApic.RegisterIcrHigh, 0x2100_0000);
        f.Write(LocalApic.RegisterIcrLow, 0x0000_4845); // logical, fixed
        Assert.False(f.Lapics[0].IsRequested(0x45));
        Assert.True(f.Lapics[1].IsRequested(0x45));

        f.Write(LocalApic.RegisterIcrHigh, 0xF100_0000); // all clusters, bit 0
        f.Write(LocalApic.RegisterIcrLow, 0x0000_4846);
        Assert.True(f.Lapics[0].IsRequested(0x46));
        Assert.True(f.Lapics[1].IsRequested(0x46));
    }

    [Fact]
    public void SerialPumpThread_RaisesWhileVcpuThreadAcknowledges()
    {
        var f = new InterruptFabric();
        f.EnableApics();
        f.WriteIoApic(0x18, 0x0000_0034); // pin 4 (COM1): edge, vector 0x34
        const int Rounds = 2000;
        using var raised = new SemaphoreSlim(0);
        using var handled = new SemaphoreSlim(0);
        var pump = new Thread(() =>
        {
            for (int i = 0; i < Rounds; i++)
            {
                f.Router.SetLevel(4, true);
                f.Router.SetLevel(4, false);
                raised.Release();
                handled.Wait();
            }
        });
        pump.Start();

        int delivered = 0;
        for (int i = 0; i < Rounds; i++)
        {
            raised.Wait();
            while (!f.Lapic.HasPendingInterrupt)
            {
                Thread.SpinWait(1);
            }

            delivered += f.Lapic.AcknowledgeInterrupt() == 0x34 ? 1 : 0;
            f.Write(LocalApic.RegisterEoi, 0);
            handled.Release();
        }

        pump.Join();
        Assert.Equal(Rounds, delivered);
    }

    [Fact]
    public void HotPaths_AllocateNothing()
    {
        var f = new InterruptFabric();
        var pit = new Pit8254(f.Time, new GsiIrqLine(f.Router, 0));
        f.EnableApics();
        f.Lapic.ConfigureVirtualWire();
        f.InitPic(masterMask: 0xFF);
        f.WriteIoApic(0x18, 0x0000_0034);
        f.Write(LocalApic.RegisterLvtTimer, 0x2_0031);
        f.Write(LocalApic.RegisterTimerInitialCount, 1000);
        byte[] zero = new byte[4];
        byte[] scratch = new byte[4];
        byte[] pitLatch = [0x00];

        void Round()
        {
            f.Router.SetLevel(4, true);
            f.Router.SetLevel(4, false);
            _ = f.Lapic.HasPendingInterrupt;
            _ = f.Lapic.AcknowledgeInterrupt();
            f.Lapic.Write(LocalApic.RegisterEoi, zero);
            f.Lapic.Read(LocalApic.RegisterTimerCurrentCount, scratch);
            f.Router.SignalMsi(0xFEE0_0000, 0x41);
            _ = f.Lapic.AcknowledgeInterrupt();
            f.Lapic.Write(LocalApic.RegisterEoi, zero);
            f.Advance(1000);
            f.Lapic.Poll(f.Now);
            pit.Poll(f.Now);
            pit.Write(3, pitLatch);
            pit.Read(0, scratch.AsSpan(0, 2));
            f.IoApic.Read(0x10, scratch);
        }

        Round();
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 1000; i++)
        {
            Round();
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    [Fact]
    public void Constructor_RefusesChipsWithDifferentLocks()
    {
        var sync = new Lock();
        var pic = new Pic8259Pair(sync);
        var bus = new ApicBus(sync, pic);
        var foreign = new IoApic(new RecordingApicDelivery());

        Assert.Throws<ArgumentException>(() => new InterruptRouter(pic, foreign, bus));
        Assert.Throws<ArgumentOutOfRangeException>(() => new InterruptRouter(pic, new IoApic(sync, bus), bus, timerGsi: 1));
        Assert.Throws<ArgumentException>(() => new ApicBus(new Lock(), pic));
    }
}
