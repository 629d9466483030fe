#!/usr/bin/env bash
# Ways out are named (issue 10 item 7): a message that leaves a device or a group in a state
# needing action (RESUMING, ERROR, mixed states) names the command that resolves it, and that
# command works. `group reset` resets every device of a group at once and reports each device;
# it is refused, changing nothing, while the group is busy or for a group that does not exist.
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

start_daemon

# ---- one device left in RESUMING by a failed arc

expect_exit 0 jctl attach --sim 'size=64K,fail_arc=resuming->stop' --name d0
expect_exit 0 jctl state d0 stop
expect_exit 0 jctl state d0 resuming
expect_error ABORTED jctl state d0 running
assert_contains "$ERR" "device now in resuming" "set-state: says where the device was left"
assert_contains "$ERR" "'vfio-migctl reset d0'" "set-state: names the command that resolves it"
assert_eq "resuming" "$(dev_field d0 state)" "set-state: the device is in resuming"
expect_exit 0 jctl reset d0
assert_eq "running" "$(dev_field d0 state)" "the named command brings the device back to running"

# A device left in RUNNING by a failure needs nothing: no command is named.
expect_exit 0 jctl attach --sim 'size=64K,flags=stop_copy,fail_arc=running->stop' --name d1
expect_error ABORTED jctl state d1 stop
assert_not_contains "$ERR" "to recover" "a device back in running: no way out is named"

# ---- a group rolled back to RESUMING

expect_exit 0 jctl attach --sim 'size=64K,fail_arc=resuming->stop' --name g0
expect_exit 0 jctl attach --sim 'size=64K' --name g1
expect_exit 0 jctl group create vm1 g0 g1
expect_exit 0 jctl group state vm1 stop
expect_exit 0 jctl group state vm1 resuming
expect_error ABORTED jctl group state vm1 running
assert_contains "$ERR" "every device was brought back to its starting state" \
    "group state: the group was rolled back"
assert_contains "$ERR" "'vfio-migctl group reset vm1'" \
    "group state: names the command that resolves a group left in resuming"
assert_eq "resuming resuming" "$(dev_field g0 state) $(dev_field g1 state)" \
    "group state: both devices are in resuming"
# Asking again fails the same way (the sim fails the same arc) and names the way out again.
expect_error ABORTED jctl group state vm1 running
assert_contains "$ERR" "'vfio-migctl group reset vm1'" "group state again: the way out again"

# ---- group reset: refusals change nothing

expect_error NOT_FOUND jctl group reset nosuch
assert_contains "$ERR" "nosuch" "group reset: an unknown group is named"
expect_exit 2 ctl group reset
expect_exit 2 ctl group reset vm1 extra
assert_eq "resuming resuming" "$(dev_field g0 state) $(dev_field g1 state)" \
    "group reset refused: nothing moved"

# ---- group reset: every device reset, each reported

resets_before=$(dev_field g1 stats.resets)
expect_exit 0 jctl group reset vm1
assert_eq "true" "$(jget "$OUT" reset)" "group reset: the answer says it was a reset"
assert_eq "running" "$(jget "$OUT" state)" "group reset: the group is in running"
assert_eq "2" "$(jget "$OUT" devices.#)" "group reset: both devices are reported"
for i in 0 1; do
    assert_eq "resuming running" \
        "$(jget "$OUT" "devices.$i.start_state") $(jget "$OUT" "devices.$i.state")" \
        "group reset: device $i from resuming to running"
    assert_eq "true" "$(jget "$OUT" "timeline.$i.reset")" "group reset: arc $i is a reset"
done
assert_eq "g0 g1" "$(jget "$OUT" timeline.0.id timeline.1.id | sort | xargs)" \
    "group reset: one reset arc per device"
assert_eq "running running" "$(dev_field g0 state) $(dev_field g1 state)" \
    "group reset: both devices are running"
assert_eq "$((resets_before + 1))" "$(dev_field g1 stats.resets)" \
    "group reset: the device counted its reset"
expect_exit 0 jctl group show vm1
assert_eq "true" "$(jget "$OUT" last_transition.reset)" "group show: the last run was a reset"
expect_exit 0 ctl group reset vm1
assert_match "$OUT" "^group vm1: reset, done in" "group reset: the text says what was done"
assert_line_match "$OUT" "^g0 +running +running +-$" "group reset: the text lists each device"

# ---- group reset while the group is busy: refused, nothing moves

expect_exit 0 jctl attach --sim "size=64K,$(held 'running->running_p2p' busy)" --name h0
expect_exit 0 jctl group create vm2 h0
ctl group state vm2 stop >"$T/busy.out" 2>&1 &
busy_pid=$!
wait_state "the transition of vm2 is held" sh -c \
    "'$VFIO_MIGCTL' --socket '$SOCK' --json group show vm2 | grep -q '\"busy\": *true'"
expect_error FAILED_PRECONDITION jctl group reset vm2
assert_contains "$ERR" "group 'vm2' is already in a transition" \
    "group reset while busy: says why"
release busy
wait "$busy_pid"
assert_eq "stop" "$(dev_field h0 state)" "group reset refused: the transition went on undisturbed"
