using System.Runtime.InteropServices;
using KvmSharp.Hypervisor;
using KvmSharp.Kvm.Interop;
using KvmSharp.Memory;
using KvmSharp.Native;

namespace KvmSharp.Kvm;

/// <summary>A KVM virtual machine fd: memory slots, interrupt controllers, irqfd/ioeventfd, vCPUs.</summary>
public sealed unsafe partial class KvmVm : IVirtualMachine
{
    private readonly KvmSystem _system;
    private readonly FileDescriptor _fd;
    private readonly Dictionary<uint, MemorySlot> _slots = [];
    private readonly Lock _slotLock = new();
    private readonly KvmInterruptSink _interrupts;
    private bool _manualDirtyProtect;

    internal KvmVm(KvmSystem system, FileDescriptor fd)
    {
        _system = system;
        _fd = fd;
        _interrupts = new KvmInterruptSink(this);
        VcpuMmapSize = system.VcpuMmapSize;
    }

    public KvmSystem System => _system;

    public int VcpuMmapSize { get; }

    public bool HasIrqChip { get; private set; }

    /// <summary>Whether <see cref="CreatePit2"/> created the in-kernel PIT.</summary>
    public bool HasPit2 { get; private set; }

    public IInterruptSink Interrupts => _interrupts;

    /// <summary>Slots in use, by slot number.</summary>
    public IReadOnlyCollection<MemorySlot> Slots
    {
        get
        {
            lock (_slotLock)
            {
                return [.. _slots.Values];
            }
        }
    }

    /// <summary>KVM_CHECK_EXTENSION on the VM fd (some answers are per-VM).</summary>
    public int CheckExtension(KvmCapability capability)
    {
        int rc = Ioctl.TryInvoke(_fd, KvmIoctls.KVM_CHECK_EXTENSION, (nint)capability);
        return rc < 0 ? 0 : rc;
    }

    // ---- Memory slots ----

    /// <summary>Adds a slot mapping [guestPhysicalAddress, +size) to host memory at <paramref name="hostAddress"/>.</summary>
    public MemorySlot AddMemorySlot(uint slot, ulong guestPhysicalAddress, ulong size, nint hostAddress, MemorySlotFlags flags = MemorySlotFlags.None)
    {
        if (size == 0 || size % GuestMemory.PageSize != 0 || guestPhysicalAddress % GuestMemory.PageSize != 0 || hostAddress % (nint)GuestMemory.PageSize != 0)
        {
            throw new ArgumentException($"Memory slot {slot} at 0x{guestPhysicalAddress:x}+0x{size:x} must be non-empty and page-aligned on both sides.");
        }

        lock (_slotLock)
        {
            if (_slots.ContainsKey(slot))
            {
                throw new InvalidOperationException($"Memory slot {slot} is already in use.");
            }

            var entry = new MemorySlot(slot, guestPhysicalAddress, size, hostAddress, flags);
            SetUserMemoryRegion(entry);
            _slots[slot] = entry;
            return entry;
        }
    }

    /// <summary>Removes a slot (KVM_SET_USER_MEMORY_REGION with size 0).</summary>
    public void RemoveMemorySlot(uint slot)
    {
        lock (_slotLock)
        {
            var entry = GetSlot(slot);
            SetUserMemoryRegion(entry with { Size = 0 });
            _slots.Remove(slot);
        }
    }

    /// <summary>Moves a slot to a new guest-physical address, keeping its contents (KVM_MR_MOVE).</summary>
    public MemorySlot MoveMemorySlot(uint slot, ulong newGuestPhysicalAddress)
    {
        if (newGuestPhysicalAddress % GuestMemory.PageSize != 0)
        {
            throw new ArgumentException($"Slot {slot} cannot move to unaligned address 0x{newGuestPhysicalAddress:x}.");
        }

        lock (_slotLock)
        {
            var moved = GetSlot(slot) with { GuestPhysicalAddress = newGuestPhysicalAddress };
            SetUserMemoryRegion(moved);
            _slots[slot] = moved;
            return moved;
        }
    }

