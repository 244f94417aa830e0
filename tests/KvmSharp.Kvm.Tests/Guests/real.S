.code16
    mov $0x42, %al
    out %al, $0x10
    hlt
