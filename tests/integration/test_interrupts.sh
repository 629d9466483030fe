#!/usr/bin/env bash
# Nothing waits without an end, and Ctrl-C always works (issue 10 item 1). `watch` with nothing
# active says so at once, also with --timeout 0 (no deadline); every wait of the CLI — a unary
# call the daemon has not answered, the opening of a stream, a stream between events — ends
# on SIGINT or SIGTERM with exit 1 and a sentence. The CLI is interrupted only once it is
# provably waiting: the daemon reports the call it is in (a held arc makes the device busy),
# never after a delay. A wait that did not end is cut off by wait_exit's bound, and fails.
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

start_daemon

# ==== watch with nothing to watch: at once, exit 0, whatever the timeout
for timeout in 0 30; do
    "$VFIO_MIGCTL" --socket "$SOCK" --timeout "$timeout" watch >"$T/w.out" 2>"$T/w.err" &
    expect_ended $! 0 "watch --timeout $timeout with no migration"
    assert_eq "no active migrations" "$(cat "$T/w.out")" "  ... says so"
done
"$VFIO_MIGCTL" --socket "$SOCK" --timeout 0 --json watch >"$T/w.out" 2>"$T/w.err" &
expect_ended $! 0 "watch --json --timeout 0 with no migration"
assert_eq "" "$(cat "$T/w.out")" "  ... no event: an empty stream"

# ==== a unary call the daemon has not answered: the device's arc is held
expect_exit 0 jctl attach --sim "size=4K,flags=stop_copy,$(held 'running->stop' slow)" --name slow
is_busy() { [[ "$(dev_field slow busy)" == true ]]; }
for sig in INT TERM; do
    for timeout in 0 30; do
        what="state (held, --timeout $timeout) on SIG$sig"
        rm -f "$T/slow.release"
        "$VFIO_MIGCTL" --socket "$SOCK" --timeout "$timeout" state slow stop \
            >"$T/u.out" 2>"$T/u.err" &
        pid=$!
        wait_state "$what: the daemon is in the call" is_busy
        kill -s "$sig" "$pid"
        expect_ended "$pid" 1 "$what"
        assert_contains "$(cat "$T/u.err")" "vfio-migctl: state: interrupted before vfio-migd answered" "  ... says it was interrupted"
        assert_contains "$(cat "$T/u.err")" "(CANCELLED)" "  ... as CANCELLED"
        # The arc itself goes on: released, it completes; back to running for the next round.
        release slow
        wait_state "$what: the held arc then completes" test "$(dev_field slow busy)" == false
        assert_eq "stop" "$(dev_field slow state)" "  ... the device reached stop"
        expect_exit 0 ctl state slow running
    done
done

# --json: the document says why too.
rm -f "$T/slow.release"
"$VFIO_MIGCTL" --socket "$SOCK" --json state slow stop >"$T/u.out" 2>"$T/u.err" &
pid=$!
wait_state "state --json (held): the daemon is in the call" is_busy
kill -INT "$pid"
expect_ended "$pid" 1 "state --json interrupted"
assert_eq "CANCELLED" "$(jget "$(cat "$T/u.out")" code)" "  ... the document's code is CANCELLED"
release slow
wait_state "state --json: the held arc then completes" test "$(dev_field slow busy)" == false

# ==== a long operation without a deadline (save, --timeout 0), on SIGTERM
expect_exit 0 ctl state slow running
rm -f "$T/slow.release"
"$VFIO_MIGCTL" --socket "$SOCK" --timeout 0 save slow "$ALLOW_DIR/slow.sav" \
    >"$T/s.out" 2>"$T/s.err" &
pid=$!
wait_state "save (held): the daemon is in the call" is_busy
kill -TERM "$pid"
expect_ended "$pid" 1 "save --timeout 0 interrupted (SIGTERM)"
assert_contains "$(cat "$T/s.err")" "interrupted before vfio-migd answered" "  ... says it was interrupted"
assert_contains "$(cat "$T/s.err")" "vfio-migctl jobs" "  ... and where the operation can be followed"
release slow
wait_state "save: the held arc then completes" test "$(dev_field slow busy)" == false

# ==== giving up (--timeout) on a long operation: it goes on, and `jobs` shows it
expect_exit 0 ctl reset slow
rm -f "$T/slow.release" "$ALLOW_DIR/slow.sav"
expect_exit 1 ctl --timeout 0.5 save slow "$ALLOW_DIR/slow.sav"
assert_contains "$ERR" "the operation goes on; \`vfio-migctl jobs\` shows it" "gave up: says the operation goes on"
assert_not_contains "$ERR" "(use --timeout)" "  ... not merely '(use --timeout)'"
release slow
wait_state "the save the client gave up on completes" test -e "$ALLOW_DIR/slow.sav"

