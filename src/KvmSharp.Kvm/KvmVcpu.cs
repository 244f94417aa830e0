using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using KvmSharp.Hypervisor;
using KvmSharp.Kvm.Interop;
using KvmSharp.Native;

namespace KvmSharp.Kvm;

/// <summary>
/// A KVM vCPU fd with its mmapped kvm_run area. <see cref="Run"/> loops on KVM_RUN, decodes each exit in
/// place and hands port and MMIO accesses to the I/O handler; it returns only for reasons the VMM must act on.
/// </summary>
public sealed unsafe partial class KvmVcpu : IVcpu
{
    private const int MaxMsrBatch = 64;

    private readonly KvmVm _vm;
    private readonly FileDescriptor _fd;
    private readonly MemoryMapping _runMapping;
    private readonly kvm_run* _run;
    private readonly ulong _runSize;
    private readonly ExitStatistics _statistics = new();

    // Written by Kick from any thread, consumed by the vCPU thread. The signal goes only to a thread that is
    // inside Run (so alive): _inRun and _runningThread change under _kickLock at Run entry and exit.
    private readonly Lock _kickLock = new();
    private volatile bool _kickPending;
    private nuint _runningThread;
    private bool _inRun;

    // Interrupt injection for VMs without the in-kernel irqchip: -1 when nothing is queued.
    private int _queuedVector = -1;

    // Breakpoints emulated by single-stepping (SetGuestDebug), or null; whether the caller also asked for single-steps.
    private const ulong Dr6Fixed = 0xFFFF_0FF0;
    private ulong[]? _emulatedBreakpoints;
    private bool _steppingForUser;

    internal KvmVcpu(KvmVm vm, int index, FileDescriptor fd, int mmapSize)
    {
        _vm = vm;
        _fd = fd;
        Index = index;
        if (mmapSize < sizeof(kvm_run))
        {
            throw new KvmException("KVM_GET_VCPU_MMAP_SIZE", Errno.EINVAL, $"KVM reports a vCPU mmap size of {mmapSize} bytes, smaller than kvm_run ({sizeof(kvm_run)}).");
        }

        _runMapping = MemoryMapping.Shared(fd, (ulong)mmapSize);
        _runSize = (ulong)mmapSize;
        _run = (kvm_run*)_runMapping.Address;
        ThreadKicker.EnsureInstalled();
    }

    public int Index { get; }

    public ExitStatistics Statistics => _statistics;

    /// <summary>The KVM VM this vCPU belongs to.</summary>
    public KvmVm Vm => _vm;

    /// <summary>Raw fd number, for diagnostics.</summary>
    public int DescriptorNumber => _fd.Number;

    public VcpuStop Run(IVcpuIo io)
    {
        ArgumentNullException.ThrowIfNull(io);
        lock (_kickLock)
        {
            if (_inRun)
            {
                throw new InvalidOperationException($"vCPU {Index} is already running on another thread.");
            }

            _runningThread = ThreadKicker.CurrentThread();
            _inRun = true;
        }

        try
        {
            return RunLoop(io);
        }
        finally
        {
            lock (_kickLock)
            {
                _inRun = false;
            }
        }
    }