    /// <summary>Turns dirty logging on or off for an existing slot.</summary>
    public MemorySlot SetDirtyLogging(uint slot, bool enabled)
    {
        lock (_slotLock)
        {
            var entry = GetSlot(slot);
            var flags = enabled ? entry.Flags | MemorySlotFlags.LogDirtyPages : entry.Flags & ~MemorySlotFlags.LogDirtyPages;
            var changed = entry with { Flags = flags };
            SetUserMemoryRegion(changed);
            _slots[slot] = changed;
            return changed;
        }
    }

    /// <summary>Registers every region of <paramref name="memory"/> in consecutive slots from 0.</summary>
    public void MapMemory(GuestMemory memory, bool trackDirtyPages = false)
    {
        ArgumentNullException.ThrowIfNull(memory);
        uint slot;
        lock (_slotLock)
        {
            slot = _slots.Count == 0 ? 0 : _slots.Keys.Max() + 1;
        }

        var flags = trackDirtyPages ? MemorySlotFlags.LogDirtyPages : MemorySlotFlags.None;
        foreach (var region in memory.Regions)
        {
            AddMemorySlot(slot++, region.GuestPhysicalAddress, region.Size, region.HostAddress, flags);
        }
    }

    /// <summary>
    /// KVM_GET_DIRTY_LOG: the pages written since the last call. Without manual protection the kernel also
    /// clears the log and write-protects the pages again; with it, call <see cref="ClearDirtyLog"/>.
    /// </summary>
    public DirtyPageBitmap GetDirtyLog(uint slot)
    {
        MemorySlot entry;
        lock (_slotLock)
        {
            entry = GetSlot(slot);
        }

        if ((entry.Flags & MemorySlotFlags.LogDirtyPages) == 0)
        {
            throw new InvalidOperationException($"Memory slot {slot} does not log dirty pages.");
        }

        var bitmap = new DirtyPageBitmap(entry.GuestPhysicalAddress, entry.Size / GuestMemory.PageSize);
        fixed (ulong* words = bitmap.Words)
        {
            var log = new kvm_dirty_log { slot = slot, dirty_bitmap = (ulong)words };
            // SAFETY: words holds one bit per page of the slot, rounded up to 64 bits, as the kernel expects.
            Ioctl.Invoke(_fd, KvmIoctls.KVM_GET_DIRTY_LOG, (nint)(&log), "KVM_GET_DIRTY_LOG");
        }

        return bitmap;
    }

    /// <summary>Enables KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2: GET no longer clears; CLEAR re-protects chosen pages.</summary>
    public void EnableManualDirtyLogProtect()
    {
        EnableCapability(KvmCapability.ManualDirtyLogProtect2, KvmConstants.KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE);
        _manualDirtyProtect = true;
    }

    /// <summary>KVM_CLEAR_DIRTY_LOG: clears (and write-protects again) the dirty bits of <paramref name="pages"/> in [firstPage, +pageCount).</summary>
    public void ClearDirtyLog(uint slot, ulong firstPage, uint pageCount, DirtyPageBitmap pages)
    {
        ArgumentNullException.ThrowIfNull(pages);
        if (!_manualDirtyProtect)
        {
            throw new InvalidOperationException("KVM_CLEAR_DIRTY_LOG needs EnableManualDirtyLogProtect() first.");
        }

        if (firstPage % 64 != 0)
        {
            throw new ArgumentException("The first page of a clear must be a multiple of 64.", nameof(firstPage));
        }

        ulong words = ((ulong)pageCount + 63) / 64;
        if (firstPage / 64 + words > (ulong)pages.Words.Length)
        {
            throw new ArgumentException("The page range is larger than the bitmap.", nameof(pageCount));
        }

        fixed (ulong* w = pages.Words)
        {
            var clear = new kvm_clear_dirty_log
            {
                slot = slot,
                num_pages = pageCount,
                first_page = firstPage,
                dirty_bitmap = (ulong)(w + (firstPage / 64)),
            };
            // SAFETY: the bitmap covers [firstPage, firstPage+pageCount), checked above.
            Ioctl.Invoke(_fd, KvmIoctls.KVM_CLEAR_DIRTY_LOG, (nint)(&clear), "KVM_CLEAR_DIRTY_LOG");
        }
    }

    // ---- x86 VT-x helpers ----

