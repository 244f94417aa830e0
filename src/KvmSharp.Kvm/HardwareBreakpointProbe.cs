using KvmSharp.Hypervisor;
using KvmSharp.Memory;

namespace KvmSharp.Kvm;

/// <summary>
/// Whether instruction breakpoints set through KVM_SET_GUEST_DEBUG (DR0-DR3, DR7) trap on this host. They do on VT-x and
/// SVM hardware. They do not where the "hardware" is QEMU's software CPU emulating SVM (the nested KVM host of
/// scripts/with-kvm.sh): QEMU 7.2's VMRUN loads DR7 from the VMCB without arming its breakpoints
/// (target/i386/tcg/sysemu/svm_helper.c), so the guest runs past them. Where they do not, <see cref="KvmVcpu"/>
/// emulates them by single-stepping and comparing each instruction's address.
/// </summary>
internal static class HardwareBreakpointProbe
{
    private const ulong CodeAddress = 0x1000;

    // nop; nop; hlt in real mode, with an execute breakpoint on the second nop.
    private static readonly byte[] Code = [0x90, 0x90, 0xf4];

    /// <summary>Runs a three-instruction real-mode guest with a breakpoint on its second instruction.</summary>
    public static bool BreakpointsTrap(KvmSystem system)
    {
        using var memory = GuestMemory.Create(64 * 1024);
        using var vm = system.CreateVm();
        vm.MapMemory(memory);
        memory.Write(CodeAddress, Code);
        using var vcpu = vm.CreateVcpu(0);
        var sregs = vcpu.GetSystemRegisters();
        sregs.Cs = SegmentRegister.RealMode(0, code: true);
        vcpu.SetSystemRegisters(sregs);
        vcpu.SetRegisters(new X86Registers { Rip = CodeAddress, Rflags = X86Registers.FlagsReserved });
        vcpu.ApplyGuestDebug(singleStep: false, [CodeAddress + 1]);
        var stop = vcpu.Run(ProbeIo.Instance);
        return stop.Reason == VcpuStopReason.Debug && stop.DebugPc == CodeAddress + 1;
    }

    private sealed class ProbeIo : IVcpuIo
    {
        public static readonly ProbeIo Instance = new();

        public bool StopRequested => true;

        public void PortRead(ushort port, Span<byte> data) => data.Clear();

        public void PortWrite(ushort port, ReadOnlySpan<byte> data)
        {
        }

        public void MmioRead(ulong address, Span<byte> data) => data.Clear();

        public void MmioWrite(ulong address, ReadOnlySpan<byte> data)
        {
        }
    }
}
