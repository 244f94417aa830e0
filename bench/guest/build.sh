#!/usr/bin/env bash
# Builds bench/guest/bench-guest.elf (the guest of bench/compare.sh) from src/: an ELF64 PVH kernel that
# QEMU (-M microvm) and kvmsharp both boot. Needs gcc and binutils (installed with apt-get when missing and
# running as root). The binary is checked in so the bench needs no compiler; SHA256SUMS lists it. The build
# is deterministic with Debian 12's gcc 12.2 / binutils 2.40.
# Usage: bash bench/guest/build.sh
set -euo pipefail
cd "$(dirname "$0")"

if ! command -v gcc >/dev/null || ! command -v ld >/dev/null; then
    [ "$(id -u)" -eq 0 ] || { echo "build.sh: need gcc and binutils" >&2; exit 1; }
    apt-get install -y -q gcc binutils >&2
fi

B=$(mktemp -d "${TMPDIR:-/tmp}/bench-guest.XXXXXX")
trap 'rm -rf "$B"' EXIT

# The UART and debug-exit helpers are the test kernels' (tests/fixtures/kernels/src/common.h).
CFLAGS="-O2 -std=gnu11 -ffreestanding -nostdlib -nostdinc -fno-builtin -fno-stack-protector -fno-pic \
 -mcmodel=small -fno-asynchronous-unwind-tables -fno-unwind-tables -fcf-protection=none \
 -mgeneral-regs-only -mno-red-zone -fno-common -Wall -Wextra -Werror -Wno-unused-function \
 -I../../tests/fixtures/kernels/src"

gcc -m64 $CFLAGS -c src/main.c -o "$B/main.o"
gcc -m64 -c src/head.S -o "$B/head.o"
ld -m elf_x86_64 -static -nostdlib -z max-page-size=0x1000 -z noexecstack --no-warn-rwx-segments -T src/link.ld \
   -e pvh_start "$B/head.o" "$B/main.o" -o bench-guest.elf
strip --strip-all bench-guest.elf
ls -l bench-guest.elf
sha256sum bench-guest.elf > SHA256SUMS