# ==== a stream between events: watch of an incoming migration, which stays active (waiting
# for a source that never comes) and quiet after its first event
expect_exit 0 ctl attach --sim size=4K --name d0
expect_exit 0 ctl group create g d0
expect_exit 0 jctl incoming g --listen 127.0.0.1:0
MID=$(jget "$OUT" id)
for sig in INT TERM; do
    "$VFIO_MIGCTL" --socket "$SOCK" --timeout 0 watch "$MID" >"$T/ws.out" 2>"$T/ws.err" &
    pid=$!
    wait_state "watch ID (SIG$sig): the first event is printed" test -s "$T/ws.out"
    kill -s "$sig" "$pid"
    expect_ended "$pid" 1 "watch ID interrupted (SIG$sig)"
    assert_contains "$(cat "$T/ws.err")" "interrupted; migration $MID goes on" "  ... says the migration goes on"
done
expect_exit 0 ctl cancel "$MID"


# ==== a client that gave up: the operation it left queued is dropped, not run later
# (issue 11 item 6). One worker, held by a state change whose arc waits; the next state change
# can only queue behind it. Its client's deadline passes while it is queued: the daemon drops
# it (and logs so) and the device never moves, also once the worker is free again.
start_named_daemon W --workers 1
expect_exit 0 njctl W attach --sim "size=4K,flags=stop_copy,$(held 'running->stop' hog)" --name hog
expect_exit 0 njctl W attach --sim size=4K,flags=stop_copy --name q
nctl W state hog stop >"$T/hog.out" 2>&1 &
BG=$!
w_field() { jget "$(njctl W show "$1")" "$2"; }
hog_busy() { [[ "$(w_field hog busy)" == true ]]; }
wait_state "the held state change has the only worker" hog_busy
expect_exit 1 nctl W --timeout 1 state q stop
assert_contains "$ERR" "(DEADLINE_EXCEEDED)" "the queued state change: its client gave up"
wait_state "the daemon drops the queued operation once the client's deadline passed" \
    grep -qF "Device 'q': set-state dropped before it started: the client's deadline passed while it waited for a worker." "$T/W.log"
assert_eq "running false" "$(w_field q state) $(w_field q busy)" "the dropped operation left q as it was, idle"
check "the held state change still runs" proc_running "$BG"
release hog
wait_bg
assert_eq "0" "$BGRC" "the held state change then completes"
# The worker is free: the dropped operation must not run now.
expect_exit 0 njctl W state hog running
assert_eq "running 0 " "$(w_field q state) $(w_field q stats.transitions) $(w_field q stats.last_error)" \
    "q never moved, and the drop is no error of the device's"
# A reset is dropped the same way.
rm -f "$T/hog.release"
nctl W state hog stop >"$T/hog.out" 2>&1 &
BG=$!
wait_state "the held state change has the only worker again" hog_busy
expect_exit 1 nctl W --timeout 1 reset q
wait_state "the queued reset is dropped" \
    grep -qF "Device 'q': reset dropped before it started" "$T/W.log"
release hog
wait_bg
assert_eq "0" "$(w_field q stats.resets)" "the dropped reset never reset q"

# ==== a client without a deadline (--timeout 0) that goes away (Ctrl-C) while its operation
# waits for a worker: the daemon sees it at once (it watches the call's close) and drops the
# operation, as at a deadline; q never moves (issue 11 item 6)
q_busy() { [[ "$(w_field q busy)" == true ]]; }
expect_exit 0 njctl W state hog running
for op in "state q stop" "reset q"; do
    rm -f "$T/hog.release"
    nctl W state hog stop >"$T/hog.out" 2>&1 &
    BG=$!
    wait_state "$op: the held state change has the only worker" hog_busy
    mark=$(wc -l <"$T/W.log")
    # shellcheck disable=SC2086 # $op is the command and its words
    "$VFIO_MIGCTL" --socket "$W_SOCK" --timeout 0 $op >"$T/q.out" 2>"$T/q.err" &
    pid=$!
    wait_state "$op --timeout 0: queued behind it (q busy)" q_busy
    kill -INT "$pid"
    expect_ended "$pid" 1 "$op --timeout 0 interrupted"
    name=${op%% *}; name=${name/state/set-state}
    wait_state "$op: the daemon drops the queued operation once its client went away" \
        bash -c "tail -n +$((mark + 1)) '$T/W.log' | grep -qF \"Device 'q': $name dropped before it started: its client went away while it waited for a worker.\""
    release hog
    wait_bg
    assert_eq "0" "$BGRC" "$op: the held state change then completes"
    expect_exit 0 njctl W state hog running
    assert_eq "running false 0 0" "$(w_field q state) $(w_field q busy) $(w_field q stats.transitions) $(w_field q stats.resets)" \
        "$op: q never moved and is idle again"
done
