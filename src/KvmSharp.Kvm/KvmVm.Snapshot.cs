using KvmSharp.Hypervisor.Snapshots;
using KvmSharp.Kvm.Interop;
using KvmSharp.Native;

namespace KvmSharp.Kvm;

/// <summary>Saving and restoring the in-kernel PIC, IOAPIC, PIT and kvmclock for snapshots.</summary>
public sealed unsafe partial class KvmVm
{
    private const int IrqChipSize = 512;

    /// <summary>Whether a vCPU of this VM has had its TSC restored (see KvmVcpu.MoveTscAway).</summary>
    internal bool TscRestored { get; set; }

    /// <summary>
    /// Captures the in-kernel PIC pair and IOAPIC (KVM_GET_IRQCHIP), the PIT (KVM_GET_PIT2) and kvmclock
    /// (KVM_GET_CLOCK). Call it with every vCPU paused outside KVM_RUN.
    /// </summary>
    public KvmVmState SaveState()
    {
        byte[]? master = null, slave = null, ioApic = null, pit = null;
        if (HasIrqChip)
        {
            master = GetIrqChip(KvmConstants.KVM_IRQCHIP_PIC_MASTER);
            slave = GetIrqChip(KvmConstants.KVM_IRQCHIP_PIC_SLAVE);
            ioApic = GetIrqChip(KvmConstants.KVM_IRQCHIP_IOAPIC);
        }

        if (HasPit2)
        {
            pit = new byte[sizeof(kvm_pit_state2)];
            fixed (byte* p = pit)
            {
                // SAFETY: pit is exactly sizeof(kvm_pit_state2) bytes, which the kernel fills.
                Ioctl.Invoke(_fd, KvmIoctls.KVM_GET_PIT2, (nint)p, "KVM_GET_PIT2");
            }
        }

        kvm_clock_data clock = default;
        // SAFETY: the kernel writes sizeof(kvm_clock_data) bytes into a stack local.
        Ioctl.Invoke(_fd, KvmIoctls.KVM_GET_CLOCK, (nint)(&clock), "KVM_GET_CLOCK");
        return new KvmVmState(master, slave, ioApic, pit, clock.clock);
    }

    /// <summary>
    /// Loads a state from <see cref="SaveState"/> into this VM, built like the saved one (irqchip and PIT created if the
    /// saved VM had them), before any vCPU runs and before each vCPU's <see cref="KvmVcpu.RestoreState"/>. Throws
    /// <see cref="SnapshotStateException"/> for a state that does not fit this VM (checked before anything is set) or
    /// that KVM refuses.
    /// </summary>
    public void RestoreState(KvmVmState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        bool hasChips = state.PicMaster is not null || state.PicSlave is not null || state.IoApic is not null;
        if (hasChips != HasIrqChip || state.Pit is not null != HasPit2)
        {
            throw new SnapshotStateException(
                $"The snapshot's VM {(hasChips ? "has" : "has no")} in-kernel irqchip and {(state.Pit is not null ? "a" : "no")} PIT, but this VM {(HasIrqChip ? "has" : "has no")} irqchip and {(HasPit2 ? "a" : "no")} PIT. Restore it into a VM built the same way.");
        }

        if (hasChips && (state.PicMaster is not { Length: IrqChipSize } || state.PicSlave is not { Length: IrqChipSize } || state.IoApic is not { Length: IrqChipSize }))
        {
            throw new SnapshotStateException($"The snapshot's in-kernel irqchip state must hold {IrqChipSize} bytes each for the master PIC, the slave PIC and the IOAPIC.");
        }

        if (state.Pit is { } pitBytes && pitBytes.Length != sizeof(kvm_pit_state2))
        {
            throw new SnapshotStateException($"The snapshot's in-kernel PIT state is {pitBytes.Length} bytes, not {sizeof(kvm_pit_state2)}.");
        }

        try
        {
            if (hasChips)
            {
                SetIrqChip(KvmConstants.KVM_IRQCHIP_PIC_MASTER, state.PicMaster!);
                SetIrqChip(KvmConstants.KVM_IRQCHIP_PIC_SLAVE, state.PicSlave!);
                SetIrqChip(KvmConstants.KVM_IRQCHIP_IOAPIC, state.IoApic!);
            }

            if (state.Pit is { } pit)
            {
                fixed (byte* p = pit)
                {
                    // SAFETY: pit is exactly sizeof(kvm_pit_state2) bytes (checked above); the kernel only reads it.
                    Ioctl.Invoke(_fd, KvmIoctls.KVM_SET_PIT2, (nint)p, "KVM_SET_PIT2");
                }
            }

            var clock = new kvm_clock_data { clock = state.Clock };
            // SAFETY: the kernel reads sizeof(kvm_clock_data) bytes from a stack local; flags 0 sets the clock as given.
            Ioctl.Invoke(_fd, KvmIoctls.KVM_SET_CLOCK, (nint)(&clock), "KVM_SET_CLOCK");
        }
        catch (NativeErrorException e)
        {
            throw new SnapshotStateException($"KVM refused the snapshot's VM state: {e.Message}");
        }
    }

    private byte[] GetIrqChip(uint chipId)
    {
        var chip = new kvm_irqchip { chip_id = chipId };
        // SAFETY: the kernel reads chip_id and writes sizeof(kvm_irqchip) bytes into a stack local.
        Ioctl.Invoke(_fd, KvmIoctls.KVM_GET_IRQCHIP, (nint)(&chip), "KVM_GET_IRQCHIP");
        return new ReadOnlySpan<byte>(chip.chip, IrqChipSize).ToArray();
    }

    private void SetIrqChip(uint chipId, byte[] bytes)
    {
        var chip = new kvm_irqchip { chip_id = chipId };
        bytes.CopyTo(new Span<byte>(chip.chip, IrqChipSize));
        // SAFETY: the kernel reads sizeof(kvm_irqchip) bytes from a stack local.
        Ioctl.Invoke(_fd, KvmIoctls.KVM_SET_IRQCHIP, (nint)(&chip), "KVM_SET_IRQCHIP");
    }
}
