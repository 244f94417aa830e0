using System.Globalization;
using System.Text.RegularExpressions;

namespace KvmSharp.Compare;

/// <summary>
/// kvmsharp-compare: measures KvmSharp and QEMU on the same guests in the same run (issue 6's six items) and
/// prints a markdown table of medians and ratios. bench/compare.sh installs what it needs and runs it.
/// </summary>
internal static partial class Program
{
    private const string ReadyMarker = "KVMSHARP-GUEST-READY";
    private const string DebianCmdline = "console=ttyS0 panic=-1 quiet";
    private const long TinyMemory = 128L << 20;
    private const long DebianMemory = 512L << 20;
    private static readonly TimeSpan TinyTimeout = TimeSpan.FromMinutes(5);
    private static readonly TimeSpan BootTimeout = TimeSpan.FromMinutes(15);
    private static readonly TimeSpan CommandTimeout = TimeSpan.FromMinutes(10);

    public static int Main(string[] args)
    {
        if (args is ["--help"] or ["-h"])
        {
            Console.WriteLine(Options.Usage);
            return 0;
        }

        Options options;
        try
        {
            options = Options.Parse(args);
        }
        catch (BenchException e)
        {
            Console.Error.WriteLine($"kvmsharp-compare: {e.Message}.");
            Console.Error.WriteLine(Options.Usage);
            return 2;
        }

        var table = new ResultTable();
        var bench = new Bench(options, table);
        bench.Run();
        table.Print(Console.Out, options, bench.QemuVersion);
        return table.Failures == 0 ? 0 : 1;
    }

    [GeneratedRegex(@"vcpu0: ([0-9,]+) guest instructions")]
    internal static partial Regex InstructionsLine();

    [GeneratedRegex(@"result=(0x[0-9a-f]{8})")]
    internal static partial Regex WorkResult();

    internal static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        if (sorted.Length == 0)
        {
            return double.NaN;
        }

