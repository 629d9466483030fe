#!/usr/bin/env bash
# Boots the vfio-migd test kernel (Linux 6.12 with VFIO, iommufd and the mtty sample mdev
# driver) under QEMU/TCG with the host's root filesystem shared read-only over virtio-9p,
# runs ONE command inside the guest, and returns its exit status, stdout and stderr. The
# kernel tests (CMakeLists.txt, kernel_*) use it; it works by hand too:
#
#   tests/kernel/run-vm.sh [options] [--] CMD [ARGS...]
#   tests/kernel/run-vm.sh [options] -c 'shell command line'
#
# Options:
#   -M N[:T]   create N mtty mdevs of type mtty-T (1 = one port [default], 2 = two ports)
#              before the command; their UUIDs are in $MTTY_UUIDS (space separated).
#              Repeatable: -M 3 -M 2:2 makes three mtty-1 then two mtty-2, in that order
#   -w DIR     share host DIR read-write at the same path in the guest (repeatable); how
#              results come back (the guest's / is read-only, its /tmp a fresh tmpfs)
#   -e VAR=X   environment variable for the command (repeatable)
#   -A ARGS    extra kernel arguments, e.g. 'mtty.dyndbg=+p loglevel=4'
#   -t SECS    wall-clock limit for the VM (default 180): exit 124
#   -m SIZE    guest memory (default 1G)     -s N  vCPUs (default 2)
#   -R OPTS    the kernel must have these options (e.g. 'CONFIG_KCMP CONFIG_SECCOMP'), by the
#              config file beside its image: an image without them is passed over, and with
#              none left the run is a SKIP that names what is missing
#   -S         boot the host's systemd as PID 1 and run the command as a service under it
#              (systemd-init.sh: tmpfs /run, /tmp and /var; the unit vm-test.service)
#   -C         copy the guest console (kernel log) to stderr as it runs
#   -K         keep the exchange dir (printed)   -v  timings on stderr
#
# The kernel image: $VFIO_MIGD_KERNEL if set; else <repo>/../shared/kernel/out/bzImage when it
# exists; else tests/kernel/build-kernel.sh's (built now, ~4 minutes, if the kernel source
# package is installed: scripts/deps.sh --kernel-source; or one it built before); with -R,
# an image whose config lacks one of the options is passed over.
# Exit status: the command's; 77 when no QEMU or no kernel image can be had (the kernel tests
# then SKIP, saying why); 124 timeout; 125 the guest died without a status (console tail
# printed); 126 mdev creation failed.
#
# Inside: uid 0, cwd = the host cwd (read-only unless shared), HOME=/tmp, loopback only; put
# sockets in /tmp and binaries outside /tmp (the guest's /tmp hides the host's).
set -u
HERE=$(cd "$(dirname "$(readlink -f "$0")")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
TIMEOUT=180 MEM=1G SMP=2 INIT=guest-init.sh REQUIRE='' CONSOLE=0 KEEP=0 VERBOSE=0 CMDSTR='' EXTRA_APPEND='' MTTY=''
SHARES=() ENVS=()
SKIP=77

usage() { sed -n '2,36p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
while getopts "c:t:m:s:w:e:M:A:R:SCKvh" o; do
    case $o in
    c) CMDSTR=$OPTARG ;;
    t) TIMEOUT=$OPTARG ;;
    m) MEM=$OPTARG ;;
    s) SMP=$OPTARG ;;
    w) SHARES+=("$(readlink -f "$OPTARG")") ;;
    e) ENVS+=("$OPTARG") ;;
    M) MTTY="$MTTY${MTTY:+ }$OPTARG" ;;
    A) EXTRA_APPEND=$OPTARG ;;
    R) REQUIRE=$OPTARG ;;
    S) INIT=systemd-init.sh ;;
    C) CONSOLE=1 ;;
    K) KEEP=1 ;;
    v) VERBOSE=1 ;;
    *) usage ;;
    esac
