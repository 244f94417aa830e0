.code64
    out %al, $0x31
1:  jmp 1b
