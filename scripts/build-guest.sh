#!/usr/bin/env bash
# Build KvmSharp's default Linux guest from Debian packages.
#
#   bash scripts/build-guest.sh [--force] [--update] [--out DIR]
#
# Outputs, in ${KVMSHARP_GUEST_DIR:-$HOME/.cache/kvmsharp/guest} (or --out DIR):
#   vmlinuz            the Debian cloud kernel (bzImage, LZ4 payload), from the versioned
#                      linux-image-*-cloud-amd64 package that linux-image-cloud-amd64 depends on
#   vmlinux            the uncompressed ELF64 kernel extracted from vmlinuz (has the Xen PVH
#                      note XEN_ELFNOTE_PHYS32_ENTRY, type 18)
#   initramfs.cpio.gz  busybox-static + applet links, /dev nodes, the kernel's virtio modules
#                      (virtio-net too), iperf3 with the shared libraries it needs, and an /init that
#                      loads the modules, configures eth0 by DHCP when there is one (not with
#                      kvmsharp.net=off), prints KVMSHARP-GUEST-READY, runs the base64 shell script
#                      given as kvmsharp.run= if any, and runs a shell (docs/networking.md)
#   kvm-host-initramfs.cpio.gz
#                      the nested KVM host's initramfs (scripts/with-kvm.sh): busybox, kvm, kvm-amd,
#                      kvm-intel, virtio-pci, virtio-console, fuse and virtiofs, and an /init that
#                      chroots into the host's / shared over virtiofs and runs one job there
#   manifest.txt       package versions, sha256 sums, PVH entry point
#
# The packages are fetched with `apt-get download` and unpacked with `dpkg-deb -x` into a
# temporary directory; nothing is installed on the host except build tools (cpio, lz4, kmod,
# binutils, gzip, fakeroot when not root). Idempotent: if the outputs exist and the
# manifest's package versions and recipe hash match, nothing is rebuilt. --force rebuilds.
# --update runs `apt-get update` first (it also runs when apt does not know the packages).
set -euo pipefail

KERNEL_META=linux-image-cloud-amd64
BUSYBOX_PKG=busybox-static
MARKER=KVMSHARP-GUEST-READY
# Modules to load, in the order requested; dependencies from modules.dep are loaded first.
MODULES="virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci virtio_mmio virtio_blk virtio_net virtio_console virtio_rng"
# Userland for the guest beyond busybox: iperf3 and the packages holding the shared libraries it needs
# (libiperf0 -> libcrypto.so.3 from libssl3, libsctp1, libc6's libm, libc and loader). The files come from these
# .debs, not from the host; every DT_NEEDED entry must be found in them or the build fails.
USERLAND_PKGS="iperf3 libiperf0 libssl3 libsctp1 libc6"
# The nested KVM host's modules (ENVIRONMENT.md gives the order; dependencies are resolved the same way).
KVM_HOST_MODULES="irqbypass kvm kvm_amd kvm_intel virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_console fuse virtiofs tun veth"

FORCE=0
UPDATE=0
OUT="${KVMSHARP_GUEST_DIR:-$HOME/.cache/kvmsharp/guest}"
while [ $# -gt 0 ]; do
    case "$1" in
        --force) FORCE=1 ;;
        --update) UPDATE=1 ;;
        --out) shift; OUT="$1" ;;
        --out=*) OUT="${1#--out=}" ;;
        -h|--help) sed -n '2,26p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "build-guest: unknown argument '$1' (try --help)" >&2; exit 1 ;;
    esac
    shift
done

log() { echo "build-guest: $*" >&2; }
die() { echo "build-guest: error: $*" >&2; exit 1; }

SCRIPT_SHA=$(sha256sum "$0" | cut -d' ' -f1)

# ---------------------------------------------------------------- tools
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else die "need root to run: $*"; fi; }

