using System.Diagnostics;
using KvmSharp.Devices.InterruptControllers;
using KvmSharp.Emulator.Cpu;
using KvmSharp.Hypervisor;
using KvmSharp.Memory;

namespace KvmSharp.Emulator.Backend;

/// <summary>
/// One vCPU of the software CPU behind the same <see cref="IVcpu"/> as KVM's: <see cref="Run"/> interprets guest
/// code on the calling thread, delivers interrupts from the emulated local APIC between instructions, waits in HLT
/// until a timer or device interrupt (or a kick), and returns for the same reasons a KVM vCPU does.
/// </summary>
public sealed partial class EmulatorVcpu : IVcpu
{
    /// <summary>Instructions run between checks for kicks, stops and timers.</summary>
    public const int BatchSize = 2048;

    private readonly Interpreter _cpu;
    private readonly IEmulatedInterrupts _interrupts;
    private readonly LocalApic? _apic;
    private readonly LocalApicIo _apicIo;
    private readonly SemaphoreSlim _wake = new(0, int.MaxValue);
    private readonly ulong[] _breakpoints = new ulong[4];
    private volatile bool _kicked;
    private bool _singleStep;
    private int _breakpointCount;
    private bool _resumeFromBreakpoint;
    private bool _halted;
    private long _haltedTicks;
    private bool _waitingForStartup;
    private bool _disposed;

    public EmulatorVcpu(int index, GuestMemory memory, IEmulatedInterrupts interrupts, EmulatorPlatform platform, CpuidModel cpuid)
    {
        ArgumentNullException.ThrowIfNull(memory);
        ArgumentNullException.ThrowIfNull(interrupts);
        ArgumentNullException.ThrowIfNull(platform);
        ArgumentNullException.ThrowIfNull(cpuid);
        Index = index;
        _interrupts = interrupts;
        _apic = interrupts.DirectApic;
        State = new CpuState();
        State.Fx.Reset();
        State.Cr0 = 0x6000_0010; // CD, NW, ET: the power-on value
        Platform = platform;
        _cpu = new Interpreter(State, memory, null, Platform) { Cpuid = cpuid };
        _apicIo = new LocalApicIo(interrupts, Statistics);
        _waitingForStartup = index != 0; // application processors wait for INIT/SIPI, as KVM keeps them uninitialized
    }

    public int Index { get; }

    /// <summary>The architectural state (for tools and tests; touch it only while the vCPU is not running).</summary>
    public CpuState State { get; }

    /// <summary>The interpreter.</summary>
    public Interpreter Interpreter => _cpu;

    public EmulatorPlatform Platform { get; }

    public ExitStatistics Statistics { get; } = new();

    /// <summary>Instructions retired (the guest's instruction count, for MIPS figures).</summary>
    public ulong InstructionsRetired => _cpu.InstructionsRetired;

    /// <summary>Time this vCPU spent halted waiting for an interrupt, so MIPS figures can count only the time it ran.</summary>
    public TimeSpan HaltedTime => Stopwatch.GetElapsedTime(0, _haltedTicks);

    public VcpuStop Run(IVcpuIo io)
    {
        ArgumentNullException.ThrowIfNull(io);
        ObjectDisposedException.ThrowIf(_disposed, this);
        _apicIo.Inner = io;
        _cpu.Io = _apicIo;
        while (true)
        {
            if (_kicked)
            {
                _kicked = false;
                Statistics.Increment(ExitKind.Interrupted);
                return new VcpuStop(VcpuStopReason.Kicked);
            }

            if (io.StopRequested)
            {
                return new VcpuStop(VcpuStopReason.IoRequestedStop);
            }

            _interrupts.Poll(Stopwatch.GetTimestamp());
            if (_interrupts.TakeInit())
            {
                _waitingForStartup = true; // INIT: wait for a startup IPI
                _halted = false;
            }

            if (_waitingForStartup)
            {
                int vector = _interrupts.TakeStartupVector();
                if (vector < 0)
                {
                    _wake.Wait(10);
                    continue;
                }

                EnterStartupState(vector);
            }

            if (!DeliverPendingEvents(out var failed))
            {
                return failed;
            }

            if (_halted)
            {
                if ((State.RFlags & Execution.Flags.IF) == 0)
                {
                    // HLT with interrupts off: nothing this machine raises can wake it (no NMI sources, no INIT).
                    Statistics.Increment(ExitKind.Halt);
                    return new VcpuStop(VcpuStopReason.Halted);
                }

                WaitForEvent();
                continue;
            }

            var stop = RunBatch();
            if (stop is { } s)
            {
                return s;
            }
        }
    }

