using System.CommandLine;
using System.Globalization;
using KvmSharp.Kvm;

namespace KvmSharp.Cli.Commands;

/// <summary><c>kvmsharp caps</c>: whether KVM is usable here, and what it offers.</summary>
internal static class CapsCommand
{
    public static Command Create(CliApp app)
    {
        var device = DeviceOption.Create();
        var command = new Command("caps", "Report whether KVM is usable on this host, which module serves it, and the capabilities KvmSharp relies on.")
        {
            device,
        };
        command.SetAction(parse => Run(app, parse.GetValue(device)!));
        return command;
    }

    private static int Run(CliApp app, string devicePath)
    {
        var o = app.Output;
        var host = KvmHostInfo.Detect();
        o.WriteLine($"KvmSharp {CliApp.Version}: KVM on this host");
        o.WriteLine();
        Row(o, "Device", devicePath);
        Row(o, "KVM module", host.Describe());
        Row(o, "CPU flags", $"vmx {YesNo(host.CpuHasVmx)}, svm {YesNo(host.CpuHasSvm)}");

        KvmSystem system;
        try
        {
            system = KvmSystem.OpenUnchecked(devicePath);
        }
        catch (KvmUnavailableException e)
        {
            Row(o, "Usable", "no");
            return app.Fail(ExitCodes.KvmUnavailable, e.Message);
        }

        using (system)
        {
            int version;
            try
            {
                version = system.ApiVersion;
            }
            catch (KvmException e)
            {
                Row(o, "Usable", "no");
                return app.Fail(ExitCodes.KvmUnavailable, KvmSystem.NotAKvmDeviceMessage(devicePath, e.Errno));
            }

            Row(o, "API version", version == 12 ? "12 (supported)" : $"{version} (KvmSharp needs 12)");
            Row(o, "vCPU mmap size", $"{system.VcpuMmapSize} bytes");
            int recommended = system.CheckExtension(KvmCapability.NrVcpus);
            int maximum = system.CheckExtension(KvmCapability.MaxVcpus);
            Row(o, "vCPUs per VM", $"{recommended} recommended, {maximum} maximum");
            Row(o, "Memory slots", system.CheckExtension(KvmCapability.NrMemslots).ToString(CultureInfo.InvariantCulture));
            o.WriteLine();
            o.WriteLine($"{"Capability",-36} {"State",-8} {"Need",-9} Used for");
            CapabilityUse? missing = null;
            foreach (var use in KvmCapabilities.UsedByVmm)
            {
                int value = system.CheckExtension(use.Capability);
                string state = value switch
                {
                    0 => "no",
                    1 => "yes",
                    _ => value.ToString(CultureInfo.InvariantCulture),
                };
                string need = use.Need == CapabilityNeed.Required ? "required" : "optional";
                o.WriteLine($"{use.Name,-36} {state,-8} {need,-9} {use.Purpose}");
                if (value == 0 && use.Need == CapabilityNeed.Required)
                {
                    missing ??= use;
                }
            }

            o.WriteLine();
            if (version != 12)
            {
                Row(o, "Usable", "no");
                return app.Fail(ExitCodes.KvmUnavailable, KvmSystem.UnsupportedApiVersionMessage(devicePath, version));
            }

            if (missing is not null)
            {
                Row(o, "Usable", "no");
                return app.Fail(ExitCodes.KvmUnavailable, KvmSystem.MissingCapabilityMessage(devicePath, missing));
            }

            Row(o, "Breakpoints", DescribeBreakpoints(system));
            Row(o, "Usable", host.Module == KvmModuleKind.Pvm
                ? "yes, but guest kernel code is emulated by kvm_pvm (~1000x slower); Linux guests need the software CPU here"
                : "yes");
            return ExitCodes.Success;
        }
    }

    /// <summary>Whether DR0-DR3 breakpoints set through KVM trap here (a three-instruction probe guest).</summary>
    private static string DescribeBreakpoints(KvmSystem system)
    {
        try
        {
            return system.HardwareBreakpointsTrap
                ? "DR0-DR3 trap in the guest"
                : "DR0-DR3 do not trap in the guest here (the host's SVM or VT-x is emulated, e.g. by QEMU); KvmSharp emulates them by single-stepping";
        }
        catch (KvmException e)
        {
            return $"not probed: {e.Message}";
        }
    }

    private static string YesNo(bool value) => value ? "yes" : "no";

    private static void Row(TextWriter o, string label, string value) => o.WriteLine($"{label,-16} {value}");
}
