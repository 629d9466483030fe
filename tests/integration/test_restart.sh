#!/usr/bin/env bash
# Restart without reset (issue 15 item 1), under the service-manager harness with its fd store
# on (FileDescriptorStoreMax=64): a daemon holding sim devices in RUNNING, STOP and PRE_COPY,
# two of them in a group, is killed with SIGKILL; the next daemon, given the stored fds as
# systemd gives them, has every device in the same state with the same content digest, and the
# group. A live migration killed mid-pre-copy: its data fd was in the store (mig/<id>/data) and
# is closed by the next daemon, which fails the job and runs the device again, same digest.
# A save in flight when the daemon dies fails cleanly (its device back to running) and
# is listed as failed under its old id. A live migration in doubt comes back in doubt (both
# roles), its devices as they were, and resolves as before the restart (both ways); once
# resolved, a restart does not bring it back. Then a journal that is not one: a clear log line,
# every stored fd closed, no crash.
# shellcheck disable=SC2119 # helpers called without arguments on purpose
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

# state:digest of each device
states() {
    local id j out=()
    for id in "$@"; do
        j=$(sdctl show "$id")
        out+=("$(jget "$j" state):$(jget "$j" digest)")
    done
    echo "${out[*]}"
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
assert_contains "$STORE" "mig/pre0/data" "the data fd pre_copy opened is stored"

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
assert_contains "$(service_log)" "the data fd of 'pre0' came back with no journaled job (a state change opened it); closed: its stream is lost, the device stays in pre_copy" \
    "the data fd no job used: checked, closed, and the log says so"
assert_not_contains "$(sdh fdstore)" "mig/pre0/" "  ... and it left the store"
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

# A live migration in pre-copy (held there by a 1 B/s cap): its device's data fd is in the
# store as mig/<id>/data while the job runs. After SIGKILL the next daemon takes it back,
# checks it, closes it (the entry leaves the store), fails the job and runs the device again,
# its content unchanged.
start_named_daemon D
expect_exit 0 njctl D attach --sim size=256K --name live0
expect_exit 0 njctl D group create live live0
expect_exit 0 njctl D incoming live --listen 127.0.0.1:0 --tls off
LIVE_ADDR=$(jget "$OUT" address)
LIVE_TOKEN=$(jget "$OUT" token)
expect_exit 0 sdctl attach --sim size=256K,seed=41 --name live0
expect_exit 0 sdctl group create live live0
LIVE_BEFORE=$(states live0)
assert_not_contains "$(sdh fdstore)" "mig/live0/" "no data fd in the store before the migration"
expect_exit 0 sdctl migrate live --to "$LIVE_ADDR" --token "$LIVE_TOKEN" --bandwidth 1 --tls off
LIVE_ID=$(jget "$OUT" id)
live_in_precopy() { [[ "$(jget "$(sdctl job "$LIVE_ID")" phase)" == precopy ]]; }
wait_state "the live migration is in pre-copy" live_in_precopy
assert_contains "$(states live0)" "pre_copy:" "its device is in pre_copy"
assert_contains "$(sdh fdstore)" "mig/live0/data" "while it runs, the store holds the device's data fd"
kill_service
start_service
live0_running() { [[ "$(jget "$(sdctl show live0)" state)" == running ]]; }
wait_state "after SIGKILL mid-pre-copy: the device is running again" live0_running
assert_eq "$LIVE_BEFORE" "$(states live0)" "  ... with the digest it had before the migration"
assert_eq "failed" "$(jget "$(sdctl job "$LIVE_ID")" state)" "  ... and the job is listed as failed"
assert_not_contains "$(sdh fdstore)" "mig/live0/" "  ... and its data fd has left the store"
assert_contains "$(service_log)" "Restart: the data fd of 'live0' (job '$LIVE_ID') came back; closed before the job is failed." \
    "  ... and the log says the data fd was closed before the job failed"

# A live migration past its commit point (issue 11 item 5) comes back in doubt: a restart must
# not decide where the VM runs, and the orchestrator's protocol (ask the other side, then
# resolve) must work as before it. The harness's daemon is the destination of the first two
# migrations and the source of the third; the named daemon S is the other side.
start_named_daemon S
# job_of ID : `job ID` on the harness's daemon ('{}' when there is none)
job_of() { sdctl job "$1" 2>/dev/null || echo '{}'; }
job_state_is() { [[ "$(jget "$(job_of "$1")" state 2>/dev/null)" == "$2" ]]; }
s_job_state_is() { [[ "$(jget "$(job_json S "$1")" state 2>/dev/null)" == "$2" ]]; }
restart_service() {
    kill_service
    start_service
}
# on SIDE ARGS... : the CLI (--json) on the harness's daemon (sd) or on S
on() { if [[ $1 == sd ]]; then sdctl "${@:2}"; else njctl S "${@:2}"; fi; }
# pair SRC DST GROUP SEED : a one-device group GROUP (its device GROUP0) on both daemons, the
# source's device seeded SEED
pair() {
    expect_exit 0 on "$1" attach --sim "size=256K,seed=$4" --name "${3}0"
    expect_exit 0 on "$1" group create "$3" "${3}0"
    expect_exit 0 on "$2" attach --sim size=256K --name "${3}0"
    expect_exit 0 on "$2" group create "$3" "${3}0"
}
# cut_migration SRC DST GROUP MESSAGE : SRC (sd or S) migrates GROUP to DST through tcp_proxy.py
# cutting the link at MESSAGE, in clear (--tls off: the proxy reads the control messages);
# sets SRC_ID and DST_ID
cut_migration() {
    local src=$1 dst=$2 group=$3 msg=$4 inc token
    inc=$(on "$dst" incoming "$group" --listen 127.0.0.1:0 --resume --tls off)
    DST_ID=$(jget "$inc" id)
    token=$(jget "$inc" token)
    start_proxy "$(jget "$inc" address)" --cut-at "$msg"
    run on "$src" migrate "$group" --to "$PROXY_ADDR" --token "$token" --wait --tls off
    stop_proxy
    SRC_ID=$(jf "$OUT" id)
}
# both_in_doubt SRC DST GROUP SEED : pair, then cut_migration at COMMIT: both sides in doubt
both_in_doubt() {
    pair "$1" "$2" "$3" "$4"
    cut_migration "$1" "$2" "$3" COMMIT
    if [[ $1 == sd ]]; then wait_state "$W: the source is in doubt" job_state_is "$SRC_ID" in_doubt
    else wait_state "$W: the source is in doubt" s_job_state_is "$SRC_ID" in_doubt; fi
    if [[ $2 == sd ]]; then wait_state "$W: the destination is in doubt" job_state_is "$DST_ID" in_doubt
    else wait_state "$W: the destination is in doubt" s_job_state_is "$DST_ID" in_doubt; fi
}
# in_doubt_kept ID DEVICE FACTS WHAT : after a restart, job ID of the harness's daemon is back in
# doubt under its id, its device DEVICE held as it was (FACTS "state:digest", busy in_doubt),
# listed, and a cancel refused as before the restart
in_doubt_kept() {
    local id=$1 dev=$2 facts=$3 what=$4
    assert_eq "$facts" "$(states "$dev")" "$what: after SIGKILL, the device is left as it was (same state, same digest)"
    assert_eq "$id in_doubt in_doubt" "$(jget "$(job_of "$id")" id state phase | tr '\n' ' ' | sed 's/ $//')" \
        "$what: \`job $id\` shows it in doubt again, under its old id"
    assert_contains "$(sdctl jobs)" "in_doubt" "$what: \`jobs\` lists it in doubt"
    assert_eq "in_doubt" "$(jget "$(sdctl show "$dev")" busy_operation)" "$what: its device is busy, in_doubt"
    expect_exit 1 sdctl cancel "$id"
    assert_contains "$ERR" "is in doubt, it cannot be cancelled" "$what: a cancel is refused, as before the restart"
}

# 1. PREPARED lost: the source never committed and runs the VM (failed); the destination is in
# doubt. Two restarts keep it so; the orchestrator then gives the VM up here (--abort).
W="destination in doubt"
pair S sd held 31
cut_migration S sd held PREPARED
HELD_ID=$DST_ID
wait_state "$W: the destination's migration is in doubt" job_state_is "$HELD_ID" in_doubt
HELD=$(states held0)
assert_contains "$HELD" "stop:" "$W: the device in doubt is held in stop"
kill_service
start_service
in_doubt_kept "$HELD_ID" held0 "$HELD" "$W"
assert_contains "$(service_log)" "live migration '$HELD_ID' of 'held' was past its commit point when the previous daemon ended: it is in doubt again" \
    "$W: the log says so, and what to do"
kill_service
start_service
assert_eq "in_doubt $HELD" "$(jget "$(job_of "$HELD_ID")" state) $(states held0)" \
    "$W: a second restart keeps it in doubt, the device as it was"
assert_eq "failed" "$(jget "$(job_json S "$SRC_ID")" state)" "$W: the source's job failed (it runs the VM)"
expect_exit 0 sdctl resolve "$HELD_ID" --abort
wait_state "$W: resolved --abort after the restarts, the job failed" job_state_is "$HELD_ID" failed
assert_eq "running/" "$(jget "$(sdctl show held0)" state)/$(jget "$(sdctl show held0)" busy_operation)" \
    "$W: ... and the device was reset (running, no longer busy)"
kill_service
start_service
expect_error NOT_FOUND sdctl job "$HELD_ID"
assert_not_contains "$(sdctl jobs)" "in_doubt" "$W: resolved, a restart does not bring the job back"
assert_eq "running" "$(jget "$(sdctl show held0)" state)" "$W: ... nor touch the device"

# 2. COMMIT lost: both sides in doubt; the orchestrator sees the source in doubt (it committed)
# and resumes the destination after its restart (--resume: its auto_resume runs the group), then
# gives the VM up on the source.
W="destination resumed after a restart"
both_in_doubt S sd take 41
TAKE_ID=$DST_ID TAKE_SRC=$SRC_ID
TAKEN=$(states take0)
restart_service
in_doubt_kept "$TAKE_ID" take0 "$TAKEN" "$W"
expect_exit 0 sdctl resolve "$TAKE_ID" --resume
wait_state "$W: resolved --resume, the job completed" job_state_is "$TAKE_ID" completed
expect_exit 0 njctl S resolve "$TAKE_SRC" --abort
wait_state "$W: the source, resolved --abort, completed" s_job_state_is "$TAKE_SRC" completed
assert_eq "$(digests S take0 | sed 's/^stop:/running:/')" "$(states take0)" \
    "$W: the destination runs the VM with the source's state (same digest); the source stopped"
kill_service
start_service
expect_error NOT_FOUND sdctl job "$TAKE_ID"
assert_eq "running" "$(jget "$(sdctl show take0)" state)" \
    "$W: resolved, a restart brings nothing back and leaves the device running"

# 3. COMMIT lost, the harness's daemon the source: in doubt in stop_copy across the restart; with
# both sides in doubt either outcome leaves one copy, and the orchestrator takes the VM back
# here (--resume: the source rolls back to running, the job fails) and gives it up there.
W="source resumed after a restart"
both_in_doubt sd S back 51
BACK_ID=$SRC_ID BACK_DST=$DST_ID
BACK=$(states back0)
assert_contains "$BACK" "stop_copy:" "$W: the source's device is held in stop_copy"
BACK_RUNNING=running:${BACK#stop_copy:}
restart_service
in_doubt_kept "$BACK_ID" back0 "$BACK" "$W"
assert_contains "$(jget "$(job_of "$BACK_ID")" error)" "vfio-migctl resolve $BACK_ID" "$W: the job names the resolve command"
expect_exit 0 sdctl resolve "$BACK_ID" --resume
wait_state "$W: resolved --resume, the job failed (the source runs the VM)" job_state_is "$BACK_ID" failed
expect_exit 0 njctl S resolve "$BACK_DST" --abort
wait_state "$W: the destination, resolved --abort, failed" s_job_state_is "$BACK_DST" failed
assert_eq "$BACK_RUNNING" "$(states back0)" "$W: the source's device runs again with the state it was held with"
kill_service
start_service
expect_error NOT_FOUND sdctl job "$BACK_ID"
assert_eq "$BACK_RUNNING" "$(states back0)" \
    "$W: resolved, a restart brings nothing back and leaves the device running"

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
