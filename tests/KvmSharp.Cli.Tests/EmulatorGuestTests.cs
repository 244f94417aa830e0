using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text.RegularExpressions;

namespace KvmSharp.Cli.Tests;

/// <summary>
/// The default Debian guest (scripts/build-guest.sh: cloud kernel 6.1 + busybox initramfs) booted by
/// <c>kvmsharp run --accel emulator</c> to its shell, driven through the serial console: the kernel release,
/// shell arithmetic, the SHA-256 of a file this test adds to the initramfs, then <c>poweroff -f</c> ending the VMM
/// with exit code 0.
/// </summary>
public sealed class EmulatorGuestTests
{
    private static readonly TimeSpan BootTimeout = TimeSpan.FromMinutes(10);
    private static readonly TimeSpan CommandTimeout = TimeSpan.FromMinutes(2);

    [Fact]
    public void DebianGuest_BootsToItsShell_OnTheSoftwareCpu_AndRunsCommands()
    {
        string guest = GuestImages.Directory;
        string manifest = Path.Combine(guest, "manifest.txt");
        Assert.True(File.Exists(manifest), $"{manifest} is missing: run scripts/build-guest.sh first (.ci/run does).");
        string release = File.ReadAllLines(manifest).Single(l => l.StartsWith("kernel-release: ", StringComparison.Ordinal))["kernel-release: ".Length..];

        byte[] payload = new byte[65536];
        new Random(20261122).NextBytes(payload);
        string expectedHash = Convert.ToHexStringLower(SHA256.HashData(payload));
        string initrd = Path.Combine(Path.GetTempPath(), $"kvmsharp-initrd-{Guid.NewGuid():N}");
        File.WriteAllBytes(initrd, GuestImages.InitramfsWithFile(File.ReadAllBytes(Path.Combine(guest, "initramfs.cpio.gz")), "testdata/payload.bin", payload));
        try
        {
            using var session = GuestSession.Start(
                "run", "--accel", "emulator", "--kernel", Path.Combine(guest, "vmlinux"), "--initrd", initrd,
                "--memory", "512M", "--cmdline", "console=ttyS0 reboot=k panic=-1", "--stats");

            session.WaitFor("KVMSHARP-GUEST-READY", BootTimeout);
            session.WaitFor("guest# ", CommandTimeout);

            Assert.Equal($"{release}\n{121932631112635269}", session.Run("uname -r; echo $((123456789 * 987654321))"));
            Assert.Equal($"{expectedHash}  /testdata/payload.bin", session.Run("sha256sum /testdata/payload.bin"));
            Assert.Equal("65536", session.Run("wc -c < /testdata/payload.bin"));

            session.Send("poweroff -f\n");
            Assert.Equal(0, session.WaitForExit(CommandTimeout));

            // --stats reports the software CPU's instruction count and rate; booting Linux retires billions.
            var speed = Regex.Match(session.Output, @"vcpu0: ([\d,]+) guest instructions in [\d.]+ s running \([\d.]+ s halted\), ([\d.]+) MIPS");
            Assert.True(speed.Success, $"no speed line in:\n{session.Output}");
            Assert.InRange(ulong.Parse(speed.Groups[1].Value, NumberStyles.AllowThousands, CultureInfo.InvariantCulture), 1_000_000_000UL, ulong.MaxValue);
            Assert.InRange(double.Parse(speed.Groups[2].Value, CultureInfo.InvariantCulture), 0.1, 10_000);
        }
        finally
        {
            File.Delete(initrd);
        }
    }
}