done
shift $((OPTIND - 1))
[ -n "$CMDSTR" ] || [ $# -gt 0 ] || usage

# ---- what the VM needs; a missing QEMU or kernel is a skip, anything else an error
if ! command -v qemu-system-x86_64 >/dev/null; then
    echo "run-vm: SKIP: qemu-system-x86_64 is not installed (scripts/deps.sh installs qemu-system-x86)" >&2
    exit $SKIP
fi
if [ "$INIT" = systemd-init.sh ] && [ ! -x /lib/systemd/systemd ]; then
    echo "run-vm: SKIP: -S needs systemd on the host (/lib/systemd/systemd; package systemd)" >&2
    exit $SKIP
fi
CACHED=${VFIO_MIGD_KERNEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vfio-migd-kernel}/out/bzImage
# lacks IMAGE: the -R options that the config beside IMAGE (build-kernel.sh's "config") lacks
lacks() {
    local o miss=''
    for o in $REQUIRE; do
        grep -qx "$o=y" "$(dirname "$1")/config" 2>/dev/null || miss+=" $o"
    done
    echo "${miss# }"
}
find_kernel() {
    local shared=$REPO/../shared/kernel/out/bzImage why=''
    if [ -n "${VFIO_MIGD_KERNEL:-}" ]; then
        [ -f "$VFIO_MIGD_KERNEL" ] || { echo "run-vm: VFIO_MIGD_KERNEL='$VFIO_MIGD_KERNEL' does not exist" >&2; return 1; }
        KERNEL=$VFIO_MIGD_KERNEL
        why=$(lacks "$KERNEL")
        [ -z "$why" ] && return 0
        echo "run-vm: SKIP: VFIO_MIGD_KERNEL=$KERNEL lacks $why (by the config file beside it);" \
             "build one from tests/kernel/kernel.config (tests/kernel/build-kernel.sh)" >&2
        return $SKIP
    fi
    if [ -f "$shared" ]; then
        KERNEL=$(readlink -f "$shared")
        why=$(lacks "$KERNEL")
        [ -z "$why" ] && return 0
        why="$KERNEL lacks $why"
    fi
    if [ -f /usr/src/linux-source-6.12.tar.xz ]; then
        # a no-op when the cached image is up to date with kernel.config
        KERNEL=$("$HERE/build-kernel.sh" | tail -n 1) || return 1
    elif [ -f "$CACHED" ]; then
        KERNEL=$CACHED # built earlier; the source package has gone since
    else
        echo "run-vm: SKIP: no kernel image${why:+ with what this test needs ($why)}: set" \
             "VFIO_MIGD_KERNEL to a bzImage built from tests/kernel/kernel.config, or install the" \
             "kernel source (scripts/deps.sh --kernel-source) so tests/kernel/build-kernel.sh can" \
             "build one (docs/kernel.md)" >&2
        return $SKIP
    fi
    why=$(lacks "$KERNEL")
    [ -z "$why" ] && return 0
    echo "run-vm: SKIP: $KERNEL lacks $why although tests/kernel/kernel.config asks for them" >&2
    return $SKIP
}
find_kernel || exit $?

X=$(mktemp -d "${TMPDIR:-/tmp}/vfio-migd-vm.XXXXXX")
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
    [ -n "${TAILPID:-}" ] && kill "$TAILPID" 2>/dev/null
    if [ "$KEEP" = 1 ]; then echo "run-vm: exchange dir kept: $X" >&2; else rm -rf "$X"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- the script the guest runs
{
    echo '#!/bin/bash'
    printf 'cd %q 2>/dev/null || { echo "run-vm: cwd %q is not visible in the guest; using /" >&2; cd /; }\n' "$PWD" "$PWD"
    for e in "${ENVS[@]+"${ENVS[@]}"}"; do printf 'export %q\n' "$e"; done
    if [ -n "$MTTY" ]; then
        echo 'MTTY_UUIDS= i=0'
        for spec in $MTTY; do
            n=${spec%%:*} t=1
            [ "$spec" != "$n" ] && t=${spec#*:}
            cat <<EOF
for k in \$(seq 1 $n); do
    i=\$((i + 1))
    u=\$(printf '83b8f4f2-509f-382f-3c1e-e6bfe0fa%04x' \$i)
    echo \$u > /sys/class/mdev_bus/mtty/mdev_supported_types/mtty-$t/create ||
        { echo "run-vm: creating mdev \$u failed" >&2; exit 126; }
    MTTY_UUIDS="\$MTTY_UUIDS\${MTTY_UUIDS:+ }\$u"
done
EOF
        done
        echo 'export MTTY_UUIDS'
    fi
    if [ -n "$CMDSTR" ]; then
        printf 'exec /bin/bash -c %q\n' "$CMDSTR"
    else
        printf 'exec'
        printf ' %q' "$@"
        printf '\n'
    fi
} >"$X/cmd.sh"

QSHARE=()
i=0
for d in "${SHARES[@]+"${SHARES[@]}"}"; do
    [ -d "$d" ] || { echo "run-vm: -w $d: not a directory" >&2; exit 2; }
    QSHARE+=(-fsdev "local,id=w$i,path=$d,security_model=none,multidevs=remap"
             -device "virtio-9p-pci,fsdev=w$i,mount_tag=w$i")
    echo "w$i $d" >>"$X/shares"
    i=$((i + 1))
done

# The kernel has no ACPI: SeaBIOS's MP table lists only the first CPU of each socket, so
# every vCPU gets its own socket or the guest sees one CPU.
case $SMP in
*,*) SMPARG=$SMP ;;
*) SMPARG="$SMP,sockets=$SMP,cores=1,threads=1" ;;
esac
APPEND="root=/dev/root rootfstype=9p rootflags=trans=virtio,version=9p2000.L,msize=512000,cache=loose"
APPEND+=" ro console=ttyS0 panic=-1 init=$HERE/$INIT $EXTRA_APPEND"

