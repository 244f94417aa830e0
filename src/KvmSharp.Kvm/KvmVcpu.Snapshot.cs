using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using KvmSharp.Hypervisor;
using KvmSharp.Hypervisor.Snapshots;
using KvmSharp.Kvm.Interop;
using KvmSharp.Native;

namespace KvmSharp.Kvm;

/// <summary>Saving and restoring a KVM vCPU's state for snapshots, in the order QEMU's kvm_arch_put_registers uses.</summary>
public sealed unsafe partial class KvmVcpu
{
    // Beyond KVM_GET_MSR_INDEX_LIST: the TSC and every kvmclock/paravirt MSR, whichever of them KVM_GET_MSRS answers.
    private static readonly uint[] ExtraSnapshotMsrs =
    [
        KvmConstants.MSR_IA32_TSC, KvmConstants.MSR_KVM_WALL_CLOCK, KvmConstants.MSR_KVM_SYSTEM_TIME,
        KvmConstants.MSR_KVM_WALL_CLOCK_NEW, KvmConstants.MSR_KVM_SYSTEM_TIME_NEW, KvmConstants.MSR_KVM_ASYNC_PF_EN,
        KvmConstants.MSR_KVM_STEAL_TIME, KvmConstants.MSR_KVM_PV_EOI_EN, KvmConstants.MSR_KVM_POLL_CONTROL,
        KvmConstants.MSR_KVM_ASYNC_PF_INT,
    ];

    /// <summary>
    /// Captures the vCPU: registers, system registers, XSAVE area, XCRs, MSRs, MP state, LAPIC, pending events, debug
    /// registers and TSC frequency. Call it on the vCPU's own thread while it is outside KVM_RUN.
    /// </summary>
    public KvmVcpuState SaveState()
    {
        CompletePendingIo();
        var regs = GetRegisters();
        var sregs = GetSystemRegisters();
        var events = GetEvents();
        var xcrs = GetXcrs();
        var xcrStates = new KvmXcrState[xcrs.Length];
        for (int i = 0; i < xcrs.Length; i++)
        {
            xcrStates[i] = new KvmXcrState(xcrs[i].Index, xcrs[i].Value);
        }

        var debug = GetDebugRegisters();
        return new KvmVcpuState(
            Index,
            StructBytes(in regs),
            StructBytes(in sregs),
            GetXsaveArea(),
            xcrStates,
            SaveMsrs(),
            (uint)GetMpState(),
            _vm.HasIrqChip ? GetLapic() : null,
            StructBytes(in events),
            [debug.db[0], debug.db[1], debug.db[2], debug.db[3]],
            debug.dr6,
            debug.dr7,
            GetTscKhz());
    }