    private VcpuStop RunLoop(IVcpuIo io)
    {
        kvm_run* run = _run;
        while (true)
        {
            if (_kickPending)
            {
                return ConsumeKick();
            }

            if (_queuedVector >= 0)
            {
                InjectQueuedInterrupt(run);
            }

            int rc = Ioctl.TryInvokeOnce(_fd, KvmIoctls.KVM_RUN, 0);
            if (rc < 0)
            {
                int errno = -rc;
                if (errno == Errno.EINTR || errno == Errno.EAGAIN)
                {
                    _statistics.Increment(ExitKind.Interrupted);
                    if (_kickPending)
                    {
                        return ConsumeKick();
                    }

                    run->immediate_exit = 0;
                    continue;
                }

                ThrowRunFailed(errno);
            }

            switch (run->exit_reason)
            {
                case KvmConstants.KVM_EXIT_IO:
                    HandleIo(run, io);
                    if (io.StopRequested)
                    {
                        return new VcpuStop(VcpuStopReason.IoRequestedStop);
                    }

                    break;

                case KvmConstants.KVM_EXIT_MMIO:
                    HandleMmio(run, io);
                    if (io.StopRequested)
                    {
                        return new VcpuStop(VcpuStopReason.IoRequestedStop);
                    }

                    break;

                case KvmConstants.KVM_EXIT_HLT:
                    _statistics.Increment(ExitKind.Halt);
                    return new VcpuStop(VcpuStopReason.Halted);

                case KvmConstants.KVM_EXIT_IRQ_WINDOW_OPEN:
                    // The queued vector is injected before the next KVM_RUN, now that the guest can take it.
                    _statistics.Increment(ExitKind.IrqWindowOpen);
                    break;

                case KvmConstants.KVM_EXIT_INTR:
                    _statistics.Increment(ExitKind.Interrupted);
                    if (_kickPending)
                    {
                        return ConsumeKick();
                    }

                    break;

                case KvmConstants.KVM_EXIT_DEBUG:
                    _statistics.Increment(ExitKind.Debug);
                    if (_emulatedBreakpoints is not null && run->debug.exception == 1)
                    {
                        var stop = EmulatedBreakpointStop(run->debug.pc, run->debug.dr6);
                        if (stop is null)
                        {
                            break;
                        }

                        return stop.Value;
                    }

                    return new VcpuStop(VcpuStopReason.Debug)
                    {
                        DebugPc = run->debug.pc,
                        DebugException = run->debug.exception,
                        DebugDr6 = run->debug.dr6,
                    };

                case KvmConstants.KVM_EXIT_SHUTDOWN:
                    _statistics.Increment(ExitKind.Shutdown);
                    return new VcpuStop(VcpuStopReason.Shutdown);

                case KvmConstants.KVM_EXIT_SYSTEM_EVENT:
                    _statistics.Increment(ExitKind.SystemEvent);
                    return DecodeSystemEvent(run);

                case KvmConstants.KVM_EXIT_FAIL_ENTRY:
                    _statistics.Increment(ExitKind.FailEntry);
                    return new VcpuStop(VcpuStopReason.FailEntry)
                    {
                        ErrorCode = run->fail_entry.hardware_entry_failure_reason,
                        ErrorDetail = $"hardware entry failure reason 0x{run->fail_entry.hardware_entry_failure_reason:x} on host CPU {run->fail_entry.cpu}",
                    };

                case KvmConstants.KVM_EXIT_INTERNAL_ERROR:
                    _statistics.Increment(ExitKind.InternalError);
                    return DecodeInternalError(run);

                default:
                    _statistics.Increment(ExitKind.Other);
                    return new VcpuStop(VcpuStopReason.InternalError)
                    {
                        ErrorCode = run->exit_reason,
                        ErrorDetail = $"unhandled KVM exit reason {run->exit_reason}",
                    };
            }
        }
    }

    /// <summary>Makes Run return <see cref="VcpuStopReason.Kicked"/>: sets immediate_exit and signals the thread.</summary>
    public void Kick()
    {
        _kickPending = true;
        // SAFETY: _run points at the live kvm_run mapping; immediate_exit is a byte the kernel reads at KVM_RUN entry.
        Volatile.Write(ref _run->immediate_exit, 1);
        lock (_kickLock)
        {
            if (_inRun)
            {
                ThreadKicker.Kick(_runningThread);
            }
        }
    }

    /// <summary>
    /// Queues an external interrupt for a VM without the in-kernel irqchip. Before the next KVM_RUN it is
    /// injected with KVM_INTERRUPT if kvm_run says the guest can take one now; otherwise KvmSharp asks KVM
    /// for an interrupt window (KVM_EXIT_IRQ_WINDOW_OPEN) and injects it then, as QEMU does. Call from the
    /// vCPU thread between runs.
    /// </summary>
    public void QueueInterrupt(byte vector) => _queuedVector = vector;

