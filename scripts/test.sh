#!/usr/bin/env bash
# Runs every test project of the solution in Release and prints one summary line:
#   "N passed, N failed, N skipped"
# Exit status is dotnet test's (non-zero when a build or a test fails).
set -uo pipefail
cd "$(dirname "$0")/.."

log=$(mktemp)
trap 'rm -f "$log"' EXIT

dotnet test KvmSharp.slnx -c Release --nologo "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}

# VSTest prints one line per test assembly:
#   Passed!  - Failed:     0, Passed:    37, Skipped:     0, Total:    37, Duration: ...
read -r passed failed skipped < <(
  grep -E '^(Passed|Failed)!' "$log" | sed -E 's/.*Failed: *([0-9]+), Passed: *([0-9]+), Skipped: *([0-9]+).*/\2 \1 \3/' |
  awk '{p+=$1; f+=$2; s+=$3} END {print p+0, f+0, s+0}')
assemblies=$(grep -cE '^(Passed|Failed)!' "$log")

expected=$(ls tests/*/*.Tests.csproj | wc -l)

echo
echo "Test assemblies run: $assemblies of $expected"
if [ "$assemblies" -ne "$expected" ] && [ "$status" -eq 0 ]; then
  echo "Expected results from $expected test projects under tests/ but got $assemblies: is each one in KvmSharp.slnx?" >&2
  status=1
fi
echo "$passed passed, $failed failed, $skipped skipped"
exit "$status"
