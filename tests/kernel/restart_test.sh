#!/usr/bin/env bash
# kernel_restart — restart without reset on real VFIO devices (issue 15 items 1 and 6), inside
# the Linux 6.12 test VM (run-vm.sh -M 3; ctest runs it as kernel_restart). The daemon runs
# under the service-manager harness (tests/systemd/sdharness.py: the notify socket takes the
# FDSTORE=1 fds by SCM_RIGHTS, the next start gets them back with LISTEN_FDS/LISTEN_FDNAMES,
# as systemd 252 does). Three mtty-1 mdevs A B C ($MTTY_UUIDS). Checked:
#  - A attached by its UUID (group/container path) as tty0, B by its cdev (iommufd path) as
#    tty1; the fd store holds A's device fd, its group's group and container fds under the
#    group's own names (grp/<n>/group, ctr/<n>/container) and B's device fd and iommufd;
#  - UART data planted in A (scratch register 5a, 'hi!' in its loop-back FIFO), A moved to
#    STOP, B running with scratch 3c; the daemon SIGKILLed and started again as systemd would:
#    A is still in STOP (VFIO_DEVICE_RESET would have put it in RUNNING: mtty's reset sets
#    RUNNING), nothing was reset, B runs and answers (scratch 3c) through its kept iommufd;
#  - A, still stopped, is saved to a file and restored into C: C has A's scratch register and
#    pops A's FIFO bytes; A then resumes and its scratch register is still 5a;
#  - A has MSI enabled by the daemon (1 vector, its own latch eventfd), vector 0 masked and
#    triggered (pending) before the crash; the store holds the latch as irq/tty0/0/latch. After
#    the restart A's MSI is still enabled, masked and pending (nothing disabled it), and the
#    kernel's loopback trigger reaches the latch that came back from the store (the daemon
#    wakes for it);
#  - B is in PRE_COPY (mtty supports it) when the daemon dies: its data fd is in the store as
#    mig/tty1/data; the next daemon checks it is a data fd (an anonymous inode opened
#    read-only), closes it and removes it; B stays in PRE_COPY and then runs again;
#  - detach releases the store: a device's own fds at once, the group's with its last device.
# Needs: VFIO_MIGD, VFIO_MIGCTL, SRCDIR, RESULTS (a writable shared dir).
# shellcheck disable=SC2119 # helpers called without arguments on purpose
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/../integration/lib.sh"

read -r UA UB UC <<<"$MTTY_UUIDS"
cdev_of() { echo "/dev/vfio/devices/$(ls "/sys/bus/mdev/devices/$1/vfio-dev")"; }
group_of() { basename "$(readlink "/sys/bus/mdev/devices/$1/iommu_group")"; }

SDSOCK=$SDH/api.sock
sdctl() { "$VFIO_MIGCTL" --socket "$SDSOCK" --timeout "$CTL_TIMEOUT" "$@"; }
sdj() { sdctl --json "$@"; }
service_log() { cat "$SDH/service.log" 2>/dev/null || true; }
irq_bits() { jget "$(sdj irqs tty0)" index count vectors.0.masked vectors.0.pending | tr '\n' ' ' | sed 's/ $//'; }
pending0() { [[ "$(jget "$(sdj irqs tty0)" vectors.0.pending)" == true ]]; }
wakeups0() { jget "$(sdj irqs tty0)" latch_wakeups; }
woke_since() { (($(wakeups0) > $1)); }
UART_CTL=sdctl
# shellcheck source=tests/kernel/mtty_uart.sh
source "$(dirname "$0")/mtty_uart.sh"
start_service() {
    expect_exit 0 sdh start --log "$SDH/service.log" -- "$VFIO_MIGD" --log-level info --allowed-dirs "$T"
    expect_exit 0 sdh wait-notify READY=1 --timeout 300
}
kill_service() {
    expect_exit 0 sdh kill KILL
    expect_exit 0 sdh wait-exit --timeout 300
}
finish() {
    cp "$SDH/service.log" "$RESULTS/restart_test-service.log" 2>/dev/null || true
    dmesg >"$RESULTS/restart_test-dmesg.log" 2>/dev/null || true
}

GA=$(group_of "$UA")
CB=$(cdev_of "$UB")
sdh_serve --fdstore-max 64
sdh listen api "$SDSOCK" >/dev/null
start_service

expect_exit 0 sdj attach --mdev "$UA" --name tty0
expect_exit 0 sdj attach --cdev "$CB" --name tty1
STORE=$(sdh fdstore)
assert_eq "dev/tty0/device grp/$GA/group ctr/$GA/container dev/tty1/device dev/tty1/iommufd" \
    "$(grep -E '^(dev|grp|ctr)/' <<<"$STORE" | tr '\n' ' ' | sed 's/ $//')" \
    "the store holds A's device fd and its group's fds (group $GA), B's device fd and iommufd"