need_tools() {
    local missing=() t pkg
    for t in cpio:cpio lz4:lz4 depmod:kmod readelf:binutils gzip:gzip sha256sum:coreutils \
             dpkg-deb:dpkg od:coreutils xz:xz-utils apt-get:apt; do
        command -v "${t%%:*}" >/dev/null 2>&1 || missing+=("${t#*:}")
    done
    if [ "$(id -u)" -ne 0 ] && ! command -v fakeroot >/dev/null 2>&1; then missing+=(fakeroot); fi
    if [ ${#missing[@]} -gt 0 ]; then
        log "installing build tools: ${missing[*]}"
        apt_update_once
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >&2
    fi
}

APT_UPDATED=0
apt_update_once() {
    [ "$APT_UPDATED" -eq 1 ] && return 0
    log "apt-get update"
    as_root apt-get update -q >&2
    APT_UPDATED=1
}

candidate() { apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ {print $2; exit}'; }

known() { local v; v=$(candidate "$1"); [ -n "$v" ] && [ "$v" != "(none)" ]; }

[ "$UPDATE" -eq 1 ] && apt_update_once
need_update=0
for p in "$KERNEL_META" "$BUSYBOX_PKG" $USERLAND_PKGS; do known "$p" || need_update=1; done
[ "$need_update" -eq 1 ] && apt_update_once
need_tools

# The versioned kernel package that the meta-package depends on (e.g. linux-image-6.1.0-56-cloud-amd64).
KPKG=$(apt-cache depends "$KERNEL_META" 2>/dev/null \
        | awk '/Depends: linux-image-[0-9].*-cloud-amd64$/ {print $2; exit}')
[ -n "$KPKG" ] || die "cannot find the versioned kernel package that $KERNEL_META depends on"
KVER_PKG=$(candidate "$KPKG")
BB_VER=$(candidate "$BUSYBOX_PKG")
[ -n "$KVER_PKG" ] && [ "$KVER_PKG" != "(none)" ] || die "no installable version of $KPKG"
[ -n "$BB_VER" ] && [ "$BB_VER" != "(none)" ] || die "no installable version of $BUSYBOX_PKG"
# "iperf3=3.12-1+deb12u2 libiperf0=..." : exact versions to download, and part of the cache key.
USERLAND=""
for p in $USERLAND_PKGS; do
    v=$(candidate "$p")
    [ -n "$v" ] && [ "$v" != "(none)" ] || die "no installable version of $p"
    USERLAND="${USERLAND:+$USERLAND }$p=$v"
done

# ---------------------------------------------------------------- up to date?
mkdir -p "$OUT"
MAN="$OUT/manifest.txt"
if [ "$FORCE" -eq 0 ] && [ -s "$OUT/vmlinuz" ] && [ -s "$OUT/vmlinux" ] \
   && [ -s "$OUT/initramfs.cpio.gz" ] && [ -s "$OUT/kvm-host-initramfs.cpio.gz" ] && [ -s "$MAN" ] \
   && grep -qx "kernel-package: $KPKG $KVER_PKG" "$MAN" \
   && grep -qx "busybox-package: $BUSYBOX_PKG $BB_VER" "$MAN" \
   && grep -qx "userland-packages: $USERLAND" "$MAN" \
   && grep -qx "recipe-sha256: $SCRIPT_SHA" "$MAN"; then
    ok=1
    for f in vmlinuz vmlinux initramfs.cpio.gz kvm-host-initramfs.cpio.gz; do
        want=$(awk -v f="$f" '$1 == "sha256" && $3 == f {print $2}' "$MAN")
        [ -n "$want" ] && [ "$(sha256sum "$OUT/$f" | cut -d' ' -f1)" = "$want" ] || ok=0
    done
    if [ "$ok" -eq 1 ]; then
        log "up to date ($KPKG $KVER_PKG, $BUSYBOX_PKG $BB_VER); use --force to rebuild"
        echo "guest files in $OUT:"
        for f in vmlinuz vmlinux initramfs.cpio.gz kvm-host-initramfs.cpio.gz manifest.txt; do echo "  $OUT/$f"; done
        exit 0
    fi
    log "outputs do not match the manifest; rebuilding"
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/kvmsharp-guest.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# ---------------------------------------------------------------- fetch packages
log "downloading $KPKG=$KVER_PKG, $BUSYBOX_PKG=$BB_VER and $USERLAND"
# shellcheck disable=SC2086 # USERLAND is a list of pkg=version words
( cd "$WORK" && apt-get download -q -o APT::Sandbox::User=root \
      "$KPKG=$KVER_PKG" "$BUSYBOX_PKG=$BB_VER" $USERLAND >&2 )
KDEB=$(ls "$WORK"/"${KPKG}"_*.deb)
BDEB=$(ls "$WORK"/"${BUSYBOX_PKG}"_*.deb)
mkdir -p "$WORK/kpkg" "$WORK/bpkg" "$WORK/upkg"
dpkg-deb -x "$KDEB" "$WORK/kpkg"
dpkg-deb -x "$BDEB" "$WORK/bpkg"
UDEBS=()
for p in $USERLAND_PKGS; do
    d=$(ls "$WORK"/"${p}"_*.deb)
    dpkg-deb -x "$d" "$WORK/upkg"
    UDEBS+=("$d")
done
UPKG="$WORK/upkg"

KVMLINUZ=$(ls "$WORK"/kpkg/boot/vmlinuz-* | head -n1)
[ -f "$KVMLINUZ" ] || die "no /boot/vmlinuz-* in $KDEB"
KREL=${KVMLINUZ##*/vmlinuz-}
MODDIR="$WORK/kpkg/lib/modules/$KREL"
[ -d "$MODDIR" ] || die "no /lib/modules/$KREL in $KDEB"
BUSYBOX="$WORK/bpkg/bin/busybox"
[ -x "$BUSYBOX" ] || die "no /bin/busybox in $BDEB"
log "kernel release $KREL"

# ---------------------------------------------------------------- vmlinux from vmlinuz
u8()  { od -An -t u1 -j "$2" -N 1 "$1" | tr -d ' \n'; }
u16() { od -An -t u2 -j "$2" -N 2 "$1" | tr -d ' \n'; }
u32() { od -An -t u4 -j "$2" -N 4 "$1" | tr -d ' \n'; }

[ "$(u16 "$KVMLINUZ" $((0x1FE)))" = "$((0xAA55))" ] || die "vmlinuz: no boot signature 0xAA55"
[ "$(od -An -c -j $((0x202)) -N 4 "$KVMLINUZ" | tr -d ' \n')" = "HdrS" ] || die "vmlinuz: no HdrS setup header"
SETUP_SECTS=$(u8 "$KVMLINUZ" $((0x1F1)))
[ "$SETUP_SECTS" -eq 0 ] && SETUP_SECTS=4
PAYLOAD_OFF=$(u32 "$KVMLINUZ" $((0x248)))
PAYLOAD_LEN=$(u32 "$KVMLINUZ" $((0x24C)))
START=$(( (SETUP_SECTS + 1) * 512 + PAYLOAD_OFF ))
# payload_offset/length (boot protocol 2.08+) locate the compressed kernel exactly.
dd if="$KVMLINUZ" of="$WORK/payload" bs=64K iflag=skip_bytes,count_bytes skip="$START" count="$PAYLOAD_LEN" status=none
MAGIC=$(od -An -t x1 -N 4 "$WORK/payload" | tr -d ' \n')
case "$MAGIC" in
    02214c18) log "payload: legacy LZ4 frame ($PAYLOAD_LEN bytes at offset $START)" ;;
    04224d18) log "payload: LZ4 frame ($PAYLOAD_LEN bytes at offset $START)" ;;
    *) die "vmlinuz payload is not LZ4 (magic $MAGIC); this script expects Debian's LZ4 bzImage" ;;
esac
# The kernel build appends the decompressed size (u32 LE) after the LZ4 stream; lz4 reports
# the trailing bytes as an error after writing all the data, so check the size instead.
WANT_SIZE=$(u32 "$WORK/payload" $((PAYLOAD_LEN - 4)))
lz4 -dc "$WORK/payload" > "$WORK/vmlinux" 2>"$WORK/lz4.err" || true
GOT_SIZE=$(stat -c %s "$WORK/vmlinux")
[ "$GOT_SIZE" = "$WANT_SIZE" ] || { cat "$WORK/lz4.err" >&2; die "lz4 produced $GOT_SIZE bytes, expected $WANT_SIZE"; }

# ELF64, x86-64, with a PT_NOTE holding the Xen PVH entry note (type 18).
[ "$(od -An -t x1 -N 5 "$WORK/vmlinux" | tr -d ' \n')" = "7f454c4602" ] || die "vmlinux is not ELF64"
readelf -lW "$WORK/vmlinux" | grep '^ *NOTE ' >/dev/null || die "vmlinux has no PT_NOTE segment"
# binutils 2.40 prints "Unknown note type: (0x00000012)"; newer ones name it.
PVH_LINE=$(readelf -nW "$WORK/vmlinux" | grep -A1 -E '^[[:space:]]*Xen[[:space:]]+0x[0-9a-f]+[[:space:]]+(XEN_ELFNOTE_PHYS32_ENTRY|.*\(0x00000012\))' || true)
[ -n "$PVH_LINE" ] || die "vmlinux has no Xen PVH note (XEN_ELFNOTE_PHYS32_ENTRY, type 18)"
# The note's descriptor is the 32-bit physical entry address (Linux pads it to 8 bytes).
PVH_ENTRY=$(echo "$PVH_LINE" | sed -n 's/.*description data: *//p' | head -n1 \
            | awk '{printf "0x%s%s%s%s\n", $4, $3, $2, $1}')
log "vmlinux: ELF64 with XEN_ELFNOTE_PHYS32_ENTRY = $PVH_ENTRY"

# ---------------------------------------------------------------- modules, in dependency order
depmod -b "$WORK/kpkg" "$KREL"
DEP="$MODDIR/modules.dep"
[ -s "$DEP" ] || die "depmod produced no modules.dep"

# modname -> path relative to $MODDIR (names compare with '-' == '_')
modpath() {
    local want=${1//-/_}
    awk -F: -v want="$want" '{ n=$1; sub(/.*\//, "", n); sub(/\.ko(\.xz|\.gz|\.zst)?$/, "", n);
                              gsub(/-/, "_", n); if (n == want) { print $1; exit } }' "$DEP"
}
moddeps() { awk -F: -v p="$1" '$1 == p { print $2; exit }' "$DEP"; }


# Resolves a module list ($1) into ORDERED (paths relative to $MODDIR, dependencies first) and
# MISSING (names neither in the package nor built in).
resolve_modules() {
    local m p
    ORDERED=()
    MISSING=()
    SEEN=()
    for m in $1; do
        p=$(modpath "$m")
        if [ -z "$p" ]; then
            if grep -E "/${m//_/[_-]}\.ko$" "$MODDIR/modules.builtin" >/dev/null 2>&1; then
                log "module $m is built into the kernel"
            else
                log "warning: module $m not found in $KPKG"; MISSING+=("$m")
            fi
            continue
        fi
        visit "$p"
    done
}
declare -a ORDERED MISSING
declare -A SEEN
visit() {
    local p="$1" d
    [ -n "${SEEN[$p]:-}" ] && return 0
    SEEN[$p]=1
    for d in $(moddeps "$p"); do visit "$d"; done
    ORDERED+=("$p")
}

# ---------------------------------------------------------------- initramfs trees
# A busybox root with applet links and the modules in ORDERED, listed in etc/kvmsharp-modules in load order.
make_busybox_root() {
    local root="$1" p src name m
    mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,tmp,run,root,etc,mnt,lib/modules/"$KREL"}
    chmod 1777 "$root/tmp"
    cp "$BUSYBOX" "$root/bin/busybox"
    chmod 755 "$root/bin/busybox"
    # busybox --install -s without a chroot: one symlink per applet it lists.
    "$root/bin/busybox" --list-full | while read -r applet; do
        [ -n "$applet" ] || continue
        [ "$applet" = "bin/busybox" ] && continue
        mkdir -p "$root/$(dirname "$applet")"
        [ -e "$root/$applet" ] || ln -s /bin/busybox "$root/$applet"
    done
    : > "$root/etc/kvmsharp-modules"
    for p in "${ORDERED[@]}"; do
        src="$MODDIR/$p"
        name=$(basename "$p")
        case "$name" in
            *.ko.xz)  xz -dc "$src"   > "$root/lib/modules/$KREL/${name%.xz}";  name=${name%.xz} ;;
            *.ko.gz)  gzip -dc "$src" > "$root/lib/modules/$KREL/${name%.gz}";  name=${name%.gz} ;;
            *.ko.zst) zstd -dc "$src" > "$root/lib/modules/$KREL/${name%.zst}"; name=${name%.zst} ;;
            *)        cp "$src" "$root/lib/modules/$KREL/$name" ;;
        esac
        echo "$name" >> "$root/etc/kvmsharp-modules"
    done
    for m in "${MISSING[@]}"; do echo "missing:$m" >> "$root/etc/kvmsharp-modules"; done
    # A flat modules.dep for the copied modules (busybox modprobe can use it).
    for p in "${ORDERED[@]}"; do
        local line d
        line="$(basename "${p%.xz}"):"
        for d in $(moddeps "$p"); do line="$line $(basename "${d%.xz}")"; done
        echo "$line"
    done > "$root/lib/modules/$KREL/modules.dep"
    echo "root:x:0:0:root:/root:/bin/sh" > "$root/etc/passwd"
    echo "root:x:0:" > "$root/etc/group"
}