    /// <summary>NMI first, then a maskable interrupt when RFLAGS.IF allows; false with the stop when delivery shut the CPU down.</summary>
    private bool DeliverPendingEvents(out VcpuStop stop)
    {
        stop = default;
        bool delivered = false;
        if (!_cpu.NmiBlocked && _interrupts.TakeNmi())
        {
            _cpu.NmiBlocked = true;
            delivered = _cpu.DeliverNmi();
            if (!delivered)
            {
                stop = Shutdown();
                return false;
            }
        }
        else if (_cpu.InterruptsEnabled && _interrupts.HasPendingInterrupt)
        {
            int vector = _interrupts.AcknowledgeInterrupt();
            if (vector >= 0)
            {
                delivered = _cpu.DeliverInterrupt((byte)vector);
                if (!delivered)
                {
                    stop = Shutdown();
                    return false;
                }
            }
        }

        if (delivered)
        {
            _halted = false;
        }

        return true;
    }

    private VcpuStop Shutdown()
    {
        Statistics.Increment(ExitKind.Shutdown);
        return new VcpuStop(VcpuStopReason.Shutdown);
    }

    private VcpuStop? RunBatch()
    {
        bool debugging = _singleStep || _breakpointCount > 0;
        if (!debugging && _apic is { } apic)
        {
            return RunBatchUntilInterrupt(apic);
        }

        for (int i = 0; i < BatchSize; i++)
        {
            if (debugging && _breakpointCount > 0 && AtBreakpoint())
            {
                Statistics.Increment(ExitKind.Debug);
                return DebugStop(1);
            }

            var result = _cpu.Step();
            if (_singleStep && result.Status != StepStatus.IoStop)
            {
                if (result.Status == StepStatus.Exception && !_cpu.DeliverException(result.Exception))
                {
                    return Shutdown();
                }

                _halted = result.Status == StepStatus.Halted;
                Statistics.Increment(ExitKind.Debug);
                return DebugStop(1);
            }

            switch (result.Status)
            {
                case StepStatus.Executed:
                    // An interrupt that became deliverable (STI, POPF, an EOI unmasking a lower one) is taken at the next boundary.
                    if (_cpu.InterruptsEnabled && _interrupts.HasPendingInterrupt)
                    {
                        return null;
                    }

                    continue;
                default:
                    if (ContinueAfter(result.Status, result.Exception, out var stop))
                    {
                        continue;
                    }

                    return stop;
            }
        }

        return null;
    }

    /// <summary>
    /// An instruction that did not simply execute: true to go on with the batch (an exception was delivered); false to
    /// end it with <paramref name="stop"/> (null after HLT: the run loop waits for an interrupt).
    /// </summary>
    private bool ContinueAfter(StepStatus status, CpuException exception, out VcpuStop? stop)
    {
        stop = null;
        switch (status)
        {
            case StepStatus.Halted:
                _halted = true;
                return false;
            case StepStatus.IoStop:
                stop = new VcpuStop(VcpuStopReason.IoRequestedStop);
                return false;
            case StepStatus.Exception when _cpu.DeliverException(exception):
                return true;
            default:
                stop = Shutdown(); // a triple fault, or a status the CPU does not return
                return false;
        }
    }

    /// <summary>
    /// <see cref="RunBatch"/> without breakpoints or single-stepping: the interpreter runs the instructions itself and
    /// returns at the first one that halts, faults or stops for I/O, or after which an interrupt can be taken.
    /// </summary>
    private VcpuStop? RunBatchUntilInterrupt(LocalApic apic)
    {
        int remaining = BatchSize;
        while (remaining > 0)
        {
            var run = _cpu.RunUntilInterrupt(remaining, apic);
            if (run.Status == StepStatus.Executed)
            {
                return null; // the batch is done, or an interrupt can be taken at this boundary
            }

            if (!ContinueAfter(run.Status, run.Exception, out var stop))
            {
                return stop;
            }

            remaining -= run.InstructionsExecuted + 1;
        }

        return null;
    }

