using System.CommandLine;
using KvmSharp.Vmm.Config;

namespace KvmSharp.Cli.Commands;

/// <summary><c>kvmsharp run</c>: boot a kernel on a PC machine.</summary>
internal static class RunCommand
{
    public static Command Create(CliApp app)
    {
        var kernel = new Option<string>("--kernel", "-k")
        {
            Description = "Kernel to boot: a Linux bzImage, an ELF vmlinux with a PVH note, or a multiboot kernel.",
            Required = true,
            HelpName = "PATH",
        };
        var initrd = new Option<string?>("--initrd", "-i")
        {
            Description = "Initial RAM disk (initramfs) to pass to the kernel.",
            HelpName = "PATH",
        };
        var cmdline = new Option<string>("--cmdline", "-c")
        {
            Description = "Kernel command line.",
            DefaultValueFactory = _ => VmConfig.DefaultCommandLine,
            HelpName = "TEXT",
        };
        var memory = new Option<string>("--memory", "-m")
        {
            Description = "Guest RAM, with a K, M, G or T suffix (a bare number is MiB).",
            DefaultValueFactory = _ => "512M",
            HelpName = "SIZE",
        };
        var cpus = new Option<int>("--cpus")
        {
            Description = "Number of vCPUs (one host thread each).",
            DefaultValueFactory = _ => 1,
            HelpName = "N",
        };
        var accel = AccelOption.Create();
        var console = new Option<string>("--console")
        {
            Description = "Console: stdio (the serial port on stdin/stdout; raw mode on a terminal, Ctrl-A X quits), virtio (stdin/stdout on the guest's hvc0, the serial port's output still shown), or file:PATH (serial output to a file).",
            DefaultValueFactory = _ => "stdio",
            HelpName = "stdio|virtio|file:PATH",
        };
        var disk = new Option<string[]>("--disk")
        {
            Description = "A raw disk image as a virtio block device (repeatable: vda, vdb, ...). Options: readonly, serial=ID (up to 20 characters).",
            HelpName = "PATH[,readonly][,serial=ID]",
            AllowMultipleArgumentsPerToken = false,
        };
        var rng = new Option<bool>("--rng")
        {
            Description = "Add a virtio entropy device (the guest's /dev/hwrng) fed by the host's getrandom.",
        };
        var net = new Option<string[]>("--net")
        {
            Description = "A virtio-net adapter (repeatable: eth0, eth1, ...). user: user-mode networking through passt, no root (DHCP, DNS, the gateway address reaches the host's 127.0.0.1; hostfwd=tcp:[HOSTADDR]:HOSTPORT-:GUESTPORT passes a host port to the guest). tap=NAME: a TAP interface. mac=52:54:00:12:34:56 sets the address.",
            HelpName = "user[,hostfwd=...][,mac=MAC]|tap=NAME[,mac=MAC]",
            AllowMultipleArgumentsPerToken = false,
        };
        var device = DeviceOption.Create();
        var stats = new Option<bool>("--stats")
        {
            Description = "Print each vCPU's exit counts and the guest's boot time when the VM stops.",
        };

        var apiSock = new Option<string?>("--api-sock")
        {
            Description = "Also serve Firecracker's HTTP API for this machine on a UNIX socket (pause, resume, snapshot, stats; kvmsharp ctl speaks it).",
            HelpName = "PATH",
        };

        var command = new Command("run", "Boot a kernel on a PC machine (16550 UART, i8042, CMOS RTC, fw_cfg, in-kernel PIC/IOAPIC/LAPIC/PIT).")
        {
            kernel, initrd, cmdline, memory, cpus, accel, console, disk, rng, net, device, stats, apiSock,
        };
        command.SetAction(parse =>
        {
            string memoryText = parse.GetValue(memory)!;
            if (!SizeParser.TryParse(memoryText, out ulong memoryBytes))
            {
                return app.Fail(ExitCodes.UsageError, $"--memory '{memoryText}' is not a size. Use a number with a K, M, G or T suffix, for example --memory 512M.");
            }

            string consoleText = parse.GetValue(console)!;
            ConsoleKind consoleKind;
            string? consolePath = null;
            if (consoleText == "stdio")
            {
                consoleKind = ConsoleKind.Stdio;
            }
            else if (consoleText == "virtio")
            {
                consoleKind = ConsoleKind.Virtio;
            }
            else if (consoleText.StartsWith("file:", StringComparison.Ordinal))
            {
                consoleKind = ConsoleKind.File;
                consolePath = consoleText["file:".Length..];
            }
            else
            {
                return app.Fail(ExitCodes.UsageError, $"--console '{consoleText}' is not a console. Use stdio, virtio or file:PATH.");
            }

            var disks = new List<DiskConfig>();
            foreach (string diskText in parse.GetValue(disk) ?? [])
            {
                try
                {
                    disks.Add(DiskConfig.Parse(diskText));
                }
                catch (VmConfigException e)
                {
                    return app.Fail(ExitCodes.UsageError, e.Message);
                }
            }

            var nets = new List<NetConfig>();
            foreach (string netText in parse.GetValue(net) ?? [])
            {
                try
                {
                    nets.Add(NetConfig.Parse(netText, nets.Count));
                }
                catch (VmConfigException e)
                {
                    return app.Fail(ExitCodes.UsageError, e.Message);
                }
            }

            var config = new VmConfig
            {
                KernelPath = parse.GetValue(kernel)!,
                InitrdPath = parse.GetValue(initrd),
                CommandLine = parse.GetValue(cmdline)!,
                MemoryBytes = memoryBytes,
                Cpus = parse.GetValue(cpus),
                Accelerator = AccelOption.Parse(parse.GetValue(accel)),
                Console = consoleKind,
                ConsolePath = consolePath,
                KvmDevicePath = parse.GetValue(device)!,
                Disks = disks,
                Rng = parse.GetValue(rng),
                Nets = nets,
            };
            return RunVerb.Run(app, config, parse.GetValue(stats), parse.GetValue(apiSock));
        });
        return command;
    }
}