# iperf3 from $UPKG (the unpacked USERLAND_PKGS) in usr/bin, its ELF interpreter, and every shared library it
# needs (DT_NEEDED, followed recursively) copied under its soname into lib/x86_64-linux-gnu, which the loader
# searches by default (there is no ld.so.cache). Checked like ldd: the copied loader lists the binary's libraries
# from the copied ones only, and as root iperf3 --version runs chrooted into the tree.
ULIB_DIRS="lib/x86_64-linux-gnu usr/lib/x86_64-linux-gnu lib64 lib usr/lib"
needed_libs() { readelf -dW "$1" | sed -n 's/.*(NEEDED).*Shared library: \[\(.*\)\]$/\1/p'; }
find_ulib() {
    local d
    for d in $ULIB_DIRS; do
        [ -e "$UPKG/$d/$1" ] && { readlink -f "$UPKG/$d/$1"; return 0; }
    done
    return 1
}
add_userland() {
    local root="$1" libdir="$1/lib/x86_64-linux-gnu" interp lib f listing
    local -a queue=()
    local -A have=()
    mkdir -p "$libdir" "$root/usr/bin"
    cp "$UPKG/usr/bin/iperf3" "$root/usr/bin/iperf3"
    chmod 755 "$root/usr/bin/iperf3"
    interp=$(readelf -lW "$UPKG/usr/bin/iperf3" | sed -n 's/.*Requesting program interpreter: \(.*\)\]$/\1/p')
    [ -n "$interp" ] || die "iperf3 has no ELF interpreter"
    mapfile -t queue < <(needed_libs "$UPKG/usr/bin/iperf3"; basename "$interp")
    while [ ${#queue[@]} -gt 0 ]; do
        lib=${queue[0]}
        queue=("${queue[@]:1}")
        [ -n "${have[$lib]:-}" ] && continue
        have[$lib]=1
        # readlink -f in find_ulib can leave the tree when a package symlink is absolute (lib64's loader link).
        f=$(find_ulib "$lib") && [ -f "$f" ] && [ "${f#"$UPKG"/}" != "$f" ] \
            || f=$(find "$UPKG" -name "$lib" -type f -print -quit)
        [ -n "$f" ] && [ -f "$f" ] || die "iperf3 needs $lib, which none of $USERLAND_PKGS provides"
        cp "$f" "$libdir/$lib"
        chmod 755 "$libdir/$lib"
        mapfile -t -O "${#queue[@]}" queue < <(needed_libs "$f")
    done
    if [ "$interp" != "/lib/x86_64-linux-gnu/$(basename "$interp")" ]; then
        mkdir -p "$root$(dirname "$interp")"
        ln -s "/lib/x86_64-linux-gnu/$(basename "$interp")" "$root$interp"
    fi
    # The check ldd makes, with the initramfs's own loader and libraries (no host library is used).
    listing=$("$libdir/$(basename "$interp")" --inhibit-cache --library-path "$libdir" --list "$root/usr/bin/iperf3" 2>&1) \
        || die "iperf3's libraries do not resolve in the initramfs: $listing"
    # grep reads all of its input here (no -q): a here-string, not a pipe, so no SIGPIPE either way.
    if grep -e 'not found' -e '=> /[^ ]*' <<<"$listing" | grep -v "=> $libdir/" >/dev/null; then
        die "iperf3 resolves libraries outside the initramfs: $listing"
    fi
    if [ "$(id -u)" -eq 0 ]; then
        chroot "$root" /usr/bin/iperf3 --version >/dev/null || die "iperf3 --version fails chrooted into the initramfs"
    fi
    log "iperf3 with ${!have[*]} ($(du -sk "$root/usr/bin/iperf3" "$libdir" | awk '{s += $1} END {print s}') KiB)"
}

# The udhcpc event script (busybox udhcpc -s): applies a lease to $interface (address/prefix, MTU from option 26,
# default route, resolv.conf) and records it in /run/udhcpc.$interface for /init's summary line.
write_udhcpc_script() {
    mkdir -p "$1/usr/share/udhcpc"
    cat > "$1/etc/udhcpc.script" <<'EOF'
#!/bin/sh
# udhcpc event script (generated by scripts/build-guest.sh; docs/networking.md).
# udhcpc sets: interface ip mask (prefix bits) subnet broadcast router dns domain mtu lease serverid.
state=/run/udhcpc.$interface
case "$1" in
    deconfig)
        ip -4 addr flush dev "$interface"
        ip link set "$interface" up
        rm -f "$state"
        ;;
    bound|renew)
        [ -n "$mtu" ] && ip link set "$interface" mtu "$mtu"
        # Keep the address on a renew with the same lease (flushing it would cut open connections).
        if ! ip -4 addr show dev "$interface" | grep -F " $ip/${mask:-32} " >/dev/null; then
            ip -4 addr flush dev "$interface"
            ip addr add "$ip/${mask:-32}" ${broadcast:+broadcast "$broadcast"} dev "$interface"
        fi
        while ip route del default dev "$interface" 2>/dev/null; do :; done
        for r in $router; do
            ip route add default via "$r" dev "$interface" && break
        done
        {
            [ -n "$domain" ] && echo "search $domain"
            for d in $dns; do echo "nameserver $d"; done
        } > /etc/resolv.conf
        {
            echo "lease_ip=$ip"
            echo "lease_mask=${mask:-32}"
            echo "lease_router='$router'"
            echo "lease_dns='$dns'"
            echo "lease_mtu=$mtu"
        } > "$state"
        ;;
    leasefail|nak)
        ;;