touch "$X/console.log"
if [ $CONSOLE = 1 ]; then
    tail -n +1 -f "$X/console.log" >&2 &
    TAILPID=$!
fi
t0=$(date +%s%N)
# readonly=on: QEMU 7.2's spelling. multidevs=remap: the host / spans several filesystems.
timeout -k 5 "$TIMEOUT" qemu-system-x86_64 \
    -nodefaults -no-user-config -display none -monitor none \
    -machine pc,accel=tcg -m "$MEM" -smp "$SMPARG" -no-reboot \
    -serial "file:$X/console.log" \
    -kernel "$KERNEL" -append "$APPEND" \
    -fsdev "local,id=root,path=/,security_model=none,readonly=on,multidevs=remap" \
    -device "virtio-9p-pci,fsdev=root,mount_tag=/dev/root" \
    -fsdev "local,id=xchg,path=$X,security_model=none,multidevs=remap" \
    -device "virtio-9p-pci,fsdev=xchg,mount_tag=xchg" \
    "${QSHARE[@]+"${QSHARE[@]}"}" \
    </dev/null >"$X/qemu.log" 2>&1
qrc=$?
t1=$(date +%s%N)
if [ -n "${TAILPID:-}" ]; then
    sleep 0.2
    kill "$TAILPID" 2>/dev/null
    TAILPID=
fi

[ -f "$X/stdout" ] && cat "$X/stdout"
[ -f "$X/stderr" ] && cat "$X/stderr" >&2
if [ $VERBOSE = 1 ]; then
    printf 'run-vm: kernel %s; qemu rc=%s; wall %d ms; %s\n' "$KERNEL" "$qrc" \
        $(((t1 - t0) / 1000000)) "$(grep -h 'guest-init:' "$X/guest.log" 2>/dev/null | tr '\n' ';')" >&2
fi
if [ $qrc = 124 ] || [ $qrc = 137 ]; then
    echo "run-vm: TIMEOUT after ${TIMEOUT}s; console tail:" >&2
    tail -n 30 "$X/console.log" >&2
    exit 124
fi
if [ ! -f "$X/rc" ]; then
    echo "run-vm: the guest ended without an exit status (qemu rc=$qrc); qemu and console tail:" >&2
    tail -n 5 "$X/qemu.log" >&2
    tail -n 40 "$X/console.log" >&2
    [ -f "$X/guest.log" ] && cat "$X/guest.log" >&2
    exit 125
fi
exit "$(cat "$X/rc")"
