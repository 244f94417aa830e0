.code32
    mov $0xDEADBEEF, %eax
    mov %eax, 0x3000
    out %eax, $0x10
    hlt
