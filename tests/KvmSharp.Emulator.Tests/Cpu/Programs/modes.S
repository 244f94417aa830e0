# Loaded at 0x10000, started in real mode with CS=0x1000, IP=0. GDT at 0x10100 (built by the test).
.code16
start:
    cli
    lgdtl %cs:gdtr - start          # gdtr descriptor at offset of label
    movl %cr0, %eax
    orl $1, %eax
    movl %eax, %cr0
    ljmpl $0x08, $(0x10000 + pm32 - start)
.code32
pm32:
    movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %ss
    movl $0x18000, %esp
    movl $0xdeadbeef, 0x17000       # a store through flat DS
    # long mode: PAE, CR3 = 0x20000 (identity tables built by the test), LME, PG
    movl %cr4, %eax
    orl $0x20, %eax
    movl %eax, %cr4
    movl $0x20000, %eax
    movl %eax, %cr3
    movl $0xC0000080, %ecx
    rdmsr
    orl $0x100, %eax
    wrmsr
    movl %cr0, %eax
    orl $0x80000000, %eax
    movl %eax, %cr0
    ljmpl $0x18, $(0x10000 + lm64 - start)
.code64
lm64:
    movabsq $0x1122334455667788, %rax
    movq %rax, 0x17008
    pushq $0x2a
    popq %rbx
    hlt
.align 8
gdtr:
    .word 0x1f
    .long 0x10100
