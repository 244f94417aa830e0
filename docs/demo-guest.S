.code64
    /* In: rbx = vCPU index, rsi = message, rcx = its length. The guest writes its index over the
       first '#' in the message, then prints the message on the debug console port and halts. */
    mov %rsi, %rdi
    mov %rcx, %r8
    mov $0x23, %al
    repne scasb
    jne 1f
    add $0x30, %bl
    mov %bl, -1(%rdi)
1:  mov %r8, %rcx
    mov $0xE9, %dx
    rep outsb
    hlt
