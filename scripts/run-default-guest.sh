#!/usr/bin/env bash
# The README's main job: build the default Debian guest (cached) and boot it with kvmsharp run.
# Extra arguments go to `kvmsharp run` (for example --memory 1G --stats, or --cmdline "...").
set -euo pipefail
cd "$(dirname "$0")/.."
guest=${KVMSHARP_GUEST_DIR:-$HOME/.cache/kvmsharp/guest}
bash scripts/build-guest.sh >&2

# The shipped binary: ReadyToRun, published to out/kvmsharp (scripts/publish.sh).
kvmsharp=$(bash scripts/publish.sh)

# earlyprintk shows the kernel's log from its first line (the serial console proper starts later).
cmdline=(--cmdline "console=ttyS0 earlyprintk=serial,ttyS0 reboot=k panic=-1")
for arg in "$@"; do
  if [ "$arg" = "--cmdline" ] || [ "$arg" = "-c" ]; then cmdline=(); fi
done

exec "$kvmsharp" run \
  --kernel "$guest/vmlinux" --initrd "$guest/initramfs.cpio.gz" "${cmdline[@]}" "$@"
