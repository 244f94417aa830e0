using KvmSharp.Emulator.Backend;
using KvmSharp.Emulator.Cpu;
using KvmSharp.Emulator.Mmu;
using KvmSharp.Hypervisor;
using KvmSharp.Hypervisor.Snapshots;
using KvmSharp.Memory;

namespace KvmSharp.Emulator.Tests.Backend;

/// <summary>
/// Snapshots of the software CPU: a vCPU and its machine's interrupt fabric saved after some instructions, restored
/// into a fresh machine on a copy of RAM, go on exactly as the original does.
/// </summary>
public sealed class EmulatorSnapshotTests
{
    private const ulong CodeBase = 0x1_0000;
    private const ulong DataBase = 0x2_0000;
    private const ulong StackTop = 0x8_0000;
    private const ulong Pml4 = 0x1000;
    private const ulong PaePdpt = 0x6000;
    private const ulong RamSize = 4 << 20;

    // The prologue (4 instructions) then a 21-instruction loop, assembled with GNU as (.intel_syntax noprefix):
    //     mov rbx, 0x5851f42d4c957f2d / mov edi, 0x20000 / fninit / fldz
    // top: imul rax, rbx / add rax, rcx / mov rdx, rcx / and edx, 0x1ff / mov [rdi+rdx*8], rax / movq xmm0, rax
    //     paddq xmm1, xmm0 / pshufd xmm1, xmm1, 0x4e / cvtsi2sd xmm2, rax / addsd xmm3, xmm2
    //     fild qword ptr [rdi+rdx*8] / faddp st(1), st / push rax / pushfq / pop rsi / pop r8 / xor r8, rsi
    //     rol r9, 7 / add r9, r8 / inc rcx / jmp top
    private static readonly byte[] Loop =
    [
        0x48, 0xbb, 0x2d, 0x7f, 0x95, 0x4c, 0x2d, 0xf4, 0x51, 0x58, 0xbf, 0x00,
        0x00, 0x02, 0x00, 0xdb, 0xe3, 0xd9, 0xee, 0x48, 0x0f, 0xaf, 0xc3, 0x48, 0x01, 0xc8,
        0x48, 0x89, 0xca, 0x81, 0xe2, 0xff, 0x01, 0x00, 0x00, 0x48, 0x89, 0x04,
        0xd7, 0x66, 0x48, 0x0f, 0x6e, 0xc0, 0x66, 0x0f, 0xd4, 0xc8, 0x66, 0x0f,
        0x70, 0xc9, 0x4e, 0xf2, 0x48, 0x0f, 0x2a, 0xd0, 0xf2, 0x0f, 0x58, 0xda,
        0xdf, 0x2c, 0xd7, 0xde, 0xc1, 0x50, 0x9c, 0x5e, 0x41, 0x58, 0x49, 0x31,
        0xf0, 0x49, 0xc1, 0xc1, 0x07, 0x4d, 0x01, 0xc1, 0x48, 0xff, 0xc1, 0xeb,
        0xbc,
    ];

    [Fact]
    public void RestoredMachineContinuesExactlyLikeTheOriginal()
    {
        using var a = new Machine(Loop);
        var first = a.Vcpu.Interpreter.Run(4 + (21 * 300));
        Assert.True(first.Status == StepStatus.Executed, $"{first.Exception.Vector} {first.Exception.ErrorCode} at 0x{a.Vcpu.State.Rip:x} after {first.InstructionsExecuted}");
        Assert.Equal(300UL, a.Vcpu.State.Rcx);

        // Through the JSON payloads, as a snapshot file carries them.
        var cpuSection = SnapshotStateJson.ToSection("cpu0", 1, a.Vcpu.SaveState());
        var fabricSection = SnapshotStateJson.ToSection("fabric", 1, a.Vm.SaveState());
        using var b = new Machine(a.Memory);
        b.Vm.RestoreState(SnapshotStateJson.FromSection<EmulatorPlatformState>(fabricSection, 1));
        b.Vcpu.RestoreState(SnapshotStateJson.FromSection<EmulatorVcpuState>(cpuSection, 1));

        // Saving again at once gives the same bytes (both clocks stand still).
        Assert.Equal(cpuSection.Payload.ToArray(), Json(b.Vcpu.SaveState()));
        Assert.Equal(fabricSection.Payload.ToArray(), Json(b.Vm.SaveState()));

        Assert.Equal(StepStatus.Executed, a.Vcpu.Interpreter.Run(21 * 700).Status);
        Assert.Equal(StepStatus.Executed, b.Vcpu.Interpreter.Run(21 * 700).Status);
        Assert.Equal(1000UL, b.Vcpu.State.Rcx);
        Assert.Equal(Json(a.Vcpu.SaveState()), Json(b.Vcpu.SaveState()));
        Assert.Equal(a.Vcpu.GetFpu().Mxcsr, b.Vcpu.GetFpu().Mxcsr);
        Assert.NotEqual(0UL, b.Vcpu.State.Fx.Xmm(3, 0)); // the SSE and x87 state came along and moved on
        Assert.NotEqual(0UL, b.Vcpu.State.Fx.Significand(b.Vcpu.State.Fx.Top));
        Assert.Equal(a.Ram(), b.Ram());
    }

