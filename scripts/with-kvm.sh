#!/usr/bin/env bash
# Run a command where real KVM is available.
#
#   bash scripts/with-kvm.sh [options] [--] COMMAND [ARGS...]
#   bash scripts/with-kvm.sh --setup        install QEMU and build the nested host's files, then exit
#
# Where /dev/kvm is usable (a character device this user can read and write), COMMAND runs directly.
# Elsewhere it runs inside a nested KVM host: a Linux L1 (Debian's cloud kernel and the initramfs that
# scripts/build-guest.sh makes) booted under QEMU's software CPU with -cpu max, which emulates AMD SVM with
# nested paging, so kvm_amd loads there and /dev/kvm is real. The L1 mounts this machine's / through
# virtiofs (QEMU's virtiofsd) and chroots into it: COMMAND sees the same files, paths, .NET SDK and
# environment variables, and runs as root in the same working directory. Its stdout and stderr come back
# over two virtio-serial ports as it writes them; its exit status is this script's. Its stdin is
# /dev/null. Everything in the L1 runs under TCG: CPU-bound work is 5-20x slower than here.
#
# Options:
#   --timeout SECONDS   kill the run after this long, exit status 124 (default 3600)
#   --memory SIZE       the L1's RAM, QEMU syntax (default 8G; only touched pages cost host memory)
#   --cpus N            the L1's vCPUs (default: $KVMSHARP_NESTED_CPUS, else 1). More than one is faster for
#                       parallel work but was seen to lose a wakeup between L1 vCPUs (QEMU 7.2 MTTCG): a vCPU
#                       spun forever waiting for an IPI to a halted one (docs/testing.md)
#   --tcg multi|single  QEMU's TCG threading: one host thread per L1 vCPU, or one for all (default: multi)
#   --nested            use the nested host even where /dev/kvm is usable
#   --console FILE      keep the L1's serial console (kernel log) in FILE
#   --quiet             no "with-kvm:" progress lines on stderr
#
# Exit status: COMMAND's; 124 on timeout; 125 when the nested host cannot start (one line says why).
# While it runs, QEMU's monitor for the L1 is at /tmp/kvmsharp-with-kvm.*/monitor.sock (e.g. with socat: `info lapic`).
#
# Environment: KVMSHARP_GUEST_DIR (default ~/.cache/kvmsharp/guest) holds vmlinuz and
# kvm-host-initramfs.cpio.gz; QEMU (package qemu-system-x86) provides qemu-system-x86_64 and
# /usr/lib/qemu/virtiofsd. Inside the L1, KVMSHARP_NESTED_KVM=1 is set.
set -uo pipefail

SCRIPTS="$(cd "$(dirname "$0")" && pwd)"
GUEST="${KVMSHARP_GUEST_DIR:-$HOME/.cache/kvmsharp/guest}"
QEMU=qemu-system-x86_64
VIRTIOFSD=/usr/lib/qemu/virtiofsd
TIMEOUT=3600
MEMORY=8G
CPUS=${KVMSHARP_NESTED_CPUS:-1}
TCG_THREADS=${KVMSHARP_NESTED_TCG:-multi}
NESTED=0
CONSOLE=""
QUIET=0

cannot() { echo "with-kvm: cannot start the nested KVM host: $*" >&2; exit 125; }
note() { [ "$QUIET" -eq 1 ] || echo "with-kvm: $*" >&2; }

setup() {
    if ! command -v "$QEMU" >/dev/null 2>&1 || [ ! -x "$VIRTIOFSD" ] || ! command -v socat >/dev/null 2>&1; then
        [ "$(id -u)" -eq 0 ] || { echo "with-kvm: --setup installs qemu-system-x86 and socat and needs root" >&2; exit 1; }
        echo "with-kvm: installing qemu-system-x86 and socat" >&2
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-system-x86 socat; } >&2 || exit 1
    fi
    bash "$SCRIPTS/build-guest.sh" >&2
}

while [ $# -gt 0 ]; do
    case "$1" in
        --setup) setup; exit $? ;;
        --timeout) TIMEOUT="$2"; shift 2 ;;
        --memory) MEMORY="$2"; shift 2 ;;
        --cpus) CPUS="$2"; shift 2 ;;
        --tcg) TCG_THREADS="$2"; shift 2 ;;
        --nested) NESTED=1; shift ;;
        --console) CONSOLE="$2"; shift 2 ;;
        --quiet) QUIET=1; shift ;;
        -h|--help) sed -n '2,29p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        --) shift; break ;;
        -*) echo "with-kvm: unknown option '$1' (try --help)" >&2; exit 125 ;;
        *) break ;;
    esac
