using KvmSharp.Boot;
using KvmSharp.Hypervisor;
using KvmSharp.Memory;

namespace KvmSharp.Kvm.Tests;

internal enum GuestMode
{
    Real,
    Protected32,
    Long64,
}

/// <summary>A KVM VM with RAM, vCPUs in a chosen mode and the guest code at <see cref="CodeAddress"/>.</summary>
internal sealed class TestVm : IDisposable
{
    public const ulong CodeAddress = 0x1000;
    public const ulong OneMiB = 1024 * 1024;

    private TestVm(KvmSystem system, KvmVm vm, GuestMemory memory)
    {
        System = system;
        Vm = vm;
        Memory = memory;
    }

    public KvmSystem System { get; }

    public KvmVm Vm { get; }

    public GuestMemory Memory { get; }

    public List<KvmVcpu> Vcpus { get; } = [];

    public KvmVcpu Vcpu => Vcpus[0];

    /// <summary>The calling test runs guests on KVM (<see cref="KvmTests.Require"/>).</summary>
    public static void RequireKvm() => KvmTests.Require();

    public static TestVm Create(
        GuestMode mode,
        ReadOnlySpan<byte> code,
        IReadOnlyList<MemoryRange>? ram = null,
        bool trackDirtyPages = false,
        bool irqChip = false,
        int vcpuCount = 1)
    {
        RequireKvm();
        var system = KvmSystem.Open();
        KvmVm? vm = null;
        GuestMemory? memory = null;
        try
        {
            vm = system.CreateVm();
            if (system.CheckExtension(KvmCapability.SetTssAddr) > 0)
            {
                vm.SetTssAddress(0xFFFB_D000);
            }

            if (irqChip)
            {
                vm.CreateIrqChip();
            }

            memory = GuestMemory.Create(ram ?? [new MemoryRange(0, 2 * OneMiB)]);
            vm.MapMemory(memory, trackDirtyPages);
            memory.Write(CodeAddress, code);
            if (mode == GuestMode.Long64)
            {
                X86InitialState.WriteTables(memory, mappedGiB: 1);
            }

            var test = new TestVm(system, vm, memory);
            for (int i = 0; i < vcpuCount; i++)
            {
                var vcpu = vm.CreateVcpu(i);
                test.Vcpus.Add(vcpu);
                SetMode(vcpu, mode);
            }

            return test;
        }
        catch
        {
            vm?.Dispose();
            memory?.Dispose();
            system.Dispose();
            throw;
        }
    }

    public static void SetMode(KvmVcpu vcpu, GuestMode mode)
    {
        var sregs = vcpu.GetSystemRegisters();
        switch (mode)
        {
            case GuestMode.Real:
                sregs.Cs = SegmentRegister.RealMode(0, code: true);
                sregs.Ds = sregs.Es = sregs.Fs = sregs.Gs = sregs.Ss = SegmentRegister.RealMode(0);
                break;
            case GuestMode.Protected32:
                sregs.Cr0 = X86SystemRegisters.Cr0Pe | X86SystemRegisters.Cr0Et | X86SystemRegisters.Cr0Ne;
                sregs.Cs = SegmentRegister.FlatCode(0x8, longMode: false);
                sregs.Ds = sregs.Es = sregs.Fs = sregs.Gs = sregs.Ss = SegmentRegister.FlatData(0x10);
                break;
            case GuestMode.Long64:
                sregs = X86InitialState.LongMode(sregs);
                break;
        }

        vcpu.SetSystemRegisters(sregs);
        var regs = new X86Registers { Rip = CodeAddress, Rflags = X86Registers.FlagsReserved, Rsp = 0x7000 };
        vcpu.SetRegisters(regs);
    }

    public void Dispose()
    {
        foreach (var vcpu in Vcpus)
        {
            vcpu.Dispose();
        }

        Vm.Dispose();
        Memory.Dispose();
        System.Dispose();
    }
}

/// <summary>An I/O handler that records every access and answers reads from a table.</summary>
internal sealed class RecordingIo : IVcpuIo
{
    private readonly Lock _lock = new();

    public List<string> Log { get; } = [];

    public Dictionary<ushort, byte[]> PortResponses { get; } = [];

    public Dictionary<ulong, byte[]> MmioResponses { get; } = [];

    /// <summary>A port whose write stops the vCPU (like a debug-exit device).</summary>
    public ushort? StopPort { get; set; }

    /// <summary>Called on each port write, on the vCPU thread.</summary>
    public Action<ushort, byte[]>? OnPortWrite { get; set; }

    public bool StopRequested { get; private set; }

    public List<(ushort Port, byte[] Data)> PortWrites { get; } = [];

    public List<(ulong Address, byte[] Data)> MmioWrites { get; } = [];

    public void PortRead(ushort port, Span<byte> data)
    {
        if (PortResponses.TryGetValue(port, out var value))
        {
            value.AsSpan(0, data.Length).CopyTo(data);
        }
        else
        {
            data.Fill(0xFF);
        }

        Add($"in{data.Length} 0x{port:x} = {Convert.ToHexString(data)}");
    }

    public void PortWrite(ushort port, ReadOnlySpan<byte> data)
    {
        var copy = data.ToArray();
        lock (_lock)
        {
            PortWrites.Add((port, copy));
        }

        Add($"out{data.Length} 0x{port:x} {Convert.ToHexString(data)}");
        OnPortWrite?.Invoke(port, copy);
        if (port == StopPort)
        {
            StopRequested = true;
        }
    }

    public void MmioRead(ulong address, Span<byte> data)
    {
        if (MmioResponses.TryGetValue(address, out var value))
        {
            value.AsSpan(0, data.Length).CopyTo(data);
        }
        else
        {
            data.Fill(0xFF);
        }

        Add($"read{data.Length} 0x{address:x} = {Convert.ToHexString(data)}");
    }

    public void MmioWrite(ulong address, ReadOnlySpan<byte> data)
    {
        var copy = data.ToArray();
        lock (_lock)
        {
            MmioWrites.Add((address, copy));
        }

        Add($"write{data.Length} 0x{address:x} {Convert.ToHexString(data)}");
    }

    public void ClearStop() => StopRequested = false;

    private void Add(string line)
    {
        lock (_lock)
        {
            Log.Add(line);
        }
    }
}
