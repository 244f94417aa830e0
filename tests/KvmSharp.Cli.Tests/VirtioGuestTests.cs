using System.Security.Cryptography;
using System.Text;

namespace KvmSharp.Cli.Tests;

/// <summary>
/// Linux's own virtio drivers on our PCI bus and devices: the default Debian guest, on KVM and on the software CPU, with two
/// disks (one read-only), an entropy device and the virtio console. Every command runs in a shell on hvc0; the
/// test checks what the guest sees (the PCI root found through ACPI, sizes, serial, a host-written pattern's SHA-256,
/// refused writes, hwrng bytes)
/// and, after power-off, the bytes the guest wrote in the image file.
/// </summary>
public sealed class VirtioGuestTests
{
    private static readonly TimeSpan BootTimeout = TestTime.Scaled(TimeSpan.FromMinutes(10));

    [Theory]
    [InlineData("kvm", Traits = [KvmTests.Trait, KvmTests.Kvm])]
    [InlineData("emulator")]
    public void DebianGuest_UsesVirtioBlockEntropyAndConsole(string accel)
    {
        KvmTests.RequireFor(accel);
        string guest = GuestImages.RequireDefaultGuest();
        string dir = System.IO.Directory.CreateTempSubdirectory("kvmsharp-virtio-").FullName;
        try
        {
            // vda: 8 MiB, the first MiB a host pattern; vdb: 1 MiB read-only, all 0x5A.
            var (disk, pattern) = PatternDisk(dir, 20261204, 8 << 20);

            string readOnly = Path.Combine(dir, "ro.img");
            File.WriteAllBytes(readOnly, Enumerable.Repeat((byte)0x5A, 1 << 20).ToArray());
            string patternHash = Convert.ToHexStringLower(SHA256.HashData(pattern));

            using (var session = GuestSession.Start(
                "run", "--accel", accel, "--kernel", Path.Combine(guest, "vmlinux"),
                "--initrd", Path.Combine(guest, "initramfs.cpio.gz"), "--memory", "512M",
                // quiet: the kernel's warnings (a clocksource watchdog's, on a loaded nested KVM host) share stdout with hvc0.
                "--cmdline", "console=ttyS0 reboot=k panic=-1 quiet",
                "--disk", $"{disk},serial=KVMSHARP-DISK-1", "--disk", $"{readOnly},readonly", "--rng", "--console", "virtio", "--stats"))
            {
                session.WaitFor("KVMSHARP-GUEST-READY", BootTimeout);
                session.WaitFor("init: virtio console hvc0 present; shell on it", GuestSession.CommandTimeout);
                session.WaitFor("guest# ", GuestSession.CommandTimeout);

                Assert.Equal("/dev/hvc0", session.Run("tty"));

                // Linux found the bus through the DSDT's root bridge, with no pci= option on the command line.
                Assert.Equal("\\_SB_.PCI0\n0", session.Run("cat /sys/devices/pci0000:00/firmware_node/path; grep -c pci= /proc/cmdline"));
                // The serial attribute has no trailing newline.
                Assert.Equal("16384\nKVMSHARP-DISK-1\n0", session.Run("cat /sys/block/vda/size; echo \"$(cat /sys/block/vda/serial)\"; cat /sys/block/vda/ro"));
                Assert.Equal("2048\n1", session.Run("cat /sys/block/vdb/size /sys/block/vdb/ro"));
                Assert.Equal($"{patternHash}  -", session.Run("dd if=/dev/vda bs=65536 count=16 2>/dev/null | sha256sum"));
                Assert.Equal("written", session.Run(
                    "yes KVMSHARP-GUEST-WROTE-THIS | head -c 65536 | dd of=/dev/vda bs=65536 seek=32 conv=fsync 2>/dev/null && sync && echo written"));
                // Linux refuses the write itself (EPERM from blkdev_write_iter on a read-only disk; EROFS on some kernels).
                Assert.Matches("^dd: .*(Operation not permitted|Read-only file system)", session.Run("dd if=/dev/zero of=/dev/vdb bs=512 count=1 conv=fsync 2>&1; true"));
                Assert.Equal("virtio_rng.0\n32", session.Run("cat /sys/class/misc/hw_random/rng_current; dd if=/dev/hwrng bs=32 count=1 2>/dev/null | wc -c"));

                session.Send("poweroff -f\n");
                Assert.Equal(0, session.WaitForExit(GuestSession.CommandTimeout));

                // --stats: a line per device in bus order, and Linux's drivers made no mistake any device counted.
                string stats = session.Output;
                Assert.Matches(
                    @"virtio 00:01\.0 blk: [1-9][\d,]* reads, [1-9][\d,]* writes, [1-9][\d,]* flushes, 0 unsupported, 0 bad requests, 0 host errors; " +
                    @"[\d,]+ chains, 0 malformed, 0 ring errors; [\d,]+ notifications \(0 invalid, 0 without bus master\)\n",
                    stats);
                Assert.Matches(@"virtio 00:02\.0 blk: [1-9][\d,]* reads, 0 writes, 0 flushes, 0 unsupported, 0 bad requests, 0 host errors; ", stats);
                Assert.Matches(@"virtio 00:03\.0 rng: [1-9][\d,]* chains, 0 malformed, 0 ring errors; [\d,]+ notifications \(0 invalid, 0 without bus master\)", stats);
                Assert.Matches(@"virtio 00:04\.0 console: [1-9][\d,]* bytes out, [1-9][\d,]* bytes in; [\d,]+ chains, 0 malformed, 0 ring errors; ", stats);
            }

            // After power-off: the guest's 64 KiB at 2 MiB, the host pattern untouched, nothing past the end, vdb unchanged.
            byte[] image = File.ReadAllBytes(disk);
            Assert.Equal(8 << 20, image.Length);
            Assert.Equal(pattern, image[..(1 << 20)]);
            byte[] line = Encoding.ASCII.GetBytes("KVMSHARP-GUEST-WROTE-THIS\n");
            byte[] expected = Enumerable.Range(0, 65536).Select(i => line[i % line.Length]).ToArray();
            Assert.Equal(expected, image[(2 << 20)..((2 << 20) + 65536)]);
            Assert.All(File.ReadAllBytes(readOnly), b => Assert.Equal(0x5A, b));
        }
        finally
        {
            System.IO.Directory.Delete(dir, recursive: true);
        }
    }

