.code16
start:
    /* IVT entry for vector 0x25 -> 0:handler; report ready with IF=0; then enable interrupts and spin. */
    movw $(handler - start + 0x1000), 0x25*4
    movw $0, 0x25*4+2
    out %al, $0x11
    sti
    nop
1:  jmp 1b
handler:
    mov $0xAA, %al
    out %al, $0x10
    hlt
