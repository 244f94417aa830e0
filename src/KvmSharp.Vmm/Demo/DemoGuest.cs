using System.Text;
using KvmSharp.Boot;
using KvmSharp.Devices.Bus;
using KvmSharp.Devices.Legacy;
using KvmSharp.Hypervisor;
using KvmSharp.Kvm;
using KvmSharp.Memory;

namespace KvmSharp.Vmm.Demo;

/// <summary>
/// The demo machine of <c>kvmsharp demo</c>: each vCPU starts in 64-bit mode, writes its own index into a
/// greeting, takes a spinlock in guest memory, prints the greeting on the debug console port (0xE9), releases
/// the lock and halts. Source: docs/demo-guest.S.
/// </summary>
public static class DemoGuest
{
    public const ulong CodeAddress = 0x10_0000;
    public const ulong MessageBase = 0x11_0000;

    /// <summary>The guest's console spinlock: vCPUs print one whole line at a time, as an SMP guest would.</summary>
    public const ulong ConsoleLock = 0x10_F000;
    public const ulong StackTop = 0x20_0000;
    public const ulong MemorySize = 4 * 1024 * 1024;

    // docs/demo-guest.S: mov %rsi,%rdi; mov %rcx,%r8; mov $'#',%al; repne scasb; jne 1f; add $'0',%bl;
    // mov %bl,-1(%rdi); 1: mov $1,%eax; xchg %eax,(%rbp); test %eax,%eax; jz 2f; pause; jmp 1b;
    // 2: mov %r8,%rcx; mov $0xE9,%dx; rep outsb; movl $0,(%rbp); hlt
    private static readonly byte[] Code =
    [
        0x48, 0x89, 0xf7, 0x49, 0x89, 0xc8, 0xb0, 0x23, 0xf2, 0xae, 0x75, 0x06, 0x80, 0xc3, 0x30, 0x88, 0x5f, 0xff,
        0xb8, 0x01, 0x00, 0x00, 0x00, 0x87, 0x45, 0x00, 0x85, 0xc0, 0x74, 0x04, 0xf3, 0x90, 0xeb, 0xf0,
        0x4c, 0x89, 0xc1, 0x66, 0xba, 0xe9, 0x00, 0xf3, 0x6e, 0xc7, 0x45, 0x00, 0x00, 0x00, 0x00, 0x00, 0xf4,
    ];

    public static string Greeting(int index) => $"Hello from vCPU {index} of a KvmSharp guest running on KVM.\n";

    /// <summary>Builds the machine on KVM; output goes to <paramref name="console"/>. Transactional: nothing leaks on failure.</summary>
    public static Machine Create(KvmSystem system, int vcpuCount, Stream console)
    {
        ArgumentNullException.ThrowIfNull(system);
        ArgumentNullException.ThrowIfNull(console);
        if (vcpuCount is < 1 or > 9)
        {
            throw new ArgumentOutOfRangeException(nameof(vcpuCount), vcpuCount, "The demo guest runs 1 to 9 vCPUs.");
        }

        var cleanup = new Stack<IDisposable>();
        try
        {
            var vm = system.CreateVm();
            cleanup.Push(vm);
            var memory = GuestMemory.Create(MemorySize);
            cleanup.Push(memory);
            vm.MapMemory(memory);

            X86InitialState.WriteTables(memory, mappedGiB: 1);
            memory.Write(CodeAddress, Code);

            var vcpus = new List<IVcpu>();
            for (int i = 0; i < vcpuCount; i++)
            {
                var template = Encoding.ASCII.GetBytes(Greeting(0).Replace("vCPU 0", "vCPU #", StringComparison.Ordinal));
                ulong message = MessageBase + ((ulong)i * 0x100);
                memory.Write(message, template);

                var vcpu = vm.CreateVcpu(i);
                cleanup.Push(vcpu);
                vcpu.SetSystemRegisters(X86InitialState.LongMode(vcpu.GetSystemRegisters()));
                vcpu.SetRegisters(new X86Registers
                {
                    Rip = CodeAddress,
                    Rflags = X86Registers.FlagsReserved,
                    Rsp = StackTop - ((ulong)i * 0x1000),
                    Rbx = (ulong)i,
                    Rsi = message,
                    Rcx = (ulong)template.Length,
                    Rbp = ConsoleLock,
                });
                vcpus.Add(vcpu);
            }

            var io = new IoDispatcher();
            io.Ports.Register(DebugConsole.DefaultPort, 1, new DebugConsole(console), "debugcon");
            return new Machine(vm, memory, vcpus, io);
        }
        catch
        {
            while (cleanup.Count > 0)
            {
                cleanup.Pop().Dispose();
            }

            throw;
        }
    }
}
