#!/usr/bin/env bash
# Publishes the shipped kvmsharp binary to out/kvmsharp/ and prints its path: framework-dependent for
# linux-x64, ReadyToRun for every assembly but the software CPU's (src/KvmSharp.Cli/KvmSharp.Cli.csproj says
# why; docs/performance.md has the measurements). Build output goes to stderr.
set -euo pipefail
cd "$(dirname "$0")/.."
out=out/kvmsharp
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! dotnet publish src/KvmSharp.Cli -c Release -r linux-x64 --self-contained false -o "$out" --nologo >"$log" 2>&1; then
  cat "$log" >&2
  echo "publish: dotnet publish of src/KvmSharp.Cli failed." >&2
  exit 1
fi
echo "ReadyToRun (framework-dependent, linux-x64; the software CPU's assembly JIT-compiled)" > "$out/BUILD-KIND"
echo "$PWD/$out/kvmsharp"
