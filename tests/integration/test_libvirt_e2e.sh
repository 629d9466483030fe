#!/usr/bin/env bash
# shellcheck disable=SC2119 # helpers called without arguments on purpose
# The libvirt hook, run by the real libvirtd from Debian: the test starts libvirtd (no
# systemd) as root in its own mount namespace, where /etc/libvirt, /run/libvirt and
# /var/{lib,log,cache}/libvirt are this test's directories, installs the hook as a package
# does (/etc/libvirt/hooks/qemu.d/vfio-migd) before libvirtd starts, defines a small TCG
# domain and starts it with virsh: the hook's log shows libvirt ran it at prepare; in strict
# mode with the daemon unreachable, libvirt refuses to start the domain with the hook's message.
# Skipped (77) without root, unshare or libvirtd (scripts/deps.sh installs libvirtd).

if [[ $(id -u) != 0 || ! -x /usr/sbin/libvirtd || ! -x /usr/bin/virsh ]] ||
    ! command -v unshare >/dev/null || ! unshare -m true 2>/dev/null; then
    echo "# skipped: needs root, unshare -m, libvirtd and virsh"
    exit 77
fi
if [[ "${1:-}" != --inside ]]; then
    # Again in a private mount namespace: the bind mounts below are seen by nobody else.
    exec unshare -m --propagation private bash "$0" --inside
fi

# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

for d in etc/libvirt run/libvirt var/lib/libvirt var/log/libvirt var/cache/libvirt; do
    mkdir -p "$T/root/$d" "/$d"
    mount --bind "$T/root/$d" "/$d"
done
# Debian's libvirt-daemon-system creates the user its QEMU driver is built for; the test
# does it in its private copies of passwd and group, leaving the host's alone.
for f in passwd group; do
    cp "/etc/$f" "$T/$f"
    mount --bind "$T/$f" "/etc/$f"
done
grep -q '^libvirt-qemu:' /etc/passwd || echo 'libvirt-qemu:x:64055:64055::/var/lib/libvirt:/usr/sbin/nologin' >>/etc/passwd
grep -q '^libvirt-qemu:' /etc/group || echo 'libvirt-qemu:x:64055:' >>/etc/group
mkdir -p /etc/libvirt/hooks/qemu.d
install -m 0755 "$SRCDIR/packaging/libvirt/vfio-migd" /etc/libvirt/hooks/qemu.d/vfio-migd
# No systemd, no cgroups, no labels, no virtlogd: the smallest libvirt that runs a QEMU as root.
cat >/etc/libvirt/qemu.conf <<'EOF'
user = "root"
group = "root"
dynamic_ownership = 0
security_driver = "none"
cgroup_controllers = [ ]
namespaces = [ ]
remember_owner = 0
stdio_handler = "file"
EOF
cat >/etc/libvirt/libvirtd.conf <<'EOF'
unix_sock_group = "root"
unix_sock_rw_perms = "0700"
auth_unix_rw = "none"
EOF
printf 'uri_default = "qemu:///system"\n' >/etc/libvirt/libvirt.conf

# The hook's settings: libvirt passes the hook no VFIO_MIGD_HOOK_CONF, so the test's settings
# are the installed file (the mount namespace keeps it private).
HOOK_CONF=/etc/vfio-migd/libvirt-hook.conf
mkdir -p "$T/root/etc/vfio-migd" /etc/vfio-migd
mount --bind "$T/root/etc/vfio-migd" /etc/vfio-migd
printf 'socket = %s\nvfio_migctl = %s\nstrict = no\nlog = %s\n' \
    "$SOCK" "$VFIO_MIGCTL" "$T/hook.log" >"$HOOK_CONF"

start_daemon
expect_exit 0 jctl attach --sim pci=0000:3b:00.2 --name vf0