esac
exit 0
EOF
    chmod 755 "$1/etc/udhcpc.script"
    # busybox udhcpc's default -s path, for running udhcpc by hand.
    ln -s /etc/udhcpc.script "$1/usr/share/udhcpc/default.script"
}

# Device nodes: made with mknod as root, or under fakeroot otherwise; cpio records them as
# char-device entries owned by root.
cat > "$WORK/pack.sh" <<'EOF'
set -eu
cd "$1"
mknod -m 600 dev/console c 5 1
mknod -m 666 dev/null    c 1 3
mknod -m 666 dev/zero    c 1 5
mknod -m 666 dev/tty     c 5 0
mknod -m 660 dev/ttyS0   c 4 64
mknod -m 660 dev/hvc0    c 229 0
mknod -m 444 dev/random  c 1 8
mknod -m 444 dev/urandom c 1 9
mknod -m 660 dev/kmsg    c 1 11
find . -mindepth 1 -exec touch -h -d @0 {} +
find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --reproducible --quiet | gzip -9n > "$2"
EOF
pack_root() {
    if [ "$(id -u)" -eq 0 ]; then
        sh "$WORK/pack.sh" "$1" "$2"
    else
        fakeroot sh "$WORK/pack.sh" "$1" "$2"
    fi
    # grep reads the whole listing: with pipefail, an early exit (grep -q) would kill cpio with SIGPIPE.
    gzip -dc "$2" | cpio -it --quiet 2>/dev/null | grep -x 'dev/console' >/dev/null \
        || die "$(basename "$2") has no dev/console"
}

