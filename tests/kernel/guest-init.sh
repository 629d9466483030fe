#!/bin/sh
# PID 1 of the test VM (run-vm.sh boots the kernel with init=<this file>, read from the
# host root that the guest mounts read-only over virtio-9p). Mounts what a process expects,
# runs the one command run-vm.sh wrote, hands back its status, and powers the VM off.
#
# Contract with run-vm.sh, through the writable 9p share tagged "xchg" (mounted on /run/xchg):
#   cmd.sh       the script to run (bash)                          host -> guest
#   shares       lines "TAG PATH": extra writable 9p exports (-w)  host -> guest
#   stdout, stderr, guest.log, rc   (rc absent = the guest failed)  guest -> host
# vm-xchg.sh, beside this file and shared with systemd-init.sh, mounts those shares.
# There is no ACPI in this kernel, hence no power-off: the guest reboots with sysrq 'b' and
# QEMU, started with -no-reboot, exits instead.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/tmp TERM=dumb LANG=C.UTF-8 TMPDIR=/tmp

die() {
    echo "guest-init: $*" >/dev/console
    echo b >/proc/sysrq-trigger
    sleep 10
}

# /dev is devtmpfs, mounted by the kernel (CONFIG_DEVTMPFS_MOUNT): /dev/vfio/* and /dev/iommu
# appear there by themselves.
mount -t proc proc /proc || die "mount /proc failed"
mount -t sysfs sysfs /sys
mount -t tmpfs -o mode=0755 tmpfs /run
# The host's /tmp stays reachable read-only before a fresh tmpfs hides it.
mkdir -p /run/host-tmp && mount --bind /tmp /run/host-tmp
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t tmpfs -o mode=1777 tmpfs /var/tmp 2>/dev/null
mkdir -p /dev/pts /dev/shm
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
ln -sf /proc/self/fd /dev/fd 2>/dev/null
INIT_NAME=guest-init
. "${0%/*}/vm-xchg.sh" # $X, guest.log, the extra shares
hostname vfio-migd-test 2>/dev/null
ip link set lo up 2>/dev/null || ifconfig lo 127.0.0.1 up 2>/dev/null

echo "guest-init: uptime $(cut -d' ' -f1 /proc/uptime) s, running the command" >&2
/bin/bash $X/cmd.sh >$X/stdout 2>$X/stderr </dev/null
rc=$?
echo "guest-init: the command exited $rc at uptime $(cut -d' ' -f1 /proc/uptime) s" >&2
echo $rc >$X/rc.tmp && mv $X/rc.tmp $X/rc
sync
echo b >/proc/sysrq-trigger
sleep 10
