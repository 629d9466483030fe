#!/usr/bin/env bash
# kernel_systemd — restart without reset under the real service manager (issue 15 item 6):
# the Linux 6.12 test VM boots the host's systemd (252 on bookworm) as PID 1 (run-vm.sh -S -M 3;
# ctest runs it as kernel_systemd), and the packaged units run the build tree's daemon:
# vfio-migd.service as the build generated it, with its hardening, FileDescriptorStoreMax=,
# Restart=on-failure and WatchdogSec=, plus one drop-in that points ExecStart= at $VFIO_MIGD,
# and vfio-migd.socket. Three mtty-1 mdevs A B C ($MTTY_UUIDS). Checked:
#  - the socket unit starts the service on the first connection; A attached by its UUID
#    (group/container path, an anonymous-inode device fd) and B by its cdev (iommufd path);
#    A's MSI enabled by the daemon (a latch eventfd: anonymous too), its vector masked and
#    triggered, so pending; the manager's fd store holds them all (NFileDescriptorStore);
#  - UART data planted in A (scratch register 5a, 'hi!' in its loop-back FIFO), A in STOP;
#    `systemctl kill -s SIGKILL vfio-migd`: Restart=on-failure starts it again with the store;
#  - after the restart: A still in STOP, never reset (a reset would have made it RUNNING), its
#    MSI vector still masked and pending; B running and answering; the journal (the daemon's
#    structured fields) says both came back;
#  - A saved while still stopped and restored into C: C has A's scratch register and FIFO
#    bytes; A resumes with its scratch register intact;
#  - `systemctl stop` ends the daemon with status 0 and empties the store (systemd 252).
# Needs: VFIO_MIGD, VFIO_MIGCTL, BUILDDIR (vfio-migd.service), SRCDIR, RESULTS.
# shellcheck disable=SC2119 # helpers called without arguments on purpose
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/../integration/lib.sh"

read -r UA UB UC <<<"$MTTY_UUIDS"
cdev_of() { echo "/dev/vfio/devices/$(ls "/sys/bus/mdev/devices/$1/vfio-dev")"; }
group_of() { basename "$(readlink "/sys/bus/mdev/devices/$1/iommu_group")"; }

UNITS=/run/systemd/system
SOCK=/run/vfio-migd/api.sock
STATE_DIR=/var/lib/vfio-migd
prop() { systemctl show -p "$1" --value vfio-migd.service; }
restarted_and_ready() {
    [[ "$(prop NRestarts)" == 1 && "$(prop ActiveState)" == active && "$(prop SubState)" == running ]]
}
a_pending() { [[ "$(jget "$(jctl irqs tty0)" vectors.0.pending)" == true ]]; }
journal() { journalctl -q -o cat -u vfio-migd.service; }
UART_CTL=ctl
# shellcheck source=tests/kernel/mtty_uart.sh
source "$(dirname "$0")/mtty_uart.sh"
# The journal and the kernel log go back to the host; then lib.sh's own exit handling.
_systemd_on_exit() {
    local status=$?
    journalctl -b --no-pager >"$RESULTS/systemd_test-journal.log" 2>&1 || true
    dmesg >"$RESULTS/systemd_test-dmesg.log" 2>/dev/null || true
    (exit "$status")
    _on_exit
}
trap _systemd_on_exit EXIT

# ==== the packaged units, the daemon of the build tree
assert_eq systemd "$(cat /proc/1/comm)" "systemd is PID 1 (run-vm.sh -S)"
mkdir -p "$UNITS/vfio-migd.service.d"
cp "$BUILDDIR/vfio-migd.service" "$SRCDIR/packaging/systemd/vfio-migd.socket" "$UNITS/"
printf '[Service]\nExecStart=\nExecStart=%s --log-level info\n' "$VFIO_MIGD" \
    >"$UNITS/vfio-migd.service.d/build-tree.conf"
systemctl daemon-reload
expect_exit 0 systemctl start vfio-migd.socket
assert_eq inactive "$(prop ActiveState)" "the socket is listening, the service not started yet"
# The first connection starts the service (socket activation); the CLI waits in the queue.
expect_exit 0 jctl attach --mdev "$UA" --name tty0
assert_eq "active running" "$(prop ActiveState) $(prop SubState)" \
    "the first connection started vfio-migd.service (Type=notify: READY=1 came)"