    /// <summary>
    /// Loads a state from <see cref="SaveState"/> into this vCPU of a freshly built VM (CPUID set, memory mapped, the VM's
    /// own <see cref="KvmVm.RestoreState"/> done), before it first runs: TSC frequency, regs, XSAVE, XCRs, sregs, MSRs,
    /// MP state, LAPIC, the TSC deadline (only valid once the LAPIC is in TSC-deadline mode), events, debug registers.
    /// Throws <see cref="SnapshotStateException"/> for a state that does not fit (checked before anything is set) or a
    /// value KVM refuses; the vCPU is then partly restored and the VM should be discarded.
    /// </summary>
    public void RestoreState(KvmVcpuState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        int xsaveSize = XsaveSize();
        if (Check(state, xsaveSize) is { } problem)
        {
            throw new SnapshotStateException($"The snapshot's state of vCPU {Index} cannot be restored: {problem}.");
        }

        try
        {
            RestoreTscKhz(state.TscKhz);
            SetRegisters(FromBytes<X86Registers>(state.Regs));
            SetXsaveArea(state.Xsave, xsaveSize);
            SetXcrs(state.Xcrs);
            SetSystemRegisters(FromBytes<X86SystemRegisters>(state.Sregs));
            if (!_vm.TscRestored && Array.Find(state.Msrs, m => m.Index == KvmConstants.MSR_IA32_TSC) is { } tsc)
            {
                MoveTscAway(tsc.Value, state.TscKhz);
            }

            RestoreMsrs(state.Msrs, deadline: false);
            _vm.TscRestored = true;
            SetMpState((VcpuMpState)state.MpState);
            if (state.Lapic is { } lapic)
            {
                SetLapic(lapic);
            }

            RestoreMsrs(state.Msrs, deadline: true);
            var events = FromBytes<VcpuEvents>(state.Events);
            events.Flags = (events.Flags & (KvmConstants.KVM_VCPUEVENT_VALID_SHADOW | KvmConstants.KVM_VCPUEVENT_VALID_SMM
                    | KvmConstants.KVM_VCPUEVENT_VALID_PAYLOAD | KvmConstants.KVM_VCPUEVENT_VALID_TRIPLE_FAULT))
                | KvmConstants.KVM_VCPUEVENT_VALID_NMI_PENDING | KvmConstants.KVM_VCPUEVENT_VALID_SIPI_VECTOR;
            SetEvents(events);
            var debug = new kvm_debugregs { dr6 = state.Dr6, dr7 = state.Dr7 };
            for (int i = 0; i < 4; i++)
            {
                debug.db[i] = state.DebugAddresses[i];
            }

            // SAFETY: the kernel reads sizeof(kvm_debugregs) bytes from a stack local; flags and reserved are 0.
            Ioctl.Invoke(_fd, KvmIoctls.KVM_SET_DEBUGREGS, (nint)(&debug), "KVM_SET_DEBUGREGS");
        }
        catch (NativeErrorException e)
        {
            throw new SnapshotStateException($"KVM refused the snapshot's state of vCPU {Index}: {e.Message}");
        }
    }

    /// <summary>
    /// KVM_RUN with immediate_exit set: KVM finishes the port or MMIO access the last exit handed to user space (an IN's
    /// result into RAX, an emulated MMIO read into its register) and returns -EINTR without running the guest. Only
    /// then is the state consistent for saving (Documentation/virt/kvm/api.rst, KVM_RUN and immediate_exit).
    /// </summary>
    private void CompletePendingIo()
    {
        // SAFETY: _run points at the live kvm_run mapping; the byte is restored so a pending Kick still takes effect.
        byte previous = Volatile.Read(ref _run->immediate_exit);
        Volatile.Write(ref _run->immediate_exit, 1);
        int rc = Ioctl.TryInvokeOnce(_fd, KvmIoctls.KVM_RUN, 0);
        Volatile.Write(ref _run->immediate_exit, previous);
        if (rc < 0 && rc != -Errno.EINTR && rc != -Errno.EAGAIN)
        {
            throw new KvmException("KVM_RUN", -rc, $"Completing vCPU {Index}'s last I/O before saving it failed: {Errno.Describe(-rc)}.");
        }
    }

    /// <summary>KVM_GET_TSC_KHZ: the guest TSC frequency in kHz, or 0 when KVM cannot say.</summary>
    public uint GetTscKhz()
    {
        if (_vm.CheckExtension(KvmCapability.GetTscKhz) <= 0)
        {
            return 0;
        }

        int khz = Ioctl.Invoke(_fd, KvmIoctls.KVM_GET_TSC_KHZ, 0, "KVM_GET_TSC_KHZ");
        return (uint)khz;
    }

    /// <summary>KVM_GET_XSAVE2 when KVM has it (the area may exceed 4 KiB), else KVM_GET_XSAVE.</summary>
    public byte[] GetXsaveArea()
    {
        int size = XsaveSize();
        if (size <= sizeof(kvm_xsave) && _vm.CheckExtension(KvmCapability.Xsave2) <= 0)
        {
            return GetXsave();
        }

        var area = new byte[size];
        fixed (byte* p = area)
        {
            // SAFETY: area is the size KVM_CHECK_EXTENSION(KVM_CAP_XSAVE2) reports, at least sizeof(kvm_xsave).
            Ioctl.Invoke(_fd, KvmIoctls.KVM_GET_XSAVE2, (nint)p, "KVM_GET_XSAVE2");
        }

        return area;
    }

