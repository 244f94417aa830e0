using System.CommandLine;
using KvmSharp.Kvm;

namespace KvmSharp.Cli.Commands;

internal static class DeviceOption
{
    public static Option<string> Create() => new("--device")
    {
        Description = "Path of the KVM device node.",
        DefaultValueFactory = _ => KvmSystem.DefaultDevicePath,
        HelpName = "PATH",
    };
}
