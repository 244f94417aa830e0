/*
 * exit_loop: the C reference for KvmSharp's exit-cost benchmark (bench/KvmSharp.Benchmarks).
 *
 * Same guest bytes (tests/KvmSharp.Kvm.Tests/Guests/exitloop.S), same machine setup (2 MiB RAM at 0,
 * identity page tables with U/S, CPL3 entered through KVM_SET_SREGS, RFLAGS.IOPL = 3 and a TSS I/O
 * bitmap allowing every port, HLT at CPL3 -> #GP -> a CPL0 HLT through the IDT), same N and the same
 * do-nothing handling (port and MMIO reads fill 0xFF, writes are dropped), measured the same way as
 * `KvmSharp.Benchmarks --quick`: one warm-up run, then the median of 5 runs of N exits, each run being
 * SET_SREGS + SET_REGS + KVM_RUN until HLT. If KVM will not run the loop at CPL3, it falls back to CPL0
 * and says so (cpl=0 in the output).
 *
 * Build: gcc -O2 -Wall -Wextra -o exit_loop exit_loop.c      Run: ./exit_loop [--cpl0] [-n N]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define RAM_SIZE      (2u << 20)
#define CODE_ADDRESS  0x1000u
#define PIO_ENTRY     0x1000u
#define MMIO_ENTRY    0x1020u
#define HALT_ENTRY    0x1060u
#define GDT_ADDRESS   0x2000u
#define TSS_ADDRESS   0x3000u        /* 0x68-byte TSS, then an 8 KiB I/O bitmap of zeros and its 0xFF end byte */
#define TSS_LIMIT     (0x68u + 0x2000u)
#define STACK_TOP     0x7000u        /* TSS.RSP0: the stack the CPL3 -> CPL0 #GP switches to */
#define IDT_ADDRESS   0xB000u
#define PML4_ADDRESS  0x8000u
#define PDPT_ADDRESS  0x9000u
#define PD_ADDRESS    0xA000u
#define BENCH_PORT    0x10u
#define MMIO_ADDRESS  0x10000000ull  /* 256 MiB: mapped by the page tables, not backed by a memslot */
#define RUNS          5

#define EFER_LME      (1ull << 8)
#define EFER_LMA      (1ull << 10)
#define RFLAGS_IOPL3  (3ull << 12)

/* exitloop.S, as in tests/KvmSharp.Kvm.Tests/ExitLoopGuest.cs. */
static const uint8_t guest_code[] = {
    /* 0x00 pio_loop:  out %al,(%dx); dec %rcx; jnz pio_loop; hlt */
    0xee, 0x48, 0xff, 0xc9, 0x75, 0xfa, 0xf4, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    /* 0x20 mmio_loop: mov %al,(%rdi); dec %rcx; jnz mmio_loop; hlt */
    0x88, 0x07, 0x48, 0xff, 0xc9, 0x75, 0xf9, 0xf4, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    /* 0x40 both_loops: out %al,(%dx); dec %rcx; jnz; 1: mov %al,(%rdi); dec %rbx; jnz 1b; hlt */
    0xee, 0x48, 0xff, 0xc9, 0x75, 0xfa, 0x88, 0x07, 0x48, 0xff, 0xcb, 0x75, 0xf9, 0xf4, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    /* 0x60 halt: hlt; jmp halt */
    0xf4, 0xeb, 0xfd,
};

struct machine {
    int kvm, vm, vcpu;
    uint8_t *ram;
    struct kvm_run *run;
    struct kvm_sregs sregs;
    int cpl;
};

static void die(const char *what)
{
    fprintf(stderr, "exit_loop: %s failed: %s\n", what, strerror(errno));
    exit(1);
}

static void xioctl(int fd, unsigned long request, void *arg, const char *what)
{
    if (ioctl(fd, request, arg) < 0)
        die(what);
}

static void set_segment(struct kvm_segment *s, uint16_t selector, int code, int dpl)
{
    memset(s, 0, sizeof(*s));
    s->base = 0;
    s->limit = 0xFFFFFFFF;
    s->selector = selector;
    s->type = code ? 0xB : 0x3;
    s->present = 1;
    s->dpl = (uint8_t)dpl;
    s->db = code ? 0 : 1;
    s->s = 1;
    s->l = code ? 1 : 0;
    s->g = 1;
}