    // ---- Register state ----

    public X86Registers GetRegisters()
    {
        X86Registers regs;
        // SAFETY: X86Registers has kvm_regs' layout (144 bytes, asserted by tests); the kernel writes exactly that.
        Ioctl.Invoke(_fd, KvmIoctls.KVM_GET_REGS, (nint)(&regs), "KVM_GET_REGS");
        return regs;
    }

    public void SetRegisters(in X86Registers registers)
    {
        fixed (X86Registers* p = &registers)
        {
            // SAFETY: the kernel reads sizeof(kvm_regs) bytes from the caller's struct.
            Ioctl.Invoke(_fd, KvmIoctls.KVM_SET_REGS, (nint)p, "KVM_SET_REGS");
        }
    }

    public X86SystemRegisters GetSystemRegisters()
    {
        X86SystemRegisters sregs;
        // SAFETY: X86SystemRegisters has kvm_sregs' layout (312 bytes, asserted by tests).
        Ioctl.Invoke(_fd, KvmIoctls.KVM_GET_SREGS, (nint)(&sregs), "KVM_GET_SREGS");
        return sregs;
    }

    public void SetSystemRegisters(in X86SystemRegisters registers)
    {
        fixed (X86SystemRegisters* p = &registers)
        {
            // SAFETY: the kernel reads sizeof(kvm_sregs) bytes from the caller's struct.
            Ioctl.Invoke(_fd, KvmIoctls.KVM_SET_SREGS, (nint)p, "KVM_SET_SREGS");
        }
    }

    public FpuState GetFpu()
    {
        FpuState fpu;
        // SAFETY: FpuState has kvm_fpu's layout (416 bytes, asserted by tests).
        Ioctl.Invoke(_fd, KvmIoctls.KVM_GET_FPU, (nint)(&fpu), "KVM_GET_FPU");
        return fpu;
    }

    public void SetFpu(in FpuState fpu)
    {
        fixed (FpuState* p = &fpu)
        {
            // SAFETY: the kernel reads sizeof(kvm_fpu) bytes from the caller's struct.
            Ioctl.Invoke(_fd, KvmIoctls.KVM_SET_FPU, (nint)p, "KVM_SET_FPU");
        }
    }

    /// <summary>KVM_GET_XSAVE: the legacy 4 KiB XSAVE area (FXSAVE layout plus the XSAVE header).</summary>
    public byte[] GetXsave()
    {
        var area = new byte[sizeof(kvm_xsave)];
        fixed (byte* p = area)
        {
            // SAFETY: area is exactly sizeof(kvm_xsave) bytes.
            Ioctl.Invoke(_fd, KvmIoctls.KVM_GET_XSAVE, (nint)p, "KVM_GET_XSAVE");
        }

        return area;
    }

    public void SetXsave(ReadOnlySpan<byte> area)
    {
        if (area.Length != sizeof(kvm_xsave))
        {
            throw new ArgumentException($"An XSAVE area is {sizeof(kvm_xsave)} bytes, not {area.Length}.", nameof(area));
        }

        fixed (byte* p = area)
        {
            // SAFETY: area is exactly sizeof(kvm_xsave) bytes; the kernel only reads it.
            Ioctl.Invoke(_fd, KvmIoctls.KVM_SET_XSAVE, (nint)p, "KVM_SET_XSAVE");
        }
    }

    /// <summary>KVM_GET_XCRS: (index, value) pairs, XCR0 first.</summary>
    public (uint Index, ulong Value)[] GetXcrs()
    {
        kvm_xcrs xcrs;
        // SAFETY: the kernel writes sizeof(kvm_xcrs) bytes into a stack local.
        Ioctl.Invoke(_fd, KvmIoctls.KVM_GET_XCRS, (nint)(&xcrs), "KVM_GET_XCRS");
        int count = (int)Math.Min(xcrs.nr_xcrs, 16u);
        var result = new (uint, ulong)[count];
        for (int i = 0; i < count; i++)
        {
            result[i] = ((uint)xcrs.xcrs[i * 2], xcrs.xcrs[(i * 2) + 1]);
        }

        return result;
    }

