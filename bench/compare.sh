#!/usr/bin/env bash
# KvmSharp against QEMU 7.2 (Debian's qemu-system-x86), side by side in one run, because these machines are
# noisy and only ratios hold. Prints a markdown table (KvmSharp, QEMU, KvmSharp ÷ QEMU, medians) for:
#   1  start to exit of a tiny guest on KVM (bench/guest/bench-guest.elf: prints a line, exits by debug-exit)
#   2  PIO and MMIO exit round trips on KVM (the same guest writing N times where no device listens)
#   3  boot of the default Debian guest to its ready marker on the software CPUs (--accel emulator vs TCG)
#   4  sequential read and write of a 256 MiB raw virtio-blk disk, measured in that Debian guest with dd
#   5  VMM memory overhead (peak RSS minus guest RAM touched) for 1 and 3
#   6  guest MIPS of the software CPU on a fixed CPU-bound workload (bench-guest work=N)
#   7  boot of the default Debian guest to its ready marker on KVM (--accel kvm vs -M microvm -accel kvm)
#   8  network, both VMMs on passt (--net user vs -netdev stream): iperf3 guest to host and host to guest, and a
#      1-byte TCP round trip from the host to the guest and back; 8a on the software CPUs, 8b on KVM
#   9  pause/resume latency and snapshot create/restore latency of the Debian guest at 128 MiB and 1 GiB (kvmsharp serve's
#      Firecracker-compatible API vs QEMU's QMP stop/cont/migrate to a file/-incoming); 9a software CPUs, 9b KVM
# The KVM items (1, 2, 5a, 7, 8b) run through scripts/with-kvm.sh: directly where /dev/kvm is usable, else both VMMs
# inside its nested KVM host (QEMU TCG emulating SVM), where the table says "nested". The software-CPU items
# (3, 4, 5b, 6, 8a) run on this machine. So there are up to two tables, each saying where it was measured. Installs
# QEMU when missing, builds the default guest (scripts/build-guest.sh) and measures the shipped kvmsharp
# (scripts/publish.sh), all on this machine before anything runs nested.
#
# Usage: bench/compare.sh [kvmsharp-compare options]   e.g. --rounds 5 --debian-rounds 3 --only 1,2,5
#   (bench/compare.sh --help lists them)
set -euo pipefail
cd "$(dirname "$0")/.."

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
need=()
command -v qemu-system-x86_64 >/dev/null 2>&1 || need+=(qemu-system-x86)
command -v passt >/dev/null 2>&1 || need+=(passt)
command -v iperf3 >/dev/null 2>&1 || need+=(iperf3)
if [ ${#need[@]} -gt 0 ]; then
  echo "compare: installing ${need[*]}" >&2
  apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >&2
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! dotnet build bench/KvmSharp.Compare -c Release --nologo >"$log" 2>&1; then
  cat "$log" >&2
  echo "compare: building bench/KvmSharp.Compare failed." >&2
  exit 1
fi
compare=(dotnet bench/KvmSharp.Compare/bin/Release/net10.0/kvmsharp-compare.dll)
for arg in "$@"; do
  if [ "$arg" = --help ] || [ "$arg" = -h ]; then exec "${compare[@]}" --help; fi
done

bash scripts/build-guest.sh >&2
kvmsharp=$(bash scripts/publish.sh)
guest=${KVMSHARP_GUEST_DIR:-$HOME/.cache/kvmsharp/guest}

echo "command: bench/compare.sh $*" >&2

# --only, split into the items measured here and those measured on KVM; every other option goes to both runs.
only="1,2,3,4,5a,5b,6,7,8a,8b,9a,9b"
passed=()
while [ $# -gt 0 ]; do
  case "$1" in
    --only) only="$2"; shift 2 ;;
    --only=*) only="${1#--only=}"; shift ;;
    *) passed+=("$1"); shift ;;
  esac
done
host_items=() kvm_items=()
for item in ${only//,/ }; do
  case "$item" in
    5) host_items+=(5b); kvm_items+=(5a) ;;
    8) host_items+=(8a); kvm_items+=(8b) ;;
    9) host_items+=(9a); kvm_items+=(9b) ;;
    1|2|5a|7|8b|9b) kvm_items+=("$item") ;;
    *) host_items+=("$item") ;;
  esac
done
join() { local IFS=,; echo "$*"; }
common=(--kvmsharp "$kvmsharp" --kvmsharp-kind "$(cat "$(dirname "$kvmsharp")/BUILD-KIND")"
  --bench-guest bench/guest/bench-guest.elf --guest-dir "$guest")

status=0
if [ ${#host_items[@]} -gt 0 ]; then
  "${compare[@]}" "${common[@]}" "${passed[@]}" --only "$(join "${host_items[@]}")" || status=$?
fi
if [ ${#kvm_items[@]} -gt 0 ]; then
  bash scripts/with-kvm.sh --timeout "${KVMSHARP_BENCH_TIMEOUT:-5400}" \
    "${compare[@]}" "${common[@]}" "${passed[@]}" --only "$(join "${kvm_items[@]}")" || status=$?
fi
exit "$status"