    private void WaitForEvent()
    {
        long start = Stopwatch.GetTimestamp();
        WaitForEventUntimed();
        _haltedTicks += Stopwatch.GetTimestamp() - start;
    }

    private void WaitForEventUntimed()
    {
        long deadline = _interrupts.NextDeadline;
        if (deadline == long.MaxValue)
        {
            _wake.Wait(100);
            return;
        }

        long now = Stopwatch.GetTimestamp();
        if (deadline <= now)
        {
            return;
        }

        double ms = (deadline - now) * 1000.0 / Stopwatch.Frequency;
        _wake.Wait(TimeSpan.FromMilliseconds(Math.Min(ms, 100)));
    }

    /// <summary>The state a startup IPI leaves: real mode at vector * 0x1000, CS = vector * 0x100, IP = 0 (SDM Vol. 3A 9.4.4).</summary>
    private void EnterStartupState(int vector)
    {
        _waitingForStartup = false;
        _halted = false;
        var system = new X86SystemRegisters
        {
            Cs = SegmentRegister.RealMode((ushort)(vector << 8), code: true),
            Ds = SegmentRegister.RealMode(0),
            Es = SegmentRegister.RealMode(0),
            Fs = SegmentRegister.RealMode(0),
            Gs = SegmentRegister.RealMode(0),
            Ss = SegmentRegister.RealMode(0),
            Cr0 = 0x6000_0010,
        };
        system.Idt.Limit = 0x3FF;
        system.Gdt.Limit = 0xFFFF;
        system.Ldt.Unusable = 1;
        system.Tr.Type = 0xB;
        system.Tr.Present = 1;
        system.Tr.Limit = 0xFFFF;
        SetSystemRegisters(system);
        SetRegisters(new X86Registers { Rflags = X86Registers.FlagsReserved, Rdx = CpuidModel.Signature });
        State.Fx.Reset();
    }

    /// <summary>Wakes the vCPU from HLT (an interrupt was raised from another thread).</summary>
    public void Wake() => _wake.Release();

    public void Kick()
    {
        _kicked = true;
        _wake.Release();
    }

    public X86Registers GetRegisters() => CpuStateTransfer.GetRegisters(State);

    public void SetRegisters(in X86Registers registers) => CpuStateTransfer.SetRegisters(State, registers);

    public X86SystemRegisters GetSystemRegisters() =>
        CpuStateTransfer.GetSystemRegisters(State, Platform.ReadCr8(), Platform.TryReadMsr(0x1B, out ulong apicBase) ? apicBase : 0);

    public void SetSystemRegisters(in X86SystemRegisters registers)
    {
        CpuStateTransfer.SetSystemRegisters(State, registers);
        _cpu.ReloadPaging();
    }

    public FpuState GetFpu()
    {
        Span<byte> image = stackalloc byte[FxState.ImageSize];
        State.Fx.Save(image);
        var fpu = new FpuState();
        unsafe
        {
            for (int i = 0; i < 8; i++)
            {
                for (int b = 0; b < 16; b++)
                {
                    fpu.Fpr[(i * 16) + b] = image[32 + (i * 16) + b];
                }
            }

            for (int b = 0; b < 256; b++)
            {
                fpu.Xmm[b] = image[160 + b];
            }
        }

        fpu.Fcw = State.Fx.Fcw;
        fpu.Fsw = State.Fx.Fsw;
        fpu.Ftwx = State.Fx.AbridgedTags();
        fpu.LastOpcode = State.Fx.Fop;
        fpu.LastIp = State.Fx.Fip;
        fpu.LastDp = State.Fx.Fdp;
        fpu.Mxcsr = State.Fx.Mxcsr;
        return fpu;
    }

