# snapshot.S: an endless mix of integer, SSE and x87 work on a table at 0x100000, reporting each round's
# counter (CL) on port 0x30. Long mode.
.intel_syntax noprefix
.code64
    mov rbx, 0x5851f42d4c957f2d
    mov edi, 0x100000
    fninit
    fldz
top:
    imul rax, rbx
    add rax, rcx
    mov rdx, rcx
    and edx, 0x1ff
    mov [rdi + rdx*8], rax
    movq xmm0, rax
    paddq xmm1, xmm0
    pshufd xmm1, xmm1, 0x4e
    cvtsi2sd xmm2, rax
    addsd xmm3, xmm2
    fild qword ptr [rdi + rdx*8]
    faddp st(1), st
    inc rcx
    push rax
    mov al, cl
    out 0x30, al
    pop rax
    jmp top
