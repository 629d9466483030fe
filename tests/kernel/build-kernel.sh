#!/usr/bin/env bash
# Builds the vfio-migd test kernel: Linux 6.12 from Debian's linux-source-6.12 package,
# configured as `make tinyconfig` + tests/kernel/kernel.config (VFIO group/container and
# iommufd cdev, the mtty sample mdev driver, a virtio-9p root; no modules). run-vm.sh calls it
# when neither $VFIO_MIGD_KERNEL nor ../shared/kernel/out/bzImage gives an image.
#
#   tests/kernel/build-kernel.sh [-c CACHE_DIR] [-j JOBS] [-f]
#
#   -c DIR   work and output dir (default: $VFIO_MIGD_KERNEL_CACHE, else
#            ${XDG_CACHE_HOME:-~/.cache}/vfio-migd-kernel)
#   -j N     parallel make jobs (default: nproc)
#   -f       re-configure and re-make even when the stamp says nothing changed
#
# Needs the packages `scripts/deps.sh --kernel-source` installs. Takes about 4 minutes on 2
# cores the first time; afterwards a stamp (hash of kernel.config and of the source tarball's
# size and mtime) makes it a no-op. Concurrent runs wait for each other (flock).
# Outputs, in CACHE_DIR/out/: bzImage (also printed as the last line of stdout), config (the
# resolved .config) and include/ (the 6.12 uapi headers, `make headers_install`, usable as
# VFIO_UAPI_INCLUDE for test_vfio_abi).
set -euo pipefail
HERE=$(cd "$(dirname "$(readlink -f "$0")")" && pwd)
CACHE=${VFIO_MIGD_KERNEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vfio-migd-kernel}
JOBS=$(nproc)
FORCE=0
while getopts "c:j:fh" o; do
    case $o in
    c) CACHE=$OPTARG ;;
    j) JOBS=$OPTARG ;;
    f) FORCE=1 ;;
    *) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
    esac
done
TARBALL=/usr/src/linux-source-6.12.tar.xz
FRAG=$HERE/kernel.config
OUT=$CACHE/out
SRC=$CACHE/linux-source-6.12
# ARCH=x86_64 everywhere: with the default ARCH=x86, tinyconfig makes a 32-bit kernel.
MK=(make -C "$SRC" ARCH=x86_64)
log() { echo "build-kernel: $*" >&2; }

missing=()
for p in linux-source-6.12 bc bison flex libelf-dev libssl-dev gcc make xz-utils rsync cpio; do
    dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null | grep -qx installed || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    log "missing packages: ${missing[*]}; install them with: scripts/deps.sh --kernel-source"
    exit 1
fi
[ -f "$TARBALL" ] || { log "no $TARBALL (package linux-source-6.12)"; exit 1; }

mkdir -p "$CACHE" "$OUT"
exec 9>"$CACHE/.lock"
flock 9 # another build of the same cache finishes first; then the stamp makes this a no-op

stamp_want=$(cat "$FRAG" <(stat -c '%s %Y' "$TARBALL") | sha256sum | cut -c1-16)
STAMP=$CACHE/.stamp
if [ $FORCE = 0 ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$stamp_want" ] &&
   [ -f "$OUT/bzImage" ] && [ -f "$OUT/include/linux/vfio.h" ]; then
    log "up to date (stamp $stamp_want)"
    echo "$OUT/bzImage"
    exit 0
fi

if [ ! -f "$SRC/Makefile" ]; then
    log "extracting $TARBALL into $CACHE"
    tar -C "$CACHE" -xf "$TARBALL"
fi

# ---- configure: tinyconfig + fragment + olddefconfig, then prove every line survived
log "configuring"
"${MK[@]}" -s tinyconfig >/dev/null
(cd "$SRC" && scripts/kconfig/merge_config.sh -m .config "$FRAG") >"$CACHE/merge.log" 2>&1
"${MK[@]}" -s olddefconfig >/dev/null
bad=0
while IFS= read -r line; do
    case $line in
    CONFIG_*=*) key=${line%%=*} ;;
    "# CONFIG_"*" is not set") key=${line#\# }; key=${key%% *} ;;
    *) continue ;;
    esac
    have=$(grep -E "^$key=|^# $key is not set" "$SRC/.config" || true)
    if [ "$line" = "# $key is not set" ] && [ -z "$have" ]; then
        continue
    fi
    if [ "$have" != "$line" ]; then
        log "option lost: want '$line', .config has '${have:-<absent>}'"
        bad=1
    fi
done <"$FRAG"
[ $bad = 0 ] || { log "config check failed (see $CACHE/merge.log)"; exit 1; }

# ---- build
log "make -j$JOBS bzImage (log: $CACHE/build.log; about 3-4 minutes on 2 cores)"
t=$SECONDS
if ! "${MK[@]}" -j"$JOBS" bzImage >"$CACHE/build.log" 2>&1; then
    tail -n 30 "$CACHE/build.log" >&2
    log "kernel build FAILED"
    exit 1
fi
log "bzImage built in $((SECONDS - t)) s"

rm -rf "$OUT/include"
"${MK[@]}" -s headers_install INSTALL_HDR_PATH="$OUT" >/dev/null
cp "$SRC/arch/x86/boot/bzImage" "$OUT/bzImage.tmp" && mv "$OUT/bzImage.tmp" "$OUT/bzImage"
cp "$SRC/.config" "$OUT/config"
echo "$stamp_want" >"$STAMP"
echo "$OUT/bzImage"
