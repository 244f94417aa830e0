.code32
    /* Echo COM1 input to COM1 output; 'q' ends the VM through isa-debug-exit with 0. */
1:  mov $0x3fd, %dx
    in (%dx), %al
    test $1, %al          /* LSR.DR */
    jz 1b
    mov $0x3f8, %dx
    in (%dx), %al
    cmp $0x71, %al        /* 'q' */
    je 3f
    mov %al, %bl
2:  mov $0x3fd, %dx
    in (%dx), %al
    test $0x20, %al       /* LSR.THRE */
    jz 2b
    mov $0x3f8, %dx
    mov %bl, %al
    out %al, (%dx)
    jmp 1b
3:  xor %eax, %eax
    out %eax, $0xf4
    hlt