# ---------------------------------------------------------------- the guest's initramfs
resolve_modules "$MODULES"
ROOT="$WORK/initramfs"
make_busybox_root "$ROOT"
add_userland "$ROOT"
write_udhcpc_script "$ROOT"
GUEST_MODULES=$(tr '\n' ' ' < "$ROOT/etc/kvmsharp-modules" | sed 's/ $//')
# The guest's /init, written with a quoted heredoc (nothing expands here); @MARKER@ is replaced afterwards.
cat > "$ROOT/init" <<'EOF'
#!/bin/sh
# KvmSharp default guest init (generated by scripts/build-guest.sh).
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
export HOME=/root
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null || echo "init: devtmpfs not mounted; using static /dev"
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts 2>/dev/null
mount -t tmpfs tmpfs /run 2>/dev/null
hostname kvmsharp-guest
moddir=/lib/modules/$(uname -r)
while read -r m; do
    case "$m" in
        missing:*) echo "init: module ${m#missing:} is not in this initramfs; skipped" ;;
        *) insmod "$moddir/$m" 2>/dev/null || echo "init: insmod $m failed; continuing" ;;
    esac
done < /etc/kvmsharp-modules
read -r cmdline < /proc/cmdline
cmdline=" $cmdline "
# Networking (docs/networking.md): with a NIC (virtio-net: eth0), DHCP on it unless kvmsharp.net=off is on the
# kernel command line. Without eth0 nothing runs here. udhcpc tries 5 discovers 1 s apart, then gives up.
if [ -e /sys/class/net/eth0 ]; then
    case "$cmdline" in
        *" kvmsharp.net=off "*) echo "init: kvmsharp.net=off; eth0 left unconfigured" ;;
        *)
            ip link set lo up
            ip link set eth0 up
            if udhcpc -i eth0 -q -n -t 5 -T 1 -s /etc/udhcpc.script >/run/udhcpc.log 2>&1 \
               && [ -s /run/udhcpc.eth0 ]; then
                . /run/udhcpc.eth0
                echo "init: eth0 $lease_ip/$lease_mask via ${lease_router:-none} mtu $(cat /sys/class/net/eth0/mtu)"
            else
                echo "init: eth0 has no DHCP lease"
            fi
            ;;
    esac