MAINPID=$(prop MainPID)
# The hardening is enforced, not skipped: seccomp filters (SystemCallFilter= and friends) on
# the daemon, and no namespace setting ignored for want of kernel support.
assert_eq "1 2" "$(awk '/^(NoNewPrivs|Seccomp):/ { printf "%s%s", s, $2; s = " " }' "/proc/$MAINPID/status")" \
    "the daemon runs with NoNewPrivs and a seccomp filter (Seccomp: 2)"
assert_not_contains "$(journalctl -q -o cat -b)" "but the kernel does not support" \
    "systemd ignored none of the unit's namespace settings"
expect_exit 0 jctl attach --cdev "$(cdev_of "$UB")" --name tty1
expect_exit 0 jctl irq enable tty0 msi 1
expect_exit 0 jctl irq mask tty0 0
expect_exit 0 jctl irq trigger tty0 0
wait_state "A's masked MSI vector, triggered, is pending" a_pending
reg_write tty0 7 5a
fifo_push tty0 'hi!'
reg_write tty1 7 3c
expect_exit 0 jctl state tty0 stop
assert_eq stop "$(jget "$(jctl show tty0)" state)" "A is in stop before the kill"
# A's device fd, group and container fds, its MSI latch eventfd, B's device fd and iommufd,
# and the state journal (a memfd). Two of them (A's device fd and the eventfd) are anonymous
# inodes: systemd tells them apart only with kcmp() (CONFIG_KCMP).
STORED=$(prop NFileDescriptorStore)
assert_eq 7 "$STORED" "the manager's fd store holds A's 4 fds, B's 2 and the journal"

# ==== SIGKILL; Restart=on-failure brings the daemon back with the store
expect_exit 0 systemctl kill -s SIGKILL vfio-migd.service
wait_state "Restart=on-failure started the daemon again and it is ready" restarted_and_ready
assert_ne "$MAINPID" "$(prop MainPID)" "  ... as a new process"
assert_eq 7 "$(prop NFileDescriptorStore)" "the store is whole again"
expect_exit 0 jctl show tty0
assert_eq "stop 0" "$(jget "$OUT" state stats.resets | tr '\n' ' ' | sed 's/ $//')" \
    "after SIGKILL and the restart: A is still in stop (a reset would have made it running)"
assert_eq "group /dev/vfio/$(group_of "$UA")" \
    "$(jget "$OUT" properties.access properties.path | tr '\n' ' ' | sed 's/ $//')" \
    "  ... through its kept group"
expect_exit 0 jctl irqs tty0
assert_eq "msi 1 true true" \
    "$(jget "$OUT" index count vectors.0.masked vectors.0.pending | tr '\n' ' ' | sed 's/ $//')" \
    "A's MSI vector is still enabled, masked and pending"
assert_eq running "$(jget "$(jctl show tty1)" state)" "B is running"
assert_eq 3c "$(reg_read tty1 7)" "B answers through its kept iommufd: scratch register 3c"
assert_contains "$(journal)" "Restart: recovered 2 device(s) without a reset" \
    "the journal says both came back"
assert_not_contains "$(journal)" "resetting it" "nothing was reset"
assert_contains "$(journalctl -q -o cat VFIO_MIGD_DEVICE=tty0)" "re-adopted kernel device 'tty0' ($UA) in stop, not reset" \
    "journalctl VFIO_MIGD_DEVICE=tty0 shows A's re-adoption"

# ==== the data: A, still stopped, migrates to C through a save file; then A resumes
expect_exit 0 jctl save tty0 "$STATE_DIR/a.sav"
assert_eq "stop 60" "$(jget "$OUT" state bytes | tr '\n' ' ' | sed 's/ $//')" \
    "the stopped A saves: 60 bytes (its session is whole)"
expect_exit 0 jctl attach --mdev "$UC" --name tty2
expect_exit 0 jctl restore tty2 "$STATE_DIR/a.sav"
assert_eq "5a 686921" "$(reg_read tty2 7) $(fifo_pop tty2 3)" \
    "C, restored from A's save, has A's scratch register (5a) and pops A's FIFO bytes 'hi!'"
expect_exit 0 jctl state tty0 running
assert_eq 5a "$(reg_read tty0 7)" "A resumes with its scratch register intact (5a)"

# ==== systemctl stop: a clean exit, and systemd 252 closes the store (docs/operations.md)
expect_exit 0 systemctl stop vfio-migd.service
assert_eq "inactive 0" "$(prop ActiveState) $(prop ExecMainStatus)" "systemctl stop: the daemon exits 0"
assert_eq 0 "$(prop NFileDescriptorStore)" "  ... and the manager closed its fd store"