    [Theory]
    [InlineData("kvm", Traits = [KvmTests.Trait, KvmTests.Kvm])]
    [InlineData("emulator")]
    public void DebianGuest_WithoutMsi_TakesIntxThroughTheDsdtRoutingTable(string accel)
    {
        KvmTests.RequireFor(accel);
        // pci=nomsi: Linux's virtio-pci falls back to INTx, which it routes by the DSDT's _PRT (disk: GSI 10, console:
        // GSI 11, level-triggered, "fasteoi"); the shell runs on the virtio console, so every command crosses INTx too.
        string guest = GuestImages.RequireDefaultGuest();
        string dir = System.IO.Directory.CreateTempSubdirectory("kvmsharp-intx-").FullName;
        try
        {
            var (disk, pattern) = PatternDisk(dir, 20261205, 4 << 20);

            using var session = GuestSession.Start(
                "run", "--accel", accel, "--kernel", Path.Combine(guest, "vmlinux"),
                "--initrd", Path.Combine(guest, "initramfs.cpio.gz"), "--memory", "512M",
                "--cmdline", "console=ttyS0 reboot=k panic=-1 quiet pci=nomsi", "--disk", disk, "--console", "virtio");
            session.WaitFor("KVMSHARP-GUEST-READY", BootTimeout);
            session.WaitFor("init: virtio console hvc0 present; shell on it", GuestSession.CommandTimeout);
            session.WaitFor("guest# ", GuestSession.CommandTimeout);

            Assert.Equal(
                "10: IO-APIC 10-fasteoi virtio0\n11: IO-APIC 11-fasteoi virtio1",
                session.Run("awk '/virtio/ { print $1, $3, $4, $5 }' /proc/interrupts"));
            Assert.Equal(
                $"{Convert.ToHexStringLower(SHA256.HashData(pattern))}  -",
                session.Run("dd if=/dev/vda bs=65536 count=16 iflag=direct 2>/dev/null | sha256sum"));

            // One interrupt per request: 64 uncached reads, 64 more on GSI 10.
            Assert.Equal("64", session.Run(
                "a=$(awk '/virtio0/ { print $2 }' /proc/interrupts); dd if=/dev/vda of=/dev/null bs=65536 count=64 iflag=direct 2>/dev/null; " +
                "b=$(awk '/virtio0/ { print $2 }' /proc/interrupts); echo $((b - a))"));

            session.Send("poweroff -f\n");
            Assert.Equal(0, session.WaitForExit(GuestSession.CommandTimeout));
        }
        finally
        {
            System.IO.Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>A raw image of <paramref name="size"/> bytes in <paramref name="dir"/> whose first MiB is seeded random bytes.</summary>
    private static (string Path, byte[] Pattern) PatternDisk(string dir, int seed, long size)
    {
        string disk = Path.Combine(dir, "disk.img");
        byte[] pattern = new byte[1 << 20];
        new Random(seed).NextBytes(pattern);
        using var file = File.Create(disk);
        file.Write(pattern);
        file.SetLength(size);
        return (disk, pattern);
    }
}
