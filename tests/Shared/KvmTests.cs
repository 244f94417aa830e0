namespace KvmSharp.Testing;

/// <summary>
/// Tests that run guests on /dev/kvm. Each carries <c>[Trait(KvmTests.Trait, KvmTests.Kvm)]</c> (on the method, the
/// class or the data row) and calls <see cref="Require"/> first. scripts/test.sh runs the rest on this machine and these on
/// real KVM: directly where /dev/kvm is usable, else inside the nested KVM host of scripts/with-kvm.sh.
/// </summary>
internal static class KvmTests
{
    public const string Trait = "Requires";
    public const string Kvm = "kvm";

    /// <summary>The variable scripts/test.sh sets to say which phase runs: <c>host</c> (no KVM tests) or <c>kvm</c>.</summary>
    public const string PhaseVariable = "KVMSHARP_TEST_PHASE";

    /// <summary>For a test run on both backends: <see cref="Require"/> when <paramref name="accel"/> is <c>kvm</c>.</summary>
    public static void RequireFor(string accel)
    {
        if (accel == Kvm)
        {
            Require();
        }
    }

    /// <summary>
    /// Returns when /dev/kvm exists. Without it the test fails when scripts/test.sh runs it (a test missing its trait ran
    /// on the host, or the KVM phase has no KVM), and is skipped, saying how to run it, when run some other way.
    /// </summary>
    public static void Require()
    {
        if (File.Exists("/dev/kvm"))
        {
            return;
        }

        switch (Environment.GetEnvironmentVariable(PhaseVariable))
        {
            case "host":
                Assert.Fail($"This test runs guests on KVM but has no [Trait(\"{Trait}\", \"{Kvm}\")], so scripts/test.sh ran it on the host, which has no /dev/kvm. Add the trait.");
                break;
            case "kvm":
                Assert.Fail("scripts/test.sh runs this test on KVM, but /dev/kvm is absent in its KVM phase.");
                break;
            default:
                Assert.Skip("/dev/kvm is absent here: bash scripts/test.sh runs this test on real KVM (in a nested KVM host where needed).");
                break;
        }
    }
}
