using System.Runtime.InteropServices;

namespace KvmSharp.Kvm.Interop;

// Kernel structs from include/uapi/linux/kvm.h and arch/x86/include/uapi/asm/kvm.h, with the kernel's
// names and layout. kvm_regs, kvm_sregs and kvm_fpu are KvmSharp.Hypervisor's X86Registers,
// X86SystemRegisters and FpuState, which share their layout byte for byte (asserted by tests).

[StructLayout(LayoutKind.Sequential)]
internal struct kvm_userspace_memory_region
{
    public uint slot;
    public uint flags;
    public ulong guest_phys_addr;
    public ulong memory_size;
    public ulong userspace_addr;
}

[StructLayout(LayoutKind.Sequential)]
internal struct kvm_msrs
{
    public uint nmsrs;
    public uint pad;
}

[StructLayout(LayoutKind.Sequential)]
internal struct kvm_msr_entry
{
    public uint index;
    public uint reserved;
    public ulong data;
}

[StructLayout(LayoutKind.Sequential)]
internal struct kvm_msr_list
{
    public uint nmsrs;
}

[StructLayout(LayoutKind.Sequential)]
internal struct kvm_cpuid2
{
    public uint nent;
    public uint padding;
}

[StructLayout(LayoutKind.Sequential)]
internal unsafe struct kvm_cpuid_entry2
{
    public uint function;
    public uint index;
    public uint flags;
    public uint eax;
    public uint ebx;
    public uint ecx;
    public uint edx;
    public fixed uint padding[3];
}

[StructLayout(LayoutKind.Sequential)]
internal unsafe struct kvm_guest_debug
{
    public uint control;
    public uint pad;
    public fixed ulong debugreg[8];
}

[StructLayout(LayoutKind.Sequential)]
internal unsafe struct kvm_translation
{
    public ulong linear_address;
    public ulong physical_address;
    public byte valid;
    public byte writeable;
    public byte usermode;
    public fixed byte pad[5];
}

[StructLayout(LayoutKind.Sequential)]
internal struct kvm_mp_state
{
    public uint mp_state;
}

[StructLayout(LayoutKind.Sequential)]
internal struct kvm_irq_level
{
    public uint irq;
    public uint level;
}

[StructLayout(LayoutKind.Sequential)]
internal unsafe struct kvm_pit_config
{
    public uint flags;
    public fixed uint pad[15];
}

[StructLayout(LayoutKind.Sequential)]
internal struct kvm_irq_routing
{
    public uint nr;
    public uint flags;
}

[StructLayout(LayoutKind.Explicit, Size = 48)]
internal struct kvm_irq_routing_entry
{
    [FieldOffset(0)] public uint gsi;
    [FieldOffset(4)] public uint type;
    [FieldOffset(8)] public uint flags;
    [FieldOffset(12)] public uint pad;

    // union u: kvm_irq_routing_irqchip { irqchip, pin } or kvm_irq_routing_msi { address_lo, address_hi, data, devid }
    [FieldOffset(16)] public uint irqchip;
    [FieldOffset(20)] public uint pin;
    [FieldOffset(16)] public uint address_lo;
    [FieldOffset(20)] public uint address_hi;
    [FieldOffset(24)] public uint data;
    [FieldOffset(28)] public uint devid;
}

[StructLayout(LayoutKind.Sequential)]
internal unsafe struct kvm_msi
{
    public uint address_lo;
    public uint address_hi;
    public uint data;
    public uint flags;
    public uint devid;
    public fixed byte pad[12];
}

[StructLayout(LayoutKind.Sequential)]
internal unsafe struct kvm_irqfd
{
    public uint fd;
    public uint gsi;
    public uint flags;
    public uint resamplefd;
    public fixed byte pad[16];
}

[StructLayout(LayoutKind.Sequential)]
internal unsafe struct kvm_ioeventfd
{
    public ulong datamatch;
    public ulong addr;
    public uint len;
    public int fd;
    public uint flags;
    public fixed byte pad[36];
}

[StructLayout(LayoutKind.Sequential)]
internal struct kvm_dirty_log
{
    public uint slot;
    public uint padding1;
    public ulong dirty_bitmap;
}

[StructLayout(LayoutKind.Sequential)]
internal struct kvm_clear_dirty_log
{
    public uint slot;
    public uint num_pages;
    public ulong first_page;
    public ulong dirty_bitmap;
}

[StructLayout(LayoutKind.Sequential)]
internal unsafe struct kvm_enable_cap
{
    public uint cap;
    public uint flags;
    public fixed ulong args[4];
    public fixed byte pad[64];
}

[StructLayout(LayoutKind.Sequential)]
internal unsafe struct kvm_xsave
{
    public fixed uint region[1024];
}

[StructLayout(LayoutKind.Sequential)]
internal struct kvm_xcr
{
    public uint xcr;
    public uint reserved;
    public ulong value;
}

[StructLayout(LayoutKind.Sequential)]
internal unsafe struct kvm_xcrs
{
    public uint nr_xcrs;
    public uint flags;
    public fixed ulong xcrs[16 * 2]; // 16 x kvm_xcr
    public fixed ulong padding[16];
}

[StructLayout(LayoutKind.Sequential)]
internal unsafe struct kvm_lapic_state
{
    public fixed byte regs[1024];
}

[StructLayout(LayoutKind.Sequential)]
internal unsafe struct kvm_debugregs
{
    public fixed ulong db[4];
    public ulong dr6;
    public ulong dr7;
    public ulong flags;
    public fixed ulong reserved[9];
}

[StructLayout(LayoutKind.Sequential)]
internal unsafe struct kvm_irqchip
{
    public uint chip_id;
    public uint pad;
    public fixed byte chip[512]; // union of char dummy[512], kvm_pic_state, kvm_ioapic_state
}

[StructLayout(LayoutKind.Sequential)]
internal struct kvm_pit_channel_state
{
    public uint count;
    public ushort latched_count;
    public byte count_latched;
    public byte status_latched;
    public byte status;
    public byte read_state;
    public byte write_state;
    public byte write_latch;
    public byte rw_mode;
    public byte mode;
    public byte bcd;
    public byte gate;
    public long count_load_time;
}

[StructLayout(LayoutKind.Sequential)]
internal unsafe struct kvm_pit_state2
{
    public fixed byte channels[3 * 24]; // 3 x kvm_pit_channel_state
    public uint flags;
    public fixed uint reserved[9];
}

[StructLayout(LayoutKind.Sequential)]
internal unsafe struct kvm_clock_data
{
    public ulong clock;
    public uint flags;
    public uint pad0;
    public ulong realtime;
    public ulong host_tsc;
    public fixed uint pad[4];
}
