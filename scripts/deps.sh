#!/usr/bin/env bash
# Installs the Debian bookworm packages vfio-migd needs to build, test and run its demo,
# but only those that are missing, so a second run costs a dpkg query and nothing else.
#   scripts/deps.sh            build, test (including the kernel tests' QEMU and the Debian
#                              package's build and lintian run) and demo
#   scripts/deps.sh --kernel-source   also what building a test kernel from source needs
set -euo pipefail

PKGS=(
    build-essential cmake pkg-config
    libuv1-dev libgrpc-dev libprotobuf-c-dev protobuf-c-compiler protobuf-compiler
    libsystemd-dev libcriterion-dev libjson-c-dev libinih-dev libxml2-dev
    libmnl-dev                    # devlink over generic netlink (the plugins' devlink_get)
    libssl-dev                    # TLS 1.3 on the migration sockets (daemon/tls.c)
    scdoc bash-completion man-db
    debhelper fakeroot lintian
    python3 python3-grpcio python3-protobuf
    qemu-system-x86
    libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients   # the libvirt hook's end-to-end test
    systemd iproute2 util-linux   # tests: systemd-analyze; ss; unshare, setpriv, prlimit
    clang libclang-rt-14-dev      # scripts/fuzz.sh: the libFuzzer targets (test fuzz_short)
)
if [ "${1:-}" = "--kernel-source" ]; then
    PKGS+=(linux-source-6.12 bc bison flex libelf-dev libssl-dev rsync xz-utils cpio)
fi

missing=()
for p in "${PKGS[@]}"; do
    if ! dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null | grep -qx installed; then
        missing+=("$p")
    fi
done
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

echo "deps: installing ${missing[*]}" >&2
SUDO=
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "deps: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
    SUDO=sudo
fi
export DEBIAN_FRONTEND=noninteractive
# A stale package list makes install fail with 404s; refresh once per call that installs.
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
