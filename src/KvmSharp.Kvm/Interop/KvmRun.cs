using System.Runtime.InteropServices;

namespace KvmSharp.Kvm.Interop;

/// <summary>The per-vCPU shared page (struct kvm_run); read in place through a pointer into the mmap.</summary>
[StructLayout(LayoutKind.Explicit, Size = 2352)]
internal struct kvm_run
{
    [FieldOffset(0)] public byte request_interrupt_window;
    [FieldOffset(1)] public byte immediate_exit;
    [FieldOffset(8)] public uint exit_reason;
    [FieldOffset(12)] public byte ready_for_interrupt_injection;
    [FieldOffset(13)] public byte if_flag;
    [FieldOffset(14)] public ushort flags;
    [FieldOffset(16)] public ulong cr8;
    [FieldOffset(24)] public ulong apic_base;

    // The exit union starts at offset 32 (256 bytes).
    [FieldOffset(32)] public kvm_run_io io;
    [FieldOffset(32)] public kvm_run_mmio mmio;
    [FieldOffset(32)] public kvm_run_debug debug;
    [FieldOffset(32)] public kvm_run_internal @internal;
    [FieldOffset(32)] public kvm_run_system_event system_event;
    [FieldOffset(32)] public kvm_run_fail_entry fail_entry;
    [FieldOffset(32)] public kvm_run_hw hw;

    [FieldOffset(288)] public ulong kvm_valid_regs;
    [FieldOffset(296)] public ulong kvm_dirty_regs;
}

[StructLayout(LayoutKind.Sequential)]
internal struct kvm_run_io
{
    public byte direction;
    public byte size;
    public ushort port;
    public uint count;
    public ulong data_offset;
}

[StructLayout(LayoutKind.Sequential)]
internal unsafe struct kvm_run_mmio
{
    public ulong phys_addr;
    public fixed byte data[8];
    public uint len;
    public byte is_write;
}

[StructLayout(LayoutKind.Sequential)]
internal struct kvm_run_debug
{
    public uint exception;
    public uint pad;
    public ulong pc;
    public ulong dr6;
    public ulong dr7;
}

[StructLayout(LayoutKind.Sequential)]
internal unsafe struct kvm_run_internal
{
    public uint suberror;
    public uint ndata;
    public fixed ulong data[16];
}

[StructLayout(LayoutKind.Sequential)]
internal unsafe struct kvm_run_system_event
{
    public uint type;
    public uint ndata;
    public fixed ulong data[16];
}

[StructLayout(LayoutKind.Sequential)]
internal struct kvm_run_fail_entry
{
    public ulong hardware_entry_failure_reason;
    public uint cpu;
}

[StructLayout(LayoutKind.Sequential)]
internal struct kvm_run_hw
{
    public ulong hardware_exit_reason;
}
