namespace KvmSharp.Cli.Tests;

/// <summary>
/// `kvmsharp run` boots each loader's test kernel (tests/fixtures/kernels) on KVM; the kernel reports over
/// the UART what it received from our loader and ends the VM through isa-debug-exit with 0, which is exit
/// status (0 << 1) | 1 = 1.
/// </summary>
public class RunLoaderKernelTests
{
    private const string E820 =
        "0x0000000000000000 0x000000000009fc00 1\n" +
        "0x000000000009fc00 0x0000000000000400 2\n" +
        "0x00000000000f0000 0x0000000000010000 2\n" +
        "0x0000000000100000 0x000000000ff00000 1\n";

    private static CliResult Boot(string kernel)
    {
        Assert.SkipUnless(File.Exists("/dev/kvm"), "/dev/kvm is absent: this test runs guests on KVM.");
        string log = Path.Combine(Path.GetTempPath(), $"kvmsharp-{Guid.NewGuid():N}.log");
        try
        {
            var r = CliRunner.Run(
                "run",
                "--kernel", RepoPaths.Fixture("kernels", kernel),
                "--initrd", RepoPaths.Fixture("kernels", "test-initrd.bin"),
                "--cmdline", "hello world",
                "--memory", "256M",
                "--accel", "kvm",
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

    [Fact]
    public void BzImage_ReceivesBootParamsE820CmdlineAndInitrd()
    {
        var r = Boot("bzimage-test");

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

    [Fact]
    public void PvhElf_ReceivesStartInfoMemmapCmdlineAndModule()
    {
        var r = Boot("pvh-test.elf");

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

    [Fact]
    public void Multiboot_ReceivesMagicInfoMemoryMapAndModule()
    {
        var r = Boot("multiboot-test.elf");

        Assert.Equal(1, r.ExitCode);
        Assert.Equal(
            "multiboot-test: eax=0x2badb002 info at 0x00008000 flags=0x0000024d\n" +
            "mem_lower=639 mem_upper=261120\n" +
            "cmdline=hello world\n" +
            "mmap entries=4\n" +
            Prefixed("mmap", E820) +
            "modules=1\n" +
            "module0 start=0x0fffe000 end=0x0ffff770 sum=0x00057831 string=test-initrd.bin\n" +
            "loader=KvmSharp\n",
            r.Guest);
    }

    [Fact]
    public void StdioConsole_StreamsGuestOutputAndEndsWithTheDebugExitStatus()
    {
        Assert.SkipUnless(File.Exists("/dev/kvm"), "/dev/kvm is absent: this test runs guests on KVM.");

        var r = CliRunner.RunProcess(
            [],
            "run", "--kernel", RepoPaths.Fixture("kernels", "multiboot-test.elf"), "--memory", "64M", "--accel", "kvm");

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
    [InlineData("--console", "tcp:1234", "kvmsharp: --console 'tcp:1234' is not a console. Use stdio or file:PATH.\n")]
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