    [Fact]
    public void TscGoesOnFromTheSavedValue()
    {
        using var a = new Machine(Loop);
        a.Clock.Advance(TimeSpan.FromSeconds(3));
        ulong saved = a.Vcpu.Platform.ReadTsc();
        Assert.Equal(6_000_000_000UL, saved); // 3 s at 2 GHz
        var state = a.Vcpu.SaveState();
        Assert.Equal(saved, state.Tsc);

        using var b = new Machine(a.Memory);
        b.Clock.Advance(TimeSpan.FromSeconds(100)); // the restoring process has been up for a while
        b.Vm.RestoreState(a.Vm.SaveState());
        b.Vcpu.RestoreState(state);
        Assert.Equal(saved, b.Vcpu.Platform.ReadTsc());
        b.Clock.Advance(TimeSpan.FromTicks(10));
        Assert.Equal(saved + 2000, b.Vcpu.Platform.ReadTsc()); // 1 us at 2 GHz
    }

    [Fact]
    public void HaltedVcpuStaysHaltedAcrossARestore()
    {
        // cli / hlt
        using var a = new Machine([0xFA, 0xF4]);
        var stop = a.Vcpu.Run(new NullIo());
        Assert.Equal(VcpuStopReason.Halted, stop.Reason);
        var state = a.Vcpu.SaveState();
        Assert.True(state.Halted);
        Assert.Equal(CodeBase + 2, state.Rip);

        using var b = new Machine(a.Memory);
        b.Vm.RestoreState(a.Vm.SaveState());
        b.Vcpu.RestoreState(state);
        Assert.Equal(VcpuStopReason.Halted, b.Vcpu.Run(new NullIo()).Reason);
        Assert.Equal(CodeBase + 2, b.Vcpu.State.Rip); // it did not execute past the HLT
    }

    public static TheoryData<string> HostileStates => new()
    {
        "short registers", "long fxsave", "other vcpu", "lma without paging", "reserved rflags", "reserved cr4",
        "dpl 4", "bad mxcsr", "xcr0 avx", "pae reserved pdpte", "null segment",
    };

    [Theory]
    [MemberData(nameof(HostileStates))]
    public void HostileVcpuStateIsRefusedAndChangesNothing(string which)
    {
        using var a = new Machine(Loop);
        a.Vcpu.Interpreter.Run(100);
        var good = a.Vcpu.SaveState();
        var segments = (EmulatorSegmentState[])good.Segments.Clone();
        var fxsave = (byte[])good.Fxsave.Clone();
        var bad = which switch
        {
            "short registers" => good with { Registers = new ulong[15] },
            "long fxsave" => good with { Fxsave = new byte[513] },
            "other vcpu" => good with { Index = 1 },
            "lma without paging" => good with { Cr0 = good.Cr0 & ~X86SystemRegisters.Cr0Pg },
            "reserved rflags" => good with { Rflags = good.Rflags | (1UL << 22) },
            "reserved cr4" => good with { Cr4 = good.Cr4 | (1UL << 20) },
            "dpl 4" => good with { Segments = Replace(segments, 1, segments[1] with { Dpl = 4 }) },
            "bad mxcsr" => good with { Fxsave = SetMxcsr(fxsave, 0x1_0000) },
            "xcr0 avx" => good with { Xcr0 = 7 },
            // 32-bit PAE paging whose first PDPTE sets reserved bit 1: only loading the MMU finds it.
            "pae reserved pdpte" => good with { Efer = 0, Cr3 = PaePdpt, Segments = Replace(segments, 1, segments[1] with { L = 0, Db = 1 }) },
            "null segment" => good with { Tr = null! },
            _ => throw new ArgumentOutOfRangeException(nameof(which)),
        };
        a.Memory.Write(PaePdpt, 0x3UL);
        ulong rcxBefore = a.Vcpu.State.Rcx;
        byte[] before = Json(a.Vcpu.SaveState());

        var e = Assert.Throws<SnapshotStateException>(() => a.Vcpu.RestoreState(bad));
        Assert.StartsWith("The snapshot's state of vCPU 0 cannot be restored: ", e.Message);
        Assert.DoesNotContain('\n', e.Message);
        Assert.Equal(before, Json(a.Vcpu.SaveState()));

        // And the vCPU still runs on from where it was.
        Assert.Equal(StepStatus.Executed, a.Vcpu.Interpreter.Run(21).Status);
        Assert.Equal(rcxBefore + 1, a.Vcpu.State.Rcx);
    }

