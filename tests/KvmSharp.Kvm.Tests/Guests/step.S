.code64
    nop
    inc %eax
    add $3, %eax
    hlt