    /// <summary>KVM_SET_TSS_ADDR: three pages of guest-physical space VT-x needs for real mode (not RAM).</summary>
    public void SetTssAddress(uint address) => Ioctl.Invoke(_fd, KvmIoctls.KVM_SET_TSS_ADDR, (nint)address, "KVM_SET_TSS_ADDR");

    /// <summary>KVM_SET_IDENTITY_MAP_ADDR: one page VT-x uses for the EPT identity map.</summary>
    public void SetIdentityMapAddress(ulong address)
    {
        // SAFETY: the kernel reads one u64 from a stack local.
        Ioctl.Invoke(_fd, KvmIoctls.KVM_SET_IDENTITY_MAP_ADDR, (nint)(&address), "KVM_SET_IDENTITY_MAP_ADDR");
    }

    // ---- Interrupt controllers ----

    /// <summary>Creates the in-kernel PIC pair, IOAPIC and per-vCPU LAPICs (before any vCPU).</summary>
    public void CreateIrqChip()
    {
        Ioctl.Invoke(_fd, KvmIoctls.KVM_CREATE_IRQCHIP, 0, "KVM_CREATE_IRQCHIP");
        HasIrqChip = true;
    }

    /// <summary>Creates the in-kernel i8254 PIT (after the irqchip), with port 0x61 speaker emulation stubbed.</summary>
    public void CreatePit2()
    {
        var config = new kvm_pit_config { flags = KvmConstants.KVM_PIT_SPEAKER_DUMMY };
        // SAFETY: the kernel reads sizeof(kvm_pit_config) bytes from a stack local.
        Ioctl.Invoke(_fd, KvmIoctls.KVM_CREATE_PIT2, (nint)(&config), "KVM_CREATE_PIT2");
        HasPit2 = true;
    }

    /// <summary>KVM_IRQ_LINE: drives a GSI of the in-kernel irqchip.</summary>
    public void SetIrqLine(uint gsi, bool level)
    {
        var irq = new kvm_irq_level { irq = gsi, level = level ? 1u : 0u };
        // SAFETY: the kernel reads 8 bytes from a stack local.
        Ioctl.Invoke(_fd, KvmIoctls.KVM_IRQ_LINE, (nint)(&irq), "KVM_IRQ_LINE");
    }

    /// <summary>KVM_SIGNAL_MSI: true if delivered, false if the guest blocked it.</summary>
    public bool SignalMsi(ulong address, uint data)
    {
        var msi = new kvm_msi { address_lo = (uint)address, address_hi = (uint)(address >> 32), data = data };
        // SAFETY: the kernel reads sizeof(kvm_msi) bytes from a stack local.
        return Ioctl.Invoke(_fd, KvmIoctls.KVM_SIGNAL_MSI, (nint)(&msi), "KVM_SIGNAL_MSI") > 0;
    }

    /// <summary>KVM_SET_GSI_ROUTING: replaces the whole routing table.</summary>
    public void SetGsiRouting(IReadOnlyList<GsiRoute> routes)
    {
        ArgumentNullException.ThrowIfNull(routes);
        int bytes = sizeof(kvm_irq_routing) + (routes.Count * sizeof(kvm_irq_routing_entry));
        byte* buffer = (byte*)NativeMemory.AllocZeroed((nuint)bytes);
        try
        {
            ((kvm_irq_routing*)buffer)->nr = (uint)routes.Count;
            var entries = (kvm_irq_routing_entry*)(buffer + sizeof(kvm_irq_routing));
            for (int i = 0; i < routes.Count; i++)
            {
                entries[i] = routes[i].ToKernel();
            }

            // SAFETY: buffer holds the header and routes.Count entries.
            Ioctl.Invoke(_fd, KvmIoctls.KVM_SET_GSI_ROUTING, (nint)buffer, "KVM_SET_GSI_ROUTING");
        }
        finally
        {
            NativeMemory.Free(buffer);
        }
    }

    /// <summary>Binds an eventfd to a GSI: a write to it raises the interrupt without a trip through the VMM.</summary>
    public void AddIrqfd(EventFd eventFd, uint gsi) => Irqfd(eventFd, gsi, 0);

    public void RemoveIrqfd(EventFd eventFd, uint gsi) => Irqfd(eventFd, gsi, KvmConstants.KVM_IRQFD_FLAG_DEASSIGN);

