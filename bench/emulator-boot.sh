#!/usr/bin/env bash
# Boot of the default Debian guest (scripts/build-guest.sh) to its ready marker on KvmSharp's software CPU
# (`kvmsharp run --accel emulator`) and on QEMU's (`qemu-system-x86_64 -M microvm -accel tcg`), same bzImage
# (vmlinuz: QEMU 7.2's microvm prints nothing with this PVH vmlinux), initramfs, memory and command line, rounds
# interleaved because these machines are noisy.
# Prints a markdown table: median seconds to KVMSHARP-GUEST-READY for each, and the ratio.
#
# Usage: bench/emulator-boot.sh [--rounds K] [--timeout S]
#   --rounds K   interleaved rounds (default 3)
#   --timeout S  per boot (default 900)
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=3
timeout_s=900
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds=${2:?--rounds needs a count}; shift 2 ;;
    --timeout) timeout_s=${2:?--timeout needs seconds}; shift 2 ;;
    -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "Unknown argument '$1'. Run $0 --help for usage." >&2; exit 2 ;;
  esac
done

command -v qemu-system-x86_64 >/dev/null || { echo "bench: installing qemu-system-x86" >&2; apt-get install -y qemu-system-x86 >&2; }
bash scripts/build-guest.sh >&2
guest=${KVMSHARP_GUEST_DIR:-$HOME/.cache/kvmsharp/guest}
dotnet build src/KvmSharp.Cli -c Release --nologo -v q >&2
kvmsharp=(dotnet src/KvmSharp.Cli/bin/Release/net10.0/kvmsharp.dll)
cmdline="console=ttyS0 panic=-1 quiet"
marker=KVMSHARP-GUEST-READY

# time_to_marker MODE CMD...: runs CMD with its stdin on a fifo we hold open and prints the seconds until the ready
# marker appears. MODE "poweroff" then waits for the shell prompt, types `poweroff -f` and waits for a clean exit (so
# kvmsharp --stats prints its instruction count, kept in $last_log); MODE "kill" ends the process.
last_log=/tmp/emulator-boot-last.log
time_to_marker() {
  local mode=$1; shift
  local log fifo; log=$(mktemp); fifo=$(mktemp -u); mkfifo "$fifo"
  local start; start=$(date +%s.%N)
  timeout "$timeout_s" "$@" <"$fifo" >"$log" 2>&1 &
  local pid=$!
  exec 9>"$fifo"
  while ! grep -q "$marker" "$log" 2>/dev/null; do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "bench: '$*' ended before the ready marker; its output:" >&2; tail -20 "$log" >&2
      exec 9>&-; rm -f "$log" "$fifo"; return 1
    fi
    sleep 0.1
  done
  local end; end=$(date +%s.%N)
  if [ "$mode" = poweroff ]; then
    while ! grep -q 'guest# ' "$log" && kill -0 "$pid" 2>/dev/null; do sleep 0.2; done
    printf 'poweroff -f\n' >&9
    wait "$pid" || { echo "bench: '$*' did not power off cleanly; its output:" >&2; tail -20 "$log" >&2; }
  else
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  exec 9>&-
  cp "$log" "$last_log"
  rm -f "$log" "$fifo"
  echo "$end - $start" | bc
}

median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else printf "%.2f\n", (a[NR/2]+a[NR/2+1])/2}'; }

ours=(); theirs=(); mips=()
for r in $(seq "$rounds"); do
  t=$(time_to_marker poweroff "${kvmsharp[@]}" run --accel emulator --kernel "$guest/vmlinuz" \
      --initrd "$guest/initramfs.cpio.gz" --memory 512M --cmdline "$cmdline" --stats)
  ours+=("$t")
  mips+=("$(grep -oE '[0-9.]+ MIPS' "$last_log" | cut -d' ' -f1)")
  t=$(time_to_marker kill qemu-system-x86_64 -M microvm -accel tcg -m 512M -nographic -no-reboot \
      -kernel "$guest/vmlinuz" -initrd "$guest/initramfs.cpio.gz" -append "$cmdline")
  theirs+=("$t")
  echo "round $r: kvmsharp ${ours[-1]} s (${mips[-1]} MIPS), qemu ${theirs[-1]} s" >&2
done

k=$(printf '%s\n' "${ours[@]}" | median)
m=$(printf '%s\n' "${mips[@]}" | median)
q=$(printf '%s\n' "${theirs[@]}" | median)
echo
echo "| boot to ready marker ($rounds rounds, median) | KvmSharp --accel emulator | QEMU 7.2 -accel tcg -M microvm | ratio |"
echo "| --- | --- | --- | --- |"
printf '| seconds | %.2f | %.2f | %.1fx |\n' "$k" "$q" "$(echo "$k / $q" | bc -l)"
echo
echo "KvmSharp software CPU during these boots: $m guest MIPS (median; instructions retired / time not halted, from --stats)."