fi
echo "@MARKER@"
# Boot-time marker: 123 to kvmsharp's boot timer, which 'kvmsharp run --stats' reports. This kernel has
# no /dev/port (CONFIG_DEVPORT is off), so the write goes to the timer's MMIO alias through /dev/mem.
# Elsewhere (QEMU) nothing is at that address and the write is dropped.
devmem 0xD0000000 8 123 2>/dev/null || true
# A login shell on the virtio console too, when the VMM has one (kvmsharp run --console virtio): respawned like a
# getty; setsid makes the shell a session leader so /dev/hvc0 becomes its controlling tty.
if [ -e /sys/class/tty/hvc0 ]; then
    echo "init: virtio console hvc0 present; shell on it"
    ( while :; do setsid sh -c 'exec sh -l <>/dev/hvc0 >&0 2>&0'; sleep 1; done ) &
fi
# kvmsharp.run=<base64 of a shell script> on the kernel command line: decoded and run once here, stdin from
# /dev/null, output on the console; then the shell starts as usual (end the script with poweroff -f to stop).
case "$cmdline" in
    *" kvmsharp.run="*)
        run=${cmdline##* kvmsharp.run=}
        run=${run%% *}
        if echo "$run" | base64 -d > /run/kvmsharp-run.sh 2>/dev/null && [ -s /run/kvmsharp-run.sh ]; then
            echo "init: running kvmsharp.run script"
            rc=0
            sh /run/kvmsharp-run.sh </dev/null || rc=$?
            echo "init: kvmsharp.run script exited with status $rc"
        else
            echo "init: kvmsharp.run is not valid base64; not run"
        fi
        ;;
esac
# Interactive shell with a controlling tty (job control); poweroff -f ends the VM.
while :; do
    setsid cttyhack sh -l
    echo "init: shell exited; starting a new one (use 'poweroff -f' to stop the VM)"
done
EOF
sed -i "s/@MARKER@/$MARKER/" "$ROOT/init"
chmod 755 "$ROOT/init"
cat > "$ROOT/etc/profile" <<'EOF'
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
PS1='guest# '
EOF
pack_root "$ROOT" "$WORK/initramfs.cpio.gz"

# ---------------------------------------------------------------- the nested KVM host's initramfs
# scripts/with-kvm.sh boots this kernel with it under QEMU's software CPU (-cpu max emulates AMD SVM with
# nested paging): /init loads KVM and virtiofs, mounts the host's / (shared by virtiofsd, tag "host"),
# chroots into it and runs the job script named by kvmsharp.job= on the kernel command line, its stdout
# and stderr on the virtio-serial ports org.kvmsharp.stdout and org.kvmsharp.stderr; then it powers off.
resolve_modules "$KVM_HOST_MODULES"
HROOT="$WORK/kvm-host"
make_busybox_root "$HROOT"
KVM_HOST_LOADED=$(tr '\n' ' ' < "$HROOT/etc/kvmsharp-modules" | sed 's/ $//')
cat > "$HROOT/init" <<'EOF'
#!/bin/sh
# KvmSharp nested KVM host init (generated by scripts/build-guest.sh; driven by scripts/with-kvm.sh).
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
say() { echo "kvm-host: $*" > /dev/kmsg; echo "kvm-host: $*"; }
moddir=/lib/modules/$(uname -r)
while read -r m; do
    case "$m" in
        missing:*) ;;
        kvm-intel.ko) grep -qw vmx /proc/cpuinfo && insmod "$moddir/$m" ;;
        kvm-amd.ko) grep -qw svm /proc/cpuinfo && insmod "$moddir/$m" ;;
        *) insmod "$moddir/$m" || say "insmod $m failed" ;;
    esac