    /// <summary>
    /// Binds a guest write of <paramref name="length"/> bytes at a port or MMIO address to an eventfd: the vCPU
    /// does not exit; the eventfd is signalled. With <paramref name="dataMatch"/> only that value triggers it.
    /// </summary>
    public void AddIoeventfd(EventFd eventFd, ulong address, uint length, bool isPort, ulong? dataMatch = null)
        => Ioeventfd(eventFd, address, length, isPort, dataMatch, 0);

    public void RemoveIoeventfd(EventFd eventFd, ulong address, uint length, bool isPort, ulong? dataMatch = null)
        => Ioeventfd(eventFd, address, length, isPort, dataMatch, KvmConstants.KVM_IOEVENTFD_FLAG_DEASSIGN);

    /// <summary>KVM_ENABLE_CAP on the VM.</summary>
    public void EnableCapability(KvmCapability capability, ulong arg0 = 0)
    {
        var cap = new kvm_enable_cap { cap = (uint)capability };
        cap.args[0] = arg0;
        // SAFETY: the kernel reads sizeof(kvm_enable_cap) bytes from a stack local.
        Ioctl.Invoke(_fd, KvmIoctls.KVM_ENABLE_CAP, (nint)(&cap), $"KVM_ENABLE_CAP({capability})");
    }

    // ---- vCPUs ----

    /// <summary>Creates vCPU <paramref name="index"/> (its APIC ID) and maps its kvm_run area.</summary>
    public KvmVcpu CreateVcpu(int index)
    {
        int fd = Ioctl.TryInvoke(_fd, KvmIoctls.KVM_CREATE_VCPU, index);
        if (fd < 0)
        {
            int max = Math.Max(_system.CheckExtension(KvmCapability.MaxVcpus), _system.CheckExtension(KvmCapability.NrVcpus));
            string hint = -fd == Errno.EINVAL ? $" This host allows at most {max} vCPUs per VM." : string.Empty;
            throw new KvmException("KVM_CREATE_VCPU", -fd, $"KVM_CREATE_VCPU({index}) failed: {Errno.Describe(-fd)}.{hint}");
        }

        var vcpuFd = FileDescriptor.FromRaw(fd);
        try
        {
            return new KvmVcpu(this, index, vcpuFd, VcpuMmapSize);
        }
        catch
        {
            vcpuFd.Dispose();
            throw;
        }
    }

    IVcpu IVirtualMachine.CreateVcpu(int index) => CreateVcpu(index);

    public void Dispose() => _fd.Dispose();

    private MemorySlot GetSlot(uint slot)
        => _slots.TryGetValue(slot, out var entry) ? entry : throw new ArgumentException($"Memory slot {slot} is not in use.", nameof(slot));

    private void SetUserMemoryRegion(MemorySlot slot)
    {
        var region = new kvm_userspace_memory_region
        {
            slot = slot.Slot,
            flags = (uint)slot.Flags,
            guest_phys_addr = slot.GuestPhysicalAddress,
            memory_size = slot.Size,
            userspace_addr = (ulong)slot.HostAddress,
        };
        // SAFETY: the kernel reads the struct from a stack local; the host range is owned by GuestMemory and
        // outlives the VM (the Machine disposes the VM first).
        int rc = Ioctl.TryInvoke(_fd, KvmIoctls.KVM_SET_USER_MEMORY_REGION, (nint)(&region));
        if (rc < 0)
        {
            throw new KvmException(
                "KVM_SET_USER_MEMORY_REGION",
                -rc,
                $"KVM_SET_USER_MEMORY_REGION for slot {slot.Slot} at 0x{slot.GuestPhysicalAddress:x}+0x{slot.Size:x} failed: {Errno.Describe(-rc)}.");
        }
    }

    private void Irqfd(EventFd eventFd, uint gsi, uint flags)
    {
        ArgumentNullException.ThrowIfNull(eventFd);
        var irqfd = new kvm_irqfd { fd = (uint)eventFd.Descriptor.Number, gsi = gsi, flags = flags };
        // SAFETY: the kernel reads the struct from a stack local; the eventfd stays open while registered.
        Ioctl.Invoke(_fd, KvmIoctls.KVM_IRQFD, (nint)(&irqfd), "KVM_IRQFD");
    }

