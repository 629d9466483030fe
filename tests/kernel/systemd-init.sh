#!/bin/sh
# PID 1 of the test VM for a run under the real service manager (run-vm.sh -S boots the kernel
# with init=<this file>): it makes the read-only 9p root livable for systemd, writes a unit
# that runs run-vm.sh's cmd.sh, and execs the host's systemd (252 on bookworm) as PID 1 with
# that unit's target as the only goal, so nothing else of the host's boot starts.
#
# Same contract with run-vm.sh as guest-init.sh (the 9p share "xchg" on /run/xchg: cmd.sh,
# shares -> stdout, stderr, guest.log, rc; mounted by vm-xchg.sh, which both source). What
# systemd needs that the host's root lacks:
#   /run, /tmp, /var (tmpfs)  writable: /run/systemd (units, notify and private sockets),
#                             PrivateTmp=, StateDirectory= (/var/lib/<name>), the journal
#   /etc                      stays read-only: /etc/machine-id exists, and nothing is written
# systemd mounts /proc, /sys, the cgroup2 hierarchy and /dev/pts itself, and keeps the /run
# mounted here (it mounts only what is not mounted yet).
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

die() {
    echo "systemd-init: $*" >/dev/console
    echo b >/proc/sysrq-trigger
    sleep 10
}

mount -t proc proc /proc || die "mount /proc failed"
mount -t tmpfs -o mode=0755 tmpfs /run
mkdir -p /run/host-tmp && mount --bind /tmp /run/host-tmp
mount -t tmpfs -o mode=1777 tmpfs /tmp
# A tmpfs /var with the directories units expect; the host's /var stays hidden.
mount -t tmpfs -o mode=0755 tmpfs /var
mkdir -p /var/tmp /var/lib /var/log /var/cache && chmod 1777 /var/tmp
ln -s ../run /var/run # as on the host; otherwise systemd says "tainted: var-run-bad"
INIT_NAME=systemd-init
. "${0%/*}/vm-xchg.sh" # $X, guest.log, the extra shares

# /run/systemd/system: the runtime unit directory, read before /etc and /lib.
U=/run/systemd/system
mkdir -p $U
# A service with default dependencies (vfio-migd.service, vfio-migd.socket) pulls in
# sysinit.target and basic.target, and with them everything the host enabled there: a
# minute of TCG time, and systemd-tmpfiles-setup empties /tmp (the tests' own directories).
# Masked here (a runtime mask), all but the journal: its sockets and service stay.
KEEP=' systemd-journald.service systemd-journald.socket systemd-journald-dev-log.socket '
for t in sysinit basic sockets local-fs paths timers; do
    for u in /lib/systemd/system/"$t".target.wants/* /etc/systemd/system/"$t".target.wants/*; do
        n=${u##*/}
        case "$KEEP" in *" $n "*) continue ;; esac
        [ -e "$u" ] && [ ! -e "$U/$n" ] && ln -s /dev/null "$U/$n"
    done
done
cat >$U/vm-test.target <<'EOF'
[Unit]
Description=run-vm.sh's command under systemd
DefaultDependencies=no
Requires=vm-test.service
After=vm-test.service
AllowIsolate=yes
EOF
# The command runs as a service of its own; when it ends, its status goes back to the host
# and the VM reboots at once (QEMU's -no-reboot makes that the end; no ACPI, no power-off).
cat >$U/vm-test.service <<'EOF'
[Unit]
Description=run-vm.sh's command
DefaultDependencies=no
After=systemd-journald.socket

[Service]
Type=exec
Environment=HOME=/tmp TERM=dumb LANG=C.UTF-8 TMPDIR=/tmp
ExecStart=/bin/sh -c 'echo "systemd-init: uptime $(cut -d" " -f1 /proc/uptime) s, running the command" >&2; /bin/bash /run/xchg/cmd.sh >/run/xchg/stdout 2>/run/xchg/stderr </dev/null; rc=$?; echo "systemd-init: the command exited $rc at uptime $(cut -d" " -f1 /proc/uptime) s" >&2; echo $rc >/run/xchg/rc.tmp && mv /run/xchg/rc.tmp /run/xchg/rc; sync; echo b >/proc/sysrq-trigger'
StandardError=append:/run/xchg/guest.log
EOF
echo "systemd-init: uptime $(cut -d' ' -f1 /proc/uptime) s, starting systemd" >&2
# An empty $container tells systemd it is no container: the host's root has a /.dockerenv,
# and systemd would otherwise run in container mode ("Detected virtualization docker").
export container=
exec /lib/systemd/systemd --unit=vm-test.target
