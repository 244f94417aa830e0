#!/usr/bin/env bash
# The KVM phase of scripts/test.sh: runs each test project's built xunit executable (Release) with
# `-trait Requires=kvm`, so only the tests that run guests on /dev/kvm run. scripts/test.sh starts it through
# scripts/with-kvm.sh, so /dev/kvm is real here (nested under QEMU's software CPU where the machine has none).
# Prints what KVM this is, then each assembly's failures and its summary line. Exit status: 1 if any failed.
set -uo pipefail
cd "$(dirname "$0")/.."
export KVMSHARP_TEST_PHASE=kvm DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

module=none
for m in kvm_intel kvm_amd kvm_pvm; do [ -d "/sys/module/$m" ] && module=$m && break; done
where="directly"
[ "${KVMSHARP_NESTED_KVM:-}" = "1" ] && where="in the nested KVM host (QEMU TCG, $(nproc) vCPUs)"
echo "KVM phase: /dev/kvm is $module, $where"

# Only projects whose sources use the trait: starting a test host (and discovering thousands of emulator cases) costs
# seconds under TCG for nothing.
projects=()
for proj in tests/*/*.Tests.csproj; do
    grep -rl --include='*.cs' 'KvmTests.Kvm\b' "$(dirname "$proj")" >/dev/null 2>&1 && projects+=("$proj")
done
echo "KVM phase: ${#projects[@]} projects with KVM tests: $(for p in "${projects[@]}"; do basename "$p" .csproj; done | tr '\n' ' ')"

status=0
for proj in "${projects[@]}"; do
    name=$(basename "$proj" .csproj)
    exe="$(dirname "$proj")/bin/Release/net10.0/$name"
    if [ ! -x "$exe" ]; then
        echo "KVM phase: $exe is missing (build the solution in Release first)" >&2
        status=1
        continue
    fi
    "$exe" -nocolor -noLogo -trait "Requires=kvm" || status=1
done
exit "$status"