done
[ $# -gt 0 ] || { echo "with-kvm: no command given (try --help)" >&2; exit 125; }
case "$TIMEOUT" in ''|*[!0-9]*) echo "with-kvm: --timeout takes whole seconds, not '$TIMEOUT'" >&2; exit 125 ;; esac
case "$CPUS" in ''|*[!0-9]*|0) echo "with-kvm: --cpus takes a positive count, not '$CPUS'" >&2; exit 125 ;; esac
case "$TCG_THREADS" in multi|single) ;; *) echo "with-kvm: --tcg takes multi or single, not '$TCG_THREADS'" >&2; exit 125 ;; esac

if [ "$NESTED" -eq 0 ] && [ -c /dev/kvm ] && [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
    exec timeout --foreground "$TIMEOUT" "$@"
fi

# ---------------------------------------------------------------- what the nested host needs
[ "$(id -u)" -eq 0 ] || cannot "virtiofsd shares / only when run as root (run this as root, or use a host with /dev/kvm)"
command -v "$QEMU" >/dev/null 2>&1 || cannot "$QEMU not found (run 'bash scripts/with-kvm.sh --setup', or apt-get install qemu-system-x86)"
[ -x "$VIRTIOFSD" ] || cannot "$VIRTIOFSD not found (run 'bash scripts/with-kvm.sh --setup', or apt-get install qemu-system-x86)"
for f in vmlinuz kvm-host-initramfs.cpio.gz; do
    [ -s "$GUEST/$f" ] || cannot "no kernel for it: $GUEST/$f is missing (run 'bash scripts/with-kvm.sh --setup' or scripts/build-guest.sh)"
done
grep -qw -e svm -e vmx /proc/cpuinfo 2>/dev/null && note "this CPU has virtualization extensions but /dev/kvm is not usable here; using the nested host"

JOB=$(mktemp -d /tmp/kvmsharp-with-kvm.XXXXXX) || cannot "mktemp failed"
VFSD_PID=""
QEMU_PID=""
cleanup() {
    [ -n "$QEMU_PID" ] && kill "$QEMU_PID" 2>/dev/null
    [ -n "$VFSD_PID" ] && kill "$VFSD_PID" 2>/dev/null
    wait 2>/dev/null
    rm -rf "$JOB"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The job: this shell's exported environment and working directory, then COMMAND. Bash variables that
# describe this shell (not the job's) are left out.
{
    echo '#!/bin/bash'
    export -p | grep -Ev '^declare -x (BASHOPTS|BASH_[A-Z_]*|SHELLOPTS|SHLVL|PWD|OLDPWD|_)(=|$)'
    echo 'export KVMSHARP_NESTED_KVM=1'
    printf 'cd -- %q || { echo "with-kvm: cannot enter %q inside the nested host" >&2; echo 125 > %q; exit 0; }\n' "$PWD" "$PWD" "$JOB/status"
    printf '%q ' "$@"
    echo
    printf 'echo $? > %q\n' "$JOB/status"
} > "$JOB/run.sh"

mkfifo "$JOB/stdout" "$JOB/stderr" || cannot "mkfifo failed in $JOB"
cat "$JOB/stdout" &
OUT_CAT=$!
cat "$JOB/stderr" >&2 &
ERR_CAT=$!

"$VIRTIOFSD" --socket-path="$JOB/virtiofs.sock" -o source=/ -o cache=auto -o sandbox=chroot \
    >"$JOB/virtiofsd.log" 2>&1 &
VFSD_PID=$!
for _ in $(seq 100); do
    [ -S "$JOB/virtiofs.sock" ] && break
    kill -0 "$VFSD_PID" 2>/dev/null || break
    sleep 0.05
done
[ -S "$JOB/virtiofs.sock" ] || { tail -3 "$JOB/virtiofsd.log" >&2; cannot "virtiofsd did not start"; }

note "booting the nested KVM host (QEMU TCG thread=$TCG_THREADS, -cpu max, $CPUS vCPUs, $MEMORY)"
# The fifos are opened by QEMU's file chardevs (O_WRONLY) once the cats above hold their read ends.
"$QEMU" \
    -accel tcg,thread="$TCG_THREADS" -cpu max -smp "$CPUS" -m "$MEMORY" -M pc -nodefaults -no-user-config \
    -display none -monitor unix:"$JOB/monitor.sock",server=on,wait=off -no-reboot \
    -object memory-backend-memfd,id=mem,size="$MEMORY",share=on -numa node,memdev=mem \
    -chardev socket,id=vfs,path="$JOB/virtiofs.sock" -device vhost-user-fs-pci,chardev=vfs,tag=host \
    -serial file:"$JOB/console.log" \
    -device virtio-serial-pci \
    -chardev file,id=out,path="$JOB/stdout" -device virtserialport,chardev=out,name=org.kvmsharp.stdout,nr=1 \
    -chardev file,id=err,path="$JOB/stderr" -device virtserialport,chardev=err,name=org.kvmsharp.stderr,nr=2 \
    -kernel "$GUEST/vmlinuz" -initrd "$GUEST/kvm-host-initramfs.cpio.gz" \
    -append "console=ttyS0 panic=-1 mitigations=off quiet kvmsharp.job=$JOB" \
    </dev/null >"$JOB/qemu.log" 2>&1 &
QEMU_PID=$!
# The deadline: before stopping QEMU, the L1's CPU and local-APIC state go to $JOB/stopped-state.txt through QEMU's
# monitor (with socat), so a hung nested host leaves a clue.
(
    trap 'kill "$sleeper" 2>/dev/null; exit 0' TERM
    sleep "$TIMEOUT" &
    sleeper=$!
    wait "$sleeper"
    kill -0 "$QEMU_PID" 2>/dev/null || exit 0
    : > "$JOB/timed-out"
    if command -v socat >/dev/null 2>&1; then
        for c in "info cpus" "info registers -a" "info lapic" "info pic"; do
            echo "== $c"
            echo "$c" | timeout 5 socat - UNIX-CONNECT:"$JOB/monitor.sock" 2>&1 | tr -d '\r' | grep -v '^(qemu)'
        done > "$JOB/stopped-state.txt"
    fi
    kill "$QEMU_PID" 2>/dev/null
) </dev/null >/dev/null 2>&1 &
DEADLINE_PID=$!
wait "$QEMU_PID"
qemu_status=$?
kill "$DEADLINE_PID" 2>/dev/null
[ -e "$JOB/timed-out" ] && qemu_status=124
QEMU_PID=""
kill "$VFSD_PID" 2>/dev/null
# The cats end when QEMU closes the fifos. One that QEMU never opened (it failed first) still waits in
# open(): opening the fifo for writing releases it (bounded, in case it ended meanwhile).
for pair in "$OUT_CAT:$JOB/stdout" "$ERR_CAT:$JOB/stderr"; do
    kill -0 "${pair%%:*}" 2>/dev/null && timeout 2 bash -c ': > "$1"' _ "${pair#*:}" 2>/dev/null
done
wait 2>/dev/null
VFSD_PID=""
[ -n "$CONSOLE" ] && cp "$JOB/console.log" "$CONSOLE"

if [ "$qemu_status" -eq 124 ]; then
    echo "with-kvm: '$*' did not finish within $TIMEOUT s in the nested KVM host; stopped it" >&2
    if [ -s "$JOB/stopped-state.txt" ]; then
        [ -n "$CONSOLE" ] && cp "$JOB/stopped-state.txt" "$CONSOLE.state"
        echo "with-kvm: the L1 when it was stopped (QEMU monitor):" >&2
        grep -E '^(==|\* CPU|  CPU|RIP=|CR0=|HLT|LVT|Timer|ISR|IRR|PPR)' "$JOB/stopped-state.txt" | head -30 >&2
    fi
    tail -5 "$JOB/console.log" >&2
    exit 124
fi
if [ -s "$JOB/status" ]; then
    exit "$(cat "$JOB/status")"
fi
if [ -s "$JOB/setup-error" ]; then
    cannot "$(cat "$JOB/setup-error")"
fi
{
    echo "with-kvm: the nested KVM host ended without running the command to its end (QEMU exit status $qemu_status); last lines:"
    tail -5 "$JOB/qemu.log"
    tail -15 "$JOB/console.log"
} >&2
exit 125
