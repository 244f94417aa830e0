using System.Globalization;

namespace KvmSharp.Compare;

/// <summary>The command line of kvmsharp-compare (bench/compare.sh passes most of it).</summary>
internal sealed class Options
{
    public const string Usage = """
        Usage: kvmsharp-compare --kvmsharp PATH --bench-guest PATH --guest-dir DIR [options]
          --kvmsharp PATH       the kvmsharp binary to measure
          --kvmsharp-kind TEXT  how that binary was built, for the table (e.g. "ReadyToRun")
          --qemu PATH           qemu-system-x86_64 (default: from PATH)
          --bench-guest PATH    bench/guest/bench-guest.elf
          --guest-dir DIR       the default Debian guest (vmlinuz, initramfs.cpio.gz)
          --rounds N            runs of each VMM for items 1, 2 and 6 (default 5)
          --debian-rounds N     Debian boots of each VMM for items 3-5 and 7 (default 3)
          --exits N             exits per loop for item 2 (default 200000; 20000 in a nested KVM host)
          --work N              workload rounds for item 6 (default 8)
          --disk-mib N          disk size for item 4 (default 256)
          --only LIST           items to run, e.g. 1,2,5a (default: all; 5 is 5a and 5b, 8 is 8a and 8b, 9 is 9a and 9b).
                                KVM items: 1, 2, 5a, 7, 8b, 9b; software-CPU items: 3, 4, 5b, 6, 8a, 9a
          --net-seconds N       length of each iperf3 run for item 8 (default 10)
          --tiny-accel A        kvm (default) or emulator: where items 1, 2 and 5a run. emulator runs them on
                                kvmsharp's software CPU and QEMU TCG, to try the bench on a host without KVM
        """;

    public string KvmSharp { get; private set; } = "";

    public string KvmSharpKind { get; private set; } = "framework-dependent, JIT";

    public string Qemu { get; private set; } = "qemu-system-x86_64";

    public string BenchGuest { get; private set; } = "";

    public string GuestDir { get; private set; } = "";

    public int Rounds { get; private set; } = 5;

    public int DebianRounds { get; private set; } = 3;

    /// <summary>Set by scripts/with-kvm.sh inside its nested KVM host: the KVM figures are nested ones.</summary>
    public bool NestedKvm { get; } = Environment.GetEnvironmentVariable("KVMSHARP_NESTED_KVM") == "1";

    public long Exits { get; private set; }

    public int Work { get; private set; } = 8;

    public int DiskMiB { get; private set; } = 256;

    public int NetSeconds { get; private set; } = 10;

    public static readonly string[] Items = ["1", "2", "3", "4", "5a", "5b", "6", "7", "8a", "8b", "9a", "9b"];

    public HashSet<string> Only { get; } = [.. Items];

    public bool TinyOnKvm { get; private set; } = true;

    public static Options Parse(string[] args)
    {
        var o = new Options();
        for (int i = 0; i < args.Length; i++)
        {
            string Value() => i + 1 < args.Length ? args[++i] : throw new BenchException($"{args[i]} needs a value");
            int Count() => int.TryParse(Value(), NumberStyles.None, CultureInfo.InvariantCulture, out int n) && n > 0
                ? n : throw new BenchException($"{args[i - 1]} needs a positive number");

            switch (args[i])
            {
                case "--kvmsharp": o.KvmSharp = Value(); break;
                case "--kvmsharp-kind": o.KvmSharpKind = Value(); break;
                case "--qemu": o.Qemu = Value(); break;
                case "--bench-guest": o.BenchGuest = Value(); break;
                case "--guest-dir": o.GuestDir = Value(); break;
                case "--rounds": o.Rounds = Count(); break;
                case "--debian-rounds": o.DebianRounds = Count(); break;
                case "--exits": o.Exits = Count(); break;
                case "--work": o.Work = Count(); break;
                case "--disk-mib": o.DiskMiB = Count(); break;
                case "--net-seconds": o.NetSeconds = Count(); break;
                case "--only":
                    o.Only.Clear();
                    foreach (string item in Value().Split(',', StringSplitOptions.RemoveEmptyEntries))
                    {
                        if (item == "5")
                        {
                            o.Only.UnionWith(["5a", "5b"]);
                        }
                        else if (item == "8")
                        {
                            o.Only.UnionWith(["8a", "8b"]);
                        }
                        else if (item == "9")
                        {
                            o.Only.UnionWith(["9a", "9b"]);
                        }
                        else if (Array.IndexOf(Items, item) >= 0)
                        {
                            o.Only.Add(item);
                        }
                        else
                        {
                            throw new BenchException($"--only takes items 1, 2, 3, 4, 5, 5a, 5b, 6, 7, 8, 8a, 8b, 9, 9a and 9b, not '{item}'");
                        }
                    }

                    break;
                case "--tiny-accel":
                    o.TinyOnKvm = Value() switch
                    {
                        "kvm" => true,
                        "emulator" => false,
                        var other => throw new BenchException($"--tiny-accel is kvm or emulator, not '{other}'"),
                    };
                    break;
                default:
                    throw new BenchException($"unknown argument '{args[i]}'");
            }
        }

        if (o.Exits == 0)
        {
            // An exit costs ~45 us nested (everything runs under TCG) against ~1-2 us on hardware.
            o.Exits = o.NestedKvm ? 20_000 : 200_000;
        }

        if (o.KvmSharp.Length == 0 || o.BenchGuest.Length == 0 || o.GuestDir.Length == 0)
        {
            throw new BenchException("--kvmsharp, --bench-guest and --guest-dir are required");
        }

        return o;
    }
}
