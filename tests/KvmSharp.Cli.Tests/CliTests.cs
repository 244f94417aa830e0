namespace KvmSharp.Cli.Tests;

public class CliTests
{
    [Fact]
    [Trait(KvmTests.Trait, KvmTests.Kvm)]
    public void Caps_OnThisHost_ReportsUsableKvmAndTheRequiredCapabilities()
    {
        KvmTests.Require();

        var r = CliRunner.Run("caps");

        Assert.Equal(0, r.ExitCode);
        Assert.Equal(string.Empty, r.Error);
        Assert.Contains("API version      12 (supported)\n", r.Output);
        Assert.Contains("KVM_CAP_USER_MEMORY                  yes      required  guest RAM in user memory slots\n", r.Output);
        Assert.Contains("KVM_CAP_IMMEDIATE_EXIT               yes      required  kicking vCPUs out of KVM_RUN\n", r.Output);
        Assert.Matches(@"\nUsable           yes", r.Output);
        Assert.Contains($"KVM module       {KvmSharp.Kvm.KvmHostInfo.Detect().Describe()}\n", r.Output);
        Assert.Matches(@"\nBreakpoints      DR0-DR3 (trap in the guest|do not trap in the guest here .*; KvmSharp emulates them by single-stepping)\n", r.Output);
    }

    [Fact]
    [Trait(KvmTests.Trait, KvmTests.Kvm)]
    public void RunAuto_WithUsableKvm_SaysWhichModuleItUses()
    {
        KvmTests.Require();
        var host = KvmSharp.Kvm.KvmHostInfo.Detect();

        var r = CliRunner.Run("run", "--kernel", RepoPaths.Fixture("kernels", "pvh-test.elf"), "--memory", "64M", "--accel", "auto", "--console", "file:/dev/null");

        Assert.Equal(1, r.ExitCode);
        Assert.Equal(
            host.Module == KvmSharp.Kvm.KvmModuleKind.Pvm
                ? "kvmsharp: using the software CPU: KVM here is kvm_pvm, which cannot finish booting a stock Linux kernel (use --accel kvm to try anyway).\n"
                : $"kvmsharp: using KVM ({host.Describe()}).\n",
            r.Error);
    }

    [Theory]
    [InlineData("/nonexistent/kvm", "/nonexistent/kvm does not exist on this host (KVM module: {0}).")]
    [InlineData("/dev/null", "'/dev/null' is not a KVM device (KVM_GET_API_VERSION failed: Inappropriate ioctl for device (ENOTTY)). Pass the path of the KVM device node, normally /dev/kvm.")]
    public void RunAuto_WithoutUsableKvm_UsesTheSoftwareCpuAndSaysWhy(string device, string why)
    {
        var r = CliRunner.Run("run", "--kernel", RepoPaths.Fixture("kernels", "pvh-test.elf"), "--memory", "64M", "--accel", "auto", "--device", device, "--console", "file:/dev/null");

        Assert.Equal(1, r.ExitCode); // the test kernel's debug-exit 0: it ran, on the software CPU
        Assert.Equal($"kvmsharp: using the software CPU: {string.Format(System.Globalization.CultureInfo.InvariantCulture, why, KvmSharp.Kvm.KvmHostInfo.Detect().ModuleName)}\n", r.Error);
    }

    [Fact]
    public void Caps_WithoutKvm_NamesTheModuleItFound()
    {
        var r = CliRunner.Run("caps", "--device", "/nonexistent/kvm");

        Assert.Contains($"KVM module       {KvmSharp.Kvm.KvmHostInfo.Detect().Describe()}\n", r.Output);
    }

    [Fact]
    public void Caps_MissingDevice_OneLineAndExitCode2()
    {
        var r = CliRunner.Run("caps", "--device", "/nonexistent/kvm");

        Assert.Equal(2, r.ExitCode);
        Assert.Equal(
            "kvmsharp: '/nonexistent/kvm' not found. Make sure the kernel has KVM enabled (modprobe kvm_intel or kvm_amd) and the CPU's virtualization extensions are on in the firmware.\n",
            r.Error);
        Assert.Contains("Usable           no\n", r.Output);
    }

    [Fact]
    public void Demo_NotAKvmDevice_OneLineAndExitCode2()
    {
        var r = CliRunner.Run("demo", "--device", "/dev/null");

        Assert.Equal(2, r.ExitCode);
        Assert.Equal(
            "kvmsharp: '/dev/null' is not a KVM device (KVM_GET_API_VERSION failed: Inappropriate ioctl for device (ENOTTY)). Pass the path of the KVM device node, normally /dev/kvm.\n",
            r.Error);
    }

    [Fact]
    [Trait(KvmTests.Trait, KvmTests.Kvm)]
    public void Demo_TwoVcpus_PrintGreetingsAndStatistics()
    {
        KvmTests.Require();

        var r = CliRunner.Run("demo", "--cpus", "2", "--stats");

        Assert.Equal(0, r.ExitCode);
        Assert.Equal(string.Empty, r.Error);
        Assert.Equal(
            ["Hello from vCPU 0 of a KvmSharp guest running on KVM.", "Hello from vCPU 1 of a KvmSharp guest running on KVM."],
            r.Guest.Split('\n', StringSplitOptions.RemoveEmptyEntries).Order(StringComparer.Ordinal));
        Assert.Contains("exit                 vcpu0     vcpu1\n", r.Output);
        Assert.Contains("Halt                     1         1\n", r.Output);
    }

    [Theory]
    [InlineData("0")]
    [InlineData("10")]
    public void Demo_CpuCountOutOfRange_OneLineAndExitCode1(string cpus)
    {
        var r = CliRunner.Run("demo", "--cpus", cpus);

        Assert.Equal(1, r.ExitCode);
        Assert.Equal($"kvmsharp: --cpus {cpus} is out of range: the demo runs 1 to 9 vCPUs.\n", r.Error);
    }

    [Fact]
    public void Version_PrintsTheProductVersion()
    {
        var r = CliRunner.Run("--version");

        Assert.Equal(0, r.ExitCode);
        Assert.StartsWith("0.1.0", r.Output);
    }

    [Fact]
    [Trait(KvmTests.Trait, KvmTests.Kvm)]
    public void PermissionDenied_OnTheDevice_OneLineAndExitCode2()
    {
        KvmTests.Require();
        Assert.SkipUnless(Environment.UserName == "root", "Dropping privileges to check EACCES needs root.");
        const UnixFileMode OtherReadWrite = UnixFileMode.OtherRead | UnixFileMode.OtherWrite;
        Assert.SkipWhen((File.GetUnixFileMode("/dev/kvm") & OtherReadWrite) == OtherReadWrite, "/dev/kvm is open to every user here.");

        var r = CliRunner.RunProcess(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"], "demo");

        Assert.Equal(2, r.ExitCode);
        Assert.Equal(
            "kvmsharp: Permission denied opening '/dev/kvm'. Add your user to the group that owns it (sudo usermod -aG kvm $USER, then log in again) or run as root.\n",
            r.Error);
    }
}
