#!/usr/bin/env bash
# Restart without reset (issue 15 item 1), under the service-manager harness with its fd store
# on (FileDescriptorStoreMax=64): a daemon holding sim devices in RUNNING, STOP and PRE_COPY,
# two of them in a group, is killed with SIGKILL; the next daemon, given the stored fds as
# systemd gives them, has every device in the same state with the same content digest, and the
# group. A save in flight when the daemon dies fails cleanly (its device back to running) and
# is listed as failed under its old id. A destination whose migration is in doubt keeps its
# devices as they are across the restart. Then a journal that is not one: a clear log line, every stored fd closed, no crash.
# shellcheck disable=SC2119 # helpers called without arguments on purpose
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

SDSOCK=$SDH/api.sock
sdctl() { timeout -k 2 "$CTL_TIMEOUT" "$VFIO_MIGCTL" --socket "$SDSOCK" --json "$@"; }
service_log() { cat "$SDH/service.log" 2>/dev/null || true; }
# state:digest of each device
states() {
    local id j out=()
    for id in "$@"; do
        j=$(sdctl show "$id")
        out+=("$(jget "$j" state):$(jget "$j" digest)")
    done
    echo "${out[*]}"
}
start_service() {
    expect_exit 0 sdh start --log "$SDH/service.log" -- "$VFIO_MIGD" --log-level info --allowed-dirs "$T"
    expect_exit 0 sdh wait-notify READY=1
}
kill_service() {
    expect_exit 0 sdh kill KILL
    expect_exit 0 sdh wait-exit
}

sdh_serve --fdstore-max 64
sdh listen api "$SDSOCK" >/dev/null
start_service

expect_exit 0 sdctl attach --sim size=256K,seed=11 --name run0
expect_exit 0 sdctl attach --sim size=256K,seed=12 --name stop0
expect_exit 0 sdctl attach --sim size=256K,seed=13,precopy_dirty=4096 --name pre0
expect_exit 0 sdctl attach --sim size=256K,seed=14 --name "0000:3b:00.2"
expect_exit 0 sdctl state stop0 stop
expect_exit 0 sdctl state pre0 pre_copy
expect_exit 0 sdctl group create vm1 run0 "0000:3b:00.2"
BEFORE=$(states run0 stop0 pre0 "0000:3b:00.2")
assert_contains "$BEFORE" "stop" "a device in STOP before the crash"
STORE=$(sdh fdstore)
assert_contains "$STORE" "dev/0000%3b%00.2/sim-state" "a device's state memfd is stored, ':' encoded"
assert_match "$STORE" "state-journal\.[01]" "the journal is stored"

# Detach removes a device's fds from the store.
expect_exit 0 sdctl attach --sim size=4K --name gone0
assert_contains "$(sdh fdstore)" "dev/gone0/sim-state" "attach stores the device's state"
expect_exit 0 sdctl detach gone0
assert_not_contains "$(sdh fdstore)" "dev/gone0/" "detach removes it from the store"

kill_service
start_service
AFTER=$(states run0 stop0 pre0 "0000:3b:00.2")
assert_eq "$BEFORE" "$AFTER" "after SIGKILL: every device in the same state with the same digest"
expect_exit 0 sdctl group show vm1
assert_contains "$OUT" "run0" "the group came back"
assert_contains "$(service_log)" "Restart: recovered 4 device(s) without a reset and 1 group(s)" \
    "one line says what was recovered"
assert_not_contains "$(service_log)" "resetting it" "nothing was reset"
# The recovered devices keep working, and a second crash keeps them again.
expect_exit 0 sdctl state stop0 running
kill_service
start_service
assert_eq "running" "$(jget "$(sdctl show stop0)" state)" "a change after the restart survives the next"

