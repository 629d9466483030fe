#!/usr/bin/env bash
# Bad input gets a clear error and changes nothing: the whole device list (states, digests,
# statistics) is compared before and after every refusal. Also injected arc faults (the device
# is left where the kernel would leave it, or reset from ERROR), busy devices and devices
# without migration support.
# shellcheck disable=SC2119 # helpers called without arguments on purpose
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

start_daemon

# unchanged BEFORE WHAT: the device list is exactly BEFORE
unchanged() {
    assert_eq "$1" "$(snapshot)" "  ... $2 changed nothing"
}

# Devices to watch while the refusals go by.
expect_exit 0 jctl attach --sim size=64K --name keep
expect_exit 0 jctl attach --sim flags=stop_copy,size=4K --name small
expect_exit 0 jctl state keep stop_copy
B=$(snapshot)

# ---- unknown devices: NOT_FOUND, the id quoted

for cmd in "show" "state" "state %s stop" "detach" "reset" "save %s $T/nope.sav" \
    "restore %s $T/nope.sav"; do
    [[ "$cmd" == *%s* ]] || cmd="$cmd %s"
    # shellcheck disable=SC2059,SC2046
    expect_error NOT_FOUND jctl $(printf "$cmd" nope)
    assert_contains "$ERR" "'nope'" "  ... the message quotes the id"
done
assert_file_absent "$T/nope.sav" "save of an unknown device writes no file"
assert_eq "" "$(find "$T" -name '*nope.sav.vfio-migd-partial*')" "save of an unknown device leaves no partial file"
unchanged "$B" "unknown device ids"

# Ids that cannot exist: INVALID_ARGUMENT.
expect_error INVALID_ARGUMENT jctl show 'a b'
assert_contains "$ERR" "not a valid device id" "show 'a b': not a valid device id"
expect_error INVALID_ARGUMENT jctl state '../x' stop
expect_error INVALID_ARGUMENT jctl detach "$(printf 'x%.0s' {1..65})"
unchanged "$B" "invalid ids"

# ---- illegal targets: INVALID_ARGUMENT with the reason and EINVAL, device untouched

expect_error INVALID_ARGUMENT jctl state keep pre_copy
assert_contains "$ERR" "EINVAL" "stop_copy -> pre_copy: EINVAL in the message"
assert_contains "$ERR" "'keep'" "stop_copy -> pre_copy: the message names the device"
assert_contains "$ERR" "STOP_COPY -> PRE_COPY" "stop_copy -> pre_copy: the message gives the reason"
unchanged "$B" "stop_copy -> pre_copy"
expect_error INVALID_ARGUMENT jctl state keep pre_copy_p2p
assert_contains "$ERR" "EINVAL" "stop_copy -> pre_copy_p2p: EINVAL"
unchanged "$B" "stop_copy -> pre_copy_p2p"
expect_error INVALID_ARGUMENT jctl state keep error
assert_contains "$ERR" "EINVAL" "-> error: EINVAL"
assert_contains "$ERR" "ERROR can never be requested" "-> error: the reason"
unchanged "$B" "-> error"
expect_error INVALID_ARGUMENT jctl state small running_p2p
assert_contains "$ERR" "EINVAL" "running_p2p with flags=stop_copy: EINVAL"
assert_contains "$ERR" "needs a migration flag" "running_p2p with flags=stop_copy: the reason"
unchanged "$B" "running_p2p with flags=stop_copy"
expect_error INVALID_ARGUMENT jctl state small pre_copy
assert_contains "$ERR" "EINVAL" "pre_copy with flags=stop_copy: EINVAL"
unchanged "$B" "pre_copy with flags=stop_copy"
# Saving from stop_copy is fine, but a save is refused where the path to stop_copy is:
# nothing to refuse there, so check a restore into a device in stop_copy is walked normally.

# ---- malformed sim options: INVALID_ARGUMENT naming the option; no device appears