    public void SetFpu(in FpuState fpu)
    {
        Span<byte> image = stackalloc byte[FxState.ImageSize];
        image.Clear();
        BitConverter.TryWriteBytes(image, fpu.Fcw);
        BitConverter.TryWriteBytes(image[2..], fpu.Fsw);
        image[4] = fpu.Ftwx;
        BitConverter.TryWriteBytes(image[6..], fpu.LastOpcode);
        BitConverter.TryWriteBytes(image[8..], fpu.LastIp);
        BitConverter.TryWriteBytes(image[16..], fpu.LastDp);
        BitConverter.TryWriteBytes(image[24..], fpu.Mxcsr & FxState.MxcsrMask);
        unsafe
        {
            fixed (byte* fpr = fpu.Fpr)
            fixed (byte* xmm = fpu.Xmm)
            {
                new ReadOnlySpan<byte>(fpr, 128).CopyTo(image[32..]);
                new ReadOnlySpan<byte>(xmm, 256).CopyTo(image[160..]);
            }
        }

        State.Fx.TryRestore(image);
    }

    public int GetMsrs(ReadOnlySpan<uint> indices, Span<ulong> values)
    {
        for (int i = 0; i < indices.Length; i++)
        {
            if (!_cpu.TryReadMsr(indices[i], out values[i]))
            {
                return i;
            }
        }

        return indices.Length;
    }

    public int SetMsrs(ReadOnlySpan<uint> indices, ReadOnlySpan<ulong> values)
    {
        for (int i = 0; i < indices.Length; i++)
        {
            if (!_cpu.TryWriteMsr(indices[i], values[i]))
            {
                return i;
            }
        }

        return indices.Length;
    }

    public void SetGuestDebug(bool singleStep, ReadOnlySpan<ulong> breakpoints)
    {
        if (breakpoints.Length > _breakpoints.Length)
        {
            throw new ArgumentException($"At most {_breakpoints.Length} hardware breakpoints.", nameof(breakpoints));
        }

        _singleStep = singleStep;
        _breakpointCount = breakpoints.Length;
        breakpoints.CopyTo(_breakpoints);
        _resumeFromBreakpoint = false;
    }

    /// <summary>A debug stop before the instruction at RIP when it is a breakpoint (execution breakpoints fault before the instruction).</summary>
    private bool AtBreakpoint()
    {
        if (_resumeFromBreakpoint)
        {
            _resumeFromBreakpoint = false; // like RFLAGS.RF: the instruction that hit the breakpoint runs on resume
            return false;
        }

        for (int i = 0; i < _breakpointCount; i++)
        {
            if (_breakpoints[i] == State.Rip)
            {
                _resumeFromBreakpoint = true;
                return true;
            }
        }

        return false;
    }

    private VcpuStop DebugStop(uint exception) => new(VcpuStopReason.Debug) { DebugPc = State.Rip, DebugException = exception };

    public void Dispose()
    {
        _disposed = true;
        _wake.Dispose();
    }

    /// <summary>Routes this vCPU's local APIC page to its APIC and everything else to the machine's buses.</summary>
    /// <remarks>Device accesses are counted as the exits they would be on KVM, so <c>--stats</c> compares the backends.</remarks>
    private sealed class LocalApicIo(IEmulatedInterrupts interrupts, ExitStatistics statistics) : IVcpuIo
    {
        public IVcpuIo Inner { get; set; } = null!;

        public bool StopRequested => Inner.StopRequested;

        public void PortRead(ushort port, Span<byte> data)
        {
            statistics.Increment(ExitKind.PortIn);
            Inner.PortRead(port, data);
        }

        public void PortWrite(ushort port, ReadOnlySpan<byte> data)
        {
            statistics.Increment(ExitKind.PortOut);
            Inner.PortWrite(port, data);
        }

        public void MmioRead(ulong address, Span<byte> data)
        {
            statistics.Increment(ExitKind.MmioRead);
            if (interrupts.IsLocalApicAddress(address))
            {
                interrupts.LocalApicRead(address, data);
                return;
            }

            Inner.MmioRead(address, data);
        }

        public void MmioWrite(ulong address, ReadOnlySpan<byte> data)
        {
            statistics.Increment(ExitKind.MmioWrite);
            if (interrupts.IsLocalApicAddress(address))
            {
                interrupts.LocalApicWrite(address, data);
                return;
            }

            Inner.MmioWrite(address, data);
        }
    }
}
