.code64
    mov 0x10000000, %al
    mov %al, 0x10000100
    mov 0x10000002, %ax
    mov %ax, 0x10000102
    mov 0x10000004, %eax
    mov %eax, 0x10000104
    mov 0x10000008, %rax
    mov %rax, 0x10000108
    hlt