# bad_options OPTS NEEDLE
bad_options() {
    expect_error INVALID_ARGUMENT jctl attach --sim "$1"
    assert_contains "$ERR" "$2" "  ... the message names '$2'"
    unchanged "$B" "attach --sim '$(_cmd_text "$1")'"
}
bad_options "size=12Q" "size"
bad_options "size=12Q" "'12Q'"
bad_options "size=1" "size"
bad_options "size=65G" "size"
bad_options "size=-4K" "size"
bad_options "flags=p2p" "flags"
bad_options "flags=pre_copy" "flags"
bad_options "flags=p2p+pre_copy" "flags"
bad_options "flags=stop_copy+bogus" "flags"
bad_options "flags=0" "flags"
bad_options "bogus=1" "'bogus'"
bad_options "size=4K,colour=blue" "'colour'"
bad_options "fail_arc=running->stop_copy" "fail_arc"
bad_options "fail_arc=stop->pre_copy" "fail_arc"
bad_options "fail_arc=running->running" "fail_arc"
bad_options "flags=stop_copy,fail_arc=running->running_p2p" "fail_arc"
bad_options "fail_arc=running" "fail_arc"
bad_options "fail_arc=nowhere->stop" "fail_arc"
bad_options "fail_errno=5" "fail_errno"
bad_options "fail_arc=stop->stop_copy,fail_errno=0" "fail_errno"
bad_options "fail_arc=stop->stop_copy,fail_errno=x" "fail_errno"
bad_options "latency_ms=abc" "latency_ms"
bad_options "latency_ms=-1" "latency_ms"
bad_options "latency_ms=3600000" "latency_ms"
bad_options "migratable=yes" "migratable"
bad_options "initial_state=bogus" "initial_state"
bad_options "size=4K,size=8K" "size"
bad_options "nonsense" "nonsense"
bad_options "=4K" "malformed"
bad_options "size=4K,,flags=stop_copy" "malformed"
bad_options "size=4K," "malformed"
bad_options "fail_arc=stop->stop_copy,fail_errno=4096" "fail_errno"

expect_error INVALID_ARGUMENT jctl attach --sim size=4K --model bogus
assert_contains "$ERR" "'bogus'" "unknown model: named"
unchanged "$B" "an unknown model"
# A PCI address no machine has (domain ffff): refused, whether or not this build has the kernel
# back-end yet (UNIMPLEMENTED) or looks the device up (NOT_FOUND). Never a real device here.
expect_exit 1 jctl attach --pci ffff:ff:1f.7
CODE=$(jget "$OUT" code 2>&1 || true)
check "kernel source that does not exist: UNIMPLEMENTED or NOT_FOUND (got $CODE)" \
    test "$CODE" = UNIMPLEMENTED -o "$CODE" = NOT_FOUND
unchanged "$B" "a kernel source that does not exist"

# Refused attaches without --name consumed nothing: the first auto id is still sim0.
expect_exit 0 jctl attach --sim size=4K
assert_eq "sim0" "$(jget "$OUT" id)" "refused attaches do not use up auto ids (first auto id is sim0)"
expect_exit 0 jctl detach "$(jget "$OUT" id)"
B=$(snapshot)

# ---- names

expect_exit 0 jctl attach --sim size=4K --name dup
B=$(snapshot)
expect_error ALREADY_EXISTS jctl attach --sim size=8K,flags=stop_copy --name dup
assert_contains "$ERR" "'dup'" "duplicate name: the message names it"
unchanged "$B" "a duplicate name (the first 'dup' is untouched)"
expect_error ALREADY_EXISTS jctl attach --sim size=12Q --name dup

for name in "has space" "-lead" ".dot" "a/b" "semi;colon" "caf$(printf '\xc3\xa9')" "tab$(printf '\t')x" \
    "$(printf 'n%.0s' {1..65})"; do
    expect_error INVALID_ARGUMENT jctl attach --sim size=4K --name "$name"
    assert_contains "$ERR" "not a valid device id" "  ... not a valid device id"
    unchanged "$B" "an invalid name"
done
NAME64=$(printf 'n%.0s' {1..64})
expect_exit 0 jctl attach --sim size=4K --name "$NAME64"
assert_eq "$NAME64" "$(jget "$OUT" id)" "a 64-character name is valid"
expect_exit 0 jctl attach --sim size=4K --name "A-z_0.9:x"
assert_eq "A-z_0.9:x" "$(jget "$OUT" id)" "a name with every allowed punctuation is valid"
expect_exit 0 jctl detach "$NAME64"
expect_exit 0 jctl detach "A-z_0.9:x"

# ---- request size limits

PAD4K=$(printf 'x%.0s' {1..5000})
expect_error INVALID_ARGUMENT jctl attach --sim "size=4K,pad=$PAD4K"
assert_contains "$ERR" "4096" "5000-character options: the limit is named"
unchanged "$B" "5000-character options"
PAD70K=$(head -c 70000 /dev/zero | tr '\0' x)
expect_error RESOURCE_EXHAUSTED jctl attach --sim "size=4K,pad=$PAD70K"
unchanged "$B" "a 70 KiB request"
expect_error RESOURCE_EXHAUSTED jctl attach --sim size=4K --name "$PAD70K"
unchanged "$B" "a 70 KiB name"
expect_exit 0 ctl health
assert_eq "SERVING" "$OUT" "the daemon serves on after oversized requests"

