#!/usr/bin/env bash
# The README's main job: build the default Debian guest (cached) and boot it with kvmsharp run.
# Extra arguments go to `kvmsharp run` (for example --memory 1G --stats, or --cmdline "...").
# The guest has a network: --net user (passt, installed here when missing), eth0 configured by DHCP; the host's
# 127.0.0.1 is at the gateway address. KVMSHARP_NET overrides it (KVMSHARP_NET=none for no NIC, or tap=NAME).
set -euo pipefail
cd "$(dirname "$0")/.."
guest=${KVMSHARP_GUEST_DIR:-$HOME/.cache/kvmsharp/guest}
bash scripts/build-guest.sh >&2

net=${KVMSHARP_NET:-user}
if [ "$net" = user ] && ! command -v passt >/dev/null 2>&1; then
  echo "run-default-guest: installing passt for --net user" >&2
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq passt; } >&2
fi
netargs=()
[ "$net" != none ] && netargs=(--net "$net")

# The shipped binary: ReadyToRun, published to out/kvmsharp (scripts/publish.sh).
kvmsharp=$(bash scripts/publish.sh)

# earlyprintk shows the kernel's log from its first line (the serial console proper starts later).
cmdline=(--cmdline "console=ttyS0 earlyprintk=serial,ttyS0 reboot=k panic=-1")
for arg in "$@"; do
  if [ "$arg" = "--cmdline" ] || [ "$arg" = "-c" ]; then cmdline=(); fi
done

exec "$kvmsharp" run \
  --kernel "$guest/vmlinux" --initrd "$guest/initramfs.cpio.gz" "${cmdline[@]}" "${netargs[@]}" "$@"