reg_write tty0 7 5a
fifo_push tty0 'hi!'
reg_write tty1 7 3c
expect_exit 0 sdj irq enable tty0 msi 1
expect_exit 0 sdj irq mask tty0 0
expect_exit 0 sdj irq trigger tty0 0
wait_state "A's masked MSI vector 0, triggered, is pending" pending0
assert_eq "msi 1 true true" "$(irq_bits)" "A: MSI with 1 vector, masked and pending, before the crash"
assert_contains "$(sdh fdstore)" "irq/tty0/0/latch" "the store holds A's MSI latch eventfd"
expect_exit 0 sdj state tty0 stop
assert_eq stop "$(jget "$(sdj show tty0)" state)" "A is in stop before the crash"
expect_exit 0 sdj state tty1 pre_copy
assert_contains "$(sdh fdstore)" "mig/tty1/data" "B in pre_copy: the store holds its data fd"

kill_service
start_service
expect_exit 0 sdj show tty0
assert_eq "stop 0" "$(jget "$OUT" state stats.resets | tr '\n' ' ' | sed 's/ $//')" \
    "after SIGKILL and a restart: A is still in stop (a reset would have made it running)"
assert_eq "group /dev/vfio/$GA" "$(jget "$OUT" properties.access properties.path | tr '\n' ' ' | sed 's/ $//')" \
    "  ... through its kept group ($GA)"
assert_eq "msi 1 true true" "$(irq_bits)" "A's MSI is still enabled, vector 0 masked and pending"
assert_contains "$(service_log)" "'tty0' keeps msi with 1 vectors armed (1 pending" \
    "  ... and the log says what came back"
assert_eq pre_copy "$(jget "$(sdj show tty1)" state)" "B is still in pre_copy"
assert_contains "$(service_log)" "the data fd of 'tty1' came back with no journaled job (a state change opened it); closed" \
    "  ... its data fd came back, passed the kernel's check and was closed"
assert_not_contains "$(service_log)" "is not a data fd of" "  ... (no data fd was refused)"
assert_not_contains "$(sdh fdstore)" "mig/tty1/" "  ... and it left the store"
expect_exit 0 sdj state tty1 running
assert_eq 3c "$(reg_read tty1 7)" "B runs again and answers through its kept iommufd: scratch register 3c"
assert_contains "$(service_log)" "Restart: recovered 2 device(s) without a reset" \
    "one log line says both came back"
assert_contains "$(service_log)" "re-adopted kernel device 'tty0' ($UA) in stop, not reset" \
    "the log names A and its state"
assert_not_contains "$(service_log)" "resetting it" "nothing was reset"

expect_exit 0 sdj save tty0 "$T/a.sav"
assert_eq "stop 60" "$(jget "$OUT" state bytes | tr '\n' ' ' | sed 's/ $//')" \
    "the stopped A saves: 60 bytes (its session is whole)"
expect_exit 0 sdj attach --mdev "$UC" --name tty2
expect_exit 0 sdj restore tty2 "$T/a.sav"
assert_eq "5a 686921" "$(reg_read tty2 7) $(fifo_pop tty2 3)" \
    "C, restored from A's save, has A's scratch register (5a) and pops A's FIFO bytes 'hi!'"
expect_exit 0 sdj state tty0 running
assert_eq 5a "$(reg_read tty0 7)" "A resumes with its scratch register intact (5a)"
W=$(wakeups0)
expect_exit 0 sdj irq trigger tty0 0
wait_state "after the restart, the kernel's loopback on A's vector 0 reaches the latch from the store" woke_since "$W"
assert_eq "msi 1 true true" "$(irq_bits)" "  ... and, masked, it stays pending"

expect_exit 0 sdj detach tty1
assert_not_contains "$(sdh fdstore)" "dev/tty1/" "detaching B removes its fds from the store"
expect_exit 0 sdj detach tty0
assert_contains "$(sdh fdstore)" "grp/$(group_of "$UC")/group" "C's group stays while C is attached"
assert_not_contains "$(sdh fdstore)" "dev/tty0/" "detaching A removes its device fd"
assert_not_contains "$(sdh fdstore)" "irq/tty0/" "  ... and its interrupt eventfds"
if [[ "$GA" != "$(group_of "$UC")" ]]; then
    assert_not_contains "$(sdh fdstore)" "grp/$GA/" "  ... and its group's, its last device gone"
fi
finish
sdh_quit