    /// <summary>KVM_GET_DEBUGREGS.</summary>
    private kvm_debugregs GetDebugRegisters()
    {
        kvm_debugregs debug;
        // SAFETY: the kernel writes sizeof(kvm_debugregs) bytes into a stack local.
        Ioctl.Invoke(_fd, KvmIoctls.KVM_GET_DEBUGREGS, (nint)(&debug), "KVM_GET_DEBUGREGS");
        return debug;
    }

    private int XsaveSize() => Math.Max(sizeof(kvm_xsave), _vm.CheckExtension(KvmCapability.Xsave2));

    private void SetXsaveArea(byte[] saved, int size)
    {
        var area = new byte[size];
        saved.CopyTo(area, 0); // a shorter area from KVM_GET_XSAVE: the rest is components in their init state
        fixed (byte* p = area)
        {
            // SAFETY: area is the size KVM_CAP_XSAVE2 reports (>= sizeof(kvm_xsave)); the kernel reads at most that.
            Ioctl.Invoke(_fd, KvmIoctls.KVM_SET_XSAVE, (nint)p, "KVM_SET_XSAVE");
        }
    }

    private void SetXcrs(KvmXcrState[] saved)
    {
        kvm_xcrs xcrs = default;
        xcrs.nr_xcrs = (uint)saved.Length;
        for (int i = 0; i < saved.Length; i++)
        {
            xcrs.xcrs[i * 2] = saved[i].Index;
            xcrs.xcrs[(i * 2) + 1] = saved[i].Value;
        }

        // SAFETY: the kernel reads sizeof(kvm_xcrs) bytes from a stack local; nr_xcrs <= 16 (checked).
        Ioctl.Invoke(_fd, KvmIoctls.KVM_SET_XCRS, (nint)(&xcrs), "KVM_SET_XCRS");
    }

    private void RestoreTscKhz(uint khz)
    {
        if (khz == 0)
        {
            return;
        }

        uint current = GetTscKhz();
        if (current == khz || current == 0)
        {
            return;
        }

        if (_vm.CheckExtension(KvmCapability.TscControl) <= 0)
        {
            throw new SnapshotStateException(
                $"The snapshot's vCPU {Index} ran its TSC at {khz} kHz, this host's vCPUs at {current} kHz, and KVM here cannot change it (no KVM_CAP_TSC_CONTROL). Restore it on a host with the same TSC frequency.");
        }

        Ioctl.Invoke(_fd, KvmIoctls.KVM_SET_TSC_KHZ, (nint)khz, "KVM_SET_TSC_KHZ");
    }

    /// <summary>
    /// KVM takes a host write of IA32_TSC within one second (of guest TSC cycles) of the value it expects from the last
    /// write as an attempt to synchronize vCPUs, and keeps the VM's current TSC offset instead (kvm_synchronize_tsc).
    /// A young snapshot restored into a young VM falls in that window, and its TSC would not go on from the saved value.
    /// So the first vCPU restored in a VM first writes a value 16 s away, which KVM must take as a new TSC; the real
    /// write that follows is then honoured, and every later vCPU's write lands in the window and gets the same offset,
    /// so the vCPUs stay synchronized (and kvmclock keeps its stable master clock).
    /// </summary>
    private void MoveTscAway(ulong tsc, uint khz)
    {
        ulong hz = khz != 0 ? khz * 1000UL : 4_000_000_000UL;
        ReadOnlySpan<uint> index = [KvmConstants.MSR_IA32_TSC];
        ReadOnlySpan<ulong> away = [tsc + (16 * hz)];
        if (SetMsrs(index, away) != 1)
        {
            throw new SnapshotStateException($"KVM refused a write of IA32_TSC on vCPU {Index} while restoring its TSC.");
        }
    }

    /// <summary>Every MSR of the index list (and <see cref="ExtraSnapshotMsrs"/>) that KVM_GET_MSRS answers.</summary>
    private KvmMsrState[] SaveMsrs()
    {
        var indices = new List<uint>(_vm.System.GetMsrIndexList());
        foreach (uint extra in ExtraSnapshotMsrs)
        {
            if (!indices.Contains(extra))
            {
                indices.Add(extra);
            }
        }

        var all = indices.ToArray();
        var values = new ulong[all.Length];
        var saved = new List<KvmMsrState>(all.Length);
        int start = 0;
        while (start < all.Length)
        {
            int answered = GetMsrs(all.AsSpan(start), values.AsSpan(start));
            for (int i = start; i < start + answered; i++)
            {
                saved.Add(new KvmMsrState(all[i], values[i]));
            }

            start += answered + 1; // skip the one KVM refused
        }

        return [.. saved];
    }