    public void SetXcr(uint index, ulong value)
    {
        kvm_xcrs xcrs = default;
        xcrs.nr_xcrs = 1;
        xcrs.xcrs[0] = index;
        xcrs.xcrs[1] = value;
        // SAFETY: the kernel reads sizeof(kvm_xcrs) bytes from a stack local.
        Ioctl.Invoke(_fd, KvmIoctls.KVM_SET_XCRS, (nint)(&xcrs), "KVM_SET_XCRS");
    }

    public int GetMsrs(ReadOnlySpan<uint> indices, Span<ulong> values)
    {
        if (values.Length < indices.Length)
        {
            throw new ArgumentException("Need one value slot per MSR index.", nameof(values));
        }

        return TransferMsrs(indices, default, values, write: false);
    }

    public int SetMsrs(ReadOnlySpan<uint> indices, ReadOnlySpan<ulong> values)
    {
        if (values.Length != indices.Length)
        {
            throw new ArgumentException("Need exactly one value per MSR index.", nameof(values));
        }

        return TransferMsrs(indices, values, default, write: true);
    }

    /// <summary>KVM_GET_LAPIC: the 1 KiB local APIC register page (needs the in-kernel irqchip).</summary>
    public byte[] GetLapic()
    {
        var regs = new byte[sizeof(kvm_lapic_state)];
        fixed (byte* p = regs)
        {
            // SAFETY: regs is exactly sizeof(kvm_lapic_state) bytes.
            Ioctl.Invoke(_fd, KvmIoctls.KVM_GET_LAPIC, (nint)p, "KVM_GET_LAPIC");
        }

        return regs;
    }

    public void SetLapic(ReadOnlySpan<byte> regs)
    {
        if (regs.Length != sizeof(kvm_lapic_state))
        {
            throw new ArgumentException($"LAPIC state is {sizeof(kvm_lapic_state)} bytes, not {regs.Length}.", nameof(regs));
        }

        fixed (byte* p = regs)
        {
            // SAFETY: regs is exactly sizeof(kvm_lapic_state) bytes; the kernel only reads it.
            Ioctl.Invoke(_fd, KvmIoctls.KVM_SET_LAPIC, (nint)p, "KVM_SET_LAPIC");
        }
    }

    public VcpuEvents GetEvents()
    {
        VcpuEvents events;
        // SAFETY: VcpuEvents has kvm_vcpu_events' layout (64 bytes, asserted by tests).
        Ioctl.Invoke(_fd, KvmIoctls.KVM_GET_VCPU_EVENTS, (nint)(&events), "KVM_GET_VCPU_EVENTS");
        return events;
    }

    public void SetEvents(in VcpuEvents events)
    {
        fixed (VcpuEvents* p = &events)
        {
            // SAFETY: the kernel reads sizeof(kvm_vcpu_events) bytes from the caller's struct.
            Ioctl.Invoke(_fd, KvmIoctls.KVM_SET_VCPU_EVENTS, (nint)p, "KVM_SET_VCPU_EVENTS");
        }
    }

    /// <summary>KVM_SET_CPUID2: what CPUID returns to this vCPU.</summary>
    public void SetCpuid(ReadOnlySpan<CpuidEntry> entries)
    {
        int bytes = sizeof(kvm_cpuid2) + (entries.Length * sizeof(kvm_cpuid_entry2));
        byte* buffer = (byte*)NativeMemory.AllocZeroed((nuint)bytes);
        try
        {
            ((kvm_cpuid2*)buffer)->nent = (uint)entries.Length;
            var raw = (kvm_cpuid_entry2*)(buffer + sizeof(kvm_cpuid2));
            for (int i = 0; i < entries.Length; i++)
            {
                raw[i] = entries[i].ToKernel();
            }

            // SAFETY: buffer holds the header and entries.Length entries.
            Ioctl.Invoke(_fd, KvmIoctls.KVM_SET_CPUID2, (nint)buffer, "KVM_SET_CPUID2");
        }
        finally
        {
            NativeMemory.Free(buffer);
        }
    }

