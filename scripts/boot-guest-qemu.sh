#!/usr/bin/env bash
# Boot the default guest (scripts/build-guest.sh) under QEMU's software CPU (TCG), wait for
# the KVMSHARP-GUEST-READY marker, run one shell command line in the guest, then power off.
# This is the reference run to compare KvmSharp against; it needs no /dev/kvm.
#
#   bash scripts/boot-guest-qemu.sh [--machine microvm|pc|q35] [--kernel vmlinuz|vmlinux]
#                                   [--timeout SECONDS] [--append "extra kernel args"]
#                                   [--net none|user] [COMMAND...]
# COMMAND defaults to `uname -r`; `poweroff -f` is always appended.
# --net user gives the guest a virtio-net-pci NIC backed by passt (started here, stopped at the end; on
# microvm the machine gets pcie=on for it): the guest's /init takes its address by DHCP, and the gateway
# address reaches the host's 127.0.0.1 (docs/networking.md). The default, --net none, has no NIC.
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
NET=none
while [ $# -gt 0 ]; do
    case "$1" in
        --machine) MACHINE="$2"; shift 2 ;;
        --kernel) KERNEL="$2"; shift 2 ;;
        --timeout) TIMEOUT="$2"; shift 2 ;;
        --append) APPEND_EXTRA="$2"; shift 2 ;;
        --net) NET="$2"; shift 2 ;;
        -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
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

MACHINE_OPTS="$MACHINE"
NET_ARGS=()
PASST_PID=""
NET_DIR=""
cleanup() {
    if [ -n "$PASST_PID" ]; then kill "$PASST_PID" 2>/dev/null || true; wait "$PASST_PID" 2>/dev/null || true; fi
    if [ -n "$NET_DIR" ]; then rm -rf "$NET_DIR"; fi
}
trap cleanup EXIT
case "$NET" in
    none) ;;
    user)
        command -v passt >/dev/null || {
            echo "boot-guest-qemu: passt missing (apt-get install -y passt)" >&2; exit 1; }
        NET_DIR=$(mktemp -d "${TMPDIR:-/tmp}/kvmsharp-passt.XXXXXX")
        SOCK="$NET_DIR/passt.sock"
        # Started as root, passt switches to nobody before it binds the socket, so the directory must be nobody's.
        [ "$(id -u)" -eq 0 ] && chown nobody "$NET_DIR"
        # -f foreground (so it is our child), -q quiet, -e errors to stderr, -1 exit when QEMU disconnects.
        passt -f -q -e -1 -s "$SOCK" </dev/null >"$NET_DIR/passt.log" 2>&1 &
        PASST_PID=$!
        for _ in $(seq 100); do
            [ -S "$SOCK" ] && break
            kill -0 "$PASST_PID" 2>/dev/null || break
            sleep 0.05
        done
        [ -S "$SOCK" ] || { echo "boot-guest-qemu: passt did not create $SOCK:" >&2; cat "$NET_DIR/passt.log" >&2; exit 1; }
        # QEMU 7.2's stream netdev speaks passt's protocol (a 32-bit length before each frame) on a unix socket.
        NET_ARGS=(-device virtio-net-pci,netdev=n0 -netdev "stream,id=n0,server=off,addr.type=unix,addr.path=$SOCK")
        [ "$MACHINE" = microvm ] && MACHINE_OPTS="microvm,pcie=on"
        ;;
    *) echo "boot-guest-qemu: --net takes none or user, not '$NET'" >&2; exit 1 ;;
esac

APPEND="console=ttyS0 panic=-1 quiet tsc_early_khz=2000000 $APPEND_EXTRA"
coproc QEMU { exec timeout "$TIMEOUT" qemu-system-x86_64 -M "$MACHINE_OPTS" -accel tcg -m 512M \
    -nographic -no-reboot -kernel "$GUEST/$KERNEL" -initrd "$GUEST/initramfs.cpio.gz" \
    "${NET_ARGS[@]}" -append "$APPEND" 2>&1; }
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
