using System.CommandLine;
using KvmSharp.Vmm.Config;

namespace KvmSharp.Cli.Commands;

/// <summary><c>--accel auto|kvm|emulator</c>, shared by run and serve.</summary>
internal static class AccelOption
{
    public static Option<string> Create()
    {
        var accel = new Option<string>("--accel")
        {
            Description = "Execution backend: auto (KVM where it can run a guest kernel, else the software CPU), kvm, or emulator (the software x86-64 CPU).",
            DefaultValueFactory = _ => "auto",
            HelpName = "auto|kvm|emulator",
        };
        accel.AcceptOnlyFromAmong("auto", "kvm", "emulator");
        return accel;
    }

    /// <summary>The accelerator an accepted value names.</summary>
    public static Accelerator Parse(string? value) => value switch
    {
        "kvm" => Accelerator.Kvm,
        "emulator" => Accelerator.Emulator,
        _ => Accelerator.Auto,
    };
}