# A save in flight (held in its stop -> stop_copy arc, the device stopping): after SIGKILL it
# fails cleanly by the migration rule (the device back to running) and `jobs` lists it, failed,
# under its old id; the next job gets a new id.
expect_exit 0 sdctl attach --sim "size=64K,seed=21,$(held 'stop->stop_copy' save0)" --name save0
sdctl save save0 "$T/save0.sav" >"$T/bg.out" 2>"$T/bg.err" &
BG=$!
save_held() {
    [[ "$(jget "$(sdctl jobs)" 0.state)" == active && "$(jget "$(sdctl show save0)" state)" != running ]]
}
wait_state "the save is in flight, its device no longer running" save_held
SAVE_ID=$(jget "$(sdctl jobs)" 0.id)
kill_service
wait_bg
start_service
save0_running() { [[ "$(jget "$(sdctl show save0)" state)" == running ]]; }
wait_state "after SIGKILL: the device of the save in flight is running again" save0_running
expect_exit 0 sdctl jobs
assert_eq "$SAVE_ID failed save save0" "$(jget "$OUT" 0.id 0.state 0.role 0.group | tr '\n' ' ' | sed 's/ $//')" \
    "  ... and \`jobs\` lists the save as failed, under its old id"
assert_contains "$(jget "$OUT" 0.error)" "the daemon restarted while it was in flight (in phase connecting); its devices went back to running" \
    "  ... saying why"
release save0
expect_exit 0 sdctl save save0 "$T/save1.sav"
assert_eq "completed $SAVE_ID" "$(jget "$(sdctl jobs)" 0.state 1.id | tr '\n' ' ' | sed 's/ $//')" \
    "a new save of the device completes, listed before the failed one (so under a new id)"
expect_exit 0 sdctl detach save0

# A destination past its commit point (issue 11 item 5): PREPARED sent, the link cut before the
# source's decision (tcp_proxy.py --cut-at PREPARED), the job in doubt. A restart must not
# decide where the VM runs: the devices stay as they were (stop, same content), not reset.
start_named_daemon S
expect_exit 0 njctl S attach --sim size=256K,seed=31 --name held0
expect_exit 0 njctl S group create held held0
expect_exit 0 sdctl attach --sim size=256K --name held0
expect_exit 0 sdctl group create held held0
# In clear (--tls off on both sides): the proxy reads the control messages to cut at one.
expect_exit 0 sdctl incoming held --listen 127.0.0.1:0 --resume --tls off
HELD_ID=$(jget "$OUT" id)
HELD_TOKEN=$(jget "$OUT" token)
start_proxy "$(jget "$OUT" address)" --cut-at PREPARED
run njctl S migrate held --to "$PROXY_ADDR" --token "$HELD_TOKEN" --wait --tls off
stop_proxy
held_in_doubt() { [[ "$(jget "$(sdctl job "$HELD_ID")" state)" == in_doubt ]]; }
if wait_until "$STATE_WAIT" held_in_doubt; then
    pass "the destination's migration is in doubt"
else
    fail "the destination's migration is in doubt" "$(sdctl job "$HELD_ID")"
fi
HELD=$(states held0)
assert_contains "$HELD" "stop:" "the device in doubt is held in stop"
kill_service
start_service
assert_eq "$HELD" "$(states held0)" "after SIGKILL: the device of the migration in doubt is left as it was (not reset)"
assert_contains "$(service_log)" "was past its commit point when the previous daemon ended: its devices are left as they are" \
    "the log says why, and what to do"

# A journal that is not one: one clear line, every stored fd closed, the daemon runs empty.
kill_service
expect_exit 0 sdh fdstore-clear
sdh pass state-journal.0 file >/dev/null
sdh pass dev/x0/sim-state file >/dev/null
start_service
assert_contains "$(service_log)" "the state journal is unusable ('state-journal.0': it is not a sealed memfd); closed the 1 stored fd(s)" \
    "a bad journal: a clear log line"
expect_exit 0 sdctl devices
assert_eq "[]" "$(jnorm "$OUT")" "a bad journal: no device"
expect_exit 0 sdctl health

sdh_quit
