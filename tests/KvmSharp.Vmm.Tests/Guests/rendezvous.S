.code64
    /* rbx = vCPU index, rdi = this vCPU's flag, rsi = the other vCPU's flag.
       Raise our flag, wait for the other's, then report our index on port 0x30 and halt.
       Only vCPUs that really run at the same time get past the loop. */
    movl $1, (%rdi)
1:  pause
    cmpl $0, (%rsi)
    je 1b
    mov %bl, %al
    out %al, $0x30
    hlt
