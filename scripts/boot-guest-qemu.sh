#!/usr/bin/env bash
# Boot the default guest (scripts/build-guest.sh) under QEMU's software CPU (TCG), wait for
# the KVMSHARP-GUEST-READY marker, run one shell command line in the guest, then power off.
# This is the reference run to compare KvmSharp against; it needs no /dev/kvm.
#
#   bash scripts/boot-guest-qemu.sh [--machine microvm|pc] [--kernel vmlinuz|vmlinux]
#                                   [--timeout SECONDS] [--append "extra kernel args"]
#                                   [COMMAND...]
# COMMAND defaults to `uname -r`; `poweroff -f` is always appended.
# Exit status: 0 if the marker appeared and QEMU exited, 1 otherwise.
#
# Under TCG the kernel cannot calibrate the TSC on microvm (no PIT/HPET there): without
# tsc_early_khz it hangs after "tsc: Marking TSC unstable", so that argument is always passed.
set -euo pipefail

GUEST="${KVMSHARP_GUEST_DIR:-$HOME/.cache/kvmsharp/guest}"
MACHINE=microvm
KERNEL=vmlinuz
TIMEOUT=120
APPEND_EXTRA=""
while [ $# -gt 0 ]; do
    case "$1" in
        --machine) MACHINE="$2"; shift 2 ;;
        --kernel) KERNEL="$2"; shift 2 ;;
        --timeout) TIMEOUT="$2"; shift 2 ;;
        --append) APPEND_EXTRA="$2"; shift 2 ;;
        -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        --) shift; break ;;
        -*) echo "boot-guest-qemu: unknown option $1" >&2; exit 1 ;;
        *) break ;;
    esac
done
CMD="${*:-uname -r}"

for f in "$KERNEL" initramfs.cpio.gz; do
    [ -s "$GUEST/$f" ] || { echo "boot-guest-qemu: $GUEST/$f missing; run scripts/build-guest.sh" >&2; exit 1; }
done
command -v qemu-system-x86_64 >/dev/null || {
    echo "boot-guest-qemu: qemu-system-x86_64 missing (apt-get install -y qemu-system-x86)" >&2; exit 1; }

APPEND="console=ttyS0 panic=-1 quiet tsc_early_khz=2000000 $APPEND_EXTRA"
coproc QEMU { exec timeout "$TIMEOUT" qemu-system-x86_64 -M "$MACHINE" -accel tcg -m 512M \
    -nographic -no-reboot -kernel "$GUEST/$KERNEL" -initrd "$GUEST/initramfs.cpio.gz" \
    -append "$APPEND" 2>&1; }
QPID=$QEMU_PID
IN=${QEMU[1]}
start=$(date +%s%N)
seen=0
while IFS= read -r line <&"${QEMU[0]}"; do
    line=${line%$'\r'}
    printf '%s\n' "$line"
    if [ "$seen" -eq 0 ] && [[ "$line" == *KVMSHARP-GUEST-READY* ]]; then
        seen=1
        echo "boot-guest-qemu: marker after $(( ($(date +%s%N) - start) / 1000000 )) ms" >&2
        sleep 0.3
        printf '%s; poweroff -f\n' "$CMD" >&"$IN"
    fi
done
rc=0; wait "$QPID" || rc=$?
echo "boot-guest-qemu: qemu exited with $rc after $(( ($(date +%s%N) - start) / 1000000 )) ms" >&2
[ "$seen" -eq 1 ] && [ "$rc" -eq 0 ]