done < /etc/kvmsharp-modules
job=$(sed -n 's/.*kvmsharp\.job=\([^ ]*\).*/\1/p' /proc/cmdline)
fail() { say "$*"; [ -n "$job" ] && [ -d "/host$job" ] && echo "$*" > "/host$job/setup-error"; sync; poweroff -f; }
[ -n "$job" ] || fail "no kvmsharp.job= on the kernel command line"
[ -c /dev/kvm ] || fail "no /dev/kvm after loading kvm (is nested virtualization offered? QEMU needs -cpu max)"
out= err=
for p in /sys/class/virtio-ports/*; do
    case "$(cat "$p/name" 2>/dev/null)" in
        org.kvmsharp.stdout) out=/dev/${p##*/} ;;
        org.kvmsharp.stderr) err=/dev/${p##*/} ;;
    esac
done
[ -n "$out" ] && [ -n "$err" ] || fail "virtio-serial ports org.kvmsharp.stdout/stderr not found"
mkdir -p /host
mount -t virtiofs host /host || fail "mounting the host's / over virtiofs failed"
[ -f "/host$job/run.sh" ] || fail "job script $job/run.sh not found on the host"
mount -t proc proc /host/proc
mount -t sysfs sysfs /host/sys
mount -t devtmpfs devtmpfs /host/dev
mkdir -p /host/dev/pts /host/dev/shm
mount -t devpts devpts /host/dev/pts
mount -t tmpfs tmpfs /host/dev/shm
ip link set lo up 2>/dev/null
# Networking for the jobs: the L1 has no NIC, but passt (--net user) needs an interface with a default route, so a
# veth pair stands in (TEST-NET-1 addresses, like the development machines'; the gateway reaches the L1's loopback
# through passt). Network namespaces (the TAP test) go on a tmpfs of the L1's own, not into the host's /run.
# (The L1's 6.1 kernel names the peer veth0 whatever name is asked for, so every interface is brought up by name.)
chroot /host sh -c 'ip link add eth0 type veth && ip addr add 192.0.2.2/24 dev eth0 \
  && for n in /sys/class/net/*; do ip link set "${n##*/}" up || exit 1; done && ip route add default via 192.0.2.1' \
  || say "no veth network (passt will not start)"
mkdir -p /host/run/netns && mount -t tmpfs tmpfs /host/run/netns
say "running $job/run.sh"
# switch_root, not chroot: a chrooted process may not create user namespaces (user_namespaces(7)), and passt sandboxes
# itself in one. The host's sh becomes PID 1 on the host's /; it powers off through sysrq (no init to ask).
exec switch_root /host /bin/sh -c '/bin/bash "$0" </dev/null >"$1" 2>"$2"; echo "kvm-host: job ended with status $?" > /dev/kmsg
sync; echo o > /proc/sysrq-trigger; sleep 60' "$job/run.sh" "$out" "$err"
EOF
chmod 755 "$HROOT/init"
pack_root "$HROOT" "$WORK/kvm-host-initramfs.cpio.gz"

# ---------------------------------------------------------------- install outputs + manifest
OUTPUTS="vmlinuz vmlinux initramfs.cpio.gz kvm-host-initramfs.cpio.gz"
cp "$KVMLINUZ" "$OUT/vmlinuz.new"
mv "$WORK/vmlinux" "$OUT/vmlinux.new"
mv "$WORK/initramfs.cpio.gz" "$OUT/initramfs.cpio.gz.new"
mv "$WORK/kvm-host-initramfs.cpio.gz" "$OUT/kvm-host-initramfs.cpio.gz.new"
for f in $OUTPUTS; do mv -f "$OUT/$f.new" "$OUT/$f"; done

{
    echo "# KvmSharp default guest, built by scripts/build-guest.sh on $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "kernel-package: $KPKG $KVER_PKG"
    echo "kernel-release: $KREL"
    echo "busybox-package: $BUSYBOX_PKG $BB_VER"
    echo "userland-packages: $USERLAND"
    echo "recipe-sha256: $SCRIPT_SHA"
    echo "pvh-entry: $PVH_ENTRY"
    echo "vmlinuz-setup-sects: $SETUP_SECTS"
    echo "ready-marker: $MARKER"
    echo "modules: $GUEST_MODULES"
    echo "kvm-host-modules: $KVM_HOST_LOADED"
    echo "deb-sha256: $(sha256sum "$KDEB" | cut -d' ' -f1) $(basename "$KDEB")"
    echo "deb-sha256: $(sha256sum "$BDEB" | cut -d' ' -f1) $(basename "$BDEB")"
    for d in "${UDEBS[@]}"; do echo "deb-sha256: $(sha256sum "$d" | cut -d' ' -f1) $(basename "$d")"; done
    for f in $OUTPUTS; do
        echo "sha256 $(sha256sum "$OUT/$f" | cut -d' ' -f1) $f $(stat -c %s "$OUT/$f")"
    done
} > "$MAN.new"
mv -f "$MAN.new" "$MAN"

echo "guest files in $OUT:"
for f in $OUTPUTS manifest.txt; do
    printf '  %-40s %10s bytes\n' "$OUT/$f" "$(stat -c %s "$OUT/$f")"
done