# ---- injected arc faults

# running_p2p -> stop fails with EIO: the device stays at the last completed arc.
expect_exit 0 jctl attach --sim "size=4K,fail_arc=running_p2p->stop,fail_errno=5" --name fx
assert_eq "running_p2p->stop errno=5" "$(dev_field fx fault)" "show: the fault property"
D0=$(dev_field fx digest)
expect_error ABORTED jctl state fx stop
assert_contains "$ERR" "EIO" "failed arc: the message says EIO"
assert_contains "$ERR" "running_p2p->stop" "failed arc: the message names the arc"
assert_contains "$ERR" "'fx'" "failed arc: the message names the device"
assert_contains "$ERR" "now in running_p2p" "failed arc: the message says where the device was left"
S=$(dev_json fx)
assert_eq "running_p2p" "$(jget "$S" state)" "failed arc: device left in running_p2p (the last completed arc)"
assert_eq "1" "$(jget "$S" stats.failed_arcs)" "failed arc: stats.failed_arcs 1"
assert_eq "1" "$(jget "$S" stats.arcs)" "failed arc: stats.arcs 1 (running->running_p2p)"
assert_eq "0" "$(jget "$S" stats.resets)" "failed arc: no reset"
assert_contains "$(jget "$S" stats.last_error)" "EIO" "failed arc: stats.last_error says EIO"
assert_eq "$D0" "$(jget "$S" digest)" "failed arc: the content is unchanged (digest)"
assert_eq "running_p2p" "$(devices_field fx state)" "failed arc: devices agrees"
expect_exit 0 jctl state fx running
assert_eq "running_p2p->running" "$(jlist "$OUT" arcs)" "after a failed arc: the device moves on from where it was left"
expect_error ABORTED jctl state fx stop_copy
assert_eq "running_p2p 2" "$(dev_field fx state) $(dev_field fx stats.failed_arcs)" \
    "the fault fires every time: failed_arcs 2"
expect_exit 0 jctl state fx running

# Another errno: still ABORTED (the arc failed), and its name in the text.
expect_exit 0 jctl attach --sim "size=4K,flags=stop_copy,fail_arc=running->stop,fail_errno=28" --name fy
expect_error ABORTED jctl state fy stop_copy
assert_contains "$ERR" "ENOSPC" "fail_errno=28: ENOSPC in the message"
S=$(dev_json fy)
assert_eq "running" "$(jget "$S" state)" "fail on the first arc: device still running"
assert_eq "0 1" "$(jget "$S" stats.arcs) $(jget "$S" stats.failed_arcs)" "fail on the first arc: no arc done, one failed"
# devices.proto: transitions counts "requests that moved the device"; this one did not.
assert_eq "0" "$(jget "$S" stats.transitions)" "fail on the first arc: the request is not counted as a transition"

# fail_nth: only the N-th run fails.
expect_exit 0 jctl attach --sim "size=4K,fail_arc=stop->stop_copy,fail_nth=2" --name fn
expect_exit 0 jctl state fn stop_copy
expect_exit 0 jctl state fn stop
expect_error ABORTED jctl state fn stop_copy
assert_eq "stop" "$(dev_field fn state)" "fail_nth=2: the second run fails, device left in stop"
expect_exit 0 jctl state fn stop_copy

# fail_to_error: the arc leaves the device in ERROR; the daemon resets it to RUNNING.
expect_exit 0 jctl attach --sim "size=4K,fail_arc=running_p2p->stop,fail_errno=5,fail_to_error=1" --name fe
expect_error ABORTED jctl state fe stop
assert_contains "$ERR" "EIO" "to ERROR: the message says EIO"
assert_contains "$ERR" "reset" "to ERROR: the message says the device was reset"
S=$(dev_json fe)
assert_eq "running" "$(jget "$S" state)" "to ERROR: the device was reset to running"
assert_eq "1" "$(jget "$S" stats.resets)" "to ERROR: stats.resets 1"
assert_eq "1" "$(jget "$S" stats.failed_arcs)" "to ERROR: stats.failed_arcs 1"
assert_eq "false" "$(jget "$S" data_session_open)" "to ERROR: no data session"
expect_exit 0 jctl state fe running_p2p
assert_eq "running->running_p2p" "$(jlist "$OUT" arcs)" "after the reset the device works"