    [Fact]
    public void HostileFabricStateIsRefusedAndChangesNothing()
    {
        using var a = new Machine(Loop);
        a.Vm.Pic.SetIrq(3, true);
        var good = a.Vm.SaveState();
        byte[] before = Json(good);
        var badApicBase = good.LocalApics[0] with { ApicBase = good.LocalApics[0].ApicBase | (1UL << 60) };
        var cases = new EmulatorPlatformState[]
        {
            good with { LocalApics = [] },
            good with { IoApic = good.IoApic with { RedirectionEntries = new ulong[23] } },
            good with { Pit = good.Pit with { Channels = [good.Pit.Channels[0]] } },
            good with { Pic = null! },
            // Only the LAPIC itself knows its reserved base bits: the IOAPIC is restored before it and rolled back.
            good with { IoApic = good.IoApic with { Id = 0x0300_0000 }, LocalApics = [badApicBase] },
        };

        foreach (var bad in cases)
        {
            var e = Assert.Throws<SnapshotStateException>(() => a.Vm.RestoreState(bad));
            Assert.DoesNotContain('\n', e.Message);
            Assert.Equal(before, Json(a.Vm.SaveState()));
        }
    }

    private static EmulatorSegmentState[] Replace(EmulatorSegmentState[] segments, int index, EmulatorSegmentState value)
    {
        segments[index] = value;
        return segments;
    }

    private static byte[] SetMxcsr(byte[] image, uint value)
    {
        BitConverter.TryWriteBytes(image.AsSpan(24), value);
        return image;
    }

    private static byte[] Json<T>(T state)
        where T : class => SnapshotStateJson.ToSection("s", 1, state).Payload.ToArray();

    /// <summary>One vCPU in 64-bit mode at <see cref="CodeBase"/> over 4 MiB with identity paging, on a clock that moves only when told.</summary>
    private sealed class Machine : IDisposable
    {
        public Machine(byte[] code)
            : this(CreateMemory(code), setUp: true)
        {
        }

        /// <summary>A fresh machine over a copy of <paramref name="ram"/>, for restoring into.</summary>
        public Machine(GuestMemory ram)
            : this(Copy(ram), setUp: false)
        {
        }

        private Machine(GuestMemory memory, bool setUp)
        {
            Memory = memory;
            Vm = new EmulatorVirtualMachine(1, Clock);
            Vm.MapMemory(memory);
            Vcpu = Vm.CreateEmulatorVcpu(0);
            if (setUp)
            {
                var system = Vcpu.GetSystemRegisters();
                system.Cs = SegmentRegister.FlatCode(0x10, longMode: true);
                system.Ds = system.Es = system.Fs = system.Gs = system.Ss = SegmentRegister.FlatData(0x18);
                system.Cr0 = X86SystemRegisters.Cr0Pe | X86SystemRegisters.Cr0Pg | X86SystemRegisters.Cr0Wp | X86SystemRegisters.Cr0Et;
                system.Cr3 = Pml4;
                system.Cr4 = X86SystemRegisters.Cr4Pae | X86SystemRegisters.Cr4Osfxsr | X86SystemRegisters.Cr4Osxmmexcpt;
                system.Efer = X86SystemRegisters.EferLme | X86SystemRegisters.EferLma;
                Vcpu.SetSystemRegisters(system);
                Vcpu.SetRegisters(new X86Registers { Rip = CodeBase, Rsp = StackTop, Rflags = X86Registers.FlagsReserved });
            }
        }

        public ManualClock Clock { get; } = new();

        public GuestMemory Memory { get; }

        public EmulatorVirtualMachine Vm { get; }

        public EmulatorVcpu Vcpu { get; }

        public byte[] Ram()
        {
            var bytes = new byte[RamSize];
            Memory.Read(0, bytes);
            return bytes;
        }

        public void Dispose()
        {
            Vcpu.Dispose();
            Vm.Dispose();
            Memory.Dispose();
        }

        private static GuestMemory CreateMemory(byte[] code)
        {
            const ulong entry = PageTableEntry.Present | PageTableEntry.Writable | PageTableEntry.User;
            var memory = GuestMemory.Create(RamSize);
            memory.Write(Pml4, 0x2000UL | entry);
            memory.Write(0x2000UL, 0x3000UL | entry);
            memory.Write(0x3000UL, 0x4000UL | entry);
            for (ulong page = 0; page < 512; page++)
            {
                memory.Write(0x4000 + (page * 8), (page << 12) | entry);
            }

            memory.Write(CodeBase, (ReadOnlySpan<byte>)code);
            return memory;
        }

        private static GuestMemory Copy(GuestMemory source)
        {
            var bytes = new byte[RamSize];
            source.Read(0, bytes);
            var copy = GuestMemory.Create(RamSize);
            copy.Write(0, (ReadOnlySpan<byte>)bytes);
            return copy;
        }
    }

    /// <summary>A clock in 100 ns ticks that moves only when told to.</summary>
    private sealed class ManualClock : TimeProvider
    {
        private long _ticks;

        public override long TimestampFrequency => TimeSpan.TicksPerSecond;

        public override long GetTimestamp() => _ticks;

        public void Advance(TimeSpan by) => _ticks += by.Ticks;
    }

    private sealed class NullIo : IVcpuIo
    {
        public bool StopRequested => false;

        public void PortRead(ushort port, Span<byte> data) => data.Fill(0xFF);

        public void PortWrite(ushort port, ReadOnlySpan<byte> data)
        {
        }

        public void MmioRead(ulong address, Span<byte> data) => data.Fill(0xFF);

        public void MmioWrite(ulong address, ReadOnlySpan<byte> data)
        {
        }
    }
}
