/*
 * bench-guest: the guest of bench/compare.sh. Runs at CPL3 in long mode (head.S) and does what its
 * command line asks, printing on the 16550 UART at 0x3F8 and ending through isa-debug-exit (port 0xF4):
 *
 *   (nothing)   "bench-guest: hello", then exit: start-to-exit time
 *   pio=N       N byte writes to port 0x10, which no device claims, between "pio begin" and "pio end"
 *   mmio=N      N byte writes to 0xD0001000, where nothing is mapped, between "mmio begin" and "mmio end"
 *   work=N      N rounds of a CPU-bound workload (a prime sieve over 1 MiB, multiply/divide mixing,
 *               a byte-wise CRC), between "work begin" and "work end ... result=0x..."
 *   hold        at the end, print "bench-guest: holding" and spin instead of exiting (to sample the
 *               VMM's memory while the guest is alive)
 *
 * The bench times the lines as they appear on the host, so each loop's cost is its own.
 */
#include "common.h"

#define EXIT_PORT 0x10
#define MMIO_ADDRESS 0xD0001000UL
#define SIEVE_SIZE (1u << 20)

struct hvm_start_info {
    u32 magic;
    u32 version;
    u32 flags;
    u32 nr_modules;
    u64 modlist_paddr;
    u64 cmdline_paddr;
    u64 rsdp_paddr;
};

static u8 sieve[SIEVE_SIZE];

/* "key=" at the start of a word of cmdline: its decimal value (0 if absent); *found says whether it was there. */
static u64 option(const char *cmdline, const char *key, int *found)
{
    *found = 0;
    for (int i = 0; i < MAX_STR && cmdline[i]; i++) {
        if (i > 0 && cmdline[i - 1] != ' ')
            continue;
        int k = 0;
        while (key[k] && cmdline[i + k] == key[k])
            k++;
        if (key[k])
            continue;
        *found = 1;
        u64 v = 0;
        for (int j = i + k; j < MAX_STR && cmdline[j] >= '0' && cmdline[j] <= '9'; j++)
            v = v * 10 + (u64)(cmdline[j] - '0');
        return v;
    }
    return 0;
}

static void putdec64(u64 v)
{
    char buf[20];
    int n = 0;
    do { buf[n++] = (char)('0' + v % 10); v /= 10; } while (v && n < 20);
    while (n)
        putc(buf[--n]);
}

static u32 work_round(u32 seed)
{
    /* Sieve of Eratosthenes: byte stores, nested loops, branches. */
    for (u32 i = 0; i < SIEVE_SIZE; i++)
        sieve[i] = 1;
    sieve[0] = sieve[1] = 0;
    for (u32 p = 2; p * p < SIEVE_SIZE; p++)
        if (sieve[p])
            for (u32 m = p * p; m < SIEVE_SIZE; m += p)
                sieve[m] = 0;

    /* Multiply, divide and rotate over the primes found. */
    u64 acc = seed;
    u32 count = 0;
    for (u32 i = 0; i < SIEVE_SIZE; i++) {
        if (!sieve[i])
            continue;
        count++;
        acc = acc * 6364136223846793005ULL + i;
        acc ^= acc >> 29;
        acc += (acc % (i | 1)) * 31;
    }

    /* A byte-wise CRC-32 (reflected, 0xEDB88320) over the first 64 KiB of the sieve. */
    u32 crc = 0xFFFFFFFFu ^ (u32)acc;
    for (u32 i = 0; i < 65536; i++) {
        crc ^= sieve[i] + (u8)i;
        for (int b = 0; b < 8; b++)
            crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1)));
    }
    return crc ^ count;
}

void bench_main(const struct hvm_start_info *si)
{
    uart_init();
    const char *cmdline = "";
    if (si && si->magic == 0x336ec578 && si->cmdline_paddr && si->cmdline_paddr < 0x800000)
        cmdline = (const char *)(uptr)si->cmdline_paddr;

    int pio, mmio, work, hold;
    u64 pio_n = option(cmdline, "pio=", &pio);
    u64 mmio_n = option(cmdline, "mmio=", &mmio);
    u64 work_n = option(cmdline, "work=", &work);
    option(cmdline, "hold", &hold);

    if (!pio && !mmio && !work)
        puts("bench-guest: hello\n");

    if (pio) {
        puts("bench-guest: pio begin\n");
        for (u64 i = 0; i < pio_n; i++)
            __asm__ volatile("outb %b0, %w1" : : "a"((u8)i), "Nd"((u16)EXIT_PORT));
        puts("bench-guest: pio end n=");
        putdec64(pio_n);
        putc('\n');
    }

    if (mmio) {
        volatile u8 *target = (volatile u8 *)MMIO_ADDRESS;
        puts("bench-guest: mmio begin\n");
        for (u64 i = 0; i < mmio_n; i++)
            *target = (u8)i;
        puts("bench-guest: mmio end n=");
        putdec64(mmio_n);
        putc('\n');
    }

    if (work) {
        puts("bench-guest: work begin\n");
        u32 result = 0;
        for (u64 r = 0; r < work_n; r++)
            result = work_round(result + (u32)r);
        puts("bench-guest: work end n=");
        putdec64(work_n);
        puts(" result=");
        puthex8(result);
        putc('\n');
    }

    if (hold) {
        puts("bench-guest: holding\n");
        for (;;)
            __asm__ volatile("pause");
    }

    outl(0xF4, 0);
    for (;;)
        __asm__ volatile("pause");
}