    /// <summary>KVM_GET_CPUID2: the CPUID table last set on this vCPU.</summary>
    /// <remarks>
    /// Kernels before 6.2 (Debian 12's 6.1 among them) report the entry count only with E2BIG, and copy nothing back to
    /// userspace then: a successful call leaves <c>nent</c> as passed. Such a call fails with E2BIG exactly when
    /// <c>nent</c> is below the table's size, so the smallest <c>nent</c> that succeeds is the size. Newer kernels set
    /// <c>nent</c> on success, which ends the search at the first call.
    /// </remarks>
    public CpuidEntry[] GetCpuid()
    {
        const int MaxEntries = 256; // KVM_MAX_CPUID_ENTRIES
        int bytes = sizeof(kvm_cpuid2) + (MaxEntries * sizeof(kvm_cpuid_entry2));
        byte* buffer = (byte*)NativeMemory.AllocZeroed((nuint)bytes);
        try
        {
            int count = TryGetCpuid(buffer, MaxEntries);
            if (count < 0)
            {
                throw new KvmException("KVM_GET_CPUID2", -count);
            }

            if (count == MaxEntries)
            {
                int low = 0, high = MaxEntries; // the size is in [low, high]: high succeeds
                while (low < high)
                {
                    int middle = (low + high) / 2;
                    int rc = TryGetCpuid(buffer, middle);
                    if (rc == -Errno.E2BIG)
                    {
                        low = middle + 1;
                    }
                    else if (rc < 0)
                    {
                        throw new KvmException("KVM_GET_CPUID2", -rc);
                    }
                    else
                    {
                        high = Math.Min(middle, rc);
                    }
                }

                count = TryGetCpuid(buffer, low);
                if (count < 0)
                {
                    throw new KvmException("KVM_GET_CPUID2", -count);
                }
            }

            var raw = (kvm_cpuid_entry2*)(buffer + sizeof(kvm_cpuid2));
            var result = new CpuidEntry[count];
            for (int i = 0; i < count; i++)
            {
                result[i] = CpuidEntry.FromKernel(raw[i]);
            }

            return result;
        }
        finally
        {
            NativeMemory.Free(buffer);
        }
    }

    /// <summary>One KVM_GET_CPUID2 with room for <paramref name="capacity"/> entries: the nent it returns, or -errno.</summary>
    private int TryGetCpuid(byte* buffer, int capacity)
    {
        ((kvm_cpuid2*)buffer)->nent = (uint)capacity;
        // SAFETY: buffer holds the header and at least `capacity` entries; the kernel writes at most nent.
        int rc = Ioctl.TryInvoke(_fd, KvmIoctls.KVM_GET_CPUID2, (nint)buffer);
        return rc < 0 ? rc : (int)Math.Min(((kvm_cpuid2*)buffer)->nent, (uint)capacity);
    }

