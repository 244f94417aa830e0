# 64-bit, CPL 0, loaded at 0x10000. Tables are built by the test:
# GDT 0x11800 (0x08 kernel code64, 0x10 kernel data, 0x18 user data, 0x20 user code64, 0x28 TSS),
# IDT 0x14000, TSS 0x11900 (RSP0 = 0x16000, IST1 = 0x17000). Results at 0x12000.
.code64
kernel:
    lgdt 0x11f00            # gdtr image written by the test
    lidt 0x11f10            # idtr image
    movw $0x28, %ax
    ltr %ax
    movl $0xC0000081, %ecx  # STAR: kernel CS 0x08, user base 0x10
    xorl %eax, %eax
    movl $0x00100008, %edx
    wrmsr
    movl $0xC0000082, %ecx  # LSTAR
    movl $(0x10000 + syscall_entry - kernel), %eax
    xorl %edx, %edx
    wrmsr
    movl $0xC0000084, %ecx  # FMASK: clear IF, DF, TF
    movl $0x700, %eax
    wrmsr
    movl $0xC0000080, %ecx
    rdmsr
    orl $1, %eax            # EFER.SCE
    wrmsr
    pushq $0x1b             # user SS
    pushq $0x15000          # user RSP
    pushq $0x202            # RFLAGS (IF set)
    pushq $0x23             # user CS
    pushq $(0x10000 + user - kernel)
    iretq

user:
    movl $0x51, %eax
    syscall                 # -> syscall_entry, returns RAX = 0x99
    movq %rax, 0x12000      # result 0: syscall return value (user page is writable)
    movq %r11, 0x12008      # result 1: R11 = RFLAGS saved by SYSCALL
pf_here:
    movq $1, 0x30000        # #PF: supervisor page written from CPL 3
    movq $0x77, 0x12010     # result 2: reached after the #PF handler skipped the store
    int $0x80               # DPL 3 gate -> int80 handler (IST1)
    movq %rsp, 0x12018      # result 3: user RSP after the interrupt round trip
    hlt                     # #GP(0) at CPL 3 -> gp handler stops the test

syscall_entry:              # CPL 0, RSP still the user's (SYSCALL does not switch stacks)
    movq %rcx, 0x12020      # result 4: return RIP
    movq %rax, 0x12028      # result 5: the user's RAX (0x51)
    movw %cs, 0x12030       # result 6: CS during the system call
    movw %ss, 0x12032
    movl $0x99, %eax
    sysretq

pf_handler:                 # error code on the stack, then RIP, CS, RFLAGS, RSP, SS
    movq %cr2, %rax
    movq %rax, 0x12040      # result 8: CR2
    movq (%rsp), %rax
    movq %rax, 0x12048      # result 9: error code
    movq 16(%rsp), %rax
    movq %rax, 0x12050      # result 10: saved CS
    movq 40(%rsp), %rax
    movq %rax, 0x12058      # result 11: saved SS
    movq %rsp, 0x12060      # result 12: handler RSP (TSS.RSP0 - 48)
    addq $8, %rsp           # drop the error code
    addq $12, (%rsp)        # skip the faulting 12-byte store
    iretq

int80_handler:
    movq %rsp, 0x12068      # result 13: handler RSP (IST1 - 40)
    movq 8(%rsp), %rax
    movq %rax, 0x12070      # result 14: saved CS
    iretq

gp_handler:
    movq (%rsp), %rax
    movq %rax, 0x12078      # result 15: #GP error code
    movq 8(%rsp), %rax
    movq %rax, 0x12080      # result 16: faulting RIP
    cli
    hlt
