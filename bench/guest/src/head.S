/*
 * bench-guest head. Entered through the Xen PVH note (XEN_ELFNOTE_PHYS32_ENTRY) in flat 32-bit
 * protected mode, paging off, EBX = hvm_start_info. Switches to long mode with static page tables
 * (the first 8 MiB identity-mapped, and the 2 MiB at 0xD0000000 where the MMIO loop writes), then
 * drops to CPL3 with IOPL 3 and a TSS I/O bitmap allowing ports 0-0x3FF: under PVM only CPL3 code
 * runs natively, so everything after the iretq (the loops, the workload, the UART) runs there.
 * Kept short: each CPL0 instruction costs ~1 us under PVM. There is no IDT: a fault ends the VM
 * with a triple fault, which the bench reports as a failed run.
 */
    .section .note.Xen, "a", @note
    .balign 4
    .long   4                   /* namesz: "Xen\0" */
    .long   4                   /* descsz */
    .long   18                  /* XEN_ELFNOTE_PHYS32_ENTRY */
    .asciz  "Xen"
    .balign 4
    .long   pvh_start

#define KERNEL_CODE 0x10
#define KERNEL_DATA 0x18
#define USER_DATA   0x2B
#define USER_CODE   0x33
#define TSS_SEL     0x38
#define TSS_LIMIT   (0x68 + 128)    /* the TSS, then the I/O bitmap for ports 0-0x3FF; 0xFF after it */

    .section .text.entry, "ax"
    .code32
    .globl pvh_start
pvh_start:
    cli
    cld
    mov     %ebx, start_info

    /* The 64-bit TSS descriptor's base, which the linker cannot split into the descriptor's fields. */
    mov     $tss, %eax
    mov     %eax, %edx
    shl     $16, %eax
    or      $TSS_LIMIT, %eax
    mov     %eax, gdt + TSS_SEL
    mov     %edx, %eax
    shr     $16, %eax
    mov     %eax, %ecx
    and     $0xFF, %eax
    and     $0xFF00, %ecx
    shl     $16, %ecx
    or      %ecx, %eax
    or      $0x8900, %eax       /* present, type 9 (available 64-bit TSS) */
    mov     %eax, gdt + TSS_SEL + 4

    lgdt    gdt_ptr
    mov     %cr4, %eax
    or      $0x20, %eax         /* PAE */
    mov     %eax, %cr4
    mov     $pml4, %eax
    mov     %eax, %cr3
    mov     $0xC0000080, %ecx   /* EFER.LME */
    rdmsr
    or      $0x100, %eax
    wrmsr
    mov     %cr0, %eax
    or      $0x80000001, %eax   /* PG | PE */
    mov     %eax, %cr0
    ljmp    $KERNEL_CODE, $long_mode

    .code64
long_mode:
    mov     $KERNEL_DATA, %eax
    mov     %eax, %ds
    mov     %eax, %es
    mov     %eax, %ss
    xor     %eax, %eax
    mov     %eax, %fs
    mov     %eax, %gs
    mov     $TSS_SEL, %eax
    ltr     %ax
    mov     $kernel_stack_top, %rsp
    pushq   $USER_DATA
    pushq   $user_stack_top
    pushq   $0x3002             /* IOPL 3, IF 0 */
    pushq   $USER_CODE
    pushq   $user_entry
    iretq

user_entry:
    mov     $USER_DATA, %eax
    mov     %eax, %ds
    mov     %eax, %es
    mov     start_info, %edi
    call    bench_main
1:  jmp     1b

    .section .data
    .balign 8
gdt:
    .quad   0
    .quad   0
    .quad   0x00AF9A000000FFFF  /* 0x10 kernel code, 64-bit */
    .quad   0x00CF92000000FFFF  /* 0x18 kernel data */
    .quad   0
    .quad   0x00CFF2000000FFFF  /* 0x28 user data, DPL 3 */
    .quad   0x00AFFA000000FFFF  /* 0x30 user code, 64-bit, DPL 3 */
    .quad   0, 0                /* 0x38 TSS, filled in above */
gdt_end:
gdt_ptr:
    .word   gdt_end - gdt - 1
    .long   gdt

    .balign 16
tss:
    .long   0
    .quad   kernel_stack_top    /* RSP0 */
    .fill   0x66 - 12, 1, 0
    .word   0x68                /* I/O map base */
    .fill   128, 1, 0           /* ports 0-0x3FF allowed */
    .byte   0xFF

    /* Page tables: present | writable | user at every level, 2 MiB pages. */
    .balign 4096
pml4:
    .quad   pdpt + 0x7
    .fill   511, 8, 0
pdpt:
    .quad   pd0 + 0x7
    .quad   0
    .quad   0
    .quad   pd3 + 0x7
    .fill   508, 8, 0
pd0:
    .quad   0x000087, 0x200087, 0x400087, 0x600087
    .fill   508, 8, 0
pd3:
    .fill   128, 8, 0
    .quad   0xD0000087          /* 0xD0000000: the MMIO loop's page (no RAM there) */
    .fill   383, 8, 0

    .section .bss
    .balign 16
    .globl start_info
start_info:
    .quad   0
    .balign 16
    .fill   4096, 1, 0
kernel_stack_top:
    .fill   16384, 1, 0
user_stack_top:
