#!/usr/bin/env bash
# The everyday commands against a real daemon: attach (named and auto ids), devices, show,
# state transitions with the kernel's arcs for each of the four flag sets, state without a
# target, pre_copy and back, reset, detach, health, version.
# shellcheck disable=SC2119 # helpers called without arguments on purpose
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

# Debug level: the trace of each arc's start (op_run_arc) shows operations running at once.
start_daemon --log-level debug

expect_exit 0 jctl devices
assert_eq "0" "$(jget "$OUT" '#')" "a new daemon has no devices"
expect_exit 0 ctl devices
assert_contains "$OUT" "ID" "devices (text) prints a header even when empty"

# ---- attach

# An empty --sim is refused (issue 10 item 4: no empty value stands for the defaults); one
# option at its default value gives a device with every other option at its default.
expect_exit 2 jctl attach --sim ""
assert_contains "$ERR" "--sim: an empty value is refused" "attach --sim '': refused"
expect_exit 0 jctl attach --sim latency_ms=0
assert_eq "sim0" "$(jget "$OUT" id)" "attach without --name: id sim0"
assert_eq "sim" "$(jget "$OUT" backend)" "attach: backend sim"
assert_eq "running" "$(jget "$OUT" state)" "attach: a new device is running"
assert_eq "stop_copy p2p pre_copy" "$(jlist "$OUT" flags)" "attach --sim: default flags are all three"
assert_eq "1048576" "$(jget "$OUT" data_size)" "attach --sim: default size 1 MiB"
expect_exit 0 jctl attach --sim size=4K
assert_eq "sim1" "$(jget "$OUT" id)" "second attach without --name: id sim1"
assert_eq "4096" "$(jget "$OUT" data_size)" "size=4K: data_size 4096"
expect_exit 0 jctl attach --sim size=64K --name alpha
assert_eq "alpha" "$(jget "$OUT" id)" "attach --name alpha: id alpha"
expect_exit 0 jctl attach --sim size=4K --name sim2
assert_eq "sim2" "$(jget "$OUT" id)" "attach --name sim2 takes a name of the auto-id form"
expect_exit 0 jctl attach --sim size=4K
assert_eq "sim3" "$(jget "$OUT" id)" "auto ids skip a taken id (sim2 -> sim3)"
expect_exit 0 ctl attach --sim size=1M --name beta
assert_eq "attached beta (sim, state running)" "$OUT" "attach (text)"
expect_exit 0 jctl attach --model generic --sim size=2M --name gamma
assert_eq "2097152" "$(jget "$OUT" data_size)" "--model generic, size=2M: data_size"
expect_exit 0 jctl attach --sim size=1G --name huge
assert_eq "1073741824" "$(jget "$OUT" data_size)" "size=1G: data_size (simulated, costs no memory)"

# A device found in another state than running (left by a previous owner) is reset on attach.
expect_exit 0 jctl attach --sim size=4K,initial_state=stop_copy --name found
assert_eq "running" "$(jget "$OUT" state)" "attach of a device found in stop_copy: reset to running"
assert_eq "1 false" "$(jget "$OUT" stats.resets) $(jget "$OUT" data_session_open)" \
    "attach of a device found in stop_copy: one reset, no data session"
assert_contains "$(<"$T/daemon.log")" "'found' was found in stop_copy" "the daemon logs the recovery"
expect_exit 0 jctl detach found

# ---- devices

expect_exit 0 jctl devices
DEVS=$OUT
assert_eq "8" "$(jget "$DEVS" '#')" "devices lists 8 devices"
ids=""
for i in $(seq 0 7); do
    ids+="$(jget "$DEVS" "$i.id") "
done
assert_eq "alpha beta gamma huge sim0 sim1 sim2 sim3 " "$ids" "devices are sorted by id"
for k in id backend state flags; do
    assert_eq "8" "$("$PY" -c 'import json,sys; print(sum(1 for d in json.loads(sys.argv[1]) if sys.argv[2] in d))' "$DEVS" "$k")" \
        "every device in devices has '$k'"
done
assert_eq "alpha sim running" "$(jget "$DEVS" 0.id) $(jget "$DEVS" 0.backend) $(jget "$DEVS" 0.state)" \
    "devices: alpha's id, backend, state"
assert_eq "stop_copy p2p pre_copy" "$(jlist "$DEVS" 0.flags)" "devices: alpha's flags"
# Each device in the list is exactly what show prints.
SHOW_ALL=""
for d in alpha beta gamma huge sim0 sim1 sim2 sim3; do
    SHOW_ALL+="$(dev_json "$d"),"
done
assert_eq "$(jnorm "[${SHOW_ALL%,}]")" "$(jnorm "$DEVS")" "devices --json: each device exactly as show prints it"
expect_exit 0 ctl devices
assert_line_match "$OUT" "^alpha +sim +running +stop_copy\+p2p\+pre_copy +64 KiB +-$" "devices (text): alpha's row, in no group"
assert_line_match "$OUT" "^ID +BACKEND +STATE +FLAGS +DATA-SIZE +GROUP$" "devices (text): header"
expect_exit 0 ctl --no-headers devices
assert_line_match "$OUT" "^alpha +sim +running +stop_copy\+p2p\+pre_copy +64 KiB +-$" "devices --no-headers: alpha's row"
assert_not_contains "$OUT" "BACKEND" "devices --no-headers: no header line"
assert_eq "8" "$(wc -l <<<"$OUT")" "devices --no-headers: one line per device"

# ---- show

expect_exit 0 jctl show alpha
SHOW=$OUT
for k in id backend state flags migration_flags migratable data_size busy busy_operation \
    data_session_open stats digest size properties; do
    check "show has '$k'" jget "$SHOW" "$k" >/dev/null
done
for k in transitions arcs failed_arcs resets bytes_saved bytes_restored last_error; do
    assert_eq "0" "$(jget "$SHOW" "stats.$k" | sed 's/^$/0/')" "show of a new device: stats.$k is 0 (or empty)"
done
assert_match "$(jget "$SHOW" digest)" "^[0-9a-f]{16}$" "show: digest is 16 hex digits"
assert_eq "$(jget "$SHOW" digest)" "$(jget "$SHOW" properties.digest)" "show: digest is also under properties"
assert_eq "65536" "$(jget "$SHOW" size)" "show: size property"
assert_eq "7" "$(jget "$SHOW" migration_flags)" "show: migration_flags 7"
assert_eq "true" "$(jget "$SHOW" migratable)" "show: migratable"
assert_eq "false" "$(jget "$SHOW" busy)" "show: not busy"
assert_eq "false" "$(jget "$SHOW" data_session_open)" "show: no data session"
expect_exit 0 ctl show alpha
assert_line_match "$OUT" "^id: +alpha$" "show (text): id"
assert_line_match "$OUT" "^state: +running$" "show (text): state"
assert_line_match "$OUT" "^digest: +[0-9a-f]{16}$" "show (text): digest"
# Reads change nothing.
assert_eq "$(jnorm "$SHOW")" "$(jnorm "$(dev_json alpha)")" "show twice: the same answer"

# Digests: equal exactly when the content is: the same seed and size give the same digest.
expect_exit 0 jctl attach --sim size=64K,seed=42 --name twin1
expect_exit 0 jctl attach --sim size=64K,seed=42 --name twin2
expect_exit 0 jctl attach --sim size=64K,seed=43 --name other
assert_eq "$(dev_field twin1 digest)" "$(dev_field twin2 digest)" "same seed and size: the same digest"
assert_ne "$(dev_field twin1 digest)" "$(dev_field other digest)" "another seed: another digest"
assert_ne "$(dev_field alpha digest)" "$(dev_field sim1 digest)" "two default devices have different digests"
D0=$(dev_field twin1 digest)
expect_exit 0 jctl state twin1 stop
assert_ne "$D0" "$(dev_field twin1 digest)" "stopping a device changes its content (digest)"
assert_ne "$(dev_field twin1 digest)" "$(dev_field twin2 digest)" "twins differ once one of them ran"
expect_exit 0 jctl state twin2 stop
assert_eq "$(dev_field twin1 digest)" "$(dev_field twin2 digest)" "twins are equal again after the same history"
for d in twin1 twin2 other; do
    expect_exit 0 jctl detach "$d"
done

# ---- state transitions, per flag set

# moves DEV TARGET "ARC ARC ...": one state change and its arcs
moves() {
    local dev=$1 target=$2 want=$3 st arcs
    expect_exit 0 jctl state "$dev" "$target"
    { read -r st; read -r arcs; } < <(jget "$OUT" state 'arcs[]' 2>&1)
    assert_eq "$target" "$st" "state $dev $target: final state"
    assert_eq "$want" "$arcs" "state $dev $target: arcs"
    assert_eq "$target" "$(dev_field "$dev" state)" "state $dev $target: show agrees"
}

# refuses DEV TARGET: refused up front, nothing changes
refuses() {
    local dev=$1 target=$2 before
    before=$(jnorm "$(dev_json "$dev")")
    expect_error INVALID_ARGUMENT jctl state "$dev" "$target"
    assert_contains "$ERR" "EINVAL" "  ... with EINVAL in the message"
    assert_eq "$before" "$(jnorm "$(dev_json "$dev")")" "  ... and $dev is unchanged"
}

# session DEV true|false
session() {
    assert_eq "$2" "$(dev_field "$1" data_session_open)" "$1 in $(dev_field "$1" state): data_session_open $2"
}

# flags=stop_copy: the minimal device
expect_exit 0 jctl attach --sim flags=stop_copy,size=4K --name f1
assert_eq "stop_copy" "$(jlist "$OUT" flags)" "flags=stop_copy: flags"
assert_eq "1" "$(jget "$OUT" migration_flags)" "flags=stop_copy: migration_flags 1"
moves f1 stop "running->stop"
session f1 false
moves f1 stop_copy "stop->stop_copy"
session f1 true
moves f1 running "stop_copy->stop stop->running"
session f1 false
moves f1 stop_copy "running->stop stop->stop_copy"
moves f1 resuming "stop_copy->stop stop->resuming"
session f1 true
# RESUMING -> STOP validates the state written; with none written the device refuses it
# (test_errors.sh), so leave RESUMING by a reset here.
expect_exit 0 jctl reset f1
moves f1 stop "running->stop"
moves f1 running "stop->running"
refuses f1 running_p2p
refuses f1 pre_copy
refuses f1 pre_copy_p2p
refuses f1 error

# Other spellings of the flags option (simulated-devices.md): '|' and numbers.
expect_exit 0 jctl attach --sim "flags=stop_copy|p2p,size=4K" --name fs1
assert_eq "3" "$(jget "$OUT" migration_flags)" "flags=stop_copy|p2p: migration_flags 3"
expect_exit 0 jctl attach --sim "flags=0x5,size=4K" --name fs2
assert_eq "stop_copy pre_copy" "$(jlist "$OUT" flags)" "flags=0x5: stop_copy+pre_copy"
expect_exit 0 jctl attach --sim "flags=7,size=4K" --name fs3
assert_eq "7" "$(jget "$OUT" migration_flags)" "flags=7: all three"
for d in fs1 fs2 fs3; do expect_exit 0 jctl detach "$d"; done

# flags=stop_copy+p2p
expect_exit 0 jctl attach --sim flags=stop_copy+p2p,size=4K --name f3
assert_eq "stop_copy p2p" "$(jlist "$OUT" flags)" "flags=stop_copy+p2p: flags"
assert_eq "3" "$(jget "$OUT" migration_flags)" "flags=stop_copy+p2p: migration_flags 3"
moves f3 stop "running->running_p2p running_p2p->stop"
moves f3 running "stop->running_p2p running_p2p->running"
moves f3 running_p2p "running->running_p2p"
moves f3 stop_copy "running_p2p->stop stop->stop_copy"
moves f3 running "stop_copy->stop stop->running_p2p running_p2p->running"
moves f3 resuming "running->running_p2p running_p2p->stop stop->resuming"
expect_exit 0 jctl reset f3
moves f3 running_p2p "running->running_p2p"
moves f3 stop "running_p2p->stop"
moves f3 running_p2p "stop->running_p2p"
moves f3 running "running_p2p->running"
refuses f3 pre_copy
refuses f3 pre_copy_p2p

# flags=stop_copy+pre_copy
expect_exit 0 jctl attach --sim flags=stop_copy+pre_copy,size=4K --name f5
assert_eq "stop_copy pre_copy" "$(jlist "$OUT" flags)" "flags=stop_copy+pre_copy: flags"
assert_eq "5" "$(jget "$OUT" migration_flags)" "flags=stop_copy+pre_copy: migration_flags 5"
moves f5 pre_copy "running->pre_copy"
session f5 true
moves f5 stop_copy "pre_copy->stop_copy"
session f5 true
moves f5 running "stop_copy->stop stop->running"
moves f5 stop "running->stop"
moves f5 pre_copy "stop->running running->pre_copy"
moves f5 running "pre_copy->running"
session f5 false
refuses f5 running_p2p
refuses f5 pre_copy_p2p

# all three flags
expect_exit 0 jctl attach --sim flags=stop_copy+p2p+pre_copy,size=4K --name f7
assert_eq "7" "$(jget "$OUT" migration_flags)" "flags=stop_copy+p2p+pre_copy: migration_flags 7"
moves f7 stop "running->running_p2p running_p2p->stop"
moves f7 running "stop->running_p2p running_p2p->running"
moves f7 pre_copy "running->pre_copy"
session f7 true
moves f7 stop_copy "pre_copy->pre_copy_p2p pre_copy_p2p->stop_copy"
session f7 true
refuses f7 pre_copy
refuses f7 pre_copy_p2p
moves f7 stop "stop_copy->stop"
session f7 false
moves f7 pre_copy_p2p "stop->running_p2p running_p2p->pre_copy_p2p"
session f7 true
moves f7 pre_copy "pre_copy_p2p->pre_copy"
moves f7 running "pre_copy->running"
session f7 false
moves f7 resuming "running->running_p2p running_p2p->stop stop->resuming"
session f7 true
expect_exit 0 jctl reset f7
moves f7 stop "running->running_p2p running_p2p->stop"
moves f7 pre_copy "stop->running_p2p running_p2p->running running->pre_copy"
moves f7 running_p2p "pre_copy->running running->running_p2p"
moves f7 running "running_p2p->running"
refuses f7 error

# The same target again: no arc, success.
moves f7 running ""

# Statistics: f7 made 13 requests that moved it (the last one did not), 23 arcs, one reset.
S=$(dev_json f7)
assert_eq "13" "$(jget "$S" stats.transitions)" "f7: stats.transitions counts the requests that moved it"
assert_eq "23" "$(jget "$S" stats.arcs)" "f7: stats.arcs counts every arc"
assert_eq "1" "$(jget "$S" stats.resets)" "f7: stats.resets counts the reset"
assert_eq "0" "$(jget "$S" stats.failed_arcs)" "f7: no failed arc"
assert_eq "" "$(jget "$S" stats.last_error)" "f7: refusals leave no last_error"

# ---- state without a target, text output, short names

expect_exit 0 ctl state f7
assert_eq "running" "$OUT" "state ID (text): prints the state"
expect_exit 0 jctl state f7
assert_eq "f7 running" "$(jget "$OUT" id) $(jget "$OUT" state)" "state ID --json: id and state"
expect_exit 0 ctl state f7 STOP
assert_line_match "$OUT" "^running +-> running_p2p" "state (text): one line per arc"
assert_line_match "$OUT" "^f7: stop \(2 arcs, " "state (text): the summary line"
expect_exit 0 ctl state f7
assert_eq "stop" "$OUT" "state ID after a move"
expect_exit 0 jctl state f7 run
assert_eq "running" "$(jget "$OUT" state)" "state ID run: short names work"
expect_exit 0 jctl state f7 pc
assert_eq "pre_copy" "$(jget "$OUT" state)" "state ID pc: short names work"
check "state --json answers arc_times_us" jget "$OUT" arc_times_us.0
check "state --json answers elapsed_ms" jget "$OUT" elapsed_ms

# ---- pre_copy and back

expect_exit 0 jctl attach --sim size=256K --name pc
moves pc pre_copy "running->pre_copy"
session pc true
assert_eq "false" "$(dev_field pc busy)" "pc: idle in pre_copy"
moves pc running "pre_copy->running"
session pc false
moves pc pre_copy_p2p "running->running_p2p running_p2p->pre_copy_p2p"
moves pc running "pre_copy_p2p->running_p2p running_p2p->running"

# ---- reset

expect_exit 0 jctl state pc stop_copy
S0=$(dev_json pc)
R0=$(jget "$S0" stats.resets)
expect_exit 0 jctl reset pc
assert_eq "running" "$(jget "$OUT" state)" "reset from stop_copy: running"
assert_eq "pc" "$(jget "$OUT" id)" "reset --json: id"
S=$(dev_json pc)
assert_eq "running" "$(jget "$S" state)" "after reset: show says running"
assert_eq "false" "$(jget "$S" data_session_open)" "after reset: the data session is gone"
assert_eq "$((R0 + 1))" "$(jget "$S" stats.resets)" "reset: stats.resets + 1"
# devices.proto: transitions counts SetDeviceState/Save/Restore requests, arcs single arcs.
assert_eq "$(jget "$S0" stats.transitions)" "$(jget "$S" stats.transitions)" "reset: not counted in stats.transitions"
assert_eq "$(jget "$S0" stats.arcs) $(jget "$S0" stats.failed_arcs)" \
    "$(jget "$S" stats.arcs) $(jget "$S" stats.failed_arcs)" "reset: not counted in stats.arcs / failed_arcs"
expect_exit 0 jctl state pc resuming
expect_exit 0 ctl reset pc
assert_contains "$OUT" "running" "reset from resuming (text): running"
assert_eq "running false" "$(dev_field pc state) $(dev_field pc data_session_open)" "reset from resuming: running, no session"
expect_exit 0 jctl reset pc
assert_eq "running" "$(jget "$OUT" state)" "reset of a running device: running"
# The device is fully usable after a reset.
moves pc stop "running->running_p2p running_p2p->stop"
moves pc running "stop->running_p2p running_p2p->running"

# ---- detach

expect_exit 0 jctl detach pc
assert_eq "pc true" "$(jget "$OUT" id) $(jget "$OUT" detached)" "detach --json: id, detached"
assert_not_contains "$(jctl devices)" '"pc"' "a detached device is not listed"
expect_error NOT_FOUND jctl show pc
expect_error NOT_FOUND jctl detach pc
expect_exit 0 jctl attach --sim size=4K --name pc
assert_eq "running" "$(jget "$OUT" state)" "an id is free again after detach"
expect_exit 0 ctl detach pc
assert_eq "detached pc" "$OUT" "detach (text)"
# A device is detached in any state, also with an open data session.
expect_exit 0 jctl state f5 pre_copy
expect_exit 0 jctl detach f5
expect_exit 0 jctl state f3 resuming
expect_exit 0 jctl detach f3
for d in alpha beta gamma huge sim0 sim1 sim2 sim3 f1 f7; do
    expect_exit 0 jctl detach "$d"
done
expect_exit 0 jctl devices
assert_eq "[]" "$(jnorm "$OUT")" "every device detached: devices is empty"

# ---- operations on different devices run in parallel

# Both arcs are held until released: once both have begun (their traces are in the log), they
# run at the same time, as neither can end before the release. No arc is assumed to last long
# enough for the other to begin.
expect_exit 0 jctl attach --sim "size=4K,flags=stop_copy,$(held 'running->stop' par)" --name par1
expect_exit 0 jctl attach --sim "size=4K,flags=stop_copy,$(held 'running->stop' par)" --name par2
jctl state par1 stop >"$T/par1.out" 2>&1 &
P1=$!
jctl state par2 stop >"$T/par2.out" 2>&1 &
P2=$!
both_in_arc() {
    grep -q -F "trace op_run_arc: par1 running->stop" "$T/daemon.log" &&
        grep -q -F "trace op_run_arc: par2 running->stop" "$T/daemon.log"
}
wait_state "two slow state changes on two devices run at the same time" both_in_arc
release par
R1=0 R2=0
wait "$P1" || R1=$?
wait "$P2" || R2=$?
assert_eq "0 0" "$R1 $R2" "two slow state changes on two devices succeed"
assert_eq "stop stop" "$(dev_field par1 state) $(dev_field par2 state)" "both devices reached stop"
expect_exit 0 jctl detach par1
expect_exit 0 jctl detach par2

# ---- health, version

expect_exit 0 ctl health
assert_eq "SERVING" "$OUT" "health: SERVING"
expect_exit 0 jctl health
assert_eq "serving" "$(jget "$OUT" status)" "health --json: serving"
expect_exit 0 ctl health vfio_migd.v1.DeviceService
assert_eq "SERVING" "$OUT" "health of DeviceService: SERVING"
expect_exit 0 jctl version
V=$OUT
assert_eq "$DAEMON_PID" "$(jget "$V" pid)" "version: pid is the daemon's"
assert_eq "$PROJECT_VERSION" "$(jget "$V" daemon_version)" "version: daemon_version"
assert_eq "$PROJECT_VERSION" "$(jget "$V" client_version)" "version: client_version"
assert_eq "vfio_migd.v1" "$(jget "$V" api)" "version: api vfio_migd.v1"
assert_contains " $(jlist "$V" backends) " " sim " "version: backends include sim"
assert_match "$(jget "$V" uptime_ms)" "^[0-9]+$" "version: uptime_ms is a number"
assert_match "$(jget "$V" grpc_core)" "^[0-9]+\." "version: grpc_core version"
sleep 0.2 # a lower bound only: a busy machine makes the pause longer, never shorter
assert_le "$(jget "$V" uptime_ms)" "$(($(jget "$(jctl version)" uptime_ms) - 150))" "version: uptime grows"
