using System.Text;

namespace KvmSharp.Cli.Tests;

/// <summary>
/// tests/fixtures/kernels/virtio-blk-test.elf, a freestanding virtio-blk driver (checked against QEMU's
/// virtio-blk-pci), on our PCI bus and virtio-blk: on KVM (MSI-X through GSI routes and irqfds, notifications
/// through ioeventfds) and on the software CPU. It scans bus 0, negotiates VERSION_1, runs GET_ID, a write of sector 1,
/// reads of sectors 0 and 1, FLUSH and a read past the end, each completion announced by an MSI-X interrupt, and
/// resets the device. The test compares the UART output exactly and then the image's bytes.
/// </summary>
public sealed class VirtioBlockDriverTests
{
    private const string HostPattern = "host pattern in sector 0 of the virtio test image ";
    private const string GuestPattern = "virtio-blk-test wrote sector 1 ";

    [Theory]
    [InlineData("kvm", Traits = [KvmTests.Trait, KvmTests.Kvm])]
    [InlineData("emulator")]
    public void DriverGuest_ReadsAndWritesSectors_ThroughAQueueWithMsix(string accel)
    {
        KvmTests.RequireFor(accel);

        string dir = Directory.CreateTempSubdirectory("kvmsharp-virtio-blk-").FullName;
        try
        {
            string image = Path.Combine(dir, "disk.img");
            byte[] disk = new byte[1 << 20];
            for (int i = 0; i < 512; i++)
            {
                disk[i] = (byte)HostPattern[i % HostPattern.Length];
            }

            disk[4096] = 0xA5; // beyond what the guest touches: must survive
            File.WriteAllBytes(image, disk);
            uint sum = 0;
            for (int i = 0; i < 512; i++)
            {
                sum += disk[i];
            }

            string log = Path.Combine(dir, "console.log");
            var r = CliRunner.Run(
                "run", "--kernel", RepoPaths.Fixture("kernels", "virtio-blk-test.elf"), "--memory", "64M", "--accel", accel,
                "--disk", $"{image},serial=KVMSHARP-SERIAL-1", "--console", "file:" + log);

            Assert.Equal(string.Empty, r.Error);
            Assert.Equal(1, r.ExitCode);
            Assert.Equal(
                "virtio-blk-test\n" +
                "pci 00:00.0 8086:0d57 class 060000\n" +
                "pci 00:01.0 1af4:1042 class 018000\n" +
                "caps common=y notify=y isr=y device=y msix=y\n" +
                "reset status=0x00\n" +
                "features version_1=1\n" +
                "features_ok=1\n" +
                "queue0 max=256 msix=0 status=0x0f\n" +
                "capacity=2048 sectors\n" +
                "get_id irq=1 len=21 status=0 id=KVMSHARP-SERIAL-1...\n" +
                "write sector 1 irq=1 len=1 status=0\n" +
                $"read sector 0 irq=1 len=513 status=0 data={HostPattern[..32]} sum=0x{sum:x8}\n" +
                $"read sector 1 irq=1 len=513 status=0 data={GuestPattern}\n" +
                "flush irq=1 len=1 status=0\n" +
                "read beyond end irq=1 len=0 status=1\n" + // used length: bytes written from the start of the writable part (docs/virtio.md)
                "done status=0x00\n",
                File.ReadAllText(log));

            byte[] after = File.ReadAllBytes(image);
            Assert.Equal(1 << 20, after.Length);
            Assert.Equal(disk[..512], after[..512]);
            Assert.Equal(Encoding.ASCII.GetBytes(string.Concat(Enumerable.Repeat(GuestPattern, 17)))[..512], after[512..1024]);
            Assert.Equal(0xA5, after[4096]);
            Assert.All(after[1024..4096], b => Assert.Equal(0, b));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
