namespace KvmSharp.Cli.Tests;

/// <summary>
/// `kvmsharp run` boots each loader's test kernel (tests/fixtures/kernels) on KVM and on the software CPU; the
/// kernel reports over the UART what it received from our loader and ends the VM through isa-debug-exit with 0,
/// which is exit status (0 << 1) | 1 = 1. Both backends must produce the same bytes.
/// </summary>
public class RunLoaderKernelTests
{
    private const string E820 =
        "0x0000000000000000 0x000000000009fc00 1\n" +
        "0x000000000009fc00 0x0000000000000400 2\n" +
        "0x00000000000f0000 0x0000000000010000 2\n" +
        "0x0000000000100000 0x000000000ff00000 1\n";

    private static CliResult Boot(string kernel, string accel, string cpus = "1")
    {
        KvmTests.RequireFor(accel);

        string log = Path.Combine(Path.GetTempPath(), $"kvmsharp-{Guid.NewGuid():N}.log");
        try
        {
            var r = CliRunner.Run(
                "run",
                "--kernel", RepoPaths.Fixture("kernels", kernel),
                "--initrd", RepoPaths.Fixture("kernels", "test-initrd.bin"),
                "--cmdline", "hello world",
                "--memory", "256M",
                "--cpus", cpus,
                "--accel", accel,
                "--console", "file:" + log);
            return r with { Guest = File.ReadAllText(log) };
        }
        finally
        {
            File.Delete(log);
        }
    }

