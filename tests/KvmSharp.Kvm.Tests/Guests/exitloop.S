/* Exit-cost loops for bench/ and AllocationTests (ExitLoopGuest.cs, bench/native/exit_loop.c).
 * Loaded at 0x1000 and entered at CPL3 (CS 0x33, SS 0x2b, U/S page tables, a TSS whose I/O bitmap
 * allows every port), so under PVM the loop runs natively and only the exits cost. Each loop ends in
 * HLT: at CPL3 that raises #GP, and every IDT gate points at `halt`, which runs at CPL0 and halts.
 * At CPL0 (the fallback) the first HLT halts directly. */
.code64
    .org 0x00
pio_loop:                   /* 0x1000: RCX = count, DX = port */
    out %al, (%dx)
    dec %rcx
    jnz pio_loop
    hlt

    .org 0x20
mmio_loop:                  /* 0x1020: RCX = count, RDI = unbacked guest-physical address */
    mov %al, (%rdi)
    dec %rcx
    jnz mmio_loop
    hlt

    .org 0x40
both_loops:                 /* 0x1040: RCX PIO writes to DX, then RBX MMIO writes to (RDI) */
    out %al, (%dx)
    dec %rcx
    jnz both_loops
1:  mov %al, (%rdi)
    dec %rbx
    jnz 1b
    hlt

    .org 0x60
halt:                       /* 0x1060: every IDT gate (CPL0) */
    hlt
    jmp halt