        return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[(sorted.Length / 2) - 1] + sorted[sorted.Length / 2]) / 2;
    }

    internal static string GuestCommandAt(VmmProcess vmm, ref int at, string command, out TimeSpan elapsed) =>
        Bench.GuestCommand(vmm, ref at, command, out elapsed);

    internal static void Log(string text) => Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"[{DateTime.Now:HH:mm:ss}] {text}"));

    /// <summary>The measurements, each a method that adds its rows to the table.</summary>
    private sealed class Bench(Options options, ResultTable table)
    {
        private readonly string _accelKvmSharp = options.TinyOnKvm ? "kvm" : "emulator";
        private readonly string _accelQemu = options.TinyOnKvm ? "kvm" : "tcg";

        public string QemuVersion { get; private set; } = "QEMU";

        public void Run()
        {
            QemuVersion = QemuVersionLine();
            string kvmWhere = options.NestedKvm ? "nested KVM under QEMU TCG" : "KVM";
            string tinyWhere = options.TinyOnKvm ? kvmWhere : "software CPU (--tiny-accel emulator; not KVM)";
            bool kvmUsable = KvmUsable(out string kvmProblem);
            bool tinyPossible = !options.TinyOnKvm || kvmUsable;

            if (options.Only.Contains("1") || options.Only.Contains("5a"))
            {
                Guarded([Row.StartToExit, Row.TinyMemory], tinyPossible, kvmProblem, () => StartToExit(tinyWhere));
            }

            if (options.Only.Contains("2"))
            {
                Guarded([Row.PioExit, Row.MmioExit], tinyPossible, kvmProblem, () => ExitCost(tinyWhere));
            }

            if (options.Only.Overlaps(["3", "4", "5b"]))
            {
                Guarded([Row.DebianBoot, Row.DiskRead, Row.DiskWrite, Row.DebianMemory], true, "", Debian);
            }

            if (options.Only.Contains("6"))
            {
                Guarded([Row.Mips], true, "", Mips);
            }

            if (options.Only.Contains("7"))
            {
                Guarded([Row.DebianKvmBoot], kvmUsable, kvmProblem, () => DebianOnKvm(kvmWhere));
            }

            if (options.Only.Contains("8a"))
            {
                const string Soft = "software CPU: `--accel emulator` vs TCG";
                Guarded([Row.NetSoftG2H, Row.NetSoftH2G, Row.NetSoftRtt], true, "", () => Network(onKvm: false, Soft, tap: false));
                Guarded([Row.NetSoftTapG2H, Row.NetSoftTapH2G, Row.NetSoftTapRtt], true, "", () => Network(onKvm: false, Soft, tap: true));
            }

            if (options.Only.Contains("9a"))
            {
                Guarded([Row.SnapSoftPause, Row.SnapSoftResume, Row.SnapSoftCreate128, Row.SnapSoftRestore128, Row.SnapSoftCreate1G, Row.SnapSoftRestore1G], true, "",
                    () => new SnapshotBench(options, table, args => KvmSharpCommand(args), QemuCommon).Run(
                        false, "software CPU: `--accel emulator` vs TCG", Row.SnapSoftPause, Row.SnapSoftResume, Row.SnapSoftCreate128, Row.SnapSoftRestore128, Row.SnapSoftCreate1G, Row.SnapSoftRestore1G));
            }

            if (options.Only.Contains("9b"))
            {
                Guarded([Row.SnapKvmPause, Row.SnapKvmResume, Row.SnapKvmCreate128, Row.SnapKvmRestore128, Row.SnapKvmCreate1G, Row.SnapKvmRestore1G], kvmUsable, kvmProblem,
                    () => new SnapshotBench(options, table, args => KvmSharpCommand(args), QemuCommon).Run(
                        true, kvmWhere, Row.SnapKvmPause, Row.SnapKvmResume, Row.SnapKvmCreate128, Row.SnapKvmRestore128, Row.SnapKvmCreate1G, Row.SnapKvmRestore1G));
            }

            if (options.Only.Contains("8b"))
            {
                Guarded([Row.NetKvmG2H, Row.NetKvmH2G, Row.NetKvmRtt], kvmUsable, kvmProblem, () => Network(onKvm: true, kvmWhere, tap: false));
                Guarded([Row.NetKvmTapG2H, Row.NetKvmTapH2G, Row.NetKvmTapRtt], kvmUsable, kvmProblem, () => Network(onKvm: true, kvmWhere, tap: true));
            }
        }

        private void Guarded(Row[] rows, bool possible, string whyNot, Action measure)
        {
            if (!possible)
            {
                foreach (var row in rows)
                {
                    table.NotMeasured(row, whyNot);
                }

                return;
            }

            try
            {
                measure();
            }
            catch (BenchException e)
            {
                Log($"failed: {e.Message}");
                foreach (var row in rows)
                {
                    table.Failed(row, e.Message);
                }
            }
        }

        // ---- 1 and 5a: a tiny guest that prints a line and exits, and the VMM's memory with it alive.
        private void StartToExit(string where)
        {
            var ours = new List<double>();
            var theirs = new List<double>();
            for (int round = 1; round <= options.Rounds; round++)
            {
                ours.Add(TinyRun(KvmSharpTiny(null)).TotalMilliseconds);
                theirs.Add(TinyRun(QemuTiny(null)).TotalMilliseconds);
                Log($"start-to-exit round {round}: kvmsharp {ours[^1]:0.0} ms, qemu {theirs[^1]:0.0} ms");
            }

            table.Set(Row.StartToExit, $"Start to exit, tiny guest on {where} (ms, lower is better)", Median(ours), Median(theirs), "0");

            var oursMem = new List<double>();
            var theirsMem = new List<double>();
            for (int round = 1; round <= Math.Min(options.Rounds, 3); round++)
            {
                oursMem.Add(HeldMemory(KvmSharpTiny("hold")).OverheadMiB);
                theirsMem.Add(HeldMemory(QemuTiny("hold")).OverheadMiB);
                Log($"tiny memory round {round}: kvmsharp {oursMem[^1]:0.0} MiB, qemu {theirsMem[^1]:0.0} MiB");
            }

            table.Set(Row.TinyMemory, $"VMM memory overhead, tiny guest on {where} (MiB: peak RSS − guest RAM touched)", Median(oursMem), Median(theirsMem), "0.0");
        }

        private static TimeSpan TinyRun((string File, string[] Args) command)
        {
            using var vmm = VmmProcess.Start(command.File, command.Args);
            var (code, at) = vmm.WaitForExit(TinyTimeout);
            Expect(vmm, code == 1 && vmm.Output.Contains("bench-guest: hello\n", StringComparison.Ordinal), "exit status 1 after 'bench-guest: hello'", code);
            return at;
        }

        private static MemorySample HeldMemory((string File, string[] Args) command)
        {
            using var vmm = VmmProcess.Start(command.File, command.Args);
            vmm.WaitForLine("bench-guest: holding", TinyTimeout);
            Thread.Sleep(200);
            var sample = MemorySample.Read(vmm.Pid, TinyMemory);
            vmm.Kill();
            return sample;
        }

        // ---- 2: exit round trips, N port writes and N MMIO writes that no device claims.
        private void ExitCost(string where)
        {
            string cmdline = string.Create(CultureInfo.InvariantCulture, $"pio={options.Exits} mmio={options.Exits}");
            var oursPio = new List<double>();
            var oursMmio = new List<double>();
            var theirsPio = new List<double>();
            var theirsMmio = new List<double>();
            for (int round = 1; round <= options.Rounds; round++)
            {
                var (p, m) = ExitLoops(KvmSharpTiny(cmdline));
                oursPio.Add(p);
                oursMmio.Add(m);
                (p, m) = ExitLoops(QemuTiny(cmdline));
                theirsPio.Add(p);
                theirsMmio.Add(m);
                Log($"exit-cost round {round}: kvmsharp pio {oursPio[^1]:0} ns mmio {oursMmio[^1]:0} ns, qemu pio {theirsPio[^1]:0} ns mmio {theirsMmio[^1]:0} ns");
            }

            table.Set(Row.PioExit, $"PIO exit round trip on {where} (ns/exit, lower is better)", Median(oursPio), Median(theirsPio), "0");
            table.Set(Row.MmioExit, $"MMIO exit round trip on {where} (ns/exit, lower is better)", Median(oursMmio), Median(theirsMmio), "0");
        }

        private (double PioNs, double MmioNs) ExitLoops((string File, string[] Args) command)
        {
            using var vmm = VmmProcess.Start(command.File, command.Args);
            var pioBegin = vmm.WaitForLine("bench-guest: pio begin", TinyTimeout);
            var pioEnd = vmm.WaitForLine("bench-guest: pio end", TinyTimeout);
            var mmioBegin = vmm.WaitForLine("bench-guest: mmio begin", TinyTimeout);
            var mmioEnd = vmm.WaitForLine("bench-guest: mmio end", TinyTimeout);
            var (code, _) = vmm.WaitForExit(TinyTimeout);
            Expect(vmm, code == 1, "exit status 1", code);
            if (pioEnd <= pioBegin || mmioEnd <= mmioBegin)
            {
                // Both lines came in one read: the loop took less than the console's latency (TCG does not exit).
                throw new BenchException($"a loop's begin and end lines arrived together, too fast to time; raise --exits ({vmm.CommandLine})");
            }

            return ((pioEnd - pioBegin).TotalNanoseconds / options.Exits, (mmioEnd - mmioBegin).TotalNanoseconds / options.Exits);
        }

        // ---- 3, 4, 5b: the Debian guest on the software CPUs with a raw disk: boot, memory, dd in the guest.
        private void Debian()
        {
            string vmlinuz = Path.Combine(options.GuestDir, "vmlinuz");
            string initrd = Path.Combine(options.GuestDir, "initramfs.cpio.gz");
            string image = Path.Combine(Path.GetTempPath(), $"kvmsharp-compare-{Environment.ProcessId}.raw");
            WriteImage(image, options.DiskMiB);
            try
            {
                var results = new Dictionary<bool, List<DebianResult>> { [true] = [], [false] = [] };
                for (int round = 1; round <= options.DebianRounds; round++)
                {
                    foreach (bool ours in new[] { true, false })
                    {
                        var command = ours
                            ? KvmSharpCommand("run", "--accel", "emulator", "--kernel", vmlinuz, "--initrd", initrd, "--memory", "512M",
                                "--cmdline", DebianCmdline, "--disk", image)
                            : (options.Qemu, [.. QemuCommon("tcg", DebianMemory), "-kernel", vmlinuz, "-initrd", initrd, "-append", DebianCmdline,
                                "-drive", $"id=d0,if=none,file={image},format=raw", "-device", "virtio-blk-device,drive=d0"]);
                        var r = ours ? DebianRun(command, BootTimeout) : QemuDebianRun(command);
                        results[ours].Add(r);
                        Log($"debian round {round} {(ours ? "kvmsharp" : "qemu")}: boot {r.BootSeconds:0.00} s, read {r.ReadMiBs:0.0} MiB/s, write {r.WriteMiBs:0.0} MiB/s, overhead {r.Memory.OverheadMiB:0.0} MiB");
                    }
                }

                double M(bool ours, Func<DebianResult, double> f) => Median(results[ours].Select(f));
                table.Set(Row.DebianBoot, "Debian boot to its ready marker, software CPU: `--accel emulator` vs TCG (s, lower is better)",
                    M(true, r => r.BootSeconds), M(false, r => r.BootSeconds), "0.00");
                string disk = string.Create(CultureInfo.InvariantCulture, $"{options.DiskMiB} MiB");
                table.Set(Row.DiskRead, $"Sequential read in the guest, {disk} raw virtio-blk disk, `dd bs=1M iflag=direct` (MiB/s, higher is better)",
                    M(true, r => r.ReadMiBs), M(false, r => r.ReadMiBs), "0.0", higherIsBetter: true);
                table.Set(Row.DiskWrite, $"Sequential write in the guest, same disk, `dd bs=1M oflag=direct conv=fsync` (MiB/s, higher is better)",
                    M(true, r => r.WriteMiBs), M(false, r => r.WriteMiBs), "0.0", higherIsBetter: true);
                table.Set(Row.DebianMemory, "VMM memory overhead, Debian at its shell on the software CPU (MiB: peak RSS − guest RAM touched)",
                    M(true, r => r.Memory.OverheadMiB), M(false, r => r.Memory.OverheadMiB), "0.0");
            }
            finally
            {
                File.Delete(image);
            }
        }

        // ---- 8: the network through passt for both (bench/KvmSharp.Compare/NetworkBench.cs).
        private void Network(bool onKvm, string where, bool tap) =>
            new NetworkBench(options, table, args => KvmSharpCommand(args), QemuCommon).Run(
                onKvm, where, tap,
                (onKvm, tap) switch { (false, false) => Row.NetSoftG2H, (true, false) => Row.NetKvmG2H, (false, true) => Row.NetSoftTapG2H, _ => Row.NetKvmTapG2H },
                (onKvm, tap) switch { (false, false) => Row.NetSoftH2G, (true, false) => Row.NetKvmH2G, (false, true) => Row.NetSoftTapH2G, _ => Row.NetKvmTapH2G },
                (onKvm, tap) switch { (false, false) => Row.NetSoftRtt, (true, false) => Row.NetKvmRtt, (false, true) => Row.NetSoftTapRtt, _ => Row.NetKvmTapRtt });

        // ---- 7: the Debian guest on KVM to its ready marker: kvmsharp --accel kvm vs QEMU microvm -accel kvm.
        private void DebianOnKvm(string where)
        {
            string vmlinuz = Path.Combine(options.GuestDir, "vmlinuz");
            string initrd = Path.Combine(options.GuestDir, "initramfs.cpio.gz");
            var ours = new List<double>();
            var theirs = new List<double>();
            for (int round = 1; round <= options.DebianRounds; round++)
            {
                ours.Add(BootToMarker(KvmSharpCommand("run", "--accel", "kvm", "--kernel", vmlinuz, "--initrd", initrd, "--memory", "512M",
                    "--cmdline", DebianCmdline)));
                theirs.Add(BootToMarker((options.Qemu, [.. QemuCommon("kvm", DebianMemory), "-kernel", vmlinuz, "-initrd", initrd, "-append", DebianCmdline])));
                Log($"debian-on-kvm round {round}: kvmsharp {ours[^1]:0.00} s, qemu {theirs[^1]:0.00} s");
            }

            table.Set(Row.DebianKvmBoot, $"Debian boot to its ready marker on {where}: `--accel kvm` vs `-M microvm -accel kvm` (s, lower is better)",
                Median(ours), Median(theirs), "0.00");
        }

        /// <summary>Seconds from the VMM's start to the guest's ready marker; then the guest is powered off (or killed).</summary>
        private static double BootToMarker((string File, string[] Args) command)
        {
            using var vmm = VmmProcess.Start(command.File, command.Args);
            var ready = vmm.WaitForLine(ReadyMarker, BootTimeout);
            vmm.WaitForText("guest# ", 0, CommandTimeout);
            vmm.Type("poweroff -f\n");
            try
            {
                vmm.WaitForExit(TimeSpan.FromSeconds(30));
            }
            catch (BenchException)
            {
                vmm.Kill();
            }

            return ready.TotalSeconds;
        }

        /// <summary>
        /// QEMU's TCG on microvm sometimes hangs at boot on a loaded host: Linux fails to calibrate the TSC against the
        /// PIT ("tsc: Unable to calibrate against PIT") and has no clocksource. Such a boot is retried (twice at most)
        /// after 90 s, 30 times its usual boot time, and counted in the table's notes.
        /// </summary>
        private DebianResult QemuDebianRun((string File, string[] Args) command)
        {
            for (int attempt = 1; ; attempt++)
            {
                try
                {
                    return DebianRun(command, TimeSpan.FromSeconds(90));
                }
                catch (BootHungException e) when (attempt < 3)
                {
                    table.Note($"A QEMU boot was retried: {e.Message}");
                    Log($"qemu boot hung, retrying: {e.Message}");
                }
            }
        }

        private DebianResult DebianRun((string File, string[] Args) command, TimeSpan bootTimeout)
        {
            using var vmm = VmmProcess.Start(command.File, command.Args);
            TimeSpan boot;
            try
            {
                boot = vmm.WaitForLine(ReadyMarker, bootTimeout);
            }
            catch (BenchException e)
            {
                throw new BootHungException(e.Message.Contains("Unable to calibrate against PIT", StringComparison.Ordinal)
                    ? "Linux could not calibrate the TSC against the PIT and hung"
                    : e.Message);
            }

            int at = vmm.WaitForText("guest# ", 0, CommandTimeout);
            var memory = MemorySample.Read(vmm.Pid, DebianMemory);

            long sectors = options.DiskMiB * 2048L;
            string size = GuestCommand(vmm, ref at, "cat /sys/block/vda/size", out _);
            if (size.Trim() != sectors.ToString(CultureInfo.InvariantCulture))
            {
                throw new BenchException($"the guest sees /dev/vda as {size.Trim()} sectors, not {sectors}");
            }

            string count = string.Create(CultureInfo.InvariantCulture, $"count={options.DiskMiB}");
            string read = GuestCommand(vmm, ref at, $"dd if=/dev/vda of=/dev/null bs=1M {count} iflag=direct", out var readTime);
            string write = GuestCommand(vmm, ref at, $"dd if=/dev/zero of=/dev/vda bs=1M {count} oflag=direct conv=fsync", out var writeTime);
            string records = string.Create(CultureInfo.InvariantCulture, $"{options.DiskMiB}+0 records out");
            if (!read.Contains(records, StringComparison.Ordinal) || !write.Contains(records, StringComparison.Ordinal))
            {
                throw new BenchException($"dd did not copy {options.DiskMiB} MiB: read said '{read.Trim()}', write said '{write.Trim()}'");
            }

            vmm.Type("poweroff -f\n");
            try
            {
                vmm.WaitForExit(TimeSpan.FromSeconds(30));
            }
            catch (BenchException)
            {
                // QEMU's microvm may not power off; the measurements are taken.
            }

            return new DebianResult(boot.TotalSeconds, options.DiskMiB / readTime.TotalSeconds, options.DiskMiB / writeTime.TotalSeconds, memory);
        }

        /// <summary>
        /// Types <paramref name="command"/> at the guest's shell between two markers the shell computes (so the echoed
        /// command line does not match them) and returns what it printed and the time between the markers' lines.
        /// </summary>
        internal static string GuestCommand(VmmProcess vmm, ref int at, string command, out TimeSpan elapsed)
        {
            int id = Random.Shared.Next(100_000, 900_000);
            string begin = string.Create(CultureInfo.InvariantCulture, $"BENCH-{id}-B");
            string end = string.Create(CultureInfo.InvariantCulture, $"BENCH-{id}-E");
            vmm.Type(string.Create(CultureInfo.InvariantCulture, $"echo BENCH-$(({id}))-B; {command} 2>&1; echo BENCH-$(({id}))-E\n"));
            var t0 = vmm.WaitForLine(begin, CommandTimeout);
            var t1 = vmm.WaitForLine(end, CommandTimeout);
            int beginAt = vmm.WaitForText(begin, at, CommandTimeout);
            int endAt = vmm.WaitForText(end, beginAt, CommandTimeout);
            at = vmm.WaitForText("guest# ", endAt, CommandTimeout);
            elapsed = t1 - t0;
            string output = vmm.Output;
            return output[beginAt..(endAt - end.Length)].Replace("\r", "", StringComparison.Ordinal);
        }

        private static void WriteImage(string path, int mib)
        {
            // Not zeros: the host reads real pages for both VMMs (a sparse image would read holes).
            var chunk = new byte[1 << 20];
            var random = new Random(6);
            using var file = new FileStream(path, FileMode.CreateNew, FileAccess.Write);
            for (int i = 0; i < mib; i++)
            {
                random.NextBytes(chunk);
                file.Write(chunk);
            }
        }

        // ---- 6: guest instructions per second on a CPU-bound workload, software CPUs.
        private void Mips()
        {
            string cmdline = string.Create(CultureInfo.InvariantCulture, $"work={options.Work}");
            var ours = new List<double>();
            var theirs = new List<double>();
            for (int round = 1; round <= options.Rounds; round++)
            {
                var (oursTime, instructions, oursResult) = WorkRun(KvmSharpCommand("run", "--accel", "emulator", "--memory", "128M",
                    "--kernel", options.BenchGuest, "--cmdline", cmdline, "--stats"), ours: true);
                var (theirsTime, _, theirsResult) = WorkRun((options.Qemu, [.. QemuCommon("tcg", TinyMemory), .. BenchGuestArgs(cmdline)]), ours: false);
                if (oursResult != theirsResult)
                {
                    throw new BenchException($"the workload's result differs: kvmsharp {oursResult}, qemu {theirsResult}");
                }

                ours.Add(instructions / oursTime.TotalSeconds / 1e6);
                theirs.Add(instructions / theirsTime.TotalSeconds / 1e6);
                Log($"mips round {round}: {instructions:N0} instructions; kvmsharp {oursTime.TotalSeconds:0.00} s = {ours[^1]:0.0} MIPS, qemu {theirsTime.TotalSeconds:0.00} s = {theirs[^1]:0.0} MIPS");
            }

            table.Set(Row.Mips, string.Create(CultureInfo.InvariantCulture,
                $"Guest MIPS, CPU-bound workload (bench-guest work={options.Work}: sieve, multiply/divide, CRC), software CPU; QEMU's = the same instruction count over its time (higher is better)"),
                Median(ours), Median(theirs), "0.0", higherIsBetter: true);
        }

        private static (TimeSpan Time, double Instructions, string Result) WorkRun((string File, string[] Args) command, bool ours)
        {
            using var vmm = VmmProcess.Start(command.File, command.Args);
            var begin = vmm.WaitForLine("bench-guest: work begin", TinyTimeout);
            var end = vmm.WaitForLine("bench-guest: work end", TinyTimeout);
            var (code, _) = vmm.WaitForExit(TinyTimeout);
            Expect(vmm, code == 1, "exit status 1", code);
            string output = vmm.Output;
            var result = WorkResult().Match(output);
            if (!result.Success)
            {
                throw new BenchException("the workload printed no result");
            }

            double instructions = double.NaN;
            if (ours)
            {
                var line = InstructionsLine().Match(output);
                if (!line.Success)
                {
                    throw new BenchException("kvmsharp --stats printed no instruction count");
                }

                instructions = double.Parse(line.Groups[1].Value.Replace(",", "", StringComparison.Ordinal), CultureInfo.InvariantCulture);
            }

            return (end - begin, instructions, result.Groups[1].Value);
        }

        // ---- Command lines.
        private (string File, string[] Args) KvmSharpTiny(string? cmdline) => cmdline is null
            ? KvmSharpCommand("run", "--accel", _accelKvmSharp, "--memory", "128M", "--kernel", options.BenchGuest)
            : KvmSharpCommand("run", "--accel", _accelKvmSharp, "--memory", "128M", "--kernel", options.BenchGuest, "--cmdline", cmdline);

        private (string File, string[] Args) QemuTiny(string? cmdline) =>
            (options.Qemu, [.. QemuCommon(_accelQemu, TinyMemory), .. BenchGuestArgs(cmdline)]);

        private string[] BenchGuestArgs(string? cmdline) => cmdline is null
            ? ["-device", "isa-debug-exit,iobase=0xf4,iosize=4", "-kernel", options.BenchGuest]
            : ["-device", "isa-debug-exit,iobase=0xf4,iosize=4", "-kernel", options.BenchGuest, "-append", cmdline];

        private static string[] QemuCommon(string accel, long memory) =>
        [
            "-M", "microvm", "-accel", accel, "-m", string.Create(CultureInfo.InvariantCulture, $"{memory >> 20}M"),
            "-nodefaults", "-no-user-config", "-display", "none", "-serial", "stdio", "-no-reboot",
        ];

        private (string File, string[] Args) KvmSharpCommand(params string[] args) =>
            options.KvmSharp.EndsWith(".dll", StringComparison.Ordinal) ? ("dotnet", [options.KvmSharp, .. args]) : (options.KvmSharp, args);

        private string QemuVersionLine()
        {
            try
            {
                using var qemu = VmmProcess.Start(options.Qemu, ["--version"]);
                qemu.WaitForExit(TimeSpan.FromSeconds(30));
                return qemu.Output.Split('\n')[0].Trim();
            }
            catch (Exception e) when (e is BenchException or System.ComponentModel.Win32Exception)
            {
                throw new BenchException($"cannot run '{options.Qemu}': {e.Message}");
            }
        }

        private static bool KvmUsable(out string problem)
        {
            try
            {
                using var kvm = File.Open("/dev/kvm", FileMode.Open, FileAccess.ReadWrite);
                problem = "";
                return true;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                problem = $"not measured: /dev/kvm is not usable here ({e.Message})";
                return false;
            }
        }

        private static void Expect(VmmProcess vmm, bool ok, string what, int code)
        {
            if (!ok)
            {
                string tail = vmm.Output.Length > 400 ? vmm.Output[^400..] : vmm.Output;
                throw new BenchException($"expected {what}, got exit status {code}; command: {vmm.CommandLine}; output: {tail.Trim()}");
            }
        }
    }

    private sealed class BootHungException(string message) : BenchException(message);

    private readonly record struct DebianResult(double BootSeconds, double ReadMiBs, double WriteMiBs, MemorySample Memory);
}
