#!/usr/bin/env bash
# Restart without reset (issue 15 item 1), under the service-manager harness with its fd store
# on (FileDescriptorStoreMax=64): a daemon holding sim devices in RUNNING, STOP and PRE_COPY,
# two of them in a group, is killed with SIGKILL; the next daemon, given the stored fds as
# systemd gives them, has every device in the same state with the same content digest, and the
# group. Then a journal that is not one: a clear log line, every stored fd closed, no crash.
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
    expect_exit 0 sdh start --log "$SDH/service.log" -- "$VFIO_MIGD" --log-level info
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