# RESUMING -> STOP validates the state; with nothing written the device refuses it and stays
# in RESUMING (only a reset leaves a failed RESUMING).
expect_exit 0 jctl attach --sim size=4K --name rz
expect_exit 0 jctl state rz resuming
expect_error ABORTED jctl state rz running
assert_contains "$ERR" "resuming->stop" "empty resume: the failing arc is resuming->stop"
assert_match "$ERR" "E[A-Z]+" "empty resume: an errno name in the message"
assert_eq "resuming" "$(dev_field rz state)" "empty resume: the device stays in resuming"
expect_exit 0 jctl reset rz
assert_eq "running" "$(jget "$OUT" state)" "reset leaves the failed resuming"
B=$(snapshot)

# ---- busy: one operation per device

# The state change is held in its one arc until the refusals have been checked.
expect_exit 0 jctl attach --sim "size=4K,flags=stop_copy,$(held 'running->stop' slow)" --name slow
jctl state slow stop >"$T/bg.out" 2>"$T/bg.err" &
BG=$!
is_busy() { [[ "$(dev_field slow busy)" == true ]]; }
wait_state "the slow device becomes busy" is_busy
# The answer comes while the operation still runs (it says busy): the loop never waits on
# a device.
expect_exit 0 jctl show slow
assert_eq "true set-state" "$(jget "$OUT" busy) $(jget "$OUT" busy_operation)" "show: busy, busy_operation set-state"
assert_eq "running" "$(jget "$OUT" state)" "show while busy: the last observed state"
expect_error FAILED_PRECONDITION jctl state slow running
assert_contains "$ERR" "busy" "a second state change: busy"
expect_error FAILED_PRECONDITION jctl detach slow
assert_contains "$ERR" "busy" "detach while busy: busy"
expect_error FAILED_PRECONDITION jctl reset slow
expect_error FAILED_PRECONDITION jctl save slow "$T/slow.sav"
assert_file_absent "$T/slow.sav" "save while busy: no file"
assert_eq "" "$(find "$T" -name '.slow.sav.vfio-migd-partial*')" "save while busy: no partial file"
refused_while_held slow "the first operation" "the first state change succeeds"
assert_eq "stop" "$(jget "$(<"$T/bg.out")" state 2>&1)" "the first state change reaches stop"
S=$(dev_json slow)
assert_eq "stop false 1 1 0" \
    "$(jget "$S" state) $(jget "$S" busy) $(jget "$S" stats.transitions) $(jget "$S" stats.arcs) $(jget "$S" stats.failed_arcs)" \
    "after busy refusals: stop, idle, one transition, one arc, no failure"
assert_eq "" "$(jget "$S" stats.last_error)" "busy refusals leave no last_error"
expect_exit 0 jctl detach slow

# ---- a device without migration support

expect_exit 0 jctl attach --sim size=4K,migratable=0 --name nm
assert_eq "false" "$(jget "$OUT" migratable)" "migratable=0: migratable false"
assert_eq "0" "$(jget "$OUT" 'flags.#')" "migratable=0: no migration flags"
assert_eq "running" "$(jget "$OUT" state)" "migratable=0: running"
expect_exit 0 jctl save keep "$T/keep.sav" --force
B=$(snapshot)
expect_error FAILED_PRECONDITION jctl state nm stop
assert_contains "$ERR" "does not support VFIO migration" "not migratable: state change refused, says why"
unchanged "$B" "a state change of a non-migratable device"
expect_error FAILED_PRECONDITION jctl save nm "$T/nm.sav"
assert_file_absent "$T/nm.sav" "not migratable: save writes no file"
unchanged "$B" "a save of a non-migratable device"
expect_error FAILED_PRECONDITION jctl restore nm "$T/keep.sav"
unchanged "$B" "a restore into a non-migratable device"
expect_exit 0 ctl state nm
assert_eq "running" "$OUT" "state of a non-migratable device: running"
# VFIO_DEVICE_RESET does not need migration support; the device is running afterwards.
expect_exit 0 jctl reset nm
assert_eq "running" "$(jget "$OUT" state)" "reset of a non-migratable device answers running"
assert_eq "running" "$(dev_field nm state)" "reset of a non-migratable device leaves it running"
expect_exit 0 jctl detach nm

# The daemon is healthy after all this.
expect_exit 0 ctl health