    private void Ioeventfd(EventFd eventFd, ulong address, uint length, bool isPort, ulong? dataMatch, uint flags)
    {
        ArgumentNullException.ThrowIfNull(eventFd);
        if (length is not (0 or 1 or 2 or 4 or 8))
        {
            throw new ArgumentOutOfRangeException(nameof(length), length, "An ioeventfd matches 0, 1, 2, 4 or 8 bytes.");
        }

        var ioeventfd = new kvm_ioeventfd
        {
            addr = address,
            len = length,
            fd = eventFd.Descriptor.Number,
            flags = flags
                | (isPort ? KvmConstants.KVM_IOEVENTFD_FLAG_PIO : 0)
                | (dataMatch.HasValue ? KvmConstants.KVM_IOEVENTFD_FLAG_DATAMATCH : 0),
            datamatch = dataMatch ?? 0,
        };
        // SAFETY: the kernel reads the struct from a stack local.
        Ioctl.Invoke(_fd, KvmIoctls.KVM_IOEVENTFD, (nint)(&ioeventfd), "KVM_IOEVENTFD");
    }

    private sealed class KvmInterruptSink(KvmVm vm) : IInterruptSink
    {
        public void SetLevel(uint gsi, bool level) => vm.SetIrqLine(gsi, level);

        public void SignalMsi(ulong address, uint data) => vm.SignalMsi(address, data);
    }
}

[Flags]
public enum MemorySlotFlags : uint
{
    None = 0,
    LogDirtyPages = KvmConstants.KVM_MEM_LOG_DIRTY_PAGES,
    ReadOnly = KvmConstants.KVM_MEM_READONLY,
}

/// <summary>A KVM user memory slot.</summary>
public sealed record MemorySlot(uint Slot, ulong GuestPhysicalAddress, ulong Size, nint HostAddress, MemorySlotFlags Flags);

/// <summary>One GSI routing entry: to an irqchip pin or to an MSI message.</summary>
public readonly record struct GsiRoute(uint Gsi, bool IsMsi, uint IrqChip, uint Pin, ulong MsiAddress, uint MsiData)
{
    public const uint PicMaster = KvmConstants.KVM_IRQCHIP_PIC_MASTER;
    public const uint PicSlave = KvmConstants.KVM_IRQCHIP_PIC_SLAVE;
    public const uint IoApic = KvmConstants.KVM_IRQCHIP_IOAPIC;

    public static GsiRoute ToIrqChip(uint gsi, uint chip, uint pin) => new(gsi, false, chip, pin, 0, 0);

    public static GsiRoute ToMsi(uint gsi, ulong address, uint data) => new(gsi, true, 0, 0, address, data);

    /// <summary>
    /// The routing KVM installs at KVM_CREATE_IRQCHIP (virt/kvm/irqchip.c default_routing): GSI 0-7 to the
    /// master PIC, 8-15 to the slave PIC, and GSI 0-23 to the IOAPIC pin of the same number. Pass it with any
    /// MSI routes added, since KVM_SET_GSI_ROUTING replaces the whole table.
    /// </summary>
    public static List<GsiRoute> PcDefaults()
    {
        var routes = new List<GsiRoute>();
        for (uint gsi = 0; gsi < 16; gsi++)
        {
            routes.Add(ToIrqChip(gsi, gsi < 8 ? PicMaster : PicSlave, gsi % 8));
        }

        for (uint gsi = 0; gsi < 24; gsi++)
        {
            routes.Add(ToIrqChip(gsi, IoApic, gsi));
        }

        return routes;
    }

    internal kvm_irq_routing_entry ToKernel() => IsMsi
        ? new kvm_irq_routing_entry
        {
            gsi = Gsi,
            type = KvmConstants.KVM_IRQ_ROUTING_MSI,
            address_lo = (uint)MsiAddress,
            address_hi = (uint)(MsiAddress >> 32),
            data = MsiData,
        }
        : new kvm_irq_routing_entry
        {
            gsi = Gsi,
            type = KvmConstants.KVM_IRQ_ROUTING_IRQCHIP,
            irqchip = IrqChip,
            pin = Pin,
        };
}