static void setup(struct machine *m, int cpl)
{
    m->kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (m->kvm < 0)
        die("open /dev/kvm");
    m->vm = ioctl(m->kvm, KVM_CREATE_VM, 0);
    if (m->vm < 0)
        die("KVM_CREATE_VM");
    if (ioctl(m->kvm, KVM_CHECK_EXTENSION, KVM_CAP_SET_TSS_ADDR) > 0)
        xioctl(m->vm, KVM_SET_TSS_ADDR, (void *)0xFFFBD000ul, "KVM_SET_TSS_ADDR");

    m->ram = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m->ram == MAP_FAILED)
        die("mmap RAM");
    struct kvm_userspace_memory_region region = {
        .slot = 0, .guest_phys_addr = 0, .memory_size = RAM_SIZE, .userspace_addr = (uint64_t)m->ram,
    };
    xioctl(m->vm, KVM_SET_USER_MEMORY_REGION, &region, "KVM_SET_USER_MEMORY_REGION");

    memcpy(m->ram + CODE_ADDRESS, guest_code, sizeof(guest_code));
    /* PML4 -> PDPT -> PD, 1 GiB identity-mapped with 2 MiB pages, present | writable | user. */
    const uint64_t pru = 0x7, large = 0x80;
    *(uint64_t *)(m->ram + PML4_ADDRESS) = PDPT_ADDRESS | pru;
    *(uint64_t *)(m->ram + PDPT_ADDRESS) = PD_ADDRESS | pru;
    for (uint64_t i = 0; i < 512; i++)
        *(uint64_t *)(m->ram + PD_ADDRESS + i * 8) = (i << 21) | pru | large;

    /* GDT: 0x10 kernel code, 0x18 kernel data, 0x2b user data, 0x33 user code (the SYSCALL/SYSRET layout), 0x38 TSS. */
    uint64_t *gdt = (uint64_t *)(m->ram + GDT_ADDRESS);
    gdt[2] = 0x00AF9A000000FFFFull;
    gdt[3] = 0x00CF92000000FFFFull;
    gdt[5] = 0x00CFF2000000FFFFull;
    gdt[6] = 0x00AFFA000000FFFFull;
    gdt[7] = (TSS_LIMIT & 0xFFFF) | ((uint64_t)TSS_ADDRESS << 16) | (0x89ull << 40);
    gdt[8] = 0;
    *(uint64_t *)(m->ram + TSS_ADDRESS + 4) = STACK_TOP;        /* RSP0 */
    *(uint16_t *)(m->ram + TSS_ADDRESS + 0x66) = 0x68;          /* I/O map base */
    m->ram[TSS_ADDRESS + TSS_LIMIT] = 0xFF;
    /* IDT: 256 interrupt gates, selector 0x10, all to the CPL0 halt. */
    for (int v = 0; v < 256; v++) {
        uint64_t *gate = (uint64_t *)(m->ram + IDT_ADDRESS + v * 16);
        gate[0] = (HALT_ENTRY & 0xFFFF) | (0x10ull << 16) | (0x8Eull << 40) | ((uint64_t)(HALT_ENTRY >> 16) << 48);
        gate[1] = 0;
    }

    m->vcpu = ioctl(m->vm, KVM_CREATE_VCPU, 0);
    if (m->vcpu < 0)
        die("KVM_CREATE_VCPU");
    int mmap_size = ioctl(m->kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (mmap_size < (int)sizeof(struct kvm_run))
        die("KVM_GET_VCPU_MMAP_SIZE");
    m->run = mmap(NULL, (size_t)mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED, m->vcpu, 0);
    if (m->run == MAP_FAILED)
        die("mmap kvm_run");

    xioctl(m->vcpu, KVM_GET_SREGS, &m->sregs, "KVM_GET_SREGS");
    m->sregs.cr0 = 0x80000033; /* PG | NE | ET | MP | PE */
    m->sregs.cr3 = PML4_ADDRESS;
    m->sregs.cr4 = 1u << 5;    /* PAE */
    m->sregs.efer = EFER_LME | EFER_LMA;
    if (cpl == 3) {
        set_segment(&m->sregs.cs, 0x33, 1, 3);
        set_segment(&m->sregs.ss, 0x2b, 0, 3);
        m->sregs.ds = m->sregs.es = m->sregs.fs = m->sregs.gs = m->sregs.ss;
    } else {
        set_segment(&m->sregs.cs, 0x10, 1, 0);
        set_segment(&m->sregs.ss, 0x18, 0, 0);
        m->sregs.ds = m->sregs.es = m->sregs.fs = m->sregs.gs = m->sregs.ss;
    }
    m->sregs.gdt.base = GDT_ADDRESS;
    m->sregs.gdt.limit = 9 * 8 - 1;
    m->sregs.idt.base = IDT_ADDRESS;
    m->sregs.idt.limit = 256 * 16 - 1;
    memset(&m->sregs.tr, 0, sizeof(m->sregs.tr));
    m->sregs.tr.selector = 0x38;
    m->sregs.tr.base = TSS_ADDRESS;
    m->sregs.tr.limit = TSS_LIMIT;
    m->sregs.tr.type = 0xB; /* busy 64-bit TSS */
    m->sregs.tr.present = 1;
    m->cpl = cpl;
}