    /// <summary>
    /// KVM_SET_GUEST_DEBUG: single-step, and up to four execute breakpoints at linear addresses, which stop the vCPU
    /// before the instruction runs. Where the host's breakpoint registers do not trap (<see
    /// cref="KvmSystem.HardwareBreakpointsTrap"/>), the breakpoints are emulated: KVM single-steps the guest and
    /// <see cref="Run"/> returns only at an address in the list (DR6 then has that breakpoint's B bit, as hardware
    /// sets it). An emulated breakpoint at the address where Run resumes does not trap again, as if RFLAGS.RF were set.
    /// </summary>
    public void SetGuestDebug(bool singleStep, ReadOnlySpan<ulong> breakpoints)
    {
        if (breakpoints.Length > 4)
        {
            throw new ArgumentException("x86 has four hardware breakpoints.", nameof(breakpoints));
        }

        if (breakpoints.Length > 0 && !_vm.System.HardwareBreakpointsTrap)
        {
            ApplyGuestDebug(singleStep: true, []);
            _emulatedBreakpoints = breakpoints.ToArray();
            _steppingForUser = singleStep;
            return;
        }

        ApplyGuestDebug(singleStep, breakpoints);
        _emulatedBreakpoints = null;
    }

    /// <summary>The KVM_SET_GUEST_DEBUG call itself, with DR0-DR3 and DR7 for <paramref name="breakpoints"/>.</summary>
    internal void ApplyGuestDebug(bool singleStep, ReadOnlySpan<ulong> breakpoints)
    {
        var debug = default(kvm_guest_debug);
        if (singleStep || breakpoints.Length > 0)
        {
            debug.control = KvmConstants.KVM_GUESTDBG_ENABLE;
            if (singleStep)
            {
                debug.control |= KvmConstants.KVM_GUESTDBG_SINGLESTEP;
            }

            if (breakpoints.Length > 0)
            {
                debug.control |= KvmConstants.KVM_GUESTDBG_USE_HW_BP;
                ulong dr7 = 0;
                for (int i = 0; i < breakpoints.Length; i++)
                {
                    debug.debugreg[i] = breakpoints[i];
                    // Gn (global enable) bit 2i+1; R/W = 00 (execute) and LEN = 00 in bits 16+4i.
                    dr7 |= 1UL << ((i * 2) + 1);
                }

                debug.debugreg[7] = dr7;
            }
        }

        // SAFETY: the kernel reads sizeof(kvm_guest_debug) bytes from a stack local.
        Ioctl.Invoke(_fd, KvmIoctls.KVM_SET_GUEST_DEBUG, (nint)(&debug), "KVM_SET_GUEST_DEBUG");
    }

    /// <summary>
    /// A single-step exit while breakpoints are emulated: the stop to return, or null to keep running (a step that
    /// landed on no breakpoint and the caller did not ask for single-steps).
    /// </summary>
    private VcpuStop? EmulatedBreakpointStop(ulong pc, ulong dr6)
    {
        int hit = Array.IndexOf(_emulatedBreakpoints!, pc);
        if (hit < 0 && !_steppingForUser)
        {
            return null;
        }

        if (hit >= 0)
        {
            // DR6 for an instruction breakpoint: the reserved-as-one bits and Bn; BS only if a single-step was asked for.
            dr6 = (_steppingForUser ? dr6 : Dr6Fixed) | (1UL << hit);
        }

        return new VcpuStop(VcpuStopReason.Debug) { DebugPc = pc, DebugException = 1, DebugDr6 = dr6 };
    }

    /// <summary>KVM_TRANSLATE: walks the guest's page tables for a linear address.</summary>
    public AddressTranslation Translate(ulong linearAddress)
    {
        var t = new kvm_translation { linear_address = linearAddress };
        // SAFETY: the kernel reads and writes sizeof(kvm_translation) bytes of a stack local.
        Ioctl.Invoke(_fd, KvmIoctls.KVM_TRANSLATE, (nint)(&t), "KVM_TRANSLATE");
        return new AddressTranslation(linearAddress, t.physical_address, t.valid != 0, t.writeable != 0, t.usermode != 0);
    }

    public VcpuMpState GetMpState()
    {
        kvm_mp_state state;
        // SAFETY: the kernel writes 4 bytes into a stack local.
        Ioctl.Invoke(_fd, KvmIoctls.KVM_GET_MP_STATE, (nint)(&state), "KVM_GET_MP_STATE");
        return (VcpuMpState)state.mp_state;
    }

