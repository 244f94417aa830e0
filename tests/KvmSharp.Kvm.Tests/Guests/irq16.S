.code16
start:
    /* IVT entry for vector 0x25 (IRQ5 with base 0x20) -> handler at 0:handler */
    movw $(handler - start + 0x1000), 0x25*4
    movw $0, 0x25*4+2
    /* master PIC: ICW1 edge+ICW4, ICW2 base 0x20, ICW3 slave on 2, ICW4 8086 mode, OCW1 unmask IRQ5 only */
    mov $0x11, %al
    out %al, $0x20
    mov $0x20, %al
    out %al, $0x21
    mov $0x04, %al
    out %al, $0x21
    mov $0x01, %al
    out %al, $0x21
    mov $0xDF, %al
    out %al, $0x21
    /* tell the host we are ready, then wait for the interrupt */
    out %al, $0x11
    sti
1:  hlt
    jmp 1b
handler:
    mov $0xAA, %al
    out %al, $0x10
    hlt
