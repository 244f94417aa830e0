#!/usr/bin/env bash
# Round-trip cost of a PIO and an MMIO exit handled by KvmSharp's vCPU loop, next to a C reference doing
# the same with raw KVM ioctls (bench/native/exit_loop.c), measured in one run and interleaved, because
# these machines are noisy. Prints a markdown table.
#
# Usage: bench/exit-cost.sh [--rounds K] [-n N] [--cpl0] [--full]
#   --rounds K  interleaved rounds of both programs (default 3); each reports the median of 5 runs of N
#               exits, and the table shows the median over the rounds
#   -n N        exits per run (default 10000)
#   --cpl0      run the loop at CPL0 instead of CPL3 (under PVM: emulated, so exit + instruction emulation)
#   --full      afterwards, run the BenchmarkDotNet suite (PioExit, MmioExit with [MemoryDiagnoser])
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=3
n=10000
full=0
mode_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds=${2:?--rounds needs a count}; shift 2 ;;
    -n) n=${2:?-n needs a count}; shift 2 ;;
    --cpl0) mode_args=(--cpl0); shift ;;
    --full) full=1; shift ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "Unknown argument '$1'. Run $0 --help for usage." >&2; exit 2 ;;
  esac
done

if [ ! -w /dev/kvm ]; then
  echo "'/dev/kvm' is missing or not writable: this benchmark runs guests on KVM." >&2
  exit 1
fi

# The C reference needs a compiler and the kernel's KVM header; install them on a fresh machine.
if ! command -v gcc >/dev/null 2>&1 || [ ! -f /usr/include/linux/kvm.h ]; then
  echo "Installing gcc and linux-libc-dev for the C reference..." >&2
  apt-get update -qq && apt-get install -y -qq gcc libc6-dev linux-libc-dev >/dev/null
fi

native_bin=bench/native/bin/exit_loop
mkdir -p "$(dirname "$native_bin")"
gcc -O2 -Wall -Wextra -Werror -o "$native_bin" bench/native/exit_loop.c

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

bench_project=bench/KvmSharp.Benchmarks
if ! dotnet build "$bench_project" -c Release --nologo >"$out/build.log" 2>&1; then
  grep -E 'error|Error' "$out/build.log" >&2 || cat "$out/build.log" >&2
  echo "Building $bench_project failed." >&2
  exit 1
fi
bench_dll=$bench_project/bin/Release/net10.0/KvmSharp.Benchmarks.dll

# Alternate which program goes first, so neither always runs on a machine the other has just warmed.
for ((r = 1; r <= rounds; r++)); do
  if ((r % 2)); then order=(c cs); else order=(cs c); fi
  for who in "${order[@]}"; do
    if [ "$who" = c ]; then
      "$native_bin" -n "$n" "${mode_args[@]}" >"$out/c.$r"
    else
      dotnet "$bench_dll" --quick -n "$n" "${mode_args[@]}" >"$out/cs.$r"
    fi
  done
done

# field FILE... KIND KEY: the value of KEY= on the KIND line of each file, one per line.
field() {
  local key=${*: -1} kind=${*: -2:1}
  awk -v kind="$kind" -v key="$key" '$1 == kind { for (i = 2; i <= NF; i++) if (index($i, key "=") == 1) print substr($i, length(key) + 2) }' "${@:1:$#-2}"
}

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.1f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

cpl_of() { sed -n 's/^cpl=\([0-9]\).*/\1/p' "$@" | sort -u | tr '\n' ' ' | sed 's/ $//'; }

cs_files=("$out"/cs.*)
c_files=("$out"/c.*)
cs_cpl=$(cpl_of "${cs_files[@]}")
c_cpl=$(cpl_of "${c_files[@]}")

echo
echo "Exit cost, N=$n exits per run, median of 5 runs per process, median of $rounds interleaved rounds."
echo "Guest loop at CPL$cs_cpl (KvmSharp) / CPL$c_cpl (C)$( [ "$cs_cpl" = 3 ] || echo ': not CPL3, so under PVM each exit includes emulating the loop instructions')."
echo
echo "| exit kind | KvmSharp ns/exit | C ns/exit | ratio | KvmSharp bytes allocated/exit |"
echo "|---|---:|---:|---:|---:|"
for kind in pio mmio; do
  cs_ns=$(field "${cs_files[@]}" "$kind" ns/exit | median)
  c_ns=$(field "${c_files[@]}" "$kind" ns/exit | median)
  bytes=$(field "${cs_files[@]}" "$kind" bytes/exit | sort -g | tail -1)
  ratio=$(awk -v a="$cs_ns" -v b="$c_ns" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }')
  label=$([ "$kind" = pio ] && echo "PIO (out %al,(%dx))" || echo "MMIO (mov %al,(%rdi))")
  echo "| $label | $cs_ns | $c_ns | $ratio | $bytes |"
done
echo
echo "Per round (ns/exit, KvmSharp / C):"
for ((r = 1; r <= rounds; r++)); do
  printf '  round %d: pio %s / %s, mmio %s / %s\n' "$r" \
    "$(field "$out/cs.$r" pio ns/exit)" "$(field "$out/c.$r" pio ns/exit)" \
    "$(field "$out/cs.$r" mmio ns/exit)" "$(field "$out/c.$r" mmio ns/exit)"
done
echo "(bytes allocated/exit is the largest seen in any round; the C column has no GC to measure.)"

if [ "$full" = 1 ]; then
  echo
  echo "Running the BenchmarkDotNet suite (a few minutes)..."
  (cd "$bench_project" && dotnet run -c Release --no-build -- --filter '*')
fi
