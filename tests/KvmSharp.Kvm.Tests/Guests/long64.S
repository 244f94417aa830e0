.code64
    movabs $0x1122334455667788, %rax
    mov %rax, 0x5000
    out %eax, $0x10
    hlt