    /// <summary>
    /// The saved MSRs but IA32_TSC_DEADLINE (or only it, when <paramref name="deadline"/>). A value KVM refuses is
    /// accepted when this vCPU already holds it (MSRs KVM reports but does not let the host write).
    /// </summary>
    private void RestoreMsrs(KvmMsrState[] msrs, bool deadline)
    {
        var indices = new List<uint>(msrs.Length);
        var values = new List<ulong>(msrs.Length);
        foreach (var msr in msrs)
        {
            if ((msr.Index == KvmConstants.MSR_IA32_TSCDEADLINE) == deadline)
            {
                indices.Add(msr.Index);
                values.Add(msr.Value);
            }
        }

        var allIndices = indices.ToArray();
        var allValues = values.ToArray();
        int start = 0;
        Span<ulong> current = stackalloc ulong[1];
        while (start < allIndices.Length)
        {
            start += SetMsrs(allIndices.AsSpan(start), allValues.AsSpan(start));
            if (start == allIndices.Length)
            {
                break;
            }

            if (GetMsrs(allIndices.AsSpan(start, 1), current) != 1 || current[0] != allValues[start])
            {
                throw new SnapshotStateException(
                    $"KVM refused the snapshot's value 0x{allValues[start]:x} of MSR 0x{allIndices[start]:x} on vCPU {Index}. Restore it on a host whose KVM supports the same MSRs.");
            }

            start++;
        }
    }

    private string? Check(KvmVcpuState state, int xsaveSize)
    {
        if (state.Index != Index)
        {
            return $"it was saved from vCPU {state.Index}";
        }

        if (state.Regs is not { Length: 144 } || state.Sregs is not { Length: 312 } || state.Events is not { Length: 64 })
        {
            return "kvm_regs, kvm_sregs or kvm_vcpu_events is missing or has the wrong size (144, 312 and 64 bytes)";
        }

        if (state.Xsave is null || state.Xsave.Length < sizeof(kvm_xsave) || state.Xsave.Length > xsaveSize)
        {
            return $"its XSAVE area is {state.Xsave?.Length ?? 0} bytes; this host's KVM takes {sizeof(kvm_xsave)} to {xsaveSize}";
        }

        if (state.Xcrs is null || state.Xcrs.Length > 16 || Array.IndexOf(state.Xcrs, null) >= 0)
        {
            return "its XCR list is missing or longer than 16";
        }

        if (state.Msrs is null || Array.IndexOf(state.Msrs, null) >= 0)
        {
            return "its MSR list is missing or has holes";
        }

        if (state.DebugAddresses is not { Length: 4 })
        {
            return "it must hold 4 debug address registers (DR0-DR3)";
        }

        if (state.Lapic is not null != _vm.HasIrqChip || (state.Lapic is { } lapic && lapic.Length != sizeof(kvm_lapic_state)))
        {
            return _vm.HasIrqChip
                ? $"this VM has the in-kernel irqchip, so the state needs a {sizeof(kvm_lapic_state)}-byte LAPIC page"
                : "it has a LAPIC page but this VM has no in-kernel irqchip";
        }

        return null;
    }

    private static byte[] StructBytes<T>(in T value)
        where T : unmanaged => MemoryMarshal.AsBytes(new ReadOnlySpan<T>(in value)).ToArray();

    private static T FromBytes<T>(byte[] bytes)
        where T : unmanaged
    {
        // Check verified the length against the kernel's struct size, which Unsafe.SizeOf<T> equals (layout tests).
        return bytes.Length == Unsafe.SizeOf<T>() ? MemoryMarshal.Read<T>(bytes) : throw new ArgumentException("Wrong size.", nameof(bytes));
    }
}
