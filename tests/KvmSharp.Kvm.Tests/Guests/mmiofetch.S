.code64
    # Jump to 4 MiB: mapped by the guest's page tables, but no memory slot backs it, so the
    # instruction fetch reaches KVM's emulator, which cannot fetch code from MMIO.
    mov $0x400000, %eax
    jmp *%rax
