.code64
    mov $0x600, %dx
    mov $7, %al
    out %al, (%dx)
    out %al, (%dx)
    out %al, $0x10
    hlt
