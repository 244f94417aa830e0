.code64
    in $0x20, %al
    out %al, $0x21
    in $0x22, %ax
    out %ax, $0x23
    in $0x24, %eax
    out %eax, $0x25
    mov $0x26, %dx
    in (%dx), %al
    out %al, (%dx)
    mov $0x2000, %esi
    mov $5, %ecx
    mov $0xE9, %dx
    rep outsb
    hlt