static int reset(struct machine *m, uint64_t entry, uint64_t count)
{
    struct kvm_regs regs = {
        .rip = entry, .rcx = count, .rdx = BENCH_PORT, .rdi = MMIO_ADDRESS, .rsp = STACK_TOP,
        .rflags = RFLAGS_IOPL3 | 2,
    };
    if (ioctl(m->vcpu, KVM_SET_SREGS, &m->sregs) < 0)
        return -1;
    xioctl(m->vcpu, KVM_SET_REGS, &regs, "KVM_SET_REGS");
    return 0;
}

/* Runs until HLT, handling exits like a machine with nothing attached. Returns the exit count, or -1. */
static long run_until_halt(struct machine *m)
{
    struct kvm_run *run = m->run;
    long exits = 0;
    for (;;) {
        if (ioctl(m->vcpu, KVM_RUN, 0) < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            die("KVM_RUN");
        }
        switch (run->exit_reason) {
        case KVM_EXIT_IO:
            if (run->io.direction == KVM_EXIT_IO_IN)
                memset((uint8_t *)run + run->io.data_offset, 0xFF, (size_t)run->io.size * run->io.count);
            exits++;
            break;
        case KVM_EXIT_MMIO:
            if (!run->mmio.is_write)
                memset(run->mmio.data, 0xFF, run->mmio.len);
            exits++;
            break;
        case KVM_EXIT_HLT:
            return exits;
        default:
            fprintf(stderr, "exit_loop: unexpected exit reason %u\n", run->exit_reason);
            return -1;
        }
    }
}

/* True when the vCPU really executes the loop at CPL3 and halts: stops at the first exit and reads CS. */
static int probe_cpl3(struct machine *m)
{
    if (reset(m, PIO_ENTRY, 2) < 0)
        return 0;
    if (ioctl(m->vcpu, KVM_RUN, 0) < 0 || m->run->exit_reason != KVM_EXIT_IO)
        return 0;
    struct kvm_sregs now;
    xioctl(m->vcpu, KVM_GET_SREGS, &now, "KVM_GET_SREGS");
    if (now.cs.dpl != 3 || (now.cs.selector & 3) != 3)
        return 0;
    return run_until_halt(m) == 1;
}

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int compare_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double measure(struct machine *m, uint64_t entry, long n)
{
    double samples[RUNS];
    for (int r = -1; r < RUNS; r++) { /* r == -1: warm-up */
        double start = now_ns();
        if (reset(m, entry, (uint64_t)n) < 0)
            die("KVM_SET_SREGS");
        long exits = run_until_halt(m);
        double elapsed = now_ns() - start;
        if (exits != n) {
            fprintf(stderr, "exit_loop: expected %ld exits, saw %ld\n", n, exits);
            exit(1);
        }
        if (r >= 0)
            samples[r] = elapsed / (double)n;
    }
    qsort(samples, RUNS, sizeof(samples[0]), compare_double);
    return samples[RUNS / 2];
}

int main(int argc, char **argv)
{
    long n = 10000;
    int force_cpl0 = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--cpl0") == 0)
            force_cpl0 = 1;
        else if (strcmp(argv[i], "-n") == 0 && i + 1 < argc)
            n = strtol(argv[++i], NULL, 10);
        else {
            fprintf(stderr, "usage: exit_loop [--cpl0] [-n N]\n");
            return 2;
        }
    }
    if (n < 1) {
        fprintf(stderr, "exit_loop: N must be positive\n");
        return 2;
    }

    struct machine m;
    setup(&m, force_cpl0 ? 0 : 3);
    if (m.cpl == 3 && !probe_cpl3(&m)) {
        fprintf(stderr, "exit_loop: KVM did not run the loop at CPL3; falling back to CPL0 (emulated under PVM)\n");
        close(m.vcpu);
        close(m.vm);
        close(m.kvm);
        setup(&m, 0);
    }

    printf("cpl=%d n=%ld runs=%d\n", m.cpl, n, RUNS);
    printf("pio ns/exit=%.1f bytes/exit=n/a\n", measure(&m, PIO_ENTRY, n));
    printf("mmio ns/exit=%.1f bytes/exit=n/a\n", measure(&m, MMIO_ENTRY, n));
    return 0;
}