    private static string Prefixed(string prefix, string lines)
        => string.Concat(lines.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => $"{prefix} {l}\n"));

    [Theory]
    [InlineData("kvm", Traits = [KvmTests.Trait, KvmTests.Kvm])]
    [InlineData("emulator")]
    public void BzImage_ReceivesBootParamsE820CmdlineAndInitrd(string accel)
    {
        var r = Boot("bzimage-test", accel);

        Assert.Equal(1, r.ExitCode);
        Assert.Equal(string.Empty, r.Error);
        Assert.Equal(
            "bzimage-test: boot_params at 0x00007000\n" +
            "loader=0xff\n" +
            "cmdline=hello world\n" +
            "e820 entries=4\n" +
            Prefixed("e820", E820) +
            "initrd addr=0x0fffe000 size=0x00001770 sum=0x00057831\n" +
            "entry rip=0x01000200\n",
            r.Guest);
    }

    [Theory]
    [InlineData("kvm", Traits = [KvmTests.Trait, KvmTests.Kvm])]
    [InlineData("emulator")]
    public void PvhElf_ReceivesStartInfoMemmapCmdlineAndModule(string accel)
    {
        var r = Boot("pvh-test.elf", accel);

        Assert.Equal(1, r.ExitCode);
        Assert.Equal(
            "pvh-test: start_info at 0x00006000 magic=0x336ec578 version=1\n" +
            "cmdline=hello world\n" +
            "memmap entries=4\n" +
            Prefixed("memmap", E820) +
            "modules=1\n" +
            "module0 addr=0x0fffe000 size=0x00001770 sum=0x00057831\n",
            r.Guest);
    }

    [Theory]
    [InlineData("kvm", Traits = [KvmTests.Trait, KvmTests.Kvm])]
    [InlineData("emulator")]
    public void Multiboot_ReceivesMagicInfoMemoryMapAndModule(string accel)
    {
        var r = Boot("multiboot-test.elf", accel);

        Assert.Equal(1, r.ExitCode);
        Assert.Equal(
            "multiboot-test: eax=0x2badb002 info at 0x00008000 flags=0x0000024d\n" +
            "mem_lower=639 mem_upper=261120\n" +
            $"cmdline={RepoPaths.Fixture("kernels", "multiboot-test.elf")} hello world\n" +
            "mmap entries=4\n" +
            Prefixed("mmap", E820) +
            "modules=1\n" +
            "module0 start=0x0fffe000 end=0x0ffff770 sum=0x00057831 string=test-initrd.bin\n" +
            "loader=KvmSharp\n",
            r.Guest);
    }

    [Theory]
    [InlineData("kvm", 1, Traits = [KvmTests.Trait, KvmTests.Kvm])]
    [InlineData("kvm", 2, Traits = [KvmTests.Trait, KvmTests.Kvm])]
    [InlineData("emulator", 1)]
    [InlineData("emulator", 2)]
    public void Acpi_TablesDescribeTheMachine_AndS5PowersItOff(string accel, int cpus)
    {
        var r = Boot("acpi-test.elf", accel, cpus.ToString(System.Globalization.CultureInfo.InvariantCulture));

        string lapics = string.Concat(Enumerable.Range(0, cpus).Select(i => $"madt lapic uid={i} id={i} enabled=1\n"));
        string nmis = string.Concat(Enumerable.Range(0, cpus).Select(i => $"madt lapic-nmi uid={i} flags=0x0005 lint=1\n"));
        Assert.Equal(0, r.ExitCode); // ACPI power-off, not the debug-exit fallback (which would be 255)
        Assert.Equal(string.Empty, r.Error);
        Assert.Equal(
            "acpi-test: rsdp at 0x000f0000 rev=2 oem=KVMSHP checksum=ok\n" +
            "table XSDT len=52 ok\n" +
            "table FACP len=276 ok\n" +
            $"table APIC len={76 + (14 * cpus)} ok\n" +
            "madt lapic_addr=0xfee00000 flags=0x00000001\n" +
            lapics +
            "madt ioapic id=0 addr=0xfec00000 gsi=0\n" +
            "madt iso bus=0 irq=0 gsi=0 flags=0x0000\n" +
            "madt iso bus=0 irq=9 gsi=9 flags=0x000d\n" +
            nmis +
            "fadt rev=6 sci=9 smi_cmd=0x00000000 pm1a_evt=0x00000600 pm1a_cnt=0x00000604 pm_tmr=0x00000000 flags=0x00000465 boot_arch=0x0007\n" +
            "table DSDT len=176 ok\n" +
            "dsdt _S5_ at +37 elements=4 values=5,5,0,0\n" +
            "poweroff: 0x3400 to port 0x0604\n",
            r.Guest);
    }

    [Theory]
    [InlineData("kvm", Traits = [KvmTests.Trait, KvmTests.Kvm])]
    [InlineData("emulator")]
    public void StdioConsole_StreamsGuestOutputAndEndsWithTheDebugExitStatus(string accel)
    {
        KvmTests.RequireFor(accel);

        var r = CliRunner.RunProcess(
            [],
            "run", "--kernel", RepoPaths.Fixture("kernels", "multiboot-test.elf"), "--memory", "64M", "--accel", accel);

        Assert.Equal(1, r.ExitCode);
        Assert.StartsWith("multiboot-test: eax=0x2badb002 info at 0x00008000", r.Output);
        Assert.Contains("modules=0\n", r.Output);
        Assert.Equal(string.Empty, r.Error);
    }

    [Fact]
    public void CorruptKernel_OneLineNamingTheFile()
    {
        string bad = Path.Combine(Path.GetTempPath(), $"not-a-kernel-{Guid.NewGuid():N}");
        File.WriteAllBytes(bad, new byte[4096]);
        try
        {
            var r = CliRunner.Run("run", "--kernel", bad, "--accel", "kvm", "--console", "file:/dev/null");

            Assert.Equal(1, r.ExitCode);
            Assert.Matches(@"^kvmsharp: 'not-a-kernel-[0-9a-f]+': .+\. Pass a bzImage, an ELF vmlinux with a PVH note, or a multiboot kernel\.\n$", r.Error);
        }
        finally
        {
            File.Delete(bad);
        }
    }

    [Theory]
    [InlineData("--memory", "12X", "kvmsharp: --memory '12X' is not a size. Use a number with a K, M, G or T suffix, for example --memory 512M.\n")]
    [InlineData("--memory", "8M", "kvmsharp: Memory size 8 MiB is out of range: use 16M to 1T (for example --memory 512M).\n")]
    [InlineData("--console", "tcp:1234", "kvmsharp: --console 'tcp:1234' is not a console. Use stdio, virtio or file:PATH.\n")]
    public void BadOptions_OneLineAndExitCode1(string option, string value, string expected)
    {
        var r = CliRunner.Run("run", "--kernel", RepoPaths.Fixture("kernels", "multiboot-test.elf"), option, value);

        Assert.Equal(1, r.ExitCode);
        Assert.Equal(expected, r.Error);
    }

    [Fact]
    public void MissingKernel_OneLineAndExitCode1()
    {
        var r = CliRunner.Run("run", "--kernel", "/nonexistent/bzImage");

        Assert.Equal(1, r.ExitCode);
        Assert.Equal("kvmsharp: Kernel file '/nonexistent/bzImage' not found. Pass the path of a Linux bzImage, an ELF vmlinux with a PVH note, or a multiboot kernel.\n", r.Error);
    }
}