    public void SetMpState(VcpuMpState state)
    {
        var raw = new kvm_mp_state { mp_state = (uint)state };
        // SAFETY: the kernel reads 4 bytes from a stack local.
        Ioctl.Invoke(_fd, KvmIoctls.KVM_SET_MP_STATE, (nint)(&raw), "KVM_SET_MP_STATE");
    }

    /// <summary>
    /// KVM_KVMCLOCK_CTRL: tells a kvmclock guest it was paused, so its soft-lockup watchdog stays quiet. False when the
    /// guest has not set up kvmclock (KVM answers EINVAL: there is nobody to tell).
    /// </summary>
    public bool NotifyPaused()
    {
        int rc = Ioctl.TryInvoke(_fd, KvmIoctls.KVM_KVMCLOCK_CTRL, 0);
        if (rc == -Errno.EINVAL)
        {
            return false;
        }

        if (rc < 0)
        {
            throw new KvmException("KVM_KVMCLOCK_CTRL", -rc);
        }

        return true;
    }

    public void Dispose()
    {
        _runMapping.Dispose();
        _fd.Dispose();
    }

    /// <summary>KVM_GET_MSRS / KVM_SET_MSRS in batches; returns how many MSRs the kernel handled (stops at the first refused one).</summary>
    private int TransferMsrs(ReadOnlySpan<uint> indices, ReadOnlySpan<ulong> input, Span<ulong> output, bool write)
    {
        byte* buffer = stackalloc byte[sizeof(kvm_msrs) + (MaxMsrBatch * sizeof(kvm_msr_entry))];
        var header = (kvm_msrs*)buffer;
        var entries = (kvm_msr_entry*)(buffer + sizeof(kvm_msrs));
        uint request = write ? KvmIoctls.KVM_SET_MSRS : KvmIoctls.KVM_GET_MSRS;
        string name = write ? "KVM_SET_MSRS" : "KVM_GET_MSRS";
        int done = 0;
        while (done < indices.Length)
        {
            int batch = Math.Min(indices.Length - done, MaxMsrBatch);
            header->nmsrs = (uint)batch;
            header->pad = 0;
            for (int i = 0; i < batch; i++)
            {
                entries[i] = new kvm_msr_entry { index = indices[done + i], data = write ? input[done + i] : 0 };
            }

            // SAFETY: buffer holds the header and MaxMsrBatch >= batch entries; the kernel returns how many it handled.
            int n = Ioctl.Invoke(_fd, request, (nint)buffer, name);
            if (!write)
            {
                for (int i = 0; i < n; i++)
                {
                    output[done + i] = entries[i].data;
                }
            }

            done += n;
            if (n < batch)
            {
                break;
            }
        }

        return done;
    }