/usr/sbin/libvirtd --pid-file "$T/libvirtd.pid" >"$T/libvirtd.log" 2>&1 &
LIBVIRTD=$!
virsh_() { timeout -k 2 60 virsh -c qemu:///system "$@"; }
# At exit, before lib.sh's checks: the domain's QEMU and libvirtd end (QEMU outlives libvirtd).
_e2e_on_exit() {
    local status=$?
    set +e
    trap - ERR
    virsh_ destroy vfio-migd-e2e >/dev/null 2>&1 || true
    kill "$LIBVIRTD" 2>/dev/null || true
    wait "$LIBVIRTD" 2>/dev/null || true
    (exit "$status")
    _on_exit
}
trap _e2e_on_exit EXIT
libvirt_up() { virsh_ version >/dev/null 2>&1; }
wait_state "libvirtd answers" libvirt_up

cat >"$T/e2e.xml" <<'EOF'
<domain type='qemu'>
  <name>vfio-migd-e2e</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <memballoon model='none'/>
  </devices>
</domain>
EOF
expect_exit 0 virsh_ define "$T/e2e.xml"
expect_exit 0 virsh_ start vfio-migd-e2e
assert_contains "$(cat "$T/hook.log" 2>/dev/null)" "vfio-migd hook: vfio-migd-e2e: prepare: checking 0 PCI hostdev(s)" \
    "libvirtd found the installed hook and ran it at prepare"
expect_exit 0 virsh_ destroy vfio-migd-e2e

# vfio-migctl libvirt-annotate --domain: the descriptors of a domain's hostdevs stored in its
# <metadata> through the real libvirtd (a defined domain: it never starts, since the test has
# no VFIO device; libvirt checks a hostdev only at start), then read back by the hook
sed -e 's|<name>vfio-migd-e2e</name>|<name>vfio-migd-hd</name>|' \
    -e "s|<memballoon model='none'/>|<hostdev mode='subsystem' type='pci' managed='no'><source><address domain='0x0000' bus='0x3b' slot='0x00' function='0x2'/></source></hostdev>\n    <memballoon model='none'/>|" \
    "$T/e2e.xml" >"$T/hd.xml"
expect_exit 0 virsh_ define "$T/hd.xml"
expect_exit 0 jctl libvirt-annotate --domain vfio-migd-hd --connect qemu:///system
assert_eq "true" "$(jf "$OUT" stored)" "libvirt-annotate --domain stores the element"
expect_exit 0 virsh_ metadata vfio-migd-hd https://github.com/vfio-migd/vfio-migd/libvirt/1 --config
assert_contains "$OUT" 'address="0000:3b:00.2" id="vf0" backend="sim"' \
    "libvirtd keeps it in the domain's persistent definition"
expect_exit 0 virsh_ dumpxml --inactive vfio-migd-hd
printf '%s\n' "$OUT" >"$T/hd-annotated.xml"
VFIO_MIGD_HOOK_CONF=$HOOK_CONF expect_exit 0 /etc/libvirt/hooks/qemu.d/vfio-migd vfio-migd-hd migrate begin - <"$T/hd-annotated.xml"
assert_eq "" "$OUT" "the hook reads libvirtd's XML: the same compatible device here, nothing rewritten"
assert_not_contains "$(cat "$T/hook.log")" "compatibility not checked" "  ... checked by the stored descriptor"
expect_exit 1 ctl libvirt-annotate --domain vfio-migd-e2e --connect qemu:///system
assert_contains "$ERR" "the domain vfio-migd-e2e has no PCI <hostdev>: nothing to annotate" \
    "libvirt-annotate --domain: a domain without hostdevs is left alone"
expect_exit 1 ctl libvirt-annotate --domain nosuch --connect qemu:///system
assert_contains "$ERR" "'virsh dumpxml nosuch' failed" "libvirt-annotate --domain: an unknown domain"
expect_exit 0 virsh_ undefine vfio-migd-hd

# strict, daemon unreachable: libvirt refuses the start with the hook's message
printf 'socket = %s\nvfio_migctl = %s\nstrict = yes\nlog = %s\n' \
    "$T/nobody.sock" "$VFIO_MIGCTL" "$T/hook.log" >"$HOOK_CONF"
expect_exit 1 virsh_ start vfio-migd-e2e
assert_contains "$ERR" "cannot ask vfio-migd" "libvirt refuses the start and shows the hook's message"
assert_eq "shut off" "$(virsh_ domstate vfio-migd-e2e)" "the refused domain did not start"
expect_exit 0 virsh_ undefine vfio-migd-e2e
