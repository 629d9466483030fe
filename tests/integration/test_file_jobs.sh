#!/usr/bin/env bash
# Saves and restores are jobs that end when asked (issue 10 item 2): a cancel puts the devices
# back where they were (the state they were in, not merely "running") and removes the partial
# file, and the daemon's shutdown (SIGTERM) cancels a save of a large device that has minutes
# of writing left, cleanly, within a bound. The large, slow device is a sim device of 1 GiB
# that moves 4 MiB a second (data_rate): its whole save would take over four minutes, far
# beyond every wait here, so a test passes only if the job stops early, whatever the
# machine's speed; no wait here is a measurement.
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

partials() { find "$T" -name '*vfio-migd-partial*'; }

# saved_bytes ID: bytes the job has moved so far
saved_bytes() { jget "$(jctl job "$1")" bytes 2>/dev/null || echo 0; }
# job_of NAME: the id of the active job on NAME
job_of() {
    jctl jobs | "$PY" -S -c '
import json, sys
j = [m for m in json.load(sys.stdin) if m["group"] == sys.argv[1] and m["state"] == "active"]
print(j[0]["id"] if j else "")' "$1"
}

# cancel_job ID WHAT: cancels job ID (its client runs in the background as $BG, its output in
# $T/bg.out and $T/bg.err), waits for the job to end and its client to answer CANCELLED
cancel_job() {
    local id=$1 what=$2
    JID=$id
    expect_exit 0 jctl cancel "$id"
    check "the cancelled $what ends (it had minutes of work left)" wait_until 60 over
    wait_bg
    assert_eq "1 CANCELLED" "$BGRC $(jget "$(<"$T/bg.out")" code 2>&1)" "the $what answers CANCELLED"
}
over() { [[ "$(jget "$(jctl job "$JID")" state)" != active ]]; }

start_daemon

# ==== a cancelled save: back where it was, no partial file

expect_exit 0 jctl attach --sim size=1G,data_rate=4M --name big
expect_exit 0 jctl state big running_p2p
D0=$(dev_field big digest)
jctl save big "$T/big.sav" >"$T/bg.out" 2>"$T/bg.err" &
BG=$!
has_job() { [[ -n "$(job_of big)" ]]; }
check "the save is a job" wait_until 20 has_job
JID=$(job_of big)
writing() { (($(saved_bytes "$JID") > 0)); }
check "the save is writing its file" wait_until 30 writing
assert_ne "" "$(partials)" "  ... into a partial file"
cancel_job "$JID" save
assert_eq "running_p2p false" "$(dev_field big state) $(dev_field big busy)" \
    "the cancelled save: the device is back in running_p2p, where it was, and idle"
assert_contains "$(<"$T/bg.err")" "rolled back, now in running_p2p" "  ... and the error says so"
assert_eq "" "$(partials)" "the cancelled save: the partial file is removed"
assert_file_absent "$T/big.sav" "  ... and no file has the name"

# A failed save from running_p2p goes back to running_p2p too (the arc after the P2P state
# fails: the device passed through stop).
expect_exit 0 jctl attach --sim "size=64K,fail_arc=stop->stop_copy" --name F
expect_exit 0 jctl state F running_p2p
expect_error ABORTED jctl save F "$T/f.sav"
assert_eq "running_p2p" "$(dev_field F state)" "a failed save from running_p2p: back in running_p2p"

# ==== a cancelled restore: reset (the only way out of resuming), then back where it was

# 16 MiB at 128 KiB/s: two minutes of loading, one 512 KiB record (4 s) at a time.
expect_exit 0 jctl attach --sim size=16M --name src
expect_exit 0 jctl save src "$T/src.sav" --resume
expect_exit 0 jctl attach --sim size=16M,data_rate=128K --name slowin
expect_exit 0 jctl state slowin stop
jctl restore slowin "$T/src.sav" >"$T/bg.out" 2>"$T/bg.err" &
BG=$!
loading() { [[ "$(jget "$(jctl job "$(job_of slowin)")" phase 2>/dev/null)" == switchover ]]; }
check "the restore is writing into the device" wait_until 30 loading
cancel_job "$(job_of slowin)" restore
assert_eq "stop false" "$(dev_field slowin state) $(dev_field slowin data_session_open)" \
    "the cancelled restore: the device is reset and back in stop, where it was"
assert_contains "$(<"$T/bg.err")" "reset, now in stop" "  ... and the error says so"
assert_eq "1" "$(dev_field slowin stats.resets)" "  ... after one reset"

# ==== shutdown: a large save in flight is cancelled, the daemon exits, the partial file goes

start_named_daemon S
expect_exit 0 njctl S attach --sim size=1G,data_rate=4M --name huge
nctl S --json save huge "$T/huge.sav" >"$T/s.out" 2>"$T/s.err" &
BG=$!
s_job() {
    njctl S jobs | "$PY" -S -c '
import json, sys
j = [m for m in json.load(sys.stdin) if m["state"] == "active"]
print(j[0]["id"] if j else "")'
}
s_writing() { [[ -n "$(s_job)" ]] && (($(jget "$(njctl S job "$(s_job)")" bytes) > 0)); }
check "the large save is writing" wait_until 30 s_writing
assert_ne "" "$(partials)" "  ... into a partial file"
# The bound is the cancel's: one record, then the rollback's arcs; 60 s is only a backstop.
kill -TERM "$S_PID"
if wait_exit "$S_PID" 60; then
    assert_eq "0" "$WAIT_RC" "SIGTERM during a large save: the daemon exits 0"
else
    fail "SIGTERM during a large save: the daemon exits" "still running 60 s after SIGTERM"
    kill -KILL "$S_PID" 2>/dev/null || true
    wait "$S_PID" 2>/dev/null || true
fi
_forget_daemon "$S_PID"
assert_eq "" "$(partials)" "  ... and no partial file is left"
assert_file_absent "$T/huge.sav" "  ... nor a file under the name"
wait_bg
assert_eq "1" "$BGRC" "  ... the client's save fails"
assert_contains "$(named_log S)" "the daemon is shutting down" "  ... the daemon says why it stopped the save"