    private VcpuStop ConsumeKick()
    {
        _kickPending = false;
        _run->immediate_exit = 0;
        return new VcpuStop(VcpuStopReason.Kicked);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void HandleIo(kvm_run* run, IVcpuIo io)
    {
        byte direction = run->io.direction;
        int size = run->io.size;
        ushort port = run->io.port;
        uint count = run->io.count;
        ulong offset = run->io.data_offset;

        // The kernel fills these, but a bad value would make us read outside the mapping: check once.
        if (size is not (1 or 2 or 4) || count == 0 || offset >= _runSize || (ulong)count * (ulong)size > _runSize - offset)
        {
            _statistics.Increment(ExitKind.Other);
            return;
        }

        byte* data = (byte*)run + offset;
        if (direction == KvmConstants.KVM_EXIT_IO_OUT)
        {
            _statistics.Increment(ExitKind.PortOut);
            for (uint i = 0; i < count; i++)
            {
                // SAFETY: [data, data + count*size) lies inside the kvm_run mapping, checked above.
                io.PortWrite(port, new ReadOnlySpan<byte>(data + (i * (uint)size), size));
            }
        }
        else
        {
            _statistics.Increment(ExitKind.PortIn);
            for (uint i = 0; i < count; i++)
            {
                // SAFETY: as above; the kernel copies these bytes into the guest when KVM_RUN resumes.
                io.PortRead(port, new Span<byte>(data + (i * (uint)size), size));
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void HandleMmio(kvm_run* run, IVcpuIo io)
    {
        int length = (int)Math.Min(run->mmio.len, 8u);
        byte* data = run->mmio.data;
        if (run->mmio.is_write != 0)
        {
            _statistics.Increment(ExitKind.MmioWrite);
            // SAFETY: mmio.data is an 8-byte array inside kvm_run and length <= 8.
            io.MmioWrite(run->mmio.phys_addr, new ReadOnlySpan<byte>(data, length));
        }
        else
        {
            _statistics.Increment(ExitKind.MmioRead);
            // SAFETY: as above; the kernel completes the guest's load from these bytes on resume.
            io.MmioRead(run->mmio.phys_addr, new Span<byte>(data, length));
        }
    }

    private void InjectQueuedInterrupt(kvm_run* run)
    {
        if (run->ready_for_interrupt_injection == 0)
        {
            run->request_interrupt_window = 1;
            return;
        }

        uint vector = (uint)_queuedVector;
        // SAFETY: the kernel reads 4 bytes from a stack local.
        Ioctl.Invoke(_fd, KvmIoctls.KVM_INTERRUPT, (nint)(&vector), "KVM_INTERRUPT");
        _queuedVector = -1;
        run->request_interrupt_window = 0;
    }

    private static VcpuStop DecodeSystemEvent(kvm_run* run) => run->system_event.type switch
    {
        KvmConstants.KVM_SYSTEM_EVENT_RESET => new VcpuStop(VcpuStopReason.Reset),
        KvmConstants.KVM_SYSTEM_EVENT_SHUTDOWN => new VcpuStop(VcpuStopReason.PowerOff),
        _ => new VcpuStop(VcpuStopReason.InternalError)
        {
            ErrorCode = run->system_event.type,
            ErrorDetail = run->system_event.type == KvmConstants.KVM_SYSTEM_EVENT_CRASH ? "the guest reported a crash" : $"system event {run->system_event.type}",
        },
    };

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static VcpuStop DecodeInternalError(kvm_run* run)
    {
        uint suberror = run->@internal.suberror;
        uint ndata = Math.Min(run->@internal.ndata, 16u);
        var text = new System.Text.StringBuilder();
        text.Append(suberror switch
        {
            KvmConstants.KVM_INTERNAL_ERROR_EMULATION => "KVM's instruction emulator failed",
            KvmConstants.KVM_INTERNAL_ERROR_SIMUL_EX => "an exception occurred while delivering another",
            KvmConstants.KVM_INTERNAL_ERROR_DELIVERY_EV => "an event could not be delivered",
            KvmConstants.KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON => "the hardware exited for an unexpected reason",
            _ => $"internal error {suberror}",
        });
        if (ndata > 0)
        {
            text.Append("; data");
            for (int i = 0; i < ndata; i++)
            {
                text.Append(System.Globalization.CultureInfo.InvariantCulture, $" 0x{run->@internal.data[i]:x}");
            }
        }

        return new VcpuStop(VcpuStopReason.InternalError) { ErrorCode = suberror, ErrorDetail = text.ToString() };
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void ThrowRunFailed(int errno) => throw new KvmException("KVM_RUN", errno, $"KVM_RUN on vCPU {Index} failed: {Errno.Describe(errno)}.");
}

/// <summary>The result of KVM_TRANSLATE.</summary>
public readonly record struct AddressTranslation(ulong LinearAddress, ulong PhysicalAddress, bool Valid, bool Writeable, bool UserMode);

/// <summary>KVM_MP_STATE_* values.</summary>
public enum VcpuMpState : uint
{
    Runnable = 0,
    Uninitialized = 1,
    InitReceived = 2,
    Halted = 3,
    SipiReceived = 4,
}
