.code64
    /* In: rbx = vCPU index, rsi = message, rcx = its length, rbp = address of a console lock (0 = free).
       The guest writes its index over the first '#' in the message, takes the lock (xchg is atomic),
       prints the message on the debug console port 0xE9, releases the lock and halts. */
    mov %rsi, %rdi
    mov %rcx, %r8
    mov $0x23, %al
    repne scasb
    jne 1f
    add $0x30, %bl
    mov %bl, -1(%rdi)
1:  mov $1, %eax
    xchg %eax, (%rbp)
    test %eax, %eax
    jz 2f
    pause
    jmp 1b
2:  mov %r8, %rcx
    mov $0xE9, %dx
    rep outsb
    movl $0, (%rbp)
    hlt
